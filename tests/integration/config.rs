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

/// Validates `config` (YAML) against `dbkeep config schema` with Python's jsonschema.
fn schema_check(config_yaml: &str) -> std::process::Output {
    let dir = tempdir();
    let schema = ok(run(dbkeep().args(["config", "schema"])));
    std::fs::write(dir.path().join("schema.json"), schema).unwrap();
    let value: serde_json::Value = serde_yaml_ng::from_str(config_yaml).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&value).unwrap(),
    )
    .unwrap();
    let python = std::env::var("DBKEEP_TEST_PYTHON")
        .expect("DBKEEP_TEST_PYTHON is not set: run the tests through scripts/test.sh, which installs jsonschema");
    std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             jsonschema.validate(json.load(open(sys.argv[2])), schema)",
        ])
        .arg(dir.path().join("schema.json"))
        .arg(dir.path().join("config.json"))
        .output()
        .unwrap()
}

#[test]
fn example_config_matches_the_json_schema() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
            .unwrap();
    let out = schema_check(&example);
    assert!(out.status.success(), "{}", text(&out));

    // Every key that the example only shows in comments, set for real.
    let full = "\
defaults: { storage: [local], compression: gzip, compression_level: 6, compression_threads: 2, temp_dir: /var/tmp, notify: [chat],
            timezone: Europe/Berlin, catch_up: true, retention: { keep_last: 2, keep_daily: 7, keep_within: 2d, incomplete_after: 12h } }
scheduler: { max_concurrent_jobs: 2, shutdown_grace: 90s }
lock: { stale_after: 10m }
storages: { local: { type: local, path: /srv/backups, prefix: prod } }
notifiers:
  chat: { type: slack, url: 'https://hooks.example.com/x', on: [failure] }
  mail: { type: email, smtp_host: smtp.example.com, smtp_port: 587, tls: starttls, username: u, password_file: /run/s,
          from: a@example.com, to: [b@example.com], subject: '{job} {status}', on: [always], timeout: 5 }
  hook: { type: webhook, url: 'https://example.com/h', bearer_token_file: /run/t, hmac_secret: k, on: [success, failure] }
  ping: { type: healthcheck, url_file: /run/hc }
hooks: { before: [[/bin/true]], after: [[sh, -c, 'echo ok']], on_failure: [], finally: [], timeout: 60 }
metrics: { textfile: /var/lib/node_exporter/dbkeep.prom, pushgateway: 'http://pg:9091' }
jobs:
  pg: { source: { type: postgres, host: db, port: 5432, user: u, password_file: /run/p, databases: all, bin_dir: /usr/lib/postgresql/15/bin },
        encryption: { age: { recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p], identity_file: /k } }, hooks: { before: [[/bin/true]] } }
  r: { source: { type: redis, host: cache, databases: [0, 3], tls: { mode: verify-full, ca_file: /ca.pem } },
       schedule: '0 */4 * * *', timezone: UTC, catch_up: false,
       retention: { keep_hourly: 24, keep_weekly: 4, keep_monthly: 12, keep_yearly: 5 } }
";
    let out = schema_check(full);
    assert!(out.status.success(), "{}", text(&out));
    // dbkeep's own validation agrees.
    let dir = tempdir();
    std::fs::write(dir.path().join("full.yaml"), full).unwrap();
    ok(run(dbkeep()
        .arg("-c")
        .arg(dir.path().join("full.yaml"))
        .args(["config", "validate", "--no-environment"])));
    // The schema must also reject what dbkeep rejects.
    for bad in [
        "jobs: { a: { source: { type: postgres, databse: x } } }",
        "storages: { s: { type: ftp, path: / } }",
        // Keys of another type: an editor must not offer them.
        "storages: { s: { type: s3, bucket: b, sas_token: t } }",
        "notifiers: { n: { type: slack, url: 'https://x.example', smtp_host: h } }",
        "jobs: { a: { source: { type: sqlite, path: /x.db, host: h } } }",
    ] {
        let out = schema_check(bad);
        assert!(!out.status.success(), "the schema accepted: {bad}");
    }
}

#[test]
fn the_example_config_shows_every_key_of_the_schema() {
    let out = ok(run(dbkeep().args(["config", "schema"])));
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    fn keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| keys(v, out));
            }
            serde_json::Value::Array(list) => list.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }
    let mut all = std::collections::BTreeSet::new();
    keys(&schema, &mut all);
    assert!(all.len() > 50, "{all:?}");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
            .unwrap();
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| {
            !example.lines().any(|l| {
                l.split(|c: char| c.is_whitespace() || c == '{' || c == ',' || c == '#')
                    .any(|w| w == format!("{k}:"))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "config.example.yaml does not show these keys: {missing:?}"
    );
}
