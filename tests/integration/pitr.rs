//! Point-in-time recovery of PostgreSQL, against private PostgreSQL 15
//! clusters with `archive_mode = on` whose `archive_command` is this
//! dbkeep's `wal push`: base backups, restores to a time, an LSN and the end
//! of the archive that are started and compared row for row, and the
//! archive's refusals, gaps, corruption and pruning.
//!
//! Everything dbkeep does here runs as the server's user (`postgres` when the
//! tests run as root), as `archive_command` and `restore_command` do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::*;

const JOB: &str = "app";

/// A cluster that archives into a local storage through `wal push`, with
/// its config file.
struct Archived {
    cluster: PrivateCluster,
    config: PathBuf,
    archive: PathBuf,
}

impl Archived {
    fn start(extra_job: &str) -> Archived {
        Archived::start_with(extra_job, "")
    }

    /// With `conf` added to postgresql.conf.
    fn start_with(extra_job: &str, conf: &str) -> Archived {
        let exe = env!("CARGO_BIN_EXE_dbkeep");
        let cluster = PrivateCluster::start_with(|dir| {
            format!(
                "archive_mode = on\narchive_command = '{exe} -q -c {}/dbkeep.yaml wal push {JOB} %p'\n\
                 wal_level = replica\nmax_wal_senders = 4\n{conf}\n",
                dir.display()
            )
        });
        let dir = cluster.dir().to_path_buf();
        let archive = dir.join("archive");
        let config = dir.join("dbkeep.yaml");
        std::fs::write(
            &config,
            format!(
                "storages:\n  local: {{ type: local, path: {} }}\njobs:\n  {JOB}:\n    storage: local\n    \
                 source: {{ type: postgres, host: 127.0.0.1, port: {}, user: postgres, database: postgres, \
                 method: physical, wal_wait: 60s }}\n{extra_job}",
                archive.display(),
                cluster.port
            ),
        )
        .unwrap();
        chown_to_postgres(&dir);
        let a = Archived {
            cluster,
            config,
            archive,
        };
        a.sql("create table t (id int primary key, v text)");
        a
    }

    fn sql(&self, sql: &str) -> String {
        self.cluster.psql("postgres", sql).trim().to_string()
    }

    fn insert(&self, from: u32, to: u32) {
        self.sql(&format!(
            "insert into t select i, 'row ' || i from generate_series({from}, {to}) i"
        ));
    }

    /// The server's clock now, as RFC 3339 with microseconds.
    fn now(&self) -> String {
        self.sql(
            "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        )
    }

    /// Ends the current segment and waits until the archiver has stored it.
    fn archive_now(&self) -> String {
        let switched = self.sql("select pg_walfile_name(pg_switch_wal())");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = self.sql("select coalesce(last_archived_wal, '') from pg_stat_archiver");
            if last >= switched {
                return switched;
            }
            assert!(
                Instant::now() < deadline,
                "the archiver did not store {switched}: {}",
                self.sql("select row_to_json(a) from pg_stat_archiver a")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// dbkeep with this config, as the server's user.
    fn dbkeep(&self, args: &[&str]) -> Output {
        let mut all = vec!["-c", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut cmd = as_postgres(env!("CARGO_BIN_EXE_dbkeep"), &all);
        cmd.env("DBKEEP_LOG", "dbkeep=info");
        cmd.output().unwrap()
    }

    fn wal_dir(&self) -> PathBuf {
        self.archive.join(JOB).join("wal")
    }

    /// The archived WAL file names (those with a record).
    fn archived(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.wal_dir())
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".json")
                    .filter(|n| !n.starts_with('.') && *n != "cluster")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }

    fn restore(&self, data: &Path, target: &[&str]) -> Output {
        let mut args = vec!["restore", JOB, "--data-dir", data.to_str().unwrap()];
        args.extend_from_slice(target);
        self.dbkeep(&args)
    }
}

fn chown_to_postgres(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A restored data directory, started on a free port with archiving off,
/// stopped on drop.
struct Restored {
    data: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl Restored {
    /// Starts it and waits until recovery has ended and it was promoted.
    fn start(a: &Archived, data: &Path) -> Restored {
        let port = free_port();
        let log = data.with_extension("log");
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c archive_mode=off",
            a.cluster.dir().display()
        );
        let pg_ctl = a.cluster.bin().join("pg_ctl");
        let out = as_postgres(
            pg_ctl.to_str().unwrap(),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "120",
                "-o",
                &opts,
                "start",
            ],
        )
        .output()
        .unwrap();
        let r = Restored {
            data: data.to_path_buf(),
            port,
            bin: a.cluster.bin().to_path_buf(),
        };
        assert!(
            out.status.success(),
            "the restored server did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while r.sql("select pg_is_in_recovery()") != "f" {
            assert!(
                Instant::now() < deadline,
                "the restored server was not promoted:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    fn sql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The ids in `t`, in order.
    fn ids(&self) -> Vec<u32> {
        self.sql("select id from t order by id")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = as_postgres(
            pg_ctl.to_str().unwrap(),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
        .output();
    }
}

fn ids(from: u32, to: u32) -> Vec<u32> {
    (from..=to).collect()
}

/// Base backup, writes, a time T, more writes: a restore to T holds exactly
/// the rows committed before T; a restore to the end holds all; to an LSN,
/// those before it. `verify` checks the chain and `list` shows the window.
#[test]
fn a_restore_to_a_time_holds_exactly_the_rows_committed_before_it() {
    let a = Archived::start("");
    a.insert(1, 100);
    let out = a.dbkeep(&["backup", JOB]);
    assert!(out.status.success(), "{}", text(&out));
    let m = &manifests(&a.archive)[0];
    let base = &m["base_backup"];
    assert_eq!(base["timeline"], 1);
    assert!(base["system_identifier"].as_u64().unwrap() > 0);
    assert_eq!(m["artifacts"][0]["kind"], "cluster");
    let start_wal = base["start_wal"].as_str().unwrap().to_string();
    // The backup waited for its WAL: the segments it needs are archived.
    assert!(a.archived().contains(&start_wal), "{:?}", a.archived());

    a.insert(101, 200);
    let t = a.now();
    let lsn = a.sql("select pg_current_wal_lsn()");
    std::thread::sleep(Duration::from_millis(1100));
    a.insert(201, 300);
    a.archive_now();

    let to_time = a.cluster.dir().join("to-time");
    let out = a.restore(&to_time, &["--to-time", &t]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pg_ctl -D"),
        "{}",
        text(&out)
    );
    {
        let r = Restored::start(&a, &to_time);
        assert_eq!(r.ids(), ids(1, 200));
    }

    let to_lsn = a.cluster.dir().join("to-lsn");
    let out = a.restore(&to_lsn, &["--to-lsn", &lsn]);
    assert!(out.status.success(), "{}", text(&out));
    {
        let r = Restored::start(&a, &to_lsn);
        assert_eq!(r.ids(), ids(1, 200));
    }

    let to_end = a.cluster.dir().join("to-end");
    let out = a.restore(&to_end, &[]);
    assert!(out.status.success(), "{}", text(&out));
    {
        let r = Restored::start(&a, &to_end);
        assert_eq!(r.ids(), ids(1, 300));
    }

    // A data directory that is not empty is refused and left alone.
    let out = a.restore(&to_end, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not empty"), "{}", text(&out));
    assert!(to_end.join("PG_VERSION").is_file());

    // A time before every base backup's end names the oldest.
    let out = a.restore(
        &a.cluster.dir().join("too-early"),
        &["--to-time", "2001-01-01T00:00:00Z"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no base backup ended before"),
        "{}",
        text(&out)
    );
    assert!(!a.cluster.dir().join("too-early").exists());

    let out = a.dbkeep(&["verify", JOB]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("ok  WAL {start_wal} to ")),
        "{}",
        text(&out)
    );
    let out = a.dbkeep(&["list", JOB]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("recoverable in storage `local`: from "),
        "{}",
        text(&out)
    );
}

/// The archive's own rules: the same file again is fine, other contents
/// under an archived name are refused with both checksums, a name it does
/// not hold is fetched as an error that writes nothing, a gap fails
/// `verify` and the restore that needs it, a corrupt segment fails a
/// restore before it writes anything, and prune keeps what a kept base
/// backup needs.
#[test]
fn the_archive_refuses_conflicts_and_gaps_and_prune_keeps_what_a_base_needs() {
    let a = Archived::start("    retention: { keep_last: 1 }\n");
    a.insert(1, 10);
    assert!(a.dbkeep(&["backup", JOB]).status.success());
    a.insert(11, 20);
    let first_switch = a.archive_now();
    let names = a.archived();
    let segment = names
        .iter()
        .find(|n| n.len() == 24)
        .expect("a segment")
        .clone();

    // The same file again: success. Other contents: refused, named.
    let work = a.cluster.dir().join("work");
    std::fs::create_dir(&work).unwrap();
    chown_to_postgres(&work);
    let fetched = work.join("fetched");
    let out = a.dbkeep(&["wal", "fetch", JOB, &segment, fetched.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let copy = work.join(&segment);
    std::fs::copy(&fetched, &copy).unwrap();
    chown_to_postgres(&copy);
    let out = a.dbkeep(&["wal", "push", JOB, copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let mut bytes = std::fs::read(&copy).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&copy, &bytes).unwrap();
    let out = a.dbkeep(&["wal", "push", JOB, copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("archived already with other contents") && all.matches("sha256").count() >= 2,
        "{all}"
    );

    // A name the archive does not hold: an error, and nothing written.
    let missing = work.join("missing");
    let out = a.dbkeep(&[
        "wal",
        "fetch",
        JOB,
        "0000000100000000000000FE",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!missing.exists());
    assert_eq!(files(&work).len(), 2, "{:?}", files(&work));
    // A name PostgreSQL never archives is refused before anything is read.
    let out = a.dbkeep(&[
        "wal",
        "fetch",
        JOB,
        "../../etc/passwd",
        missing.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));

    // Prune: a second base backup, `keep_last: 1`; the older base goes, and
    // with it the WAL before the newer one's start.
    a.insert(21, 30);
    assert!(a.dbkeep(&["backup", JOB]).status.success());
    let bases = manifests(&a.archive);
    assert_eq!(bases.len(), 1, "the backup's own prune kept one base");
    let kept_start = bases[0]["base_backup"]["start_wal"]
        .as_str()
        .unwrap()
        .to_string();
    let after = a.archived();
    assert!(
        after
            .iter()
            .all(|n| n.len() < 24 || n[..24] >= *kept_start || n.ends_with(".history")),
        "{after:?}"
    );
    assert!(after.contains(&kept_start), "{after:?}");
    assert!(
        !after.contains(&segment) || segment >= kept_start,
        "{after:?}"
    );
    let out = a.dbkeep(&["prune", JOB, "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("WAL or binlogs from {kept_start} kept")),
        "{}",
        text(&out)
    );
    let _ = first_switch;

    // A gap: verify fails naming it, and so does a restore that needs it.
    a.insert(31, 40);
    a.archive_now();
    a.insert(41, 50);
    let newest = a.archive_now();
    let gone = a
        .archived()
        .into_iter()
        .rfind(|n| n.len() == 24 && *n > kept_start && *n < newest)
        .expect("a segment between the base and the newest");
    let kept = work.join("kept");
    std::fs::create_dir(&kept).unwrap();
    for f in [format!("{gone}.json"), format!("{gone}.zst")] {
        std::fs::rename(a.wal_dir().join(&f), kept.join(&f)).unwrap();
    }
    let out = a.dbkeep(&["verify", JOB]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("lacks segment {gone}")),
        "{}",
        text(&out)
    );
    let gap_dir = a.cluster.dir().join("gap");
    let out = a.restore(&gap_dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("lacks segment {gone}")),
        "{}",
        text(&out)
    );
    assert!(!gap_dir.exists(), "nothing is written");
    for f in [format!("{gone}.json"), format!("{gone}.zst")] {
        std::fs::rename(kept.join(&f), a.wal_dir().join(&f)).unwrap();
    }

    // A corrupt segment: the restore refuses it before writing anything.
    let object = a.wal_dir().join(format!("{gone}.zst"));
    let mut stored = std::fs::read(&object).unwrap();
    let mid = stored.len() / 2;
    stored[mid] ^= 0x55;
    std::fs::write(&object, &stored).unwrap();
    let corrupt_dir = a.cluster.dir().join("corrupt");
    let out = a.restore(&corrupt_dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("the archived `{gone}` is corrupt"))
            || text(&out).contains("is corrupt"),
        "{}",
        text(&out)
    );
    assert!(!corrupt_dir.exists(), "nothing is written");
}

/// A base backup whose pg_basebackup is killed halfway leaves no manifest
/// and no object; so does one whose WAL never reaches the archive.
#[test]
fn a_killed_base_backup_or_missing_wal_leaves_nothing() {
    let a = Archived::start("");
    a.insert(1, 10);
    // A stand-in pg_basebackup: the real one's first 100 kB, then killed.
    let bin = a.cluster.dir().join("stand-in");
    std::fs::create_dir(&bin).unwrap();
    let real = a.cluster.bin().join("pg_basebackup");
    stand_in(
        &bin,
        "pg_basebackup",
        &format!(
            "case \"$*\" in *--version*) exec {} --version;; esac\n{} \"$@\" | head -c 100000\nkill -9 $$",
            real.display(),
            real.display()
        ),
    );
    chown_to_postgres(&bin);
    let config = std::fs::read_to_string(&a.config).unwrap();
    std::fs::write(
        &a.config,
        config.replace(
            "method: physical",
            &format!("method: physical, bin_dir: {}", bin.display()),
        ),
    )
    .unwrap();
    let out = a.dbkeep(&["backup", JOB]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(manifests(&a.archive).is_empty());
    let left: Vec<String> = files(&a.archive.join(JOB))
        .into_iter()
        .filter(|f| !f.starts_with("wal/") && !f.ends_with(".flock") && f != "lock.json")
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The archive_command is broken: the backup waits `wal_wait`, then fails.
    std::fs::write(&a.config, config.replace("wal_wait: 60s", "wal_wait: 2s")).unwrap();
    a.sql("alter system set archive_command = '/bin/false'");
    a.sql("select pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out = a.dbkeep(&["backup", JOB]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("pg_basebackup sent nothing for 2 s")
            && text(&out).contains("pg_stat_archiver"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(manifests(&a.archive).is_empty());
    // Now that the archiver has failed, a backup is refused before it starts.
    let out = a.dbkeep(&["backup", JOB]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("archive_command of the cluster") && text(&out).contains("is failing"),
        "{}",
        text(&out)
    );
    assert!(manifests(&a.archive).is_empty());
}

/// `wal push` into a storage that cannot be reached exits non-zero (so
/// PostgreSQL keeps the segment and retries), and the config is checked:
/// only a physical PostgreSQL job archives WAL.
#[test]
fn wal_push_to_an_unreachable_storage_fails_and_only_physical_jobs_archive() {
    let dir = tempdir();
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        "storages:\n  s3: { type: s3, bucket: b, endpoint: \"http://127.0.0.1:9\", region: us-east-1, \
         access_key_id: k, secret_access_key: s }\n  local: { type: local, path: /tmp }\n\
         jobs:\n  app:\n    storage: s3\n    source: { type: postgres, host: 127.0.0.1, database: postgres, method: physical }\n\
         \x20 logical:\n    storage: local\n    source: { type: postgres, host: 127.0.0.1, database: postgres }\n",
    )
    .unwrap();
    let segment = dir.path().join("000000010000000000000001");
    std::fs::write(&segment, vec![0u8; 1 << 20]).unwrap();
    let out = run(dbkeep()
        .env("AWS_MAX_ATTEMPTS", "1")
        .arg("-c")
        .arg(&config)
        .args(["wal", "push", "app"])
        .arg(&segment));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("cannot archive 000000010000000000000001"),
        "{}",
        text(&out)
    );
    let out = run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["wal", "push", "logical"])
        .arg(&segment));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("method: physical"), "{}", text(&out));
    let odd = dir.path().join("--config=x");
    std::fs::write(&odd, b"x").unwrap();
    let out = run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["wal", "push", "app", "--"])
        .arg(&odd));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("is not a WAL file name"),
        "{}",
        text(&out)
    );
}

/// The recovery point: with `archive_timeout` (2 s here, 60 s in the README's
/// setup), the server archives a segment at most that long after a write.
/// Killed without a shutdown, it loses no committed write older than that: a
/// restore to the end of the archive holds every row committed more than
/// `archive_timeout` (plus the archiver's retry) before the kill.
#[test]
fn a_killed_server_loses_no_write_older_than_archive_timeout() {
    let a = Archived::start_with("", "archive_timeout = 2");
    a.insert(1, 10);
    assert!(a.dbkeep(&["backup", JOB]).status.success());
    a.insert(11, 20);
    // Two archive_timeouts and then some: 11..20 are in an archived segment.
    std::thread::sleep(Duration::from_secs(5));
    a.insert(21, 21);
    // Killed: no shutdown checkpoint, no last segment switch.
    let pid = std::fs::read_to_string(a.cluster.dir().join("data/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse::<i32>()
        .unwrap();
    // SAFETY: a signal to the test's own server.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(500));
    let dir = a.cluster.dir().join("after-kill");
    let out = a.restore(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let r = Restored::start(&a, &dir);
    let got = r.ids();
    assert_eq!(got[..20], ids(1, 20)[..], "{got:?}");
}
