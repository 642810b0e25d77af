//! Several jobs at once, in `dbkeep backup` and `schedule run`, within the
//! per-server limit.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// A `pg_dump` first on PATH that notes when each dump starts and ends (with
/// a pause between, so runs that overlap show it) around the real one.
fn logging_pg_dump(tools: &Path, log: &Path) {
    let real = which("pg_dump");
    let version = String::from_utf8(
        Command::new(&real)
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    stand_in(
        tools,
        "pg_dump",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = --version ] && {{ echo '{}'; exit 0; }}; done\n\
             for a in \"$@\"; do db=$a; done\n\
             echo \"start $db\" >> '{log}'\nsleep 1.5\necho \"end $db\" >> '{log}'\nexec '{real}' \"$@\"",
            version.trim(),
            log = log.display(),
            real = real.display()
        ),
    );
}

/// Whether two dumps in the log ran at the same time.
fn overlapped(log: &Path) -> bool {
    let text = std::fs::read_to_string(log).unwrap();
    let mut open = 0;
    for line in text.lines() {
        if line.starts_with("start") {
            open += 1;
            if open > 1 {
                return true;
            }
        } else {
            open -= 1;
        }
    }
    false
}

fn pg_source(host: &str, port: &str, db: &str, extra: &str) -> String {
    format!(
        "      source: {{ type: postgres, host: {host}, port: {port}, user: postgres, database: {db}{extra} }}\n"
    )
}

#[test]
fn jobs_on_two_servers_run_at_once_and_one_server_takes_one_at_a_time() {
    let (a, b, c) = (
        PgDb::new("conc_a"),
        PgDb::new("conc_b"),
        PgDb::new("conc_c"),
    );
    for db in [&a, &b, &c] {
        psql(
            &db.name,
            "create table t (id int); insert into t values (1), (2)",
        );
    }
    // The second server: the TLS-only cluster that scripts/test.sh starts.
    let tls_port = std::env::var("DBKEEP_TEST_PGTLS_PORT")
        .expect("DBKEEP_TEST_PGTLS_PORT is not set: run the tests through scripts/test.sh");
    let tls_dir = std::env::var("DBKEEP_TEST_TLS_DIR").unwrap();
    let remote = unique("conc_r");
    let psql_tls = |sql: &str| {
        let out = Command::new("psql")
            .args(["-X", "-q", "-d"])
            .arg(format!(
                "host=127.0.0.1 port={tls_port} user=postgres dbname=postgres sslmode=require"
            ))
            .arg("-c")
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql_tls(&format!("create database {remote}"));
    let dir = tempdir();
    let tools = tempdir();
    let log = dir.path().join("dumps.log");
    logging_pg_dump(tools.path(), &log);
    let tls = format!(", tls: {{ ca_file: {tls_dir}/ca.pem }}");
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "defaults: {{ concurrency: 2, per_host: 1 }}\n\
             storages: {{ local: {{ type: local, path: {} }} }}\njobs:\n\
             \x20 a:\n{}\x20 b:\n{}\x20 c:\n{}\x20 r:\n{}",
            dir.path().join("backups").display(),
            pg_source(&pg_host(), &pg_port(), &a.name, ""),
            pg_source(&pg_host(), &pg_port(), &b.name, ""),
            pg_source(&pg_host(), &pg_port(), &c.name, ""),
            pg_source("127.0.0.1", &tls_port, &remote, &tls),
        ),
    )
    .unwrap();
    let backup = |jobs: &[&str]| {
        let out = run(dbkeep()
            .env("PATH", path_with(tools.path()))
            .arg("-c")
            .arg(&config)
            .arg("backup")
            .args(jobs));
        let stdout = ok(out);
        // One whole line per job, never two run together.
        assert_eq!(stdout.lines().count(), jobs.len(), "{stdout}");
        for line in stdout.lines() {
            assert!(
                jobs.iter()
                    .any(|j| line.starts_with(&format!("{j}: backup ")))
                    && line.contains(" stored "),
                "{stdout}"
            );
        }
    };
    // Two servers: side by side.
    backup(&["a", "r"]);
    assert!(
        overlapped(&log),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    // One server with `per_host: 1`: one after the other.
    std::fs::remove_file(&log).unwrap();
    backup(&["b", "c"]);
    assert!(
        !overlapped(&log),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);
    psql_tls(&format!("drop database {remote}"));
}

#[test]
fn one_failed_job_of_several_at_once_is_a_partial_run() {
    let (a, b) = (PgDb::new("conc_ok1"), PgDb::new("conc_ok2"));
    let dir = tempdir();
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages: {{ local: {{ type: local, path: {} }} }}\njobs:\n\
             \x20 a:\n{}\x20 b:\n{}\x20 missing:\n{}",
            dir.path().join("backups").display(),
            pg_source(&pg_host(), &pg_port(), &a.name, ""),
            pg_source(&pg_host(), &pg_port(), &b.name, ""),
            pg_source(&pg_host(), &pg_port(), "no_such_database_here", ""),
        ),
    )
    .unwrap();
    let out = run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["backup", "--jobs", "3", "--json"]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status: Vec<(&str, &str)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["job"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(status, [("a", "ok"), ("b", "ok"), ("missing", "failed")]);
}

/// Runs `dbkeep schedule run` with the stand-in tools first on PATH until
/// each database's dump has ended `runs` times, then stops it with SIGTERM.
/// Returns its exit code, once the running jobs are done, and its log.
fn schedule_until(
    config: &Path,
    tools: &Path,
    log: &Path,
    dbs: &[&str],
    runs: usize,
) -> (Option<i32>, String) {
    let stderr = config.with_file_name("daemon.log");
    let mut child = dbkeep()
        .env("PATH", path_with(tools))
        .arg("-c")
        .arg(config)
        .args(["schedule", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let daemon_log = || std::fs::read_to_string(&stderr).unwrap_or_default();
    let start = Instant::now();
    loop {
        let dumps = std::fs::read_to_string(log).unwrap_or_default();
        let ended = |db: &str| {
            dumps
                .lines()
                .filter(|l| l.starts_with("end") && l.contains(db))
                .count()
        };
        if dbs.iter().all(|db| ended(db) >= runs) {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!(
                "not {runs} dumps of each of {dbs:?}\n--- dumps\n{dumps}\n--- daemon\n{}",
                daemon_log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), daemon_log());
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the daemon did not stop\n{}", daemon_log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn schedule_run_keeps_to_per_host_and_runs_jobs_side_by_side_without_it() {
    let (a, b) = (PgDb::new("conc_sa"), PgDb::new("conc_sb"));
    let dir = tempdir();
    let tools = tempdir();
    let log = dir.path().join("dumps.log");
    logging_pg_dump(tools.path(), &log);
    let backups = dir.path().join("backups");
    let config = dir.path().join("dbkeep.yaml");
    // Two slots in the scheduler, so that only `per_host` keeps the jobs apart.
    let write = |defaults: &str| {
        let every_second = "      schedule: \"*/1 * * * * *\"\n";
        std::fs::write(
            &config,
            format!(
                "defaults: {defaults}\n\
                 scheduler: {{ max_concurrent_jobs: 2, shutdown_grace: 30s }}\n\
                 storages: {{ local: {{ type: local, path: {} }} }}\njobs:\n\
                 \x20 a:\n{}{every_second}\x20 b:\n{}{every_second}",
                backups.display(),
                pg_source(&pg_host(), &pg_port(), &a.name, ""),
                pg_source(&pg_host(), &pg_port(), &b.name, ""),
            ),
        )
        .unwrap();
    };
    let stored = |job: &str| {
        manifests(&backups)
            .iter()
            .filter(|m| m["job"] == job)
            .count()
    };
    // Both jobs on one server with `per_host: 1`: one dump at a time.
    write("{ concurrency: 2, per_host: 1 }");
    let (code, daemon) = schedule_until(&config, tools.path(), &log, &[&a.name, &b.name], 2);
    assert_eq!(code, Some(0), "{daemon}");
    let dumps = std::fs::read_to_string(&log).unwrap();
    assert!(!overlapped(&log), "{dumps}");
    assert!(stored("a") >= 2 && stored("b") >= 2, "{dumps}\n{daemon}");
    // The same jobs without a per-server limit: side by side.
    std::fs::remove_file(&log).unwrap();
    write("{ concurrency: 2 }");
    let (code, daemon) = schedule_until(&config, tools.path(), &log, &[&a.name, &b.name], 1);
    assert_eq!(code, Some(0), "{daemon}");
    let dumps = std::fs::read_to_string(&log).unwrap();
    assert!(overlapped(&log), "{dumps}");
}
