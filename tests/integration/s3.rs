//! What only S3 does, against a real S3 server (moto): keys and a storage
//! class from the config file, refused credentials, and a fan-out with an
//! optional storage that fails. What every storage does is in the
//! conformance suite (`storage.rs`).

use crate::util::*;

/// A storage in a config file, with its keys and a storage class from the
/// config.
#[test]
fn keys_and_a_storage_class_from_the_config_file() {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "cfg");
    let db = PgDb::new("s3_cfg");
    psql(
        &db.name,
        "create table t (v int); insert into t select generate_series(1, 5000)",
    );
    // Keys from the config, not the environment.
    let dir = tempdir();
    let secret = dir.path().join("s3-secret");
    std::fs::write(&secret, "config-secret-key\n").unwrap();
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  offsite:\n    type: s3\n    bucket: {bucket}\n    prefix: via-config\n    endpoint: {endpoint}\n    region: eu-west-1\n    \
             path_style: true\n    access_key_id: AKIDCONFIG\n    secret_access_key_file: {}\n    storage_class: STANDARD_IA\n\
             jobs:\n  app:\n    storage: offsite\n    source: {{ type: postgres, host: {}, port: {}, user: postgres, database: {} }}\n",
            secret.display(),
            pg_host(),
            pg_port(),
            db.name
        ),
    )
    .unwrap();
    let out = ok(run(dbkeep()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("-c")
        .arg(&config)
        .arg("backup")));
    assert!(!out.contains("config-secret-key"));
    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["config", "validate"])));
    assert!(
        s3_keys(&endpoint, &bucket)
            .iter()
            .any(|k| k.starts_with("via-config/app/"))
    );
}

#[test]
fn wrong_credentials_are_refused_and_never_shown() {
    let dir = tempdir();
    let db = dir.path().join("x.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("create table t (v int); insert into t values (1);")
        .unwrap();

    // A server that checks signatures: moto with authentication on.
    let moto =
        std::env::var("DBKEEP_TEST_MOTO").expect("DBKEEP_TEST_MOTO (set by scripts/test.sh)");
    let port = free_port();
    let mut server = std::process::Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let strict = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = run(dbkeep()
        .env("AWS_ACCESS_KEY_ID", "AKIDWRONG")
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-123")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["backup", "--to", &s3_url(&strict, "any-bucket", "x")])
        .arg(&db));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("InvalidAccessKeyId")
            || err.contains("InvalidClientTokenId")
            || err.contains("403"),
        "{err}"
    );
    assert!(!text(&out).contains("wrong-secret-value-123"));
}

#[test]
fn one_dump_fans_out_to_local_and_s3_and_an_optional_failure_is_partial() {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "fan");
    let db = PgDb::new("s3_fan");
    psql(
        &db.name,
        "create table t (v int); insert into t select generate_series(1, 5000)",
    );
    let dir = tempdir();
    // A stand-in pg_dump that counts its runs, then runs the real one.
    let tools = tempdir();
    let count = tools.path().join("runs");
    stand_in(
        tools.path(),
        "pg_dump",
        &format!(
            "case \"$*\" in *--version*) ;; *) echo run >> '{}';; esac\nexec {} \"$@\"",
            count.display(),
            which("pg_dump").display()
        ),
    );
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  local: {{ type: local, path: {local} }}\n  \
             offsite: {{ type: s3, bucket: {bucket}, endpoint: \"{endpoint}\", path_style: true, region: us-east-1 }}\n  \
             flaky: {{ type: s3, bucket: nope, endpoint: \"{dead}\", path_style: true, region: us-east-1, required: false }}\n\
             jobs:\n  app:\n    storage: [local, offsite, flaky]\n    source: {{ type: postgres, host: {h}, port: {p}, user: postgres, database: {d} }}\n",
            local = dir.path().join("backups").display(),
            h = pg_host(),
            p = pg_port(),
            d = db.name
        ),
    )
    .unwrap();
    let out = run(dbkeep_s3()
        .env("PATH", path_with(tools.path()))
        .arg("-c")
        .arg(&config)
        .args(["backup", "--json"]));
    assert_eq!(
        out.status.code(),
        Some(3),
        "an optional storage failed: partial\n{}",
        text(&out)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result[0]["status"], "partial");
    assert!(
        result[0]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("storage `flaky` failed"),
        "{result}"
    );
    assert_eq!(
        std::fs::read_to_string(&count).unwrap().lines().count(),
        1,
        "the database was dumped once"
    );

    let local = manifests(&dir.path().join("backups"));
    assert_eq!(local.len(), 1);
    let object = local[0]["artifacts"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let local_bytes = std::fs::read(
        dir.path()
            .join("backups/app")
            .join(local[0]["id"].as_str().unwrap())
            .join(&object),
    )
    .unwrap();
    assert!(
        s3_keys(&endpoint, &bucket)
            .iter()
            .any(|k| k.ends_with(&object)),
        "the object is in S3"
    );
    // The S3 copy has its own manifest with the same checksum, and its bytes match it.
    let listed = ok(run(dbkeep_s3().arg("-c").arg(&config).args([
        "list",
        "app",
        "--storage",
        "offsite",
        "--json",
    ])));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed[0]["artifacts"][0]["sha256"],
        local[0]["artifacts"][0]["sha256"]
    );
    ok(run(dbkeep_s3().arg("-c").arg(&config).args([
        "verify",
        "app",
        "--storage",
        "offsite",
    ])));
    let local_sha = {
        let path = dir
            .path()
            .join("backups/app")
            .join(local[0]["id"].as_str().unwrap())
            .join(&object);
        let out = run(std::process::Command::new("sha256sum").arg(path));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        local_sha,
        local[0]["artifacts"][0]["sha256"].as_str().unwrap()
    );
    assert!(!local_bytes.is_empty());

    // Restore from the S3 copy, naming the storage.
    let out = ok(run(dbkeep_s3().arg("-c").arg(&config).args([
        "list",
        "app",
        "--storage",
        "offsite",
    ])));
    assert!(out.contains("offsite"), "{out}");
}
