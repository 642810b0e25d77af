//! MongoDB. No MongoDB server can be installed here, so these tests use:
//! - the real mongodump/mongorestore 100.7.0 against a closed port
//!   (`DBKEEP_TEST_MONGO_BIN`, installed by scripts/test.sh): the config file,
//!   the error paths and secrecy with the real tools;
//! - stand-in mongodump/mongorestore executables (tests/integration/mongo_standin.py,
//!   not MongoDB) that keep a "server" in a JSON file and speak the real
//!   `--archive` format: streaming, argv, restore options and failures;
//! - a real round trip that runs only when `mongod` is on PATH.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::*;

const STANDIN: &str = include_str!("mongo_standin.py");
const PASSWORD: &str = "m0ngo-s3cret/p@ss";

/// A stand-in "server": its tools folder, state file and call log.
struct Standin {
    dir: tempfile::TempDir,
}

impl Standin {
    fn new(state: Value) -> Standin {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for tool in ["mongodump", "mongorestore"] {
            let p = bin.join(tool);
            std::fs::write(&p, STANDIN).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.path().join("state.json"), state.to_string()).unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Standin { dir }
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("state.json")).unwrap()).unwrap()
    }

    fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// dbkeep with the stand-ins first on PATH and its temp files in `tmp`.
    fn dbkeep(&self) -> std::process::Command {
        let mut cmd = dbkeep();
        cmd.env("PATH", path_with(&self.dir.path().join("bin")))
            .env("TMPDIR", self.tmp())
            .env("STANDIN_MONGO_STATE", self.dir.path().join("state.json"))
            .env("STANDIN_MONGO_LOG", self.dir.path().join("calls.log"));
        cmd
    }
}

fn docs(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"_id": format!("{prefix}-{i}"), "v": format!("{prefix} value {i} {}", "x".repeat(i % 50))}))
            .collect(),
    )
}

fn source(port: u16, databases: &str) -> String {
    format!(
        "type: mongodb\nhost: 127.0.0.1\nport: {port}\nuser: backup\npassword: \"{PASSWORD}\"\nauth_source: admin\n{databases}\n"
    )
}

#[test]
fn stand_in_round_trip_streams_restores_and_keeps_the_password_off_argv() {
    let s = Standin::new(json!({"app": {"users": docs("u", 3), "orders": docs("o", 2000)}}));
    let dir = tempdir();
    let cfg = write_config(dir.path(), "mongo", &source(27999, "database: app"));
    let b = dir.path().join("backups");

    let child = s
        .dbkeep()
        .args(["--config"])
        .arg(&cfg)
        .args(["backup", "mongo"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watch = watch_cmdlines(PASSWORD, child.id());
    let out = child.wait_with_output().unwrap();
    ok(out.clone());
    let (sampled, hits) = watch.join().unwrap();
    assert!(sampled > 0);
    assert!(
        hits.is_empty(),
        "the password was on a command line: {hits:?}"
    );
    assert!(!text(&out).contains(PASSWORD), "{}", text(&out));

    // Every call got the connection through a 0600 --config file, never argv.
    let calls = s.calls();
    assert!(calls.len() >= 2, "{calls:?}");
    for c in &calls {
        let argv = c["argv"].to_string();
        assert!(!argv.contains("m0ngo"), "{argv}");
        assert!(argv.contains("--config="), "{argv}");
        assert_eq!(c["config_mode"], "0o600", "{c}");
        assert_eq!(
            c["uri"],
            "mongodb://backup:m0ngo-s3cret%2Fp%40ss@127.0.0.1:27999/?authSource=admin"
        );
    }
    let dump = calls.last().unwrap()["argv"].to_string();
    assert!(
        dump.contains("--archive") && dump.contains("--db=app"),
        "{dump}"
    );
    // The config file is gone, and nothing else was left in the temp folder.
    assert!(files(&s.tmp()).is_empty(), "{:?}", files(&s.tmp()));

    let m = &manifests(&b)[0];
    assert_eq!(m["databases"], json!(["app"]));
    let artifact = &m["artifacts"][0];
    assert_eq!(artifact["format"], "mongo_archive", "{m}");
    let stored =
        std::fs::read(b.join(files(&b).iter().find(|f| f.ends_with(".zst")).unwrap())).unwrap();
    assert_eq!(
        artifact["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&stored))
    );

    // Restore under another name: --nsFrom/--nsTo, no --drop.
    let log_before = s.calls().len();
    ok(run(s.dbkeep().arg("--config").arg(&cfg).args([
        "restore",
        "mongo",
        "--to-database",
        "app_copy",
    ])));
    let state = s.state();
    assert_eq!(state["app_copy"], state["app"]);
    assert_eq!(state["app_copy"]["orders"].as_array().unwrap().len(), 2000);
    let restore = s.calls()[log_before..]
        .iter()
        .find(|c| c["tool"] == "mongorestore")
        .unwrap()["argv"]
        .to_string();
    assert!(
        restore.contains("--nsFrom=app.*") && restore.contains("--nsTo=app_copy.*"),
        "{restore}"
    );
    assert!(!restore.contains("--drop"), "{restore}");

    // A non-empty target is refused by name, and left as it was.
    let out = run(s
        .dbkeep()
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "mongo"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("non-empty") && err.contains("orders"), "{err}");
    assert_eq!(s.state(), state);

    // --force replaces it with --drop: the documents are not doubled.
    ok(run(s
        .dbkeep()
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "mongo", "--force"])));
    let after = s.state();
    assert_eq!(after["app"], state["app"]);
    let last = s.calls().last().unwrap()["argv"].to_string();
    assert!(last.contains("--drop"), "{last}");
}

#[test]
fn all_databases_leaves_out_admin_local_and_config() {
    let s = Standin::new(json!({
        "admin": {"system.users": docs("a", 1)},
        "local": {"startup_log": docs("l", 1)},
        "config": {"system.sessions": docs("c", 1)},
        "shop": {"items": docs("i", 10)},
        "crm": {"people": docs("p", 10)},
    }));
    let dir = tempdir();
    let cfg = write_config(dir.path(), "mongo", &source(27999, "databases: all"));
    ok(run(s
        .dbkeep()
        .arg("--config")
        .arg(&cfg)
        .args(["backup", "mongo"])));
    let m = &manifests(&dir.path().join("backups"))[0];
    assert_eq!(m["databases"], json!(["crm", "shop"]));
    assert_eq!(m["artifacts"].as_array().unwrap().len(), 2);
}

#[test]
fn a_missing_database_is_a_failed_backup() {
    let s = Standin::new(json!({"app": {"users": docs("u", 3)}}));
    let dir = tempdir();
    let cfg = write_config(dir.path(), "mongo", &source(27999, "database: ap"));
    let out = run(s
        .dbkeep()
        .arg("--config")
        .arg(&cfg)
        .args(["backup", "mongo"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("database `ap` has no collections"),
        "{}",
        text(&out)
    );
    assert!(files(&dir.path().join("backups")).is_empty());
}

#[test]
fn failing_stand_in_dumps_store_nothing() {
    let cases = [
        (
            "fail",
            "1",
            vec!["exited with code 1", "authentication failed"],
        ),
        (
            "fail",
            "2",
            vec!["exited with code 1", "authentication failed"],
        ),
        ("halfway", "2", vec!["killed by signal 9", "interrupted"]),
        ("empty", "2", vec!["produced no output", "writing nothing"]),
        ("truncated", "2", vec!["incomplete", "stopped early"]),
    ];
    for (mode, at, expect) in cases {
        let s = Standin::new(json!({"app": {"orders": docs("o", 3000)}}));
        let dir = tempdir();
        let cfg = write_config(dir.path(), "mongo", &source(27999, "database: app"));
        let out = run(s
            .dbkeep()
            .env("STANDIN_MONGO_FAIL", mode)
            .env("STANDIN_MONGO_FAIL_AT", at)
            .arg("--config")
            .arg(&cfg)
            .args(["backup", "mongo"]));
        assert_eq!(out.status.code(), Some(1), "{mode}@{at}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        for want in &expect {
            assert!(
                err.contains(want),
                "{mode}@{at}: missing `{want}` in\n{err}"
            );
        }
        assert!(!err.contains(PASSWORD));
        let left = files(&dir.path().join("backups"));
        assert!(left.is_empty(), "{mode}@{at}: left {left:?}");
        assert!(files(&s.tmp()).is_empty(), "{mode}@{at}: temp files left");
    }
}

#[test]
fn verify_checks_the_archive_structure() {
    let s = Standin::new(json!({"app": {"orders": docs("o", 100)}}));
    let dir = tempdir();
    let cfg = write_config(dir.path(), "mongo", &source(27999, "database: app"));
    ok(run(s
        .dbkeep()
        .arg("--config")
        .arg(&cfg)
        .args(["backup", "mongo"])));
    let out = ok(run(s
        .dbkeep()
        .arg("--config")
        .arg(&cfg)
        .args(["verify", "mongo", "--json"])));
    assert!(out.contains("mongodump archive structure"), "{out}");
}

/// Where scripts/test.sh put the real mongodump and mongorestore.
fn real_tools() -> PathBuf {
    PathBuf::from(std::env::var("DBKEEP_TEST_MONGO_BIN").expect(
        "DBKEEP_TEST_MONGO_BIN is not set: run the tests through scripts/test.sh, which installs mongodump 100.7.0",
    ))
}

fn closed_port() -> u16 {
    // Bound and dropped: nothing listens there now.
    free_port()
}

fn real_tools_source(port: u16, tools: &Path) -> String {
    format!(
        "{}bin_dir: {}\n",
        source(port, "database: app"),
        tools.display()
    )
}

#[test]
fn real_mongodump_against_a_closed_port_fails_clearly() {
    let tools = real_tools();
    let dir = tempdir();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let port = closed_port();
    let cfg = write_config(dir.path(), "mongo", &real_tools_source(port, &tools));
    let start = Instant::now();
    let child = dbkeep()
        .env("TMPDIR", &tmp)
        .arg("--config")
        .arg(&cfg)
        .args(["backup", "mongo"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watch = watch_cmdlines(PASSWORD, child.id());
    let out = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    let (_, hits) = watch.join().unwrap();
    assert!(
        hits.is_empty(),
        "the password was on a command line: {hits:?}"
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach MongoDB"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!text(&out).contains(PASSWORD) && !text(&out).contains("s3cret"));
    // mongodump's own server selection gives up after 30 s.
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
    assert!(files(&dir.path().join("backups")).is_empty());
    assert!(files(&tmp).is_empty(), "left {:?}", files(&tmp));
}

#[test]
fn real_mongorestore_against_a_closed_port_fails_before_touching_anything() {
    // A backup made with the stand-in, restored with the real tools.
    let s = Standin::new(json!({"app": {"orders": docs("o", 100)}}));
    let dir = tempdir();
    let cfg = write_config(dir.path(), "mongo", &source(27999, "database: app"));
    ok(run(s
        .dbkeep()
        .arg("--config")
        .arg(&cfg)
        .args(["backup", "mongo"])));
    let port = closed_port();
    let url = format!("mongodb://backup:{}@127.0.0.1:{port}/", "pw%2Fsecret");
    let out = run(dbkeep()
        .env("PATH", path_with(&real_tools()))
        .args(["restore", "--from"])
        .arg(dir.path().join("backups"))
        .args(["--job", "mongo", "--target", &url, "--database", "app"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connection refused"), "{err}");
    assert!(
        !err.contains("pw%2Fsecret") && !err.contains("pw/secret"),
        "{err}"
    );
}

#[test]
fn real_round_trip_when_mongod_is_on_path() {
    let Some(mongod) = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("mongod"))
        .find(|p| p.is_file())
    else {
        eprintln!(
            "skipped: `mongod` is not on PATH (no MongoDB server can be installed from this \
             machine's package registries); install MongoDB and rerun to run this round trip"
        );
        return;
    };
    let tools = real_tools();
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let port = free_port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(
        std::process::Command::new(mongod)
            .args([
                "--bind_ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--dbpath",
            ])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mongod did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Load documents with the real mongorestore from a stand-in-written archive.
    let seed = Standin::new(json!({"app": {"orders": docs("o", 500), "users": docs("u", 5)}}));
    let archive = std::process::Command::new(seed.dir.path().join("bin/mongodump"))
        .args(["--archive", "--db=app"])
        .env("STANDIN_MONGO_STATE", seed.dir.path().join("state.json"))
        .env("STANDIN_MONGO_LOG", seed.dir.path().join("calls.log"))
        .output()
        .unwrap()
        .stdout;
    let mut load = std::process::Command::new(tools.join("mongorestore"))
        .args(["--archive", &format!("--uri=mongodb://127.0.0.1:{port}/")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(load.stdin.as_mut().unwrap(), &archive).unwrap();
    drop(load.stdin.take());
    assert!(load.wait().unwrap().success());

    let src = format!(
        "type: mongodb\nuri: mongodb://127.0.0.1:{port}/\ndatabase: app\nbin_dir: {}\n",
        tools.display()
    );
    let cfg = write_config(dir.path(), "mongo", &src);
    ok(run(dbkeep()
        .arg("--config")
        .arg(&cfg)
        .args(["backup", "mongo"])));
    ok(run(dbkeep().arg("--config").arg(&cfg).args([
        "restore",
        "mongo",
        "--to-database",
        "app_copy",
    ])));
    // Read both databases back with the real mongodump, into the stand-in's
    // JSON form (the copy under its original name), and compare documents.
    let read_back = |db: &str| -> Value {
        let out = std::process::Command::new(tools.join("mongodump"))
            .args([
                "--archive",
                &format!("--db={db}"),
                &format!("--uri=mongodb://127.0.0.1:{port}/"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let into = Standin::new(json!({}));
        let mut restore = std::process::Command::new(into.dir.path().join("bin/mongorestore"))
            .args(["--archive", &format!("--nsFrom={db}.*"), "--nsTo=app.*"])
            .env("STANDIN_MONGO_STATE", into.dir.path().join("state.json"))
            .env("STANDIN_MONGO_LOG", into.dir.path().join("calls.log"))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(restore.stdin.as_mut().unwrap(), &out.stdout).unwrap();
        drop(restore.stdin.take());
        assert!(restore.wait().unwrap().success());
        let mut state = into.state();
        for docs in state["app"].as_object_mut().unwrap().values_mut() {
            docs.as_array_mut()
                .unwrap()
                .sort_by_key(|d| d["_id"].to_string());
        }
        state
    };
    let original = read_back("app");
    assert_eq!(original["app"]["orders"].as_array().unwrap().len(), 500);
    assert_eq!(read_back("app_copy"), original);
}

#[test]
fn stand_in_inspect_lists_databases_and_collections_and_says_sizes_are_unknown() {
    let s = Standin::new(json!({
        "app": {"users": docs("u", 3), "orders": docs("o", 20)},
        "crm": {"leads": docs("l", 2)},
        "admin": {"system.version": docs("v", 1)}
    }));
    let dir = tempdir();
    let cfg = write_config(dir.path(), "mongo", &source(27999, "databases: all"));
    let out = ok(run(s
        .dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["inspect", "mongo", "--json"])));
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["engine"], "mongodb");
    assert!(j["client"].as_str().unwrap().contains("mongodump"), "{j}");
    let names: Vec<&str> = j["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "crm"], "{j}");
    assert_eq!(j["databases"][0]["bytes"], Value::Null);
    let notes = j["notes"].to_string();
    assert!(notes.contains("`app` holds 2 collections"), "{notes}");
    assert!(notes.contains("sizes need a MongoDB shell"), "{notes}");
    assert!(!out.contains("m0ngo"), "{out}");
    // Only mongodump ran, and the stand-in "server" is as it was.
    assert!(
        s.calls().iter().all(|c| c["tool"] == "mongodump"),
        "{:?}",
        s.calls()
    );
    assert_eq!(s.state()["app"]["orders"].as_array().unwrap().len(), 20);
    assert!(!dir.path().join("backups").exists());
}
