//! Point-in-time recovery of MariaDB through its binary logs, against a
//! private MariaDB started with `--log-bin` (ROW format): each dump records
//! its binlog position, `binlog pull` archives the closed binlogs, and a
//! restore to a time replays them from the dump's position: the rows equal
//! the source's at that time, with the changes after it absent.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use crate::util::*;

const JOB: &str = "shop";

struct Binlogged {
    server: PrivateMariadb,
    config: PathBuf,
    backups: PathBuf,
    _dir: tempfile::TempDir,
}

impl Binlogged {
    fn start(extra_job: &str) -> Binlogged {
        let server = PrivateMariadb::start_with(&[
            "--log-bin={dir}/binlog",
            "--server-id=1",
            "--binlog-format=ROW",
        ]);
        let dir = tempdir();
        let backups = dir.path().join("backups");
        let config = dir.path().join("dbkeep.yaml");
        std::fs::write(
            &config,
            format!(
                "storages:\n  local: {{ type: local, path: {} }}\njobs:\n  {JOB}:\n    storage: local\n    \
                 source: {{ type: mariadb, host: 127.0.0.1, port: {}, user: root, database: shopdb, binlog: true }}\n{extra_job}",
                backups.display(),
                server.port
            ),
        )
        .unwrap();
        server.sql(
            "create database shopdb; create table shopdb.t (id int primary key, v varchar(40));",
        );
        Binlogged {
            server,
            config,
            backups,
            _dir: dir,
        }
    }

    fn dbkeep(&self, args: &[&str]) -> Output {
        run(dbkeep().arg("-c").arg(&self.config).args(args))
    }

    fn insert(&self, from: u32, to: u32) {
        let values: Vec<String> = (from..=to).map(|i| format!("({i}, 'row {i}')")).collect();
        self.server
            .sql(&format!("insert into shopdb.t values {}", values.join(",")));
    }

    fn now(&self) -> String {
        self.server
            .sql("select date_format(utc_timestamp(6), '%Y-%m-%dT%H:%i:%s.%fZ')")
            .trim()
            .to_string()
    }

    fn rows(&self, db: &str) -> Vec<String> {
        self.server
            .sql(&format!("select id, v from `{db}`.t order by id"))
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn binlog_dir(&self) -> PathBuf {
        self.backups.join(JOB).join("binlog")
    }

    fn archived(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.binlog_dir())
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.strip_suffix(".json")
                            .filter(|n| !n.starts_with('.'))
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Rows as `id<TAB>v` lines, sorted.
fn expected(mut rows: Vec<(u32, String)>) -> Vec<String> {
    rows.sort();
    rows.iter().map(|(i, v)| format!("{i}\t{v}")).collect()
}

#[test]
fn a_restore_to_a_time_replays_the_binlogs_up_to_it_and_no_further() {
    let b = Binlogged::start("    retention: { keep_last: 1 }\n");
    b.insert(1, 10);
    let out = b.dbkeep(&["backup", JOB]);
    assert!(out.status.success(), "{}", text(&out));
    let m = &manifests(&b.backups)[0];
    let pos = &m["artifacts"][0]["binlog"];
    assert!(pos["file"].as_str().unwrap().starts_with("binlog."), "{m}");
    assert!(pos["position"].as_u64().unwrap() >= 4);

    b.insert(11, 20);
    b.server
        .sql("update shopdb.t set v = 'before T' where id = 1");
    std::thread::sleep(Duration::from_millis(1100));
    let t = b.now();
    std::thread::sleep(Duration::from_millis(1100));
    b.insert(21, 30);
    b.server
        .sql("update shopdb.t set v = 'after T' where id = 1; delete from shopdb.t where id = 2");

    let out = b.dbkeep(&["binlog", "pull", JOB]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("archived"),
        "{}",
        text(&out)
    );
    assert!(!b.archived().is_empty());
    // Again: nothing new but the file the rotation closed.
    let out = b.dbkeep(&["binlog", "pull", JOB]);
    assert!(out.status.success(), "{}", text(&out));
    let archived = b.archived();
    assert!(archived.len() >= 2, "{archived:?}");

    let out = b.dbkeep(&[
        "restore",
        JOB,
        "--to-time",
        &t,
        "--to-database",
        "shop_at_t",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("replayed"),
        "{}",
        text(&out)
    );
    let at_t = expected(
        (1..=20)
            .map(|i| {
                let v = if i == 1 {
                    "before T".to_string()
                } else {
                    format!("row {i}")
                };
                (i, v)
            })
            .collect(),
    );
    assert_eq!(b.rows("shop_at_t"), at_t);

    let out = b.dbkeep(&["verify", JOB]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok  binlogs "),
        "{}",
        text(&out)
    );

    let out = b.dbkeep(&["restore", JOB, "--to-database", "shop_end"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(b.rows("shop_end"), b.rows("shopdb"));

    // A gap in the chain: refused before anything is applied.
    // One more closed file, so that one in the middle can go missing.
    b.insert(31, 31);
    assert!(b.dbkeep(&["binlog", "pull", JOB]).status.success());
    let now = b.archived();
    let gone = now
        .iter()
        .filter(|n| n.as_str() > pos["file"].as_str().unwrap())
        .find(|n| *n != now.last().unwrap())
        .cloned()
        .expect("a binlog between the dump's and the newest");
    {
        let moved = b.binlog_dir().join(format!("{gone}.json"));
        let aside = moved.with_extension("aside");
        std::fs::rename(&moved, &aside).unwrap();
        let out = b.dbkeep(&["verify", JOB]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("lacks {gone}")),
            "{}",
            text(&out)
        );
        let out = b.dbkeep(&["restore", JOB, "--to-database", "shop_gap"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("lacks {gone}")),
            "{}",
            text(&out)
        );
        assert_eq!(
            b.server.sql("select count(*) from information_schema.schemata where schema_name = 'shop_gap'").trim(),
            "0",
            "nothing was applied"
        );
        std::fs::rename(&aside, &moved).unwrap();
    }

    // A second dump: `keep_last: 1` keeps it, and the binlogs from its
    // position on; the older ones go with the older dump.
    let out = b.dbkeep(&["backup", JOB]);
    assert!(out.status.success(), "{}", text(&out));
    let kept = manifests(&b.backups);
    assert_eq!(kept.len(), 1);
    let from = kept[0]["artifacts"][0]["binlog"]["file"]
        .as_str()
        .unwrap()
        .to_string();
    let left = b.archived();
    assert!(left.iter().all(|n| *n >= from), "{from}: {left:?}");
    assert!(
        left.len() < archived.len() || archived.iter().all(|n| *n >= from),
        "{left:?}"
    );
}

#[test]
fn binlog_needs_the_server_s_log_and_a_mariadb_source() {
    // A server without log_bin: the dump has no position, the backup fails
    // and leaves no manifest.
    let server = PrivateMariadb::start();
    server.sql("create database shopdb; create table shopdb.t (id int primary key);");
    let dir = tempdir();
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  local: {{ type: local, path: {} }}\njobs:\n  {JOB}:\n    storage: local\n    \
             source: {{ type: mariadb, host: 127.0.0.1, port: {}, user: root, database: shopdb, binlog: true }}\n\
             \x20 pg:\n    storage: local\n    source: {{ type: postgres, host: 127.0.0.1, database: postgres }}\n",
            dir.path().join("backups").display(),
            server.port
        ),
    )
    .unwrap();
    let out = run(dbkeep().arg("-c").arg(&config).args(["backup", JOB]));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(manifests(&dir.path().join("backups")).is_empty());
    let out = run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["binlog", "pull", JOB]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("log_bin"), "{}", text(&out));
    let out = run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["binlog", "pull", "pg"]));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("binlog: true"), "{}", text(&out));
}

/// `binlog_schedule` under `schedule run`: the binlogs are pulled at its
/// fire times (here every second), with no backup schedule at all.
#[test]
fn schedule_run_pulls_binlogs_on_the_binlog_schedule() {
    let b = Binlogged::start("    binlog_schedule: \"* * * * * *\"\n");
    b.insert(1, 5);
    let child = dbkeep()
        .arg("-c")
        .arg(&b.config)
        .args(["schedule", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while b.archived().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let archived = b.archived();
    assert!(archived.len() >= 2, "{archived:?}\n{}", text(&out));
    assert!(text(&out).contains("archived"), "{}", text(&out));
}

/// The recovery point of binlog archiving: with `binlog_schedule` (every
/// second here, every minute in the README's setup) under `schedule run`, a
/// server killed without a shutdown loses no committed write older than one
/// interval (plus a pull's time): a restore replays every row written more
/// than that before the kill.
#[test]
fn a_killed_server_loses_no_write_older_than_the_binlog_schedule() {
    let mut b = Binlogged::start("    binlog_schedule: \"* * * * * *\"\n");
    b.insert(1, 10);
    assert!(b.dbkeep(&["backup", JOB]).status.success());
    let child = dbkeep()
        .arg("-c")
        .arg(&b.config)
        .args(["schedule", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    b.insert(11, 20);
    std::thread::sleep(Duration::from_secs(4));
    b.insert(21, 21);
    b.server.kill();
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A new server to restore into: the source is gone.
    let target = PrivateMariadb::start();
    let out = run(dbkeep().arg("-c").arg(&b.config).args([
        "restore",
        JOB,
        "--target",
        &format!("mariadb://root@127.0.0.1:{}/shopdb", target.port),
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<String> = target
        .sql("select id from shopdb.t order by id")
        .lines()
        .map(str::to_string)
        .collect();
    let want: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    assert_eq!(rows[..20], want[..], "{rows:?}");
}
