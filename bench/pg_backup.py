#!/usr/bin/env python3
"""Benchmark: dbkeep backup/restore against pg_dump alone, in one run.

Creates (or reuses) a PostgreSQL database of about 1 GB of varied data
(random text, jsonb, numerics, timestamps), then measures wall time, peak RSS
and output size for:

  backup  pg_dump -Fc -Z0 > /dev/null       the limit
          pg_dump -Fc -Z0 > file            (kept, for the raw restore)
          pg_dump -Fc -Z0 | gzip > file     what cron scripts do
          dbkeep backup (zstd) to a folder
  restore pg_restore < raw file
          gzip -dc file | pg_restore
          zstd -dc object | pg_restore      the reference for dbkeep restore
          dbkeep restore

Every pg_restore runs with --single-transaction --exit-on-error, as dbkeep's
does. Peak RSS is the peak of the named process alone (dbkeep, or the dump or
restore tool), read from /proc/PID/status VmHWM.

Usage: bench/pg_backup.py [--size-mb 1024] [--keep] [--dbkeep target/release/dbkeep]
Connection: PGHOST/PGPORT/PGUSER (default 127.0.0.1:5432, postgres).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HOST = os.environ.get("PGHOST", "127.0.0.1")
PORT = os.environ.get("PGPORT", "5432")
USER = os.environ.get("PGUSER", "postgres")
CONN = ["-h", HOST, "-p", PORT, "-U", USER]


def psql(db, sql):
    return subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *CONN, "-d", db, "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def make_database(name, size_mb):
    exists = psql("postgres", f"select count(*) from pg_database where datname = '{name}'") == "1"
    if exists:
        have = int(psql(name, "select pg_database_size(current_database())")) // (1024 * 1024)
        if have >= size_mb * 0.75:
            print(f"reusing database {name} ({have} MB)")
            return
        psql("postgres", f'drop database "{name}"')
    psql("postgres", f'create database "{name}"')
    print(f"creating database {name} of about {size_mb} MB ...", flush=True)
    psql(name, """
        create table events (
            id bigserial primary key,
            occurred timestamptz not null,
            account int not null,
            amount numeric(14, 4),
            ratio double precision,
            kind text not null,
            note text,
            payload jsonb
        );
        create table documents (id bigserial primary key, title text, body text, tags text[]);
    """)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
             "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
             "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
             "Zoë", "naïve", "straße", "東京"]
    arr = "array[" + ",".join(f"'{w}'" for w in words) + "]"
    batch_rows = 200_000
    # About 300 bytes a row in events, 1.5 KB a row in documents.
    events_batches = max(1, int(size_mb * 0.55 * 1024 * 1024 / 300 / batch_rows))
    docs_batches = max(1, int(size_mb * 0.45 * 1024 * 1024 / 1500 / (batch_rows // 4)))
    for _ in range(events_batches):
        psql(name, f"""
            insert into events (occurred, account, amount, ratio, kind, note, payload)
            select now() - random() * interval '900 days',
                   (random() * 100000)::int,
                   round((random() * 100000)::numeric, 4),
                   random(),
                   ({arr})[1 + (random() * 29)::int],
                   case when random() < 0.3 then null
                        else md5(random()::text) || ' ' || ({arr})[1 + (random() * 29)::int] end,
                   jsonb_build_object('ip', (random() * 255)::int || '.' || (random() * 255)::int || '.0.1',
                                      'ua', ({arr})[1 + (random() * 29)::int] || '/' || (random() * 100)::int,
                                      'n', (random() * 1e6)::int, 'ok', random() < 0.9)
            from generate_series(1, {batch_rows});
        """)
    for _ in range(docs_batches):
        psql(name, f"""
            insert into documents (title, body, tags)
            select initcap(({arr})[1 + (random() * 29)::int] || ' ' || ({arr})[1 + (random() * 29)::int]),
                   (select string_agg(({arr})[1 + (random() * 29 + g * 0)::int] || ' ' || substr(md5(random()::text), 1, (random() * 12)::int), ' ')
                      from generate_series(1, 60 + (random() * 80)::int + i * 0) g),
                   array[({arr})[1 + (random() * 29)::int], ({arr})[1 + (random() * 29)::int]]
            from generate_series(1, {batch_rows // 4}) i;
        """)
    psql(name, "create index events_account on events (account)")
    psql(name, "create index events_occurred on events (occurred)")
    psql(name, "vacuum analyze")
    have = int(psql(name, "select pg_database_size(current_database())")) // (1024 * 1024)
    print(f"created {have} MB")


def measure(label, shell_cmd, watch):
    """Runs a shell pipeline; returns wall seconds and the VmHWM (KiB) of the
    first process whose command name is `watch`."""
    peak = {"kb": 0}
    done = threading.Event()
    proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", shell_cmd], start_new_session=True)

    def poll():
        while not done.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if os.getsid(int(pid)) != proc.pid:
                        continue
                    with open(f"/proc/{pid}/comm") as f:
                        if f.read().strip() != watch:
                            continue
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                peak["kb"] = max(peak["kb"], int(line.split()[1]))
                except (OSError, ValueError):
                    pass
            time.sleep(0.05)

    t = threading.Thread(target=poll)
    t.start()
    start = time.monotonic()
    rc = proc.wait()
    wall = time.monotonic() - start
    done.set()
    t.join()
    if rc != 0:
        sys.exit(f"{label}: exit {rc}")
    return wall, peak["kb"]


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs if not f.endswith(".json"))
    return os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--db", default="dbkeep_bench")
    ap.add_argument("--dbkeep", default="target/release/dbkeep")
    ap.add_argument("--keep", action="store_true", help="keep the restored databases")
    ap.add_argument("--level", type=int, default=3, help="dbkeep's zstd level (default 3, dbkeep's default)")
    args = ap.parse_args()
    dbkeep = os.path.abspath(args.dbkeep)
    if not os.path.exists(dbkeep):
        sys.exit(f"{dbkeep} not found: run `cargo build --release` first")
    for tool in ["pg_dump", "pg_restore", "gzip", "zstd"]:
        if not shutil.which(tool):
            sys.exit(f"`{tool}` is not on PATH")

    make_database(args.db, args.size_mb)
    work = tempfile.mkdtemp(prefix="dbkeep-bench-", dir=os.environ.get("BENCH_DIR"))
    url = f"postgres://{USER}@{HOST}:{PORT}/{args.db}"
    dump = f"pg_dump -Fc -Z0 {' '.join(CONN)} -d {args.db}"
    rows = []

    def row(kind, label, wall, kb, size):
        rows.append((kind, label, wall, kb, size))
        print(f"  {kind:8} {label:40} {wall:7.2f} s  {kb / 1024:7.1f} MiB  {size / 1e6:9.1f} MB", flush=True)

    # A warm-up dump, so every run reads from the same cache state.
    subprocess.run(f"{dump} > /dev/null", shell=True, check=True)
    print("backup")
    w, kb = measure("limit", f"{dump} > /dev/null", "pg_dump")
    row("backup", "pg_dump -Fc -Z0 > /dev/null", w, kb, 0)
    raw = os.path.join(work, "raw.pgdump")
    w, kb = measure("raw", f"{dump} > {raw}", "pg_dump")
    row("backup", "pg_dump -Fc -Z0 > file", w, kb, size_of(raw))
    gz = os.path.join(work, "dump.gz")
    w, kb = measure("gzip", f"{dump} | gzip > {gz}", "gzip")
    row("backup", "pg_dump -Fc -Z0 | gzip > file", w, kb, size_of(gz))
    out = os.path.join(work, "dbkeep")
    w, kb = measure("dbkeep", f"{dbkeep} -q backup {url} --to {out} --job bench --level {args.level}", "dbkeep")
    row("backup", "dbkeep backup (zstd)", w, kb, size_of(out))
    print(f"  (zstd level {args.level}; cores: {os.cpu_count()}, shared with the PostgreSQL server)")
    obj = next(os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".zst"))

    print("restore")
    restore = "pg_restore --single-transaction --exit-on-error " + " ".join(CONN)
    targets = []

    def fresh(suffix):
        name = f"{args.db}_{suffix}"
        psql("postgres", f'drop database if exists "{name}"')
        psql("postgres", f'create database "{name}" template template0')
        targets.append(name)
        return name

    t = fresh("raw")
    w, kb = measure("r-raw", f"{restore} -d {t} < {raw}", "pg_restore")
    row("restore", "pg_restore < file", w, kb, 0)
    t = fresh("gz")
    w, kb = measure("r-gz", f"gzip -dc {gz} | {restore} -d {t}", "pg_restore")
    row("restore", "gzip -dc | pg_restore", w, kb, 0)
    t = fresh("zstd")
    w, kb = measure("r-zstd", f"zstd -q -dc {obj} | {restore} -d {t}", "pg_restore")
    row("restore", "zstd -dc | pg_restore", w, kb, 0)
    t = f"{args.db}_dbkeep"
    psql("postgres", f'drop database if exists "{t}"')
    targets.append(t)
    w, kb = measure("r-dbkeep", f"{dbkeep} -q restore --from {out} --job bench --target postgres://{USER}@{HOST}:{PORT}/{t}", "dbkeep")
    row("restore", "dbkeep restore (verify + stream)", w, kb, 0)

    r = {label: (wall, kb, size) for _, label, wall, kb, size in rows}
    limit = r["pg_dump -Fc -Z0 > /dev/null"][0]
    gzip_w, _, gzip_size = r["pg_dump -Fc -Z0 | gzip > file"]
    dk_w, dk_kb, dk_size = r["dbkeep backup (zstd)"]
    zr = r["zstd -dc | pg_restore"][0]
    dr_w, dr_kb, _ = r["dbkeep restore (verify + stream)"]
    print("ratios")
    print(f"  dbkeep backup / pg_dump alone          {dk_w / limit:6.3f}x   (target <= 1.10)")
    print(f"  pg_dump|gzip / dbkeep backup           {gzip_w / dk_w:6.2f}x   (target >= 2.5, faster)")
    print(f"  dbkeep output / gzip output            {dk_size / gzip_size:6.3f}    (target <= 1.0)")
    print(f"  dbkeep backup peak RSS                 {dk_kb / 1024:6.1f} MiB (target <= 64)")
    print(f"  dbkeep restore / zstd -dc|pg_restore   {dr_w / zr:6.3f}x   (target <= 1.05)")
    print(f"  dbkeep restore peak RSS                {dr_kb / 1024:6.1f} MiB")

    if not args.keep:
        for t in targets:
            psql("postgres", f'drop database if exists "{t}"')
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
