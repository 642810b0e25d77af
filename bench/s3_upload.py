#!/usr/bin/env python3
"""Benchmark: upload throughput of `dbkeep backup` to a local S3 server (moto)
against `rclone rcat` of the same dump to the same server, in one run.

The dump is a real `pg_dump -Fc -Z0` of the benchmark database (see
pg_backup.py), written to a file once. Both tools then upload those same
bytes: rclone reads the file on stdin; dbkeep reads it from a stand-in
pg_dump that `cat`s the file, with `--compression none`, so both store the
same number of bytes. Peak RSS is the VmHWM of the uploading process.

Usage: bench/s3_upload.py [--db dbkeep_bench] [--dbkeep target/release/dbkeep]
Needs: rclone (Debian package), moto_server (PyPI moto[server]), pg_dump.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from pg_backup import CONN, measure  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="dbkeep_bench")
    ap.add_argument("--dbkeep", default="target/release/dbkeep")
    ap.add_argument("--moto", default=shutil.which("moto_server") or "target/test-tools/venv/bin/moto_server")
    args = ap.parse_args()
    dbkeep = os.path.abspath(args.dbkeep)
    for tool in ["rclone", "pg_dump", args.moto, dbkeep]:
        if not shutil.which(tool) and not os.path.exists(tool):
            sys.exit(f"`{tool}` not found")
    work = tempfile.mkdtemp(prefix="dbkeep-s3-bench-", dir=os.environ.get("BENCH_DIR"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([args.moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/")
                break
            except OSError:
                time.sleep(0.1)
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/bench", method="PUT"))
        dump = os.path.join(work, "dump.pgdump")
        subprocess.run(f"pg_dump -Fc -Z0 {' '.join(CONN)} -d {args.db} > {dump}", shell=True, check=True)
        size = os.path.getsize(dump)
        print(f"dump: {size / 1e6:.1f} MB")

        env = dict(os.environ, RCLONE_CONFIG_M_TYPE="s3", RCLONE_CONFIG_M_PROVIDER="Other",
                   RCLONE_CONFIG_M_ENDPOINT=endpoint, RCLONE_CONFIG_M_ACCESS_KEY_ID="bench",
                   RCLONE_CONFIG_M_SECRET_ACCESS_KEY="bench-secret", RCLONE_CONFIG_M_FORCE_PATH_STYLE="true",
                   AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret", AWS_EC2_METADATA_DISABLED="true")
        os.environ.update(env)
        # rclone fails to load AWS_CA_BUNDLE into its transport (the server is
        # plain http). After uploading, rclone 1.60 checks the object with
        # HEAD ?versionId=null, which moto answers 400, so rclone exits 1 even
        # though the upload completed: its exit code is ignored, and the
        # object's size is checked through the server's listing instead.
        w_rc, kb_rc = measure(
            "rclone", f"env -u AWS_CA_BUNDLE rclone rcat m:bench/rclone/dump.pgdump < {dump} 2>/dev/null; true", "rclone"
        )
        listing = urllib.request.urlopen(f"{endpoint}/bench?list-type=2&prefix=rclone/").read().decode()
        if f"<Size>{size}</Size>" not in listing:
            sys.exit("rclone's upload did not arrive whole")
        tools = os.path.join(work, "tools")
        os.mkdir(tools)
        real = shutil.which("pg_dump")
        with open(os.path.join(tools, "pg_dump"), "w") as f:
            f.write(f'#!/bin/sh\ncase "$*" in *--version*) exec {real} --version;; esac\nexec cat {dump}\n')
        os.chmod(os.path.join(tools, "pg_dump"), 0o755)
        url = f"s3://bench/dbkeep?endpoint={endpoint}&path_style=true"
        w_dk, kb_dk = measure(
            "dbkeep",
            f"PATH={tools}:$PATH {dbkeep} -q backup postgres://{CONN[5]}@{CONN[1]}:{CONN[3]}/{args.db} "
            f"--compression none --job bench --to '{url}' >/dev/null",
            "dbkeep",
        )
        print(f"  rclone rcat           {w_rc:7.2f} s  {size / w_rc / 1e6:7.1f} MB/s  peak RSS {kb_rc / 1024:6.1f} MiB")
        print(f"  dbkeep backup         {w_dk:7.2f} s  {size / w_dk / 1e6:7.1f} MB/s  peak RSS {kb_dk / 1024:6.1f} MiB")
        print("ratios")
        print(f"  dbkeep rate / rclone rate          {w_rc / w_dk:6.2f}   (target >= 0.90)")
        print(f"  dbkeep peak RSS                    {kb_dk / 1024:6.1f} MiB (target <= 64 MiB + 16 MiB x 5 part buffers)")
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
