//! What only S3 does, against a real S3 server (moto): keys and a storage
//! class from the config file, refused credentials, a fan-out with an
//! optional storage that fails, and credentials from a web identity token
//! (moto's STS) and from a container credentials endpoint, checksum
//! headers, and Object Lock. What every storage does is in the conformance
//! suite (`storage.rs`).

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

/// A token as an identity provider would issue it; moto does not check it.
const WEB_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGJrZWVwIn0.d2ViLWlkZW50aXR5LXNpZ25hdHVyZQ";

/// A config with one S3 storage (`offsite`, no keys) and a SQLite job `app`
/// that keeps its backups there.
fn sqlite_to_s3(
    dir: &std::path::Path,
    bucket: &str,
    endpoint: &str,
    db: &std::path::Path,
) -> std::path::PathBuf {
    let config = dir.join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  offsite: {{ type: s3, bucket: {bucket}, endpoint: \"{endpoint}\", region: us-east-1, path_style: true }}\n\
             jobs:\n  app:\n    storage: offsite\n    source: {{ type: sqlite, path: {} }}\n",
            db.display()
        ),
    )
    .unwrap();
    config
}

/// Every row of `sqlite_with_random_data`'s table.
fn blob_rows(db: &std::path::Path) -> Vec<(i64, Vec<u8>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("select id, data from blobs order by id")
        .unwrap();
    let rows: Vec<(i64, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 256);
    rows
}

/// dbkeep with no AWS credentials of any kind in its environment: no keys,
/// no profile files, no instance metadata, no container endpoint.
fn dbkeep_without_aws_keys(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = dbkeep();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        );
    cmd
}

/// IRSA: no keys anywhere; the web identity token is traded with STS (moto)
/// for the role's temporary keys, which sign every S3 request. `AWS_ENDPOINT_URL`
/// names a closed port, so the storage's own `endpoint` must win over it.
#[test]
fn web_identity_credentials_from_sts_back_up_and_restore() {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "irsa");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let token = dir.path().join("web-identity-token");
    std::fs::write(&token, WEB_IDENTITY_TOKEN).unwrap();
    let sts = FaultProxy::start(Service::S3, &endpoint, Fault::None, 0);
    let s3 = FaultProxy::start(Service::S3, &endpoint, Fault::None, 0);
    let config = sqlite_to_s3(dir.path(), &bucket, &s3.url, &db);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let irsa = |token: &std::path::Path| {
        let mut cmd = dbkeep_without_aws_keys(dir.path());
        cmd.env("AWS_WEB_IDENTITY_TOKEN_FILE", token)
            .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/dbkeep-test")
            .env("AWS_ROLE_SESSION_NAME", "dbkeep-irsa-test")
            .env("AWS_ENDPOINT_URL_STS", &sts.url)
            .env("AWS_ENDPOINT_URL", &dead)
            .arg("-c")
            .arg(&config);
        cmd
    };

    let out = run(irsa(&token).args(["backup", "app"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(WEB_IDENTITY_TOKEN));
    let restored = dir.path().join("restored.db");
    ok(run(irsa(&token)
        .args(["restore", "app", "--target"])
        .arg(&restored)));
    // An online copy rewrites the header's change counters, so the rows are compared.
    assert!(
        blob_rows(&db) == blob_rows(&restored),
        "the restored database differs from the original"
    );

    // STS was asked, and the S3 requests were signed with the role's
    // temporary keys (moto issues them as `ASIA...`) and its session token.
    let asked = sts.requests.lock().unwrap().clone();
    assert!(
        asked.iter().any(|h| h[0].starts_with("POST ")),
        "no request reached STS: {asked:?}"
    );
    let signed = s3.requests.lock().unwrap().clone();
    assert!(!signed.is_empty());
    for head in &signed {
        let auth = header(head, "authorization").unwrap_or_default();
        assert!(
            auth.contains("Credential=ASIA"),
            "{} was not signed with the role's keys: {auth}",
            head[0].trim()
        );
        assert!(
            header(head, "x-amz-security-token").is_some(),
            "{}",
            head[0].trim()
        );
    }

    // Without the role, or without the token file, there are no credentials:
    // the backup fails, names the storage, and never shows the token.
    let mut no_role = irsa(&token);
    no_role.env_remove("AWS_ROLE_ARN");
    let missing = dir.path().join("no-such-token");
    for (what, mut cmd) in [("no role", no_role), ("no token file", irsa(&missing))] {
        let out = run(cmd.args(["backup", "app"]));
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("storage `offsite`"), "{what}: {err}");
        assert!(err.contains("credentials"), "{what}: {err}");
        assert!(!text(&out).contains(WEB_IDENTITY_TOKEN), "{what}");
    }
}

/// A request line and its `Authorization` header.
type Asked = (String, Option<String>);

/// A container credentials endpoint (ECS, EKS Pod Identity) on the loopback:
/// it answers every request with temporary keys and records the request
/// line and `Authorization` header of each.
struct ContainerCredentials {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Asked>>>,
}

impl ContainerCredentials {
    fn start(access_key_id: &str) -> ContainerCredentials {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/creds", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let expiration = (chrono::Utc::now() + chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = format!(
            r#"{{"AccessKeyId":"{access_key_id}","SecretAccessKey":"container-secret-key","Token":"container-session-token","Expiration":"{expiration}"}}"#
        );
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(&conn);
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push(line);
                }
                if head.is_empty() {
                    continue;
                }
                let auth = header(&head, "authorization").map(str::to_string);
                log.lock().unwrap().push((head[0].trim().to_string(), auth));
                let _ = write!(
                    &conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        ContainerCredentials { url, seen }
    }
}

/// Container credentials: `AWS_CONTAINER_CREDENTIALS_FULL_URI` on the
/// loopback, asked with `AWS_CONTAINER_AUTHORIZATION_TOKEN` as its
/// `Authorization` header; its keys sign the backup's and the listing's
/// S3 requests.
#[test]
fn container_credentials_from_a_full_uri_with_an_authorization_token() {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "ecs");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let creds = ContainerCredentials::start("AKIDCONTAINER");
    let s3 = FaultProxy::start(Service::S3, &endpoint, Fault::None, 0);
    let config = sqlite_to_s3(dir.path(), &bucket, &s3.url, &db);
    let authorization = "container-authorization-token-123";
    let container = || {
        let mut cmd = dbkeep_without_aws_keys(dir.path());
        cmd.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &creds.url)
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", authorization)
            .arg("-c")
            .arg(&config);
        cmd
    };

    let out = run(container().args(["backup", "app"]));
    assert!(out.status.success(), "{}", text(&out));
    let listed = ok(run(container().args(["list", "app", "--json"])));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(!text(&out).contains(authorization));
    assert!(!text(&out).contains("container-secret-key"));

    let seen = creds.seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the credentials endpoint was never asked");
    for (line, auth) in &seen {
        assert!(line.starts_with("GET /creds "), "{line}");
        assert_eq!(auth.as_deref(), Some(authorization), "{line}");
    }
    let signed = s3.requests.lock().unwrap().clone();
    assert!(!signed.is_empty());
    for head in &signed {
        let auth = header(head, "authorization").unwrap_or_default();
        assert!(
            auth.contains("Credential=AKIDCONTAINER/"),
            "{} was not signed with the container's keys: {auth}",
            head[0].trim()
        );
        assert_eq!(
            header(head, "x-amz-security-token"),
            Some("container-session-token"),
            "{}",
            head[0].trim()
        );
    }
}

/// Whether a request's headers carry or announce a checksum.
fn has_checksum(head: &[String]) -> bool {
    head.iter().any(|h| {
        let h = h.to_ascii_lowercase();
        h.starts_with("x-amz-checksum-")
            || h.starts_with("x-amz-sdk-checksum-algorithm:")
            || (h.starts_with("x-amz-trailer:") && h.contains("x-amz-checksum-"))
    })
}

/// `checksum: when_required` (here `?checksum=when_required`): no upload
/// (PutObject, UploadPart) carries a checksum header, and no download asks
/// for one; by default every upload does and every download asks.
#[test]
fn checksum_when_required_sends_no_checksum_headers() {
    let endpoint = s3_endpoint();
    let dir = tempdir();
    // Over one 5 MiB part: a multipart upload, and a single PUT for the manifest.
    let db = sqlite_with_random_data(dir.path(), 6);
    for mode in ["", "&checksum=when_required", "&checksum=when_supported"] {
        let bucket = s3_bucket(&endpoint, "sum");
        let proxy = FaultProxy::start(Service::S3, &endpoint, Fault::None, 0);
        let url = format!("{}&part_size_mib=5{mode}", s3_url(&proxy.url, &bucket, "c"));
        ok(run(dbkeep_s3().args(["backup", "--to", &url]).arg(&db)));
        ok(run(dbkeep_s3().args(["verify", "--from", &url])));
        let requests = proxy.requests.lock().unwrap().clone();
        let uploads: Vec<&Vec<String>> = requests
            .iter()
            .filter(|h| h[0].starts_with("PUT ") && h[0].contains("/c/"))
            .collect();
        let parts = uploads
            .iter()
            .filter(|h| h[0].contains("partNumber="))
            .count();
        assert!(parts >= 2, "{mode}: {parts} parts");
        assert!(
            uploads.iter().any(|h| h[0].contains("manifest.json")),
            "{mode}: no manifest PUT"
        );
        let downloads: Vec<&Vec<String>> = requests
            .iter()
            .filter(|h| h[0].starts_with("GET ") && h[0].contains(".zst"))
            .collect();
        assert!(!downloads.is_empty(), "{mode}");
        let required = mode.contains("when_required");
        for head in &uploads {
            assert_eq!(has_checksum(head), !required, "{mode}: {head:?}");
        }
        for head in &downloads {
            assert_eq!(
                header(head, "x-amz-checksum-mode").is_some(),
                !required,
                "{mode}: {head:?}"
            );
        }
    }
}

/// Object Lock on two storages, one `governance` and one `compliance`, with
/// `keep_last: 1`: after two backups, prune keeps the older one whole and
/// says why; verify shows the date; moto refuses to delete a locked version,
/// and the job lock stays deletable.
#[test]
fn object_lock_keeps_a_locked_backup_through_prune_and_verify_shows_the_date() {
    let endpoint = s3_endpoint();
    let governed = s3_lock_bucket(&endpoint, "lockgov");
    let complied = s3_lock_bucket(&endpoint, "lockcmp");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let config = dir.path().join("dbkeep.yaml");
    let storage = |bucket: &str, mode: &str| {
        format!(
            "{{ type: s3, bucket: {bucket}, endpoint: \"{endpoint}\", region: us-east-1, path_style: true, \
             object_lock: {{ mode: {mode}, days: 1 }} }}"
        )
    };
    std::fs::write(
        &config,
        format!(
            "storages:\n  governed: {}\n  complied: {}\njobs:\n  app:\n    storage: [governed, complied]\n    \
             source: {{ type: sqlite, path: {} }}\n    retention: {{ keep_last: 1 }}\n",
            storage(&governed, "governance"),
            storage(&complied, "compliance"),
            db.display()
        ),
    )
    .unwrap();
    let dbkeep_c = || {
        let mut cmd = dbkeep_s3();
        cmd.arg("-c").arg(&config);
        cmd
    };
    ok(run(dbkeep_c().args(["backup", "app"])));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The backup's own prune meets the first backup's lock.
    let out = ok(run(dbkeep_c().args(["backup", "app", "--json"])));
    assert!(out.contains("object lock until"), "{out}");
    for bucket in [&governed, &complied] {
        let manifests: Vec<String> = s3_keys(&endpoint, bucket)
            .into_iter()
            .filter(|k| k.ends_with("/manifest.json"))
            .collect();
        assert_eq!(manifests.len(), 2, "{bucket}: {manifests:?}");
    }

    // Prune keeps the locked backup in both storages and says until when.
    let pruned = ok(run(dbkeep_c().args(["prune", "app", "--json"])));
    let pruned: serde_json::Value = serde_json::from_str(&pruned).unwrap();
    let rows = pruned.as_array().unwrap();
    assert_eq!(rows.len(), 4, "{pruned}");
    let held: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["retained_until"].is_string())
        .collect();
    assert_eq!(held.len(), 2, "{pruned}");
    for row in &held {
        assert_eq!(row["action"], "keep", "{row}");
        let until = row["retained_until"].as_str().unwrap();
        a_day_from_now(time(until));
        assert_eq!(
            row["reasons"],
            serde_json::json!([format!("object lock until {until}")])
        );
    }
    let older = held[0]["id"].as_str().unwrap().to_string();
    let table = ok(run(dbkeep_c().args(["prune", "app"])));
    assert!(table.contains("object lock until"), "{table}");
    assert!(table.contains("4 backups kept, 0 deleted"), "{table}");

    // Verify shows the date of each object.
    let verified = ok(run(dbkeep_c().args([
        "verify",
        "app",
        "--storage",
        "governed",
        "--json",
    ])));
    let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
    let object = &verified["objects"][0];
    a_day_from_now(time(object["retained_until"].as_str().unwrap()));
    let text_out = ok(run(dbkeep_c().args([
        "verify",
        "app",
        "--storage",
        "complied",
    ])));
    assert!(text_out.contains("retained until "), "{text_out}");

    // What moto enforces: a locked version cannot be deleted; `governance`
    // gives way to `x-amz-bypass-governance-retention` (moto checks no
    // permission for it), `compliance` does not.
    let artifact = s3_keys(&endpoint, &governed)
        .into_iter()
        .find(|k| k.contains(&older) && k.ends_with(".zst"))
        .expect("the older backup's object");
    for (bucket, mode) in [(&governed, "GOVERNANCE"), (&complied, "COMPLIANCE")] {
        let url = format!("{endpoint}/{bucket}/{artifact}");
        let (status, head, _) = s3_request("HEAD", &url, &[]);
        assert_eq!(status, 200);
        assert_eq!(header(&head, "x-amz-object-lock-mode"), Some(mode));
        a_day_from_now(time(
            header(&head, "x-amz-object-lock-retain-until-date").unwrap(),
        ));
        let version = s3_versions(&endpoint, bucket, &artifact).remove(0);
        let (status, _, body) = s3_request("DELETE", &format!("{url}?versionId={version}"), &[]);
        assert_eq!(status, 403, "{mode}: {body}");
        assert!(body.contains("AccessDenied"), "{body}");
        let bypass = [("x-amz-bypass-governance-retention", "true")];
        let (status, _, body) =
            s3_request("DELETE", &format!("{url}?versionId={version}"), &bypass);
        let expected = if mode == "GOVERNANCE" { 204 } else { 403 };
        assert_eq!(status, expected, "{mode} with bypass: {body}");
    }
    // A delete without a version only adds a delete marker: the locked
    // version stays. This is why prune asks before it deletes anything.
    let manifest = format!("app/{older}/manifest.json");
    let url = format!("{endpoint}/{complied}/{manifest}");
    let (status, _, _) = s3_request("DELETE", &url, &[]);
    assert_eq!(status, 204);
    assert_eq!(s3_versions(&endpoint, &complied, &manifest).len(), 1);

    // The job lock carries no retention: each of its versions can go.
    let locks = s3_versions(&endpoint, &governed, "app/lock.json");
    assert!(!locks.is_empty());
    for version in locks {
        let url = format!("{endpoint}/{governed}/app/lock.json?versionId={version}");
        let (status, head, _) = s3_request("HEAD", &url, &[]);
        assert_eq!(status, 200);
        assert_eq!(header(&head, "x-amz-object-lock-mode"), None);
        let (status, _, body) = s3_request("DELETE", &url, &[]);
        assert_eq!(status, 204, "{body}");
    }
}

/// Object Lock on a multipart upload (CreateMultipartUpload) and on the
/// manifest's PUT, with the CRC32 S3 requires even under
/// `checksum: when_required`; none on the job lock; and `days: 0` refused.
#[test]
fn object_lock_headers_on_multipart_uploads_and_manifests_but_not_the_job_lock() {
    let endpoint = s3_endpoint();
    let bucket = s3_lock_bucket(&endpoint, "lockmp");
    let proxy = FaultProxy::start(Service::S3, &endpoint, Fault::None, 0);
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 6);
    let config = dir.path().join("dbkeep.yaml");
    let write = |days: u32| {
        std::fs::write(
            &config,
            format!(
                "storages:\n  vault: {{ type: s3, bucket: {bucket}, endpoint: \"{}\", region: us-east-1, path_style: true, \
                 part_size_mib: 5, checksum: when_required, object_lock: {{ mode: compliance, days: {days} }} }}\n\
                 jobs:\n  app:\n    storage: vault\n    source: {{ type: sqlite, path: {} }}\n",
                proxy.url,
                db.display()
            ),
        )
        .unwrap();
    };
    write(0);
    let out =
        run(dbkeep_s3()
            .arg("-c")
            .arg(&config)
            .args(["config", "validate", "--no-environment"]));
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storages.vault.object_lock.days") && err.contains("1 to 36500"),
        "{err}"
    );

    write(1);
    ok(run(dbkeep_s3()
        .arg("-c")
        .arg(&config)
        .args(["backup", "app"])));
    let requests = proxy.requests.lock().unwrap().clone();
    let locked = |head: &[String]| {
        let (mode, until) = (
            header(head, "x-amz-object-lock-mode"),
            header(head, "x-amz-object-lock-retain-until-date"),
        );
        if let Some(until) = until {
            a_day_from_now(time(until));
        }
        mode == Some("COMPLIANCE") && until.is_some()
    };
    let start = requests
        .iter()
        .find(|h| h[0].starts_with("POST ") && h[0].contains("?uploads"))
        .expect("a multipart upload");
    assert!(locked(start), "{start:?}");
    let parts: Vec<&Vec<String>> = requests
        .iter()
        .filter(|h| h[0].contains("partNumber="))
        .collect();
    assert!(parts.len() >= 2);
    for part in parts {
        assert!(has_checksum(part), "{part:?}");
    }
    let manifest = requests
        .iter()
        .find(|h| h[0].starts_with("PUT ") && h[0].contains("manifest.json"))
        .expect("the manifest's PUT");
    assert!(locked(manifest) && has_checksum(manifest), "{manifest:?}");
    let lock = requests
        .iter()
        .find(|h| h[0].starts_with("PUT ") && h[0].contains("lock.json"))
        .expect("the job lock's PUT");
    assert!(!locked(lock) && !has_checksum(lock), "{lock:?}");
}
