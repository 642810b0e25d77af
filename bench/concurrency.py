#!/usr/bin/env python3
"""Benchmark: two jobs on two servers, one after the other and side by side.

Starts two private PostgreSQL clusters on free ports, fills one database of
about --size-mb MB in each, and times `dbkeep backup a b` with `--jobs 1` and
with `--jobs 2`, in the same run. Prints both times and their ratio; the goal
is a ratio under 0.7. Each run writes to a fresh folder.

Usage: bench/concurrency.py [--size-mb 300] [--rounds 2] [--dbkeep target/release/dbkeep]
Needs initdb/pg_ctl (PostgreSQL server packages); run as root or as a user
that may run PostgreSQL (as root, the clusters run as `postgres`).
"""

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_pg(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    def __init__(self, root):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.dir = tempfile.mkdtemp(prefix="dbkeep-bench-pg-", dir=root)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        data = os.path.join(self.dir, "data")
        subprocess.run(as_pg([f"{self.bin}/initdb", "-D", data, "-A", "trust", "-U", "postgres"]),
                       check=True, capture_output=True)
        # The server keeps its output files open: give it a log, not our pipes.
        subprocess.run(as_pg([f"{self.bin}/pg_ctl", "-D", data, "-w", "-l", os.path.join(self.dir, "log"),
                              "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.data = data

    def psql(self, db, sql):
        return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                               "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
                              check=True, capture_output=True, text=True).stdout.strip()

    def fill(self, size_mb):
        self.psql("postgres", "create database bench")
        rows = size_mb * 1024 * 1024 // 200
        self.psql("bench", f"""
            create table t (id bigint primary key, at timestamptz, n numeric, note text);
            insert into t select i, now() - i * interval '1 second', i * 1.5,
                md5(i::text) || md5((i * 7)::text) || repeat(chr(65 + i % 26), 100)
            from generate_series(1, {rows}) i;
        """)
        return int(self.psql("bench", "select pg_database_size('bench')")) // (1024 * 1024)

    def stop(self):
        subprocess.run(as_pg([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size-mb", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dbkeep", default="target/release/dbkeep")
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix="dbkeep-bench-")
    os.chmod(root, 0o755)
    clusters = []
    try:
        clusters = [Cluster(root), Cluster(root)]
        for c in clusters:
            print(f"cluster on port {c.port}: {c.fill(args.size_mb)} MB", flush=True)
        config = os.path.join(root, "dbkeep.yaml")
        backups = os.path.join(root, "backups")
        with open(config, "w") as f:
            f.write(f"storages: {{ local: {{ type: local, path: {backups} }} }}\njobs:\n")
            for name, c in zip("ab", clusters):
                f.write(f"  {name}: {{ source: {{ type: postgres, host: 127.0.0.1, port: {c.port}, "
                        f"user: postgres, database: bench }} }}\n")
        times = {1: [], 2: []}
        for _ in range(args.rounds):
            for jobs in (1, 2):
                shutil.rmtree(backups, ignore_errors=True)
                start = time.monotonic()
                subprocess.run([args.dbkeep, "-q", "-c", config, "backup", "a", "b", "--jobs", str(jobs)],
                               check=True, stdout=subprocess.DEVNULL)
                times[jobs].append(time.monotonic() - start)
        one, two = min(times[1]), min(times[2])
        print(f"cores: {os.cpu_count()}")
        print(f"--jobs 1 (one after the other): {one:.2f} s")
        print(f"--jobs 2 (side by side):        {two:.2f} s")
        print(f"ratio: {two / one:.2f} (goal < 0.70)")
    finally:
        for c in clusters:
            c.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
