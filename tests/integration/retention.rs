//! Retention (`prune`, and after each backup) and job locks, with SQLite
//! backups in a local storage. Backups spread over two years are made by
//! copying one real backup and re-dating its manifest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

fn sample_db(dir: &Path) -> PathBuf {
    let path = dir.join("app.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t (v) VALUES ('one'), ('two'), ('three');",
    )
    .unwrap();
    path
}

/// A config with one SQLite job `app` and extra job keys (`retention: ...`).
fn config(dir: &Path, extra: &str) -> PathBuf {
    let db = dir.join("app.db");
    if !db.exists() {
        sample_db(dir);
    }
    let path = dir.join("dbkeep.yaml");
    std::fs::write(
        &path,
        format!(
            "storages:\n  local: {{ type: local, path: {} }}\njobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n{}",
            dir.join("backups").display(),
            db.display(),
            extra
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        ),
    )
    .unwrap();
    path
}

fn backup(cfg: &Path) {
    ok(run(dbkeep().arg("-c").arg(cfg).args(["backup", "app"])));
}

/// Copies the one backup in `backups/app` to folders started at `times`
/// (RFC 3339), then removes the original. Returns id per time.
fn spread(backups: &Path, times: &[&str]) -> Vec<String> {
    let job = backups.join("app");
    let original: Vec<PathBuf> = std::fs::read_dir(&job)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(original.len(), 1);
    let src = &original[0];
    let mut ids = Vec::new();
    for (n, t) in times.iter().enumerate() {
        let at = chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .with_timezone(&chrono::Utc);
        let id = format!("{}-{n:04x}", at.format("%Y%m%dT%H%M%SZ"));
        let dst = job.join(&id);
        std::fs::create_dir_all(&dst).unwrap();
        for f in std::fs::read_dir(src).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
        }
        let mpath = dst.join("manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
        m["id"] = id.clone().into();
        m["started_at"] = at.to_rfc3339().into();
        m["finished_at"] = at.to_rfc3339().into();
        std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        ids.push(id);
    }
    std::fs::remove_dir_all(src).unwrap();
    ids
}

/// Backup ids listed by `dbkeep list --json`.
fn listed(cfg: &Path) -> BTreeSet<String> {
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(cfg)
        .args(["list", "app", "--json"])));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

// Newest first. 2026-11-22 is a Sunday: A..E are in ISO week 47.
const TIMES: [&str; 13] = [
    "2026-11-22T03:00:00Z", // A
    "2026-11-22T01:00:00Z", // B
    "2026-11-21T03:00:00Z", // C
    "2026-11-20T03:00:00Z", // D
    "2026-11-16T03:00:00Z", // E
    "2026-11-10T03:00:00Z", // F (week 46)
    "2026-10-31T03:00:00Z", // G (week 44)
    "2026-10-01T03:00:00Z", // H
    "2026-06-15T03:00:00Z", // I
    "2026-01-01T03:00:00Z", // J
    "2025-12-31T03:00:00Z", // K
    "2025-06-01T03:00:00Z", // L
    "2025-01-05T03:00:00Z", // M
];

#[test]
fn policies_keep_exactly_the_hand_computed_sets() {
    let dir = tempdir();
    let cfg = config(dir.path(), "");
    backup(&cfg);
    let ids = spread(&dir.path().join("backups"), &TIMES);
    let letter = |i: usize| (b'A' + i as u8) as char;
    // keep_within counts back from now: enough days to reach E, not F.
    let days_to_e = (chrono::Utc::now()
        - chrono::DateTime::parse_from_rfc3339(TIMES[4])
            .unwrap()
            .with_timezone(&chrono::Utc))
    .num_days()
        + 1;
    let within = format!("keep_within: {days_to_e}d");
    let cases: [(&str, &str); 8] = [
        ("keep_last: 3", "ABC"),
        ("keep_hourly: 2", "AB"),
        ("keep_daily: 3", "ACD"),
        ("keep_weekly: 3", "AFG"),
        ("keep_monthly: 4", "AGIJ"),
        ("keep_yearly: 3", "AK"),
        (within.as_str(), "ABCDE"),
        (
            "{ keep_daily: 2, keep_monthly: 3, keep_yearly: 2 }",
            "ACGIK",
        ),
    ];
    for (policy, want) in cases {
        let policy = if policy.starts_with('{') {
            policy.to_string()
        } else {
            format!("{{ {policy} }}")
        };
        let cfg = config(dir.path(), &format!("retention: {policy}"));
        let out = ok(run(dbkeep().arg("-c").arg(&cfg).args([
            "prune",
            "--dry-run",
            "--json",
        ])));
        let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
        let kept: String = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "keep")
            .map(|r| {
                let id = r["id"].as_str().unwrap();
                letter(ids.iter().position(|x| x == id).unwrap())
            })
            .collect::<BTreeSet<char>>()
            .into_iter()
            .collect();
        assert_eq!(kept, want, "policy {policy}\n{out}");
        for r in rows.as_array().unwrap() {
            assert_eq!(r["done"], false, "dry run deleted something: {r}");
            if r["action"] == "keep" {
                assert!(!r["reasons"].as_array().unwrap().is_empty(), "{r}");
            }
        }
    }
    // Nothing was deleted by the dry runs.
    assert_eq!(listed(&cfg).len(), TIMES.len());

    // A real prune deletes exactly the rest, and what is left still verifies.
    let cfg = config(
        dir.path(),
        "retention: { keep_daily: 2, keep_monthly: 3, keep_yearly: 2 }",
    );
    // Deleting 8 of 13 needs --force.
    let refused = run(dbkeep().arg("-c").arg(&cfg).args(["prune", "app"]));
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("dbkeep prune --force app"),
        "{}",
        text(&refused)
    );
    assert_eq!(listed(&cfg).len(), TIMES.len());
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["prune", "--force", "app"])));
    assert!(out.contains("5 backups kept, 8 deleted"), "{out}");
    let want: BTreeSet<String> = [0, 2, 6, 8, 10].iter().map(|&i| ids[i].clone()).collect();
    assert_eq!(listed(&cfg), want);
    let left: BTreeSet<String> = std::fs::read_dir(dir.path().join("backups/app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, want, "deleted backups left folders behind");
    for id in &want {
        ok(run(dbkeep()
            .arg("-c")
            .arg(&cfg)
            .args(["verify", "app", "--id", id])));
    }
}

#[test]
fn retention_after_a_backup_keeps_the_new_one_and_a_failed_backup_deletes_nothing() {
    let dir = tempdir();
    let cfg = config(dir.path(), "");
    backup(&cfg);
    let ids = spread(
        &dir.path().join("backups"),
        &[
            "2026-01-03T03:00:00Z",
            "2026-01-02T03:00:00Z",
            "2026-01-01T03:00:00Z",
        ],
    );
    // A failing backup (the database file is gone) with a policy that would
    // delete two of the three: nothing is deleted.
    let cfg = config(dir.path(), "retention: { keep_last: 1 }");
    std::fs::rename(dir.path().join("app.db"), dir.path().join("moved.db")).unwrap();
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"]));
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(listed(&cfg), ids.iter().cloned().collect());

    // A successful one prunes after itself, and keeps itself (with one old
    // backup left: deleting more than half of them would need --force).
    std::fs::rename(dir.path().join("moved.db"), dir.path().join("app.db")).unwrap();
    for id in &ids[1..] {
        std::fs::remove_dir_all(dir.path().join("backups/app").join(id)).unwrap();
    }
    let ids = &ids[..1];
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app", "--json"])));
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    let new_id = result[0]["id"].as_str().unwrap().to_string();
    let deleted: BTreeSet<String> = result[0]["retention"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "delete")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deleted, ids.iter().cloned().collect());
    assert_eq!(listed(&cfg), BTreeSet::from([new_id]));
}

#[test]
fn half_deleted_and_dead_runs_are_cleaned_up_after_the_grace_period() {
    let dir = tempdir();
    let cfg = config(dir.path(), "");
    backup(&cfg);
    let backups = dir.path().join("backups");
    let ids = spread(
        &backups,
        &[
            "2026-01-03T03:00:00Z",
            "2026-01-02T03:00:00Z",
            "2026-01-01T03:00:00Z",
        ],
    );
    // A prune that died between the manifest and the data of the oldest.
    std::fs::remove_file(backups.join("app").join(&ids[2]).join("manifest.json")).unwrap();
    // A run that is going on right now: no manifest yet, and young.
    let fresh = format!("{}-beef", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    std::fs::create_dir_all(backups.join("app").join(&fresh)).unwrap();
    std::fs::write(
        backups.join("app").join(&fresh).join("app.sqlite.zst"),
        b"partial",
    )
    .unwrap();
    // Invisible to list already.
    assert_eq!(
        listed(&cfg),
        BTreeSet::from([ids[0].clone(), ids[1].clone()])
    );

    let cfg = config(dir.path(), "retention: { keep_last: 5 }");
    let out = ok(run(dbkeep().arg("-c").arg(&cfg).args(["prune", "--json"])));
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let action = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| {
                (
                    r["action"].as_str().unwrap().to_string(),
                    r["incomplete"] == true,
                )
            })
    };
    assert_eq!(action(&ids[2]), Some(("delete".into(), true)), "{out}");
    assert_eq!(action(&fresh), Some(("keep".into(), true)), "{out}");
    assert_eq!(action(&ids[0]), Some(("keep".into(), false)), "{out}");
    assert!(!backups.join("app").join(&ids[2]).exists());
    assert!(backups.join("app").join(&fresh).exists());
    assert_eq!(
        listed(&cfg),
        BTreeSet::from([ids[0].clone(), ids[1].clone()])
    );
}

#[test]
fn prune_without_rules_keeps_everything() {
    let dir = tempdir();
    let cfg = config(dir.path(), "");
    backup(&cfg);
    backup(&cfg);
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["prune"]));
    let stdout = ok(out.clone());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no retention rules"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("2 backups kept, 0 deleted"), "{stdout}");
    assert_eq!(listed(&cfg).len(), 2);
}

// ---------------------------------------------------------------- locks

fn lock_path(dir: &Path) -> PathBuf {
    dir.join("backups/app/lock.json")
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_run_of_a_locked_job_fails_with_exit_75_or_waits() {
    let dir = tempdir();
    let cfg = config(dir.path(), "hooks: { before: [[sleep, \"2\"]] }");
    let first = dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&lock_path(dir.path()));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lock_path(dir.path())).unwrap()).unwrap();
    assert_eq!(lock["pid"], first.id());
    assert_eq!(lock["command"], "backup");

    let second = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"]));
    assert_eq!(second.status.code(), Some(75), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("locked") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    // prune holds the same lock.
    let prune = run(dbkeep().arg("-c").arg(&cfg).args(["prune"]));
    assert_eq!(prune.status.code(), Some(75), "{}", text(&prune));

    // Told to wait, it runs once the first is done.
    let waited = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app", "--wait-lock", "1m"]));
    ok(waited);
    ok(first.wait_with_output().unwrap());
    assert_eq!(listed(&cfg).len(), 2);
    assert!(!lock_path(dir.path()).exists(), "the lock was not released");
}

fn write_lock(dir: &Path, host: &str, pid: u32, age: chrono::Duration) {
    let at = chrono::Utc::now() - age;
    std::fs::create_dir_all(dir.join("backups/app")).unwrap();
    // This boot and pid namespace: a pid of this host is judged by them.
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let pid_ns =
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata("/proc/self/ns/pid").unwrap());
    let lock = serde_json::json!({
        "job": "app", "command": "backup", "host": host, "pid": pid,
        "boot_id": boot_id.trim(), "pid_ns": pid_ns,
        "started_at": at.to_rfc3339(), "refreshed_at": at.to_rfc3339(), "token": "0123",
    });
    std::fs::write(lock_path(dir), serde_json::to_vec(&lock).unwrap()).unwrap();
}

#[test]
fn a_stale_lock_is_taken_over_and_a_fresh_one_is_not() {
    let dir = tempdir();
    let cfg = config(dir.path(), "");
    // Another host, refreshed a minute ago: held.
    write_lock(
        dir.path(),
        "elsewhere.example",
        4242,
        chrono::Duration::minutes(1),
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"]));
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("elsewhere.example"));
    assert!(listed(&cfg).is_empty());

    // Not refreshed for longer than `lock.stale_after`: taken over.
    let cfg_text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("lock: {{ stale_after: 5m }}\n{cfg_text}")).unwrap();
    write_lock(
        dir.path(),
        "elsewhere.example",
        4242,
        chrono::Duration::minutes(6),
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"]));
    ok(out.clone());
    assert!(String::from_utf8_lossy(&out.stderr).contains("taking over a stale lock"));
    assert_eq!(listed(&cfg).len(), 1);
    assert!(!lock_path(dir.path()).exists());

    // This host, a process that no longer exists: taken over at once.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let host = hostname();
    write_lock(dir.path(), &host, pid, chrono::Duration::seconds(1));
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
    assert_eq!(listed(&cfg).len(), 2);
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length.
    assert_eq!(
        unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) },
        0
    );
    let end = buf.iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
