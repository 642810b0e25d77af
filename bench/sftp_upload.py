#!/usr/bin/env python3
"""Benchmark: upload rate of `dbkeep backup` to an SFTP storage against the
stock OpenSSH `sftp` client putting the same dump to the same server, in one
run.

Starts a private sshd (OpenSSH, internal-sftp) on a free port of 127.0.0.1
with fresh keys. Makes a PostgreSQL database of about --size-mb MB, dumps it
once with `pg_dump -Fc -Z0` to a file, and uploads that file both ways: the
stock client with `sftp -b put`; dbkeep from a stand-in pg_dump that `cat`s
the file, with `--compression none`, so both send the same bytes over the
same cipher. Rounds alternate; the best of each is compared. Prints both
rates and dbkeep's rate as a ratio of sftp's (goal: at least 0.9).

Usage: bench/sftp_upload.py [--size-mb 500] [--rounds 3] [--dbkeep target/release/dbkeep]
Needs: sshd and sftp (Debian openssh-server, openssh-client), a PostgreSQL
server (PGHOST/PGPORT/PGUSER, default 127.0.0.1:5432 postgres); as root, or a
user whose login sshd accepts.
"""

import argparse
import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from pg_backup import CONN, measure, psql  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_sshd(work):
    port = free_port()
    for name in ["host", "client"]:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{work}/{name}"], check=True)
    shutil.copy(f"{work}/client.pub", f"{work}/authorized_keys")
    with open(f"{work}/host.pub") as f:
        host_key = " ".join(f.read().split()[:2])
    with open(f"{work}/known_hosts", "w") as f:
        f.write(f"[127.0.0.1]:{port} {host_key}\n")
    user = getpass.getuser()
    with open(f"{work}/sshd_config", "w") as f:
        f.write(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work}/host\nPidFile {work}/sshd.pid\n"
            f"AuthorizedKeysFile {work}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n"
            f"KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n"
            "Subsystem sftp internal-sftp\nUsePAM no\nUseDNS no\n"
        )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", f"{work}/sshd_config"], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, user
        except OSError:
            time.sleep(0.05)
    sys.exit("sshd did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dbkeep", default="target/release/dbkeep")
    args = ap.parse_args()
    dbkeep = os.path.abspath(args.dbkeep)
    for tool in ["sftp", "ssh-keygen", dbkeep]:
        if not shutil.which(tool) and not os.path.exists(tool):
            sys.exit(f"`{tool}` not found")
    work = tempfile.mkdtemp(prefix="dbkeep-sftp-bench-", dir=os.environ.get("BENCH_DIR"))
    sshd, port, user = start_sshd(work)
    try:
        db = "dbkeep_sftp_bench"
        psql("postgres", f"drop database if exists {db}")
        psql("postgres", f"create database {db}")
        psql(db, "create table t (id int, v text)")
        psql(db, f"insert into t select i, repeat(md5(i::text), 30) from generate_series(1, {args.size_mb * 1000}) i")
        dump = f"{work}/dump.pgdump"
        subprocess.run(f"pg_dump -Fc -Z0 {' '.join(CONN)} -d {db} > {dump}", shell=True, check=True)
        psql("postgres", f"drop database {db}")
        size = os.path.getsize(dump)
        tools = f"{work}/tools"
        os.mkdir(tools)
        real = shutil.which("pg_dump")
        with open(f"{tools}/pg_dump", "w") as f:
            f.write(f'#!/bin/sh\ncase "$*" in *--version*) exec {real} --version;; esac\nexec cat {dump}\n')
        os.chmod(f"{tools}/pg_dump", 0o755)
        source = f"postgres://{CONN[5]}@{CONN[1]}:{CONN[3]}/postgres"
        opts = f"-i {work}/client -o IdentitiesOnly=yes -o UserKnownHostsFile={work}/known_hosts -o BatchMode=yes"
        url = f"sftp://{user}@127.0.0.1:{port}{work}/dbkeep?key_file={work}/client&known_hosts={work}/known_hosts"
        with open(f"{work}/batch", "w") as f:
            f.write(f"put {dump} {work}/stock.pgdump\n")
        best = {"sftp": None, "dbkeep": None}
        peak = {"sftp": 0, "dbkeep": 0}
        for r in range(args.rounds):
            for label, cmd, watch in [
                ("sftp", f"sftp -q {opts} -P {port} -b {work}/batch {user}@127.0.0.1 >/dev/null", "sftp"),
                ("dbkeep", f"PATH={tools}:$PATH {dbkeep} -q --no-progress backup --compression none "
                 f"--job bench {source} --to '{url}' >/dev/null", "dbkeep"),
            ]:
                wall, kb = measure(label, cmd, watch)
                best[label] = wall if best[label] is None else min(best[label], wall)
                peak[label] = max(peak[label], kb)
                print(f"round {r + 1}: {label:6} {wall:6.2f} s  {size / wall / 1e6:7.1f} MB/s", flush=True)
            shutil.rmtree(f"{work}/dbkeep", ignore_errors=True)
        print(f"\n{size / 1e6:.0f} MB over SFTP to 127.0.0.1, best of {args.rounds}:")
        for label in ["sftp", "dbkeep"]:
            print(f"  {label:6} {size / best[label] / 1e6:7.1f} MB/s  peak RSS {peak[label] / 1024:.0f} MiB")
        print(f"  dbkeep / sftp rate: {best['sftp'] / best['dbkeep']:.2f} (goal >= 0.9)")
    finally:
        sshd.terminate()
        sshd.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
