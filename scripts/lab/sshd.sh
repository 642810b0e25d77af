# shellcheck shell=bash disable=SC2154 # state, pg_bin, ... are set by test.sh
# Sourced by scripts/test.sh: a private OpenSSH server on a free port of 127.0.0.1.
#
#   lab_sshd_start    makes target/test-services/ssh.XXXXXX with an ed25519 host key, a client
#                     key (id_ed25519, 0600) that may log in as the current user, known_hosts
#                     (the host key for [127.0.0.1]:PORT), wrong_known_hosts (another, fresh
#                     key for the same host and port) and sshd_config, then runs
#                     `sshd -D -e -f sshd_config` in the background. As root it also
#                     makes the account dbkeep-pw-PID (removed on exit) whose password,
#                     in ssh_pw_file, logs in (the only login that takes a password).
#
# Uses test.sh's helpers and state: log, is_root, free_port, state, pids, tmp_dirs, users.

lab_sshd_start() {
  ssh_port=$(free_port)
  ssh_dir=$(mktemp -d "$state/ssh.XXXXXX")
  ssh_user=$(id -un)
  tmp_dirs+=("$ssh_dir")
  local sshd
  sshd=$(command -v sshd || echo /usr/sbin/sshd)   # sshd re-executes itself: an absolute path
  ssh-keygen -q -t ed25519 -N '' -C "dbkeep-test-host" -f "$ssh_dir/host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "dbkeep-test-wrong-host" -f "$ssh_dir/wrong_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "dbkeep-test-client" -f "$ssh_dir/id_ed25519"
  chmod 0600 "$ssh_dir/id_ed25519"
  cp "$ssh_dir/id_ed25519.pub" "$ssh_dir/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$ssh_port" "$(cut -d' ' -f1,2 "$ssh_dir/host_ed25519_key.pub")" \
    >"$ssh_dir/known_hosts"
  printf '[127.0.0.1]:%s %s\n' "$ssh_port" "$(cut -d' ' -f1,2 "$ssh_dir/wrong_host_ed25519_key.pub")" \
    >"$ssh_dir/wrong_known_hosts"
  rm -f "$ssh_dir/wrong_host_ed25519_key"
  # A second login that takes a password (SFTP's password_file): an account of
  # its own, made only as root and removed on exit.
  ssh_pw_user= ssh_pw_file=
  if is_root && command -v useradd >/dev/null && command -v chpasswd >/dev/null; then
    ssh_pw_user="dbkeep-pw-$$"
    useradd -m -s /bin/sh "$ssh_pw_user"
    users+=("$ssh_pw_user")
    ssh_pw_file="$ssh_dir/password"
    python3 -c 'import secrets; print("pw-" + secrets.token_urlsafe(18))' >"$ssh_pw_file"
    chmod 0600 "$ssh_pw_file"
    printf '%s:%s\n' "$ssh_pw_user" "$(cat "$ssh_pw_file")" | chpasswd
  else
    log "not root: no password login on the private sshd; the SFTP password test will say it was skipped"
  fi
  cat >"$ssh_dir/sshd_config" <<EOF
# dbkeep test.sh: a private sshd for the tests, key login only
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $ssh_dir/host_ed25519_key
PidFile $ssh_dir/sshd.pid
AuthorizedKeysFile $ssh_dir/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $ssh_user $ssh_pw_user
AllowTcpForwarding yes
Subsystem sftp internal-sftp
UsePAM no
UseDNS no
PrintMotd no
# Tests may open many connections at once; the default (10:30:100) drops some.
MaxStartups 100:30:200
MaxSessions 50
EOF
  if [ -n "$ssh_pw_user" ]; then
    printf 'Match User %s\n  PasswordAuthentication yes\n  AuthenticationMethods password\n' "$ssh_pw_user" >>"$ssh_dir/sshd_config"
  fi
  # The privilege separation directory; only root can make it (and only root needs it).
  if is_root; then mkdir -p /run/sshd; fi
  "$sshd" -t -f "$ssh_dir/sshd_config" || return 1
  log "starting a private sshd on 127.0.0.1:$ssh_port (login: $ssh_user, key only)"
  "$sshd" -D -e -f "$ssh_dir/sshd_config" >"$ssh_dir/sshd.log" 2>&1 &
  pids+=($!)
  local _
  for _ in $(seq 1 100); do
    ssh-keyscan -T 1 -p "$ssh_port" 127.0.0.1 2>/dev/null | grep -q ssh-ed25519 && return 0
    sleep 0.05
  done
  cat "$ssh_dir/sshd.log" >&2
  log "sshd did not answer on 127.0.0.1:$ssh_port"
  return 1
}
