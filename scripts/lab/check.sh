#!/usr/bin/env bash
# Proves that the TLS and SSH services scripts/test.sh starts behave as the tests expect,
# without building or running the Rust suite. Run it through `scripts/test.sh --lab-check`
# (which starts the services, runs this and stops them), or by hand with the DBKEEP_TEST_*
# variables of a `scripts/test.sh --lab-shell` set.
# Prints every command and its output; exits 1 if any expectation fails.
set -uo pipefail

: "${DBKEEP_TEST_TLS_DIR:?not set: run scripts/test.sh --lab-check}"
: "${DBKEEP_TEST_PGTLS_PORT:?}" "${DBKEEP_TEST_MYTLS_PORT:?}" "${DBKEEP_TEST_MYTLS_SOCKET:?}"
: "${DBKEEP_TEST_SSH_PORT:?}" "${DBKEEP_TEST_SSH_USER:?}" "${DBKEEP_TEST_SSH_KEY:?}"
: "${DBKEEP_TEST_SSH_KNOWN_HOSTS:?}" "${DBKEEP_TEST_SSH_WRONG_KNOWN_HOSTS:?}"

dir=$DBKEEP_TEST_TLS_DIR
pg_port=$DBKEEP_TEST_PGTLS_PORT
my_port=$DBKEEP_TEST_MYTLS_PORT
ssh_port=$DBKEEP_TEST_SSH_PORT
user=$DBKEEP_TEST_SSH_USER
key=$DBKEEP_TEST_SSH_KEY
kh=$DBKEEP_TEST_SSH_KNOWN_HOSTS
wrong_kh=$DBKEEP_TEST_SSH_WRONG_KNOWN_HOSTS

failed=0
out=

# run CMD...: prints the command and its indented output; the output is kept in $out.
run() {
  printf '$ %s\n' "$*"
  out=$("$@" 2>&1)
  local rc=$?
  if [ -n "$out" ]; then
    # Long outputs (a dump) are cut to their first and last lines.
    if [ "$(wc -l <<<"$out")" -gt 16 ]; then
      { head -n 6 <<<"$out"; echo '[...]'; tail -n 6 <<<"$out"; } | sed 's/^/    /'
    else
      printf '%s\n' "$out" | sed 's/^/    /'
    fi
  fi
  printf '    (exit %s)\n' "$rc"
  return "$rc"
}

pass() { printf 'PASS: %s\n\n' "$1"; }
fail() { printf 'FAIL: %s\n\n' "$1"; failed=1; }

# expect_ok WHAT PATTERN CMD...: CMD succeeds and its output matches PATTERN (grep -E).
expect_ok() {
  local what=$1 pattern=$2
  shift 2
  if run "$@" && grep -Eq -- "$pattern" <<<"$out"; then pass "$what"; else fail "$what"; fi
}

# expect_fail WHAT PATTERN CMD...: CMD fails and its output matches PATTERN (grep -E).
expect_fail() {
  local what=$1 pattern=$2
  shift 2
  if ! run "$@" && grep -Eq -- "$pattern" <<<"$out"; then pass "$what"; else fail "$what"; fi
}

pg="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"
q='select ssl from pg_stat_ssl where pid=pg_backend_pid()'

echo "== PostgreSQL, TLS only, on 127.0.0.1:$pg_port"
expect_ok "verify-full against the test CA uses TLS" '^ t$' \
  psql "$pg sslmode=verify-full sslrootcert=$dir/ca.pem" -c "$q"
expect_fail "sslmode=disable is rejected by pg_hba.conf" 'pg_hba.conf rejects connection.*no encryption' \
  psql "$pg sslmode=disable" -c "$q"
expect_fail "verify-full against another CA fails" 'certificate verify failed' \
  psql "$pg sslmode=verify-full sslrootcert=$dir/other-ca.pem" -c "$q"
expect_ok "the client certificate (CN=dbkeep) is accepted and seen by the server" 'CN=dbkeep' \
  psql "$pg sslmode=verify-full sslrootcert=$dir/ca.pem sslcert=$dir/client.pem sslkey=$dir/client.key" \
  -tAc 'select client_dn from pg_stat_ssl where pid=pg_backend_pid()'

echo "== MariaDB, user tls REQUIRE SSL, on 127.0.0.1:$my_port"
expect_ok "TLS with --ssl-verify-server-cert gives a cipher" 'Ssl_cipher[[:space:]]+[A-Z0-9_-]+' \
  mariadb -h127.0.0.1 -P"$my_port" -utls -ptls-pw-1 --ssl --ssl-ca="$dir/ca.pem" --ssl-verify-server-cert \
  -e "show status like 'Ssl_cipher'"
# The 10.11.19 client (and mariadb-dump) default to ssl=TRUE, ssl-verify-server-cert=FALSE:
# without --ssl they still use TLS, unverified. Only --skip-ssl gives a plain connection.
expect_ok "without --ssl the client still uses TLS (its default), unverified" 'Ssl_cipher[[:space:]]+[A-Z0-9_-]+' \
  mariadb -h127.0.0.1 -P"$my_port" -utls -ptls-pw-1 -e "show status like 'Ssl_cipher'"
expect_fail "with --skip-ssl the tls user is denied" 'Access denied' \
  mariadb -h127.0.0.1 -P"$my_port" -utls -ptls-pw-1 --skip-ssl -e "show status like 'Ssl_cipher'"
expect_fail "--ssl-verify-server-cert against another CA fails" 'certificate verify failed|self[- ]signed|unable to get' \
  mariadb -h127.0.0.1 -P"$my_port" -utls -ptls-pw-1 --ssl --ssl-ca="$dir/other-ca.pem" --ssl-verify-server-cert \
  -e 'select 1'
expect_ok "mariadb-dump over verified TLS" 'Dump completed' \
  mariadb-dump -h127.0.0.1 -P"$my_port" -utls -ptls-pw-1 --ssl --ssl-ca="$dir/ca.pem" --ssl-verify-server-cert \
  --no-data mysql db
expect_fail "mariadb-dump with --skip-ssl is denied" 'Access denied' \
  mariadb-dump -h127.0.0.1 -P"$my_port" -utls -ptls-pw-1 --skip-ssl --no-data mysql db
expect_ok "root over the socket (for setup)" 'tls@%' \
  mariadb --no-defaults --socket="$DBKEEP_TEST_MYTLS_SOCKET" -uroot -N \
  -e "select concat(user, '@', host) from mysql.user where user='tls'"

echo "== sshd on 127.0.0.1:$ssh_port (user $user)"
ssh_opts=(-p "$ssh_port" -i "$key" -o StrictHostKeyChecking=yes -o BatchMode=yes)
expect_ok "key login with the right known_hosts" '^' \
  ssh "${ssh_opts[@]}" -o UserKnownHostsFile="$kh" "$user@127.0.0.1" true
expect_fail "the wrong known_hosts fails host key verification" 'Host key verification failed' \
  ssh "${ssh_opts[@]}" -o UserKnownHostsFile="$wrong_kh" "$user@127.0.0.1" true
batch=$(mktemp)
printf 'ls %s\n' "$dir" >"$batch"
expect_ok "sftp (internal-sftp) lists the PKI folder" 'ca\.pem' \
  sftp -b "$batch" -P "$ssh_port" -i "$key" \
  -o UserKnownHostsFile="$kh" -o StrictHostKeyChecking=yes -o BatchMode=yes "$user@127.0.0.1"
rm -f "$batch"

echo "== PostgreSQL through an SSH tunnel"
local_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '$ ssh -N -L 127.0.0.1:%s:127.0.0.1:%s %s -o UserKnownHostsFile=%s %s@127.0.0.1 &\n' \
  "$local_port" "$pg_port" "${ssh_opts[*]}" "$kh" "$user"
ssh -N -L "127.0.0.1:$local_port:127.0.0.1:$pg_port" -o ExitOnForwardFailure=yes \
  "${ssh_opts[@]}" -o UserKnownHostsFile="$kh" "$user@127.0.0.1" &
tunnel=$!
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $local_port), 1)" 2>/dev/null && break
  sleep 0.05
done
expect_ok "verify-full through the tunnel" '^ t$' \
  psql "host=127.0.0.1 port=$local_port user=postgres dbname=postgres sslmode=verify-full sslrootcert=$dir/ca.pem" -c "$q"
kill "$tunnel" 2>/dev/null
wait "$tunnel" 2>/dev/null

if [ "$failed" = 0 ]; then echo "lab check: all passed"; else echo "lab check: FAILED"; fi
exit "$failed"
