#!/usr/bin/env python3
"""Benchmark: dbkeep backup and restore of 1M Redis keys against `redis-cli --rdb`.

Starts a private redis-server on a free port, fills db 0 with KEYS keys
(strings, hashes, lists, sorted sets; a fifth with an expiry), then in
one run measures wall time, peak RSS (VmHWM of the named process) and size:

  backup   redis-cli --rdb FILE             the server's own snapshot
           dbkeep backup (zstd)
  restore  dbkeep restore (verify + RESTORE ... ABSTTL)   into the flushed server

The server runs with repl-diskless-sync-delay 0, so `--rdb` starts at once
instead of waiting 5 s for more replicas. An RDB file cannot be loaded into a live server, so the restore has no
same-kind baseline; its rate is printed in keys per second.

Usage: bench/redis_backup.py [--keys 1000000] [--dbkeep target/release/dbkeep]
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from pg_backup import measure, size_of  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(f"${len(a)}\r\n".encode() + a + b"\r\n")
    return b"".join(out)


def fill(port, keys):
    cmds = []
    for i in range(keys):
        kind = i % 10
        k = f"key:{i}"
        if kind < 6:
            cmds.append(resp("SET", k, f"value-{i}-" + "x" * (i % 64)))
        elif kind < 8:
            cmds.append(resp("HSET", k, "name", f"user {i}", "visits", i, "plan", "pro" if i % 3 else "free"))
        elif kind == 8:
            cmds.append(resp("RPUSH", k, *[f"item{j}" for j in range(i % 7 + 1)]))
        else:
            cmds.append(resp("ZADD", k, 1, "a", 2, "b", i, "c"))
        if i % 5 == 0:
            cmds.append(resp("EXPIRE", k, 86400))
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=b"".join(cmds), check=True,
                   stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--dbkeep", default="target/release/dbkeep")
    args = ap.parse_args()
    dbkeep = os.path.abspath(args.dbkeep)
    if not os.path.exists(dbkeep):
        sys.exit(f"{dbkeep} not found: run `cargo build --release` first")
    work = tempfile.mkdtemp(prefix="dbkeep-redis-bench-", dir=os.environ.get("BENCH_DIR"))
    port = free_port()
    server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--dir", work],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        print(f"filling {args.keys} keys ...", flush=True)
        fill(port, args.keys)
        dbsize = subprocess.run(["redis-cli", "-p", str(port), "dbsize"], capture_output=True, text=True).stdout.strip()
        print(f"db 0 holds {dbsize} keys")

        rdb = os.path.join(work, "dump-copy.rdb")
        w_rdb, kb_rdb = measure("rdb", f"redis-cli -p {port} --rdb {rdb} >/dev/null 2>&1", "redis-cli")
        print(f"  backup   redis-cli --rdb                  {w_rdb:7.2f} s  {kb_rdb / 1024:7.1f} MiB  {size_of(rdb) / 1e6:8.1f} MB")
        out = os.path.join(work, "dbkeep")
        w_dk, kb_dk = measure("dbkeep", f"{dbkeep} -q backup redis://127.0.0.1:{port}/0 --to {out} --job bench >/dev/null", "dbkeep")
        print(f"  backup   dbkeep backup (zstd)             {w_dk:7.2f} s  {kb_dk / 1024:7.1f} MiB  {size_of(out) / 1e6:8.1f} MB")
        subprocess.run(["redis-cli", "-p", str(port), "flushall"], check=True, capture_output=True)
        w_r, kb_r = measure("restore", f"{dbkeep} -q restore --from {out} --job bench --target redis://127.0.0.1:{port}/0 >/dev/null", "dbkeep")
        restored = subprocess.run(["redis-cli", "-p", str(port), "dbsize"], capture_output=True, text=True).stdout.strip()
        print(f"  restore  dbkeep restore                   {w_r:7.2f} s  {kb_r / 1024:7.1f} MiB  ({restored} keys back)")
        print("ratios")
        print(f"  dbkeep backup / redis-cli --rdb     {w_dk / w_rdb:6.2f}x")
        print(f"  dbkeep backup rate                  {args.keys / w_dk:10.0f} keys/s")
        print(f"  dbkeep restore rate                 {args.keys / w_r:10.0f} keys/s")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
