# shellcheck shell=bash disable=SC2154 # state, pg_bin, ... are set by test.sh
# Sourced by scripts/test.sh: a test PKI and two TLS databases on free ports.
#
#   lab_pki           writes ca.pem/ca.key, server.pem/server.key (SAN IP:127.0.0.1,
#                     DNS:localhost), client.pem/client.key (CN=dbkeep) and other-ca.pem
#                     (an unrelated CA) into a fresh target/test-services/tls.XXXXXX.
#   lab_pgtls_init    starts initdb of a private PostgreSQL cluster in the background
#   lab_pgtls_start   configures it TLS-only (pg_hba: hostssl trust, hostnossl reject), starts it
#   lab_mytls_start   a private mariadbd with --ssl-ca/--ssl-cert/--ssl-key and the user
#                     'tls'@'%' IDENTIFIED BY 'tls-pw-1' REQUIRE SSL
#
# Uses test.sh's helpers and state: log, as_pg, is_root, free_port, pg_bin, state, pids,
# pg_clusters (data dirs stopped on exit) and tmp_dirs (removed on exit).
# Keys are EC P-256: generating them takes milliseconds (RSA 2048 takes ~0.2 s each), and
# OpenSSL (libpq, MariaDB), rustls and native-tls all accept them.

# lab_cert NAME CA SUBJECT EXTENSIONS: a key and a certificate signed by CA, valid 30 days.
lab_cert() {
  local name=$1 ca=$2 subj=$3 ext=$4
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls_dir/$name.key" 2>/dev/null
  openssl req -new -key "$tls_dir/$name.key" -subj "$subj" -out "$tls_dir/$name.csr"
  printf '%s\n' "$ext" >"$tls_dir/$name.ext"
  openssl x509 -req -in "$tls_dir/$name.csr" -CA "$tls_dir/$ca.pem" -CAkey "$tls_dir/$ca.key" \
    -CAcreateserial -days 30 -sha256 -extfile "$tls_dir/$name.ext" -out "$tls_dir/$name.pem" 2>/dev/null
  rm -f "$tls_dir/$name.csr" "$tls_dir/$name.ext"
}

# lab_ca NAME CN: a self-signed CA certificate and its key.
lab_ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -sha256 \
    -subj "/CN=$2" -keyout "$tls_dir/$1.key" -out "$tls_dir/$1.pem" \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
    2>/dev/null
}

lab_pki() {
  tls_dir=$(mktemp -d "$state/tls.XXXXXX")
  tmp_dirs+=("$tls_dir")
  lab_ca ca 'dbkeep test CA'
  lab_ca other-ca 'dbkeep other test CA'
  lab_cert server ca /CN=localhost "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier=keyid,issuer"
  lab_cert client ca /CN=dbkeep "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
authorityKeyIdentifier=keyid,issuer"
  rm -f "$tls_dir"/*.srl
  chmod 0600 "$tls_dir"/*.key
  # The tests may run as another user than the one who made the PKI: the folder is readable.
  chmod 0755 "$tls_dir"
  chmod 0644 "$tls_dir"/*.pem
}

# initdb (about a second) runs in the background; lab_pgtls_start waits for it.
lab_pgtls_init() {
  pgtls_dir=$(mktemp -d "$state/pgtls.XXXXXX")
  pgtls_data="$pgtls_dir/data"
  tmp_dirs+=("$pgtls_dir")
  if is_root; then chown postgres "$pgtls_dir"; fi
  as_pg "$pg_bin/initdb" -D "$pgtls_data" -A trust -U postgres --no-sync >"$pgtls_dir/initdb.log" 2>&1 &
  pgtls_initdb_pid=$!
}

lab_pgtls_start() {
  wait "$pgtls_initdb_pid" || { cat "$pgtls_dir/initdb.log" >&2; return 1; }
  pgtls_port=$(free_port)
  # The server reads its own copies: the key must belong to the server's user, mode 0600.
  local owner
  owner=$(id -un)
  is_root && owner=postgres
  install -o "$owner" -m 0644 "$tls_dir/server.pem" "$tls_dir/ca.pem" "$pgtls_dir/"
  install -o "$owner" -m 0600 "$tls_dir/server.key" "$pgtls_dir/"
  as_pg tee -a "$pgtls_data/postgresql.conf" >/dev/null <<EOF
# dbkeep test.sh: TLS only
listen_addresses = '127.0.0.1'
port = $pgtls_port
unix_socket_directories = '$pgtls_dir'
fsync = off
max_connections = 100
ssl = on
ssl_cert_file = '$pgtls_dir/server.pem'
ssl_key_file = '$pgtls_dir/server.key'
ssl_ca_file = '$pgtls_dir/ca.pem'
EOF
  as_pg tee "$pgtls_data/pg_hba.conf" >/dev/null <<'EOF'
# dbkeep test.sh: TLS only over TCP, trust over the socket
local     all          all                 trust
hostssl   all          all   127.0.0.1/32  trust
hostssl   replication  all   127.0.0.1/32  trust
hostnossl all          all   0.0.0.0/0     reject
EOF
  log "starting a TLS-only PostgreSQL on 127.0.0.1:$pgtls_port"
  as_pg "$pg_bin/pg_ctl" -D "$pgtls_data" -l "$pgtls_dir/server.log" -w start >/dev/null \
    || { cat "$pgtls_dir/server.log" >&2; return 1; }
  pg_clusters+=("$pgtls_data")
}

lab_mytls_start() {
  mytls_port=$(free_port)
  mytls_dir=$(mktemp -d "$state/mytls.XXXXXX")
  mytls_socket="$mytls_dir/sock"
  tmp_dirs+=("$mytls_dir")
  local mariadbd
  mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  mariadb-install-db --no-defaults --datadir="$mytls_dir/data" --user="$(id -un)" \
    --auth-root-authentication-method=normal --skip-test-db >"$mytls_dir/install.log" 2>&1 \
    || { cat "$mytls_dir/install.log" >&2; return 1; }
  log "starting a TLS MariaDB on 127.0.0.1:$mytls_port"
  "$mariadbd" --no-defaults --datadir="$mytls_dir/data" --user="$(id -un)" --port="$mytls_port" \
    --bind-address=127.0.0.1 --socket="$mytls_socket" --max-connections=100 \
    --ssl-ca="$tls_dir/ca.pem" --ssl-cert="$tls_dir/server.pem" --ssl-key="$tls_dir/server.key" \
    >"$mytls_dir/server.log" 2>&1 &
  pids+=($!)
  local _
  for _ in $(seq 1 100); do
    mariadb --no-defaults --socket="$mytls_socket" -uroot -e 'select 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb --no-defaults --socket="$mytls_socket" -uroot -e "
    CREATE USER 'tls'@'%' IDENTIFIED BY 'tls-pw-1' REQUIRE SSL;
    GRANT ALL ON *.* TO 'tls'@'%' WITH GRANT OPTION;" \
    || { cat "$mytls_dir/server.log" >&2; return 1; }
  if ! mariadb --no-defaults --socket="$mytls_socket" -uroot -N -e "show variables like 'have_ssl'" \
    | grep -q YES; then
    cat "$mytls_dir/server.log" >&2
    log "the TLS MariaDB started without TLS"
    return 1
  fi
}
