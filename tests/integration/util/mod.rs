//! Test helpers: the real binary, unique names, real servers, stand-in tools.
//! One file per concern; everything is re-exported here.

mod mysql;
mod postgres;
mod proxy;
mod receivers;
mod redis;
mod s3;

pub use mysql::*;
pub use postgres::*;
pub use proxy::*;
pub use receivers::*;
pub use redis::*;
pub use s3::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The dbkeep binary under test, with a clean environment for its own variables.
pub fn dbkeep() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbkeep"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DBKEEP_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DBKEEP_LOG", "dbkeep=info");
    cmd
}

/// Runs a command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("cannot run dbkeep")
}

/// stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "expected success\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// A fresh temp folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dbkeep-test-")
        .tempdir()
        .unwrap()
}

/// Every file below `dir` (relative paths), sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Writes an executable shell script `name` into `dir` (a stand-in tool).
pub fn stand_in(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// PATH with `dir` first.
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Where the real tool `name` is.
pub fn which(name: &str) -> PathBuf {
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not on PATH; run the tests through scripts/test.sh")
}

/// A SQLite database of about `megabytes` MB of random blobs, `big.db` in `dir`.
pub fn sqlite_with_random_data(dir: &Path, megabytes: usize) -> PathBuf {
    let path = dir.join("big.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "create table blobs (id integer primary key, data blob);
         with recursive s(i) as (select 1 union all select i + 1 from s where i < {})
         insert into blobs (data) select randomblob(4000) from s;",
        megabytes * 256
    ))
    .unwrap();
    path
}

/// `dbkeep inspect ARGS --json` in an empty folder with no config; the folder
/// stays empty.
#[track_caller]
pub fn inspect_json(args: &[&str]) -> serde_json::Value {
    let empty = tempdir();
    let out = ok(run(dbkeep()
        .current_dir(empty.path())
        .arg("inspect")
        .args(args)
        .arg("--json")));
    assert_eq!(
        files(empty.path()),
        Vec::<String>::new(),
        "inspect wrote files"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

// ---------------------------------------------------------------- configs

/// Writes a config file with a local storage at `dir/backups` and one job.
pub fn write_config(dir: &Path, job: &str, source_yaml: &str) -> PathBuf {
    let path = dir.join("dbkeep.yaml");
    let text = format!(
        "storages:\n  local:\n    type: local\n    path: {}\njobs:\n  {job}:\n    source:\n{}",
        dir.join("backups").display(),
        source_yaml
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The single backup folder's manifest under `backups`, parsed.
pub fn manifests(backups: &Path) -> Vec<serde_json::Value> {
    files(backups)
        .into_iter()
        .filter(|f| f.ends_with("manifest.json"))
        .map(|f| serde_json::from_slice(&std::fs::read(backups.join(f)).unwrap()).unwrap())
        .collect()
}

// ---------------------------------------------------------------- processes

/// Samples every process's argv until `pid` exits; returns how many argv were
/// read and the ones that contained `needle`.
pub fn watch_cmdlines(needle: &str, pid: u32) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    let needle = needle.as_bytes().to_vec();
    std::thread::spawn(move || {
        let mut sampled = 0;
        let mut hits = Vec::new();
        while Path::new(&format!("/proc/{pid}")).exists() {
            let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if status.contains(") Z ") {
                break;
            }
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                if cmdline.is_empty() {
                    continue;
                }
                sampled += 1;
                if cmdline
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
                {
                    hits.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        (sampled, hits)
    })
}

// ---------------------------------------------------------------- retention

/// A time in an RFC 3339 text, as dbkeep prints it.
pub fn time(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("`{text}`: {e}"))
        .with_timezone(&chrono::Utc)
}

/// Asserts that `until` is about a day from now (the `days: 1` of the tests).
#[track_caller]
pub fn a_day_from_now(until: chrono::DateTime<chrono::Utc>) {
    let left = until - chrono::Utc::now();
    assert!(
        left > chrono::Duration::hours(23) && left <= chrono::Duration::hours(24),
        "retained until {until}"
    );
}

/// `prune --json` after two backups with `keep_last: 1` and a day's lock:
/// both are kept, and the older one is held by its lock, about a day ahead.
#[track_caller]
pub fn the_older_backup_is_held(pruned: &str) {
    let pruned: serde_json::Value = serde_json::from_str(pruned).unwrap();
    let rows = pruned.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{pruned}");
    assert!(rows.iter().all(|r| r["action"] == "keep"), "{pruned}");
    let held: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["retained_until"].is_string())
        .collect();
    assert_eq!(held.len(), 1, "{pruned}");
    a_day_from_now(time(held[0]["retained_until"].as_str().unwrap()));
}
