#!/usr/bin/env python3
"""Benchmark: `dbkeep wal push` (PostgreSQL's archive_command) against the
work it has to do, in one run.

1. Cost per segment. A private PostgreSQL cluster (initdb on a free port,
   `archive_command = 'cp %p DIR/%f'`) is filled by `pgbench -i` until it
   has written --segments real 16 MiB WAL segments. Each is then archived
   by `dbkeep -c CONFIG wal push` into a local storage (a new process per
   segment, as PostgreSQL runs it: start, config, storage, zstd -3, sha256,
   record) and, for reference, compressed by `zstd -3 -q < seg > file`.
   Prints the median of each and the ratio (goal: at most 1.5).
2. Keeping up. The cluster's archive_command becomes `dbkeep wal push`;
   `pgbench` writes for --seconds; the WAL rate (MB/s, segments/s) is
   compared with what the archiver stored in that time, and the backlog at
   the end (segments written but not archived) is printed.

3. Restore to a point in time: a base backup taken before the load, then
   `dbkeep restore --data-dir` to the end of the archive and the server
   started until it is promoted, against the same base unpacked by
   `zstd -dc | tar -x` and the same WAL replayed by PostgreSQL itself from a
   local folder (`restore_command = 'cp …'`). Goal: at most 1.15x.
4. The same cost per segment into S3: a moto server (from the test
   tools' venv, target/test-tools/venv, which scripts/test.sh installs) on
   a free port, when it is there.

Usage: bench/wal_push.py [--segments 20] [--seconds 20] [--dbkeep target/release/dbkeep]
Needs: PostgreSQL server binaries (initdb, pg_ctl, pgbench) and `zstd`; as
root it runs the cluster as `postgres`.
"""

import argparse
import os
import shutil
import socket
import statistics
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


def pg_bin():
    dirs = sorted(d for d in os.listdir("/usr/lib/postgresql") if os.path.isfile(f"/usr/lib/postgresql/{d}/bin/initdb"))
    if not dirs:
        sys.exit("no PostgreSQL server binaries under /usr/lib/postgresql")
    return f"/usr/lib/postgresql/{dirs[-1]}/bin"


def as_pg(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.geteuid() == 0 else cmd


def sql(port, text):
    out = subprocess.run(["psql", "-X", "-qAt", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-c", text],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--dbkeep", default="target/release/dbkeep")
    args = ap.parse_args()
    dbkeep = os.path.abspath(args.dbkeep)
    if not os.path.exists(dbkeep) or not shutil.which("zstd"):
        sys.exit(f"needs {dbkeep} (cargo build --release) and zstd")
    bindir = pg_bin()
    work = tempfile.mkdtemp(prefix="dbkeep-wal-bench-", dir=os.environ.get("BENCH_DIR"))
    os.chmod(work, 0o755)
    data, copies, archive = f"{work}/data", f"{work}/copies", f"{work}/archive"
    for d in [copies, archive]:
        os.mkdir(d)
    port = free_port()
    config = f"{work}/dbkeep.yaml"
    with open(config, "w") as f:
        f.write(f"storages:\n  local: {{ type: local, path: {archive} }}\njobs:\n  bench:\n    storage: local\n"
                f"    compression_level: 3\n"
                f"    source: {{ type: postgres, host: 127.0.0.1, port: {port}, user: postgres, database: postgres, method: physical }}\n")
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres", work], check=True)
    subprocess.run(as_pg([f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]), check=True, capture_output=True)
    with open(f"{data}/postgresql.conf", "a") as f:
        f.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{work}'\n"
                f"archive_mode = on\narchive_command = 'cp %p {copies}/%f'\nfsync = off\nmax_wal_size = 4GB\n")
    subprocess.run(as_pg([f"{bindir}/pg_ctl", "-D", data, "-l", f"{work}/log", "-w", "start"]), check=True, capture_output=True)
    try:
        # 1. Real segments.
        scale = 5
        while len([n for n in os.listdir(copies) if len(n) == 24]) < args.segments:
            subprocess.run([f"{bindir}/pgbench", "-i", "-q", "-s", str(scale), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "postgres"],
                           check=True, capture_output=True)
            sql(port, "select pg_switch_wal()")
            time.sleep(1)
        segments = sorted(n for n in os.listdir(copies) if len(n) == 24)[: args.segments]
        env = dict(os.environ, DBKEEP_LOG="dbkeep=warn")
        push, ref = [], []
        for name in segments:
            seg = f"{copies}/{name}"
            t = time.perf_counter()
            subprocess.run(["sh", "-c", f"zstd -3 -q < {seg} > {work}/ref.zst"], check=True)
            ref.append(time.perf_counter() - t)
            # Both run as this user: runuser alone costs milliseconds.
            t = time.perf_counter()
            subprocess.run([dbkeep, "-q", "-c", config, "wal", "push", "bench", seg], check=True, env=env)
            push.append(time.perf_counter() - t)
        mp, mr = statistics.median(push), statistics.median(ref)
        print(f"{len(segments)} real 16 MiB segments (pgbench -i), median per segment:")
        print(f"  zstd -3 < seg > file      {mr * 1000:7.1f} ms")
        print(f"  dbkeep wal push (local)   {mp * 1000:7.1f} ms  (process start, config, storage, zstd -3, sha256, record)")
        print(f"  wal push / zstd: {mp / mr:.2f} (goal <= 1.5)")

        # 2. Keeping up under pgbench (the archiver runs as the server's user).
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", archive], check=True)
        # Every segment also goes to a plain folder, for the restore's reference.
        plain = f"{work}/plain"
        os.mkdir(plain)
        if os.geteuid() == 0:
            subprocess.run(["chown", "postgres", plain], check=True)
        sql(port, f"alter system set archive_command = 'cp %p {plain}/%f && {dbkeep} -q -c {config} wal push bench %p'")
        sql(port, "select pg_reload_conf()")
        base = subprocess.run(as_pg([dbkeep, "-q", "-c", config, "backup", "bench"]), capture_output=True, text=True, env=env)
        if base.returncode != 0:
            sys.exit(f"the base backup failed: {base.stderr}")
        sql(port, "select pg_reload_conf()")
        sql(port, "select pg_switch_wal()")
        time.sleep(1)
        start_lsn = sql(port, "select pg_current_wal_lsn()")
        archived0 = int(sql(port, "select archived_count from pg_stat_archiver"))
        t = time.perf_counter()
        subprocess.run([f"{bindir}/pgbench", "-c", "4", "-j", "2", "-T", str(args.seconds), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "postgres"],
                       check=True, capture_output=True, env=dict(os.environ, PGOPTIONS="-c synchronous_commit=off"))
        wall = time.perf_counter() - t
        written = int(sql(port, f"select pg_current_wal_lsn() - '{start_lsn}'::pg_lsn"))
        archived = int(sql(port, "select archived_count from pg_stat_archiver")) - archived0
        current = sql(port, "select pg_walfile_name(pg_current_wal_lsn())")
        last = sql(port, "select coalesce(last_archived_wal, '') from pg_stat_archiver")
        backlog = int(current[16:], 16) - int(last[16:], 16) - 1 if last and current[:16] == last[:16] else -1
        failed = sql(port, "select failed_count from pg_stat_archiver")
        print(f"\npgbench -c 4 for {wall:.0f} s with archive_command = dbkeep wal push (local storage):")
        print(f"  WAL written   {written / wall / 1e6:6.1f} MB/s = {written / wall / (16 << 20):5.2f} segments/s")
        print(f"  archived      {archived / wall:5.2f} segments/s ({archived} segments, {failed} failures)")
        print(f"  backlog at the end: {backlog} segment(s) written but not yet archived")
        print(f"  dbkeep's capacity at the cost above: {1 / mp:5.1f} segments/s")

        # 3. Restore to the end of the archive, and the reference.
        sql(port, "select pg_switch_wal()")
        time.sleep(2)

        def start_until_promoted(datadir, rport):
            t0 = time.perf_counter()
            subprocess.run(as_pg([f"{bindir}/pg_ctl", "-D", datadir, "-l", f"{datadir}.log", "-w", "-t", "600", "-o",
                                  f"-p {rport} -k {work} -c archive_mode=off", "start"]), check=True, capture_output=True)
            while sql(rport, "select pg_is_in_recovery()") != "f":
                time.sleep(0.05)
            return time.perf_counter() - t0

        restored = f"{work}/restored"
        t0 = time.perf_counter()
        subprocess.run(as_pg([dbkeep, "-q", "-c", config, "restore", "bench", "--data-dir", restored]), check=True, capture_output=True, env=env)
        unpack_dbkeep = time.perf_counter() - t0
        rport = free_port()
        replay_dbkeep = start_until_promoted(restored, rport)
        subprocess.run(as_pg([f"{bindir}/pg_ctl", "-D", restored, "-m", "immediate", "stop"]), capture_output=True)
        manifest = next(os.path.join(r, f) for r, _, fs in os.walk(f"{archive}/bench") for f in fs if f == "manifest.json")
        artifact = os.path.join(os.path.dirname(manifest), "cluster.tar.zst")
        ref = f"{work}/reference"
        os.mkdir(ref, 0o700)
        if os.geteuid() == 0:
            subprocess.run(["chown", "postgres", ref], check=True)
        t0 = time.perf_counter()
        subprocess.run(as_pg(["sh", "-c", f"zstd -dc {artifact} | tar -x -C {ref}"]), check=True)
        unpack_ref = time.perf_counter() - t0
        with open(f"{ref}/postgresql.auto.conf", "a") as f:
            f.write(f"\nrestore_command = 'cp {plain}/%f %p'\n")
        open(f"{ref}/recovery.signal", "w").close()
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", ref], check=True)
        replay_ref = start_until_promoted(ref, free_port())
        subprocess.run(as_pg([f"{bindir}/pg_ctl", "-D", ref, "-m", "immediate", "stop"]), capture_output=True)
        total, reference = unpack_dbkeep + replay_dbkeep, unpack_ref + replay_ref
        print(f"\nrestore to the end of the archive ({archived} segments after the base backup):")
        print(f"  dbkeep restore --data-dir (checks, unpack)  {unpack_dbkeep:6.2f} s, then start to promoted {replay_dbkeep:6.2f} s")
        print(f"  zstd -dc | tar -x                           {unpack_ref:6.2f} s, then cp restore_command   {replay_ref:6.2f} s")
        print(f"  dbkeep / reference: {total / reference:.2f} (goal <= 1.15)")
        # 3. Into S3 (moto).
        venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "test-tools", "venv", "bin")
        if os.path.exists(f"{venv}/moto_server"):
            mport = free_port()
            moto = subprocess.Popen([f"{venv}/moto_server", "-H", "127.0.0.1", "-p", str(mport)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                endpoint = f"http://127.0.0.1:{mport}"
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", mport), timeout=0.2).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                subprocess.run([f"{venv}/python", "-c",
                                f"import boto3; boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', "
                                f"aws_access_key_id='k', aws_secret_access_key='s').create_bucket(Bucket='wal')"], check=True)
                s3config = f"{work}/s3.yaml"
                with open(s3config, "w") as f:
                    f.write(f"storages:\n  s3: {{ type: s3, bucket: wal, endpoint: \"{endpoint}\", region: us-east-1, path_style: true, "
                            f"access_key_id: k, secret_access_key: s }}\njobs:\n  bench:\n    storage: s3\n    compression_level: 3\n"
                            f"    source: {{ type: postgres, host: 127.0.0.1, port: {port}, user: postgres, database: postgres, method: physical }}\n")
                s3 = []
                for name in segments:
                    t = time.perf_counter()
                    subprocess.run([dbkeep, "-q", "-c", s3config, "wal", "push", "bench", f"{copies}/{name}"], check=True,
                                   env=dict(env, AWS_EC2_METADATA_DISABLED="true"))
                    s3.append(time.perf_counter() - t)
                ms = statistics.median(s3)
                print(f"\ninto S3 (moto on 127.0.0.1), median per segment: {ms * 1000:.1f} ms = {1 / ms:.1f} segments/s "
                      f"({ms / mr:.2f}x zstd -3 alone)")
            finally:
                moto.terminate()
                moto.wait()
        else:
            print("\nS3 not measured: no moto in target/test-tools/venv (run scripts/test.sh once)")
    finally:
        subprocess.run(as_pg([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
