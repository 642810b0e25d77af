//! Failure paths: stand-in dump tools that fail in each way a real one can.
//! Every case must exit non-zero, name the tool's stderr, and leave no object
//! and no manifest behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// A real `pg_dump -Fc -Z0` archive of a small database, for stand-ins to cut short.
fn real_pg_archive(dir: &Path) -> PathBuf {
    let db = PgDb::new("pg_fail_src");
    psql(
        &db.name,
        "create table t (id int, v text); insert into t select i, repeat('x', 100) from generate_series(1, 5000) i",
    );
    let path = dir.join("real.pgdump");
    let out = Command::new("pg_dump")
        .args([
            "-Fc",
            "-Z0",
            "-h",
            &pg_host(),
            "-p",
            &pg_port(),
            "-U",
            "postgres",
            "-f",
        ])
        .arg(&path)
        .arg(&db.name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn real_my_dump(dir: &Path) -> PathBuf {
    let db = MyDb::new("my_fail_src");
    mysql(&format!(
        "use `{0}`; create table t (id int, v text); insert into t select seq, repeat('x', 100) from seq_1_to_5000",
        db.name
    ));
    let path = dir.join("real.sql");
    let out = Command::new(which("mariadb-dump"))
        .args([
            "--no-defaults",
            "-h",
            &my_host(),
            "-P",
            &my_port(),
            "-uroot",
            "--result-file",
        ])
        .arg(&path)
        .arg(&db.name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

struct Case {
    name: &'static str,
    /// Shell body after the `--version` branch; `$DUMP` is a real dump file.
    body: &'static str,
    /// Text the error must contain.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "exits 1 with stderr",
        body: "echo 'fatal: simulated connection loss' >&2; exit 1",
        expect: &["exited with code 1", "fatal: simulated connection loss"],
    },
    Case {
        name: "killed halfway",
        body: "head -c 30000 \"$DUMP\"; echo 'dumping table t: interrupted' >&2; kill -9 $$",
        expect: &["killed by signal 9", "dumping table t: interrupted"],
    },
    Case {
        name: "prints nothing",
        body: "echo 'warning: nothing to say' >&2; exit 0",
        expect: &["no output", "warning: nothing to say"],
    },
    Case {
        name: "stops before the end marker",
        body: "head -c 30000 \"$DUMP\"; echo 'last words before stopping' >&2; exit 0",
        expect: &["incomplete", "last words before stopping"],
    },
];

fn check_case(tool: &str, version: &str, dump: &Path, url: &str, case: &Case) {
    let tools = tempdir();
    stand_in(
        tools.path(),
        tool,
        &format!(
            "DUMP='{}'\nfor a in \"$@\"; do [ \"$a\" = --version ] && {{ echo '{version}'; exit 0; }}; done\n{}",
            dump.display(),
            case.body
        ),
    );
    let dir = tempdir();
    let b = dir.path().join("backups");
    let out = run(dbkeep()
        .env("PATH", path_with(tools.path()))
        .args(["backup", url, "--to"])
        .arg(&b));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{tool} {}: {}",
        case.name,
        text(&out)
    );
    for want in case.expect {
        assert!(
            err.contains(want),
            "{tool} {}: missing `{want}` in:\n{err}",
            case.name
        );
    }
    assert!(
        files(&b).is_empty(),
        "{tool} {}: left {:?}",
        case.name,
        files(&b)
    );
}

#[test]
fn failing_pg_dump_stores_nothing() {
    let dir = tempdir();
    let dump = real_pg_archive(dir.path());
    let version = String::from_utf8(
        Command::new("pg_dump")
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let db = PgDb::new("pg_fail");
    for case in CASES {
        check_case("pg_dump", version.trim(), &dump, &pg_url(&db.name), case);
    }
}

#[test]
fn failing_mariadb_dump_stores_nothing() {
    let dir = tempdir();
    let dump = real_my_dump(dir.path());
    let db = MyDb::new("my_fail");
    for case in CASES {
        check_case(
            "mariadb-dump",
            "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB",
            &dump,
            &my_url(&db.name),
            case,
        );
    }
}

#[test]
fn sigterm_stops_the_dump_and_removes_the_partial_object() {
    let dir = tempdir();
    let dump = real_pg_archive(dir.path());
    let version = String::from_utf8(
        Command::new("pg_dump")
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let db = PgDb::new("pg_sigterm");
    let tools = tempdir();
    let marker = tools.path().join("started");
    stand_in(
        tools.path(),
        "pg_dump",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = --version ] && {{ echo '{}'; exit 0; }}; done\nhead -c 30000 '{}'\ntouch '{}'\nsleep 60",
            version.trim(),
            dump.display(),
            marker.display()
        ),
    );
    let b = dir.path().join("backups");
    let child = dbkeep()
        .env("PATH", path_with(tools.path()))
        .args(["backup", &pg_url(&db.name), "--to"])
        .arg(&b)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !marker.exists() {
        assert!(start.elapsed().as_secs() < 30, "the stand-in never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !files(&b).is_empty(),
        "a partial object should exist mid-dump"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed().as_secs() < 30,
        "dbkeep did not stop promptly"
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted"),
        "{}",
        text(&out)
    );
    assert!(files(&b).is_empty(), "left {:?}", files(&b));
    let ps = String::from_utf8(
        Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        !ps.lines()
            .any(|l| l.contains("sleep 60") && l.contains(tools.path().to_str().unwrap())),
        "{ps}"
    );
}

#[test]
fn one_failed_job_of_two_is_a_partial_run() {
    let dir = tempdir();
    let good = dir.path().join("good.db");
    rusqlite::Connection::open(&good)
        .unwrap()
        .execute_batch("create table t (id int); insert into t values (1);")
        .unwrap();
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  local: {{ type: local, path: {b} }}\njobs:\n  good:\n    source: {{ type: sqlite, path: {good} }}\n  \
             bad:\n    source: {{ type: sqlite, path: {missing} }}\n",
            b = dir.path().join("backups").display(),
            good = good.display(),
            missing = dir.path().join("missing.db").display()
        ),
    )
    .unwrap();
    let out = run(dbkeep().arg("-c").arg(&config).args(["backup", "--json"]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_job: std::collections::BTreeMap<&str, &str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["job"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        by_job,
        [("bad", "failed"), ("good", "ok")].into_iter().collect()
    );
    assert_eq!(manifests(&dir.path().join("backups")).len(), 1);

    let out = run(dbkeep().arg("-c").arg(&config).args(["backup", "bad"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn truncated_stream_with_a_matching_manifest_fails_verify() {
    // Verify decompresses to the end: a zstd stream cut short is caught even
    // when the manifest was rewritten to match the shorter object.
    let dir = tempdir();
    let db = dir.path().join("x.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("create table t (v text); with recursive s(i) as (select 1 union all select i+1 from s where i < 20000) insert into t select hex(randomblob(32)) from s;")
        .unwrap();
    let b = dir.path().join("b");
    ok(run(dbkeep().arg("backup").arg(&db).arg("--to").arg(&b)));
    let all = files(&b);
    let object = all.iter().find(|f| f.ends_with(".zst")).unwrap();
    let manifest_path = b.join(all.iter().find(|f| f.ends_with("manifest.json")).unwrap());
    let bytes = std::fs::read(b.join(object)).unwrap();
    let short = &bytes[..bytes.len() * 2 / 3];
    std::fs::write(b.join(object), short).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    m["artifacts"][0]["stored_size"] = short.len().into();
    m["artifacts"][0]["sha256"] = sha256_hex(short).into();
    std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();

    let out = run(dbkeep().args(["verify", "--from"]).arg(&b));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("truncated"),
        "{}",
        text(&out)
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_job_over_its_max_runtime_is_stopped_and_leaves_nothing() {
    let db = PgDb::new("pg_slow");
    psql(
        &db.name,
        "create table t (id int); insert into t values (1)",
    );
    let version = String::from_utf8(
        Command::new(which("pg_dump"))
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let tools = tempdir();
    // A pg_dump that starts its archive and then hangs.
    stand_in(
        tools.path(),
        "pg_dump",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = --version ] && {{ echo '{}'; exit 0; }}; done\nprintf PGDMP\nexec sleep 600",
            version.trim()
        ),
    );
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        &db.name,
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabase: {}",
            pg_host(),
            pg_port(),
            db.name
        ),
    );
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    text_config.push_str("    max_runtime: 2s\n");
    std::fs::write(&config, text_config).unwrap();
    let started = std::time::Instant::now();
    let out = run(dbkeep()
        .env("PATH", path_with(tools.path()))
        .arg("-c")
        .arg(&config)
        .arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ran longer than its `max_runtime` of 2s"),
        "{err}"
    );
    // No object, no manifest, and the lock is gone: the next run goes ahead.
    assert!(
        files(&dir.path().join("backups")).is_empty(),
        "{:?}",
        files(&dir.path().join("backups"))
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    assert_eq!(manifests(&dir.path().join("backups")).len(), 1);
}
