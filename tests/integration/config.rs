//! Config files: every problem reported at once, env overrides, redaction.

use crate::util::*;

#[test]
fn every_problem_is_reported_with_its_path_and_exit_78() {
    let dir = tempdir();
    let config = dir.path().join("bad.yaml");
    std::fs::write(
        &config,
        "storages:\n  local: { type: local, path: /tmp/x, colour: blue }\n\
         jobs:\n  a:\n    source: { type: postgres, database: a, port: not-a-port }\n  \
         b:\n    storage: local\n  c:\n    source: { type: sqlite, path: /x.db }\n    compression: lz4\n",
    )
    .unwrap();
    let out = run(dbkeep().arg("-c").arg(&config).args(["config", "validate"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "has 4 problems",
        "storages.local.colour: unknown key `colour`",
        "jobs.a.source.port: wrong type",
        "jobs.b.source: missing required key",
        "jobs.c.compression: unknown value `lz4`",
        "bad.yaml",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    // The same file stops a backup with the same code before anything runs.
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
}

#[test]
fn example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = ok(run(dbkeep().args([
        "-c",
        example,
        "config",
        "validate",
        "--no-environment",
    ])));
    assert!(out.contains("valid (3 jobs, 1 storage)"), "{out}");
}

#[test]
fn init_writes_a_config_that_validates_and_will_not_overwrite() {
    let dir = tempdir();
    let path = dir.path().join("new.yaml");
    ok(run(dbkeep().args(["config", "init"]).arg(&path)));
    ok(run(dbkeep().arg("-c").arg(&path).args([
        "config",
        "validate",
        "--no-environment",
    ])));
    let out = run(dbkeep().args(["config", "init"]).arg(&path));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn env_overrides_and_show_redacts_secrets() {
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "app",
        "type: postgres\nhost: db.internal\npassword: hunter2-in-file\ndatabase: app",
    );
    let out = ok(run(dbkeep()
        .env("DBKEEP_JOBS__APP__SOURCE__PORT", "6543")
        .env("DBKEEP_DEFAULTS__COMPRESSION", "gzip")
        .arg("-c")
        .arg(&config)
        .args(["config", "show"])));
    assert!(out.contains("port: 6543"), "{out}");
    assert!(out.contains("compression: gzip"), "{out}");
    assert!(
        out.contains("password: '**REDACTED**'") || out.contains("password: \"**REDACTED**\""),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");

    let out = run(dbkeep()
        .env("DBKEEP_JOBS__APP__SOURCE__PORT", "many")
        .arg("-c")
        .arg(&config)
        .args(["config", "validate"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("jobs.app.source.port"),
        "{}",
        text(&out)
    );
}

#[test]
fn config_search_order_and_message() {
    let dir = tempdir();
    let out = run(dbkeep()
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("cfg"))
        .arg("list"));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no config file found")
            && err.contains("dbkeep.yaml")
            && err.contains("config init"),
        "{err}"
    );

    write_config(dir.path(), "app", "type: sqlite\npath: app.db");
    let out =
        run(dbkeep()
            .current_dir(dir.path())
            .args(["config", "validate", "--no-environment"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("dbkeep.yaml: valid"),
        "{}",
        text(&out)
    );
}
