//! What only GCS does, against fake-gcs-server: the config file's storage
//! class and chunk size, a chunk the server kept without answering, service
//! account keys, Application Default Credentials and the emulator variable.
//! What every storage does is in the conformance suite (`storage.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

/// The GCS test server (fake-gcs-server), started by scripts/test.sh.
pub(crate) fn gcs_endpoint() -> String {
    std::env::var("DBKEEP_TEST_GCS_ENDPOINT").expect(
        "DBKEEP_TEST_GCS_ENDPOINT is not set: run the tests through scripts/test.sh, which starts fake-gcs-server",
    )
}

/// Creates a bucket with a unique name; returns the name.
pub(crate) fn gcs_bucket(endpoint: &str, prefix: &str) -> String {
    let name = unique(prefix).replace('_', "-").to_lowercase();
    let (status, body) = http(
        "POST",
        &format!("{endpoint}/storage/v1/b?project=test"),
        format!(r#"{{"name":"{name}"}}"#).as_bytes(),
    );
    assert!(
        status == 200,
        "cannot create bucket {name}: {status} {body}"
    );
    name
}

/// Every object name in a bucket (through the server's API, not dbkeep's).
pub(crate) fn gcs_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let mut keys: Vec<String> = gcs_objects(endpoint, bucket)
        .iter()
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

/// Every object's metadata in a bucket (through the server's API).
pub(crate) fn gcs_objects(endpoint: &str, bucket: &str) -> Vec<serde_json::Value> {
    // HTTP/1.0, so that the answer is not chunked.
    let host = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET /storage/v1/b/{bucket}/o HTTP/1.0\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{answer}"
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// `gs://bucket/prefix` with the test endpoint as a parameter.
pub(crate) fn gcs_url(endpoint: &str, bucket: &str, prefix: &str) -> String {
    format!("gs://{bucket}/{prefix}?endpoint={endpoint}")
}

/// dbkeep without any Google credentials from the environment.
pub(crate) fn dbkeep_gcs() -> Command {
    let mut cmd = dbkeep();
    cmd.env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("STORAGE_EMULATOR_HOST")
        .env_remove("GCE_METADATA_HOST")
        .env("CLOUDSDK_CONFIG", "/nonexistent-dbkeep-test");
    cmd
}

/// A storage in a config file with a storage class and small chunks; then
/// `config validate` probes the bucket.
#[test]
fn a_storage_class_and_small_chunks_from_the_config_file() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "cfg");
    let db = PgDb::new("gcs_cfg");
    psql(
        &db.name,
        "create table t (v int); insert into t select generate_series(1, 5000)",
    );
    let dir = tempdir();
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  offsite:\n    type: gcs\n    bucket: {bucket}\n    prefix: via-config\n    endpoint: {endpoint}\n    \
             storage_class: NEARLINE\n    part_size_mib: 5\n\
             jobs:\n  app:\n    storage: offsite\n    source: {{ type: postgres, host: {}, port: {}, user: postgres, database: {} }}\n",
            pg_host(),
            pg_port(),
            db.name
        ),
    )
    .unwrap();
    ok(run(dbkeep_gcs().arg("-c").arg(&config).arg("backup")));
    ok(run(dbkeep_gcs()
        .arg("-c")
        .arg(&config)
        .args(["config", "validate"])));
    let keys = gcs_keys(&endpoint, &bucket);
    assert!(
        keys.iter().any(|k| k.starts_with("via-config/app/")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.contains("dbkeep-probe")),
        "the probe object is removed: {keys:?}"
    );
    let second = ok(run(dbkeep_gcs()
        .arg("-c")
        .arg(&config)
        .args(["list", "app", "--json"])));
    let listed: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // `parallel_parts` is refused for gcs, naming the key.
    std::fs::write(
        dir.path().join("bad.yaml"),
        format!(
            "storages:\n  offsite: {{ type: gcs, bucket: {bucket}, endpoint: \"{endpoint}\", parallel_parts: 4 }}\n\
             jobs:\n  app:\n    storage: offsite\n    source: {{ type: sqlite, path: /tmp/x.db }}\n"
        ),
    )
    .unwrap();
    let out = run(dbkeep_gcs()
        .arg("-c")
        .arg(dir.path().join("bad.yaml"))
        .args(["config", "validate", "--no-environment"]));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("storages.offsite.parallel_parts"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_chunk_kept_by_the_server_but_unanswered_is_not_sent_twice() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "kept");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 24);
    let proxy = FaultProxy::start(Service::Gcs, &endpoint, Fault::ResetAfterForward, 2);
    let url = format!("{}&part_size_mib=5", gcs_url(&proxy.url, &bucket, "p"));
    let out = run(dbkeep_gcs()
        .args(["backup", "--compression", "none", "--to", &url])
        .arg(&db));
    assert!(out.status.success(), "{}", text(&out));
    assert!(proxy.queries.load(Ordering::SeqCst) >= 2);
    // 24 MiB in 5 MiB chunks: 5 chunks, none sent again.
    let chunks = proxy.parts.load(Ordering::SeqCst);
    assert!(chunks <= 6, "{chunks} chunk requests");
    ok(run(dbkeep_gcs().args([
        "verify",
        "--from",
        &gcs_url(&endpoint, &bucket, "p"),
    ])));
}

/// One HTTP request off `conn`: its head lines and its body.
fn read_request(conn: &TcpStream) -> (Vec<String>, String) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push(line);
    }
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// A one-route OAuth token endpoint: answers every request with `status`
/// and `body`, and records the request bodies.
fn token_server(status: &'static str, body: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (_, request) = read_request(&conn);
            record.lock().unwrap().push(request);
            let _ = (&conn).write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    (url, seen)
}

/// A service-account key file whose token endpoint is `token_uri`; returns
/// its path and the private key's PEM.
fn service_account_key(dir: &std::path::Path, token_uri: &str) -> (std::path::PathBuf, String) {
    let pem_path = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "backup@test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    });
    let path = dir.join("sa.json");
    std::fs::write(&path, key.to_string()).unwrap();
    (path, pem)
}

fn gcs_config(dir: &std::path::Path, storage: &str, db: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  offsite: {storage}\njobs:\n  app:\n    storage: offsite\n    source: {{ type: sqlite, path: {} }}\n",
            db.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_service_account_key_is_used_and_never_shown() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "sa");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let (token_uri, requests) = token_server(
        "200 OK",
        r#"{"access_token":"ya29.dbkeep-test-token-value","expires_in":3600,"token_type":"Bearer"}"#,
    );
    let (key, pem) = service_account_key(dir.path(), &token_uri);
    let proxy = FaultProxy::start(Service::Gcs, &endpoint, Fault::None, 0);
    let config = gcs_config(
        dir.path(),
        &format!(
            "{{ type: gcs, bucket: {bucket}, endpoint: \"{}\", credentials_file: {} }}",
            proxy.url,
            key.display()
        ),
        &db,
    );
    let out = run(dbkeep_gcs()
        .env("DBKEEP_LOG", "dbkeep=debug")
        .arg("-c")
        .arg(&config)
        .arg("backup"));
    ok(out.clone());
    let all = text(&out);
    assert!(!all.contains("dbkeep-test-token-value"), "{all}");
    let pem_line = pem.lines().nth(1).unwrap();
    assert!(!all.contains(pem_line));
    // The key signs its own JWT (AIP-4111): no token endpoint is asked, and
    // every request carries the same token, signed by the key.
    assert_eq!(requests.lock().unwrap().len(), 0);
    let auth = proxy.authorization.lock().unwrap().clone();
    assert!(!auth.is_empty());
    assert!(auth.iter().all(|a| a == &auth[0]), "{auth:?}");
    let jwt = auth[0].strip_prefix("Bearer ").expect("a bearer token");
    check_jwt(dir.path(), jwt, None);
    assert!(
        gcs_keys(&endpoint, &bucket)
            .iter()
            .any(|k| k.ends_with("manifest.json"))
    );
}

#[test]
fn bad_credentials_are_clear_and_never_shown() {
    let endpoint = gcs_endpoint();
    let dir = tempdir();
    let db = dir.path().join("x.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("create table t (v int); insert into t values (1);")
        .unwrap();

    // A file that is not a key at all.
    let bucket = gcs_bucket(&endpoint, "cred");
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json, secret-looking-garbage-42").unwrap();
    let config = gcs_config(
        dir.path(),
        &format!(
            "{{ type: gcs, bucket: {bucket}, endpoint: \"{endpoint}\", credentials_file: {} }}",
            garbage.display()
        ),
        &db,
    );
    let out = run(dbkeep_gcs().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storage `offsite`")
            && err.contains("credentials_file")
            && err.contains("is not JSON"),
        "{err}"
    );
    assert!(!err.contains("secret-looking-garbage-42"), "{err}");

    // Well-formed credentials that the token endpoint refuses.
    let started = Instant::now();
    let (token_uri, _) = token_server(
        "400 Bad Request",
        r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
    );
    let user = dir.path().join("user.json");
    std::fs::write(
        &user,
        serde_json::json!({
            "type": "authorized_user",
            "client_id": "cid.apps.googleusercontent.com",
            "client_secret": "client-secret-value-31",
            "refresh_token": "1//refresh-token-value-32",
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    let config = gcs_config(
        dir.path(),
        &format!(
            "{{ type: gcs, bucket: {bucket}, endpoint: \"{endpoint}\", credentials_file: {} }}",
            user.display()
        ),
        &db,
    );
    let out = run(dbkeep_gcs().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("gs://{bucket}"))
            && err.contains("access token")
            && err.contains("authorized_user")
            && err.contains("invalid_grant"),
        "{err}"
    );
    assert!(!err.contains("client-secret-value-31") && !err.contains("refresh-token-value-32"));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(gcs_keys(&endpoint, &bucket), Vec::<String>::new());

    // A kind of file that is not Google's.
    let odd = dir.path().join("odd.json");
    std::fs::write(&odd, r#"{"type":"kerberos"}"#).unwrap();
    let config = gcs_config(
        dir.path(),
        &format!(
            "{{ type: gcs, bucket: {bucket}, endpoint: \"{endpoint}\", credentials_file: {} }}",
            odd.display()
        ),
        &db,
    );
    let out = run(dbkeep_gcs().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("`kerberos` are not known") && text(&out).contains("external_account"),
        "{}",
        text(&out)
    );
}

#[test]
fn storage_emulator_host_is_honoured() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "emu");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let host = endpoint.trim_start_matches("http://");
    let url = format!("gs://{bucket}/emu");
    ok(run(dbkeep_gcs()
        .env("STORAGE_EMULATOR_HOST", host)
        .args(["backup", "--to", &url])
        .arg(&db)));
    assert!(
        gcs_keys(&endpoint, &bucket)
            .iter()
            .any(|k| k.starts_with("emu/") && k.ends_with("manifest.json"))
    );
    let listed = ok(run(dbkeep_gcs()
        .env("STORAGE_EMULATOR_HOST", &endpoint)
        .args(["list", "--from", &url])));
    assert!(listed.contains("big"), "{listed}");
}

/// Checks a JWT's RS256 signature against the key in `dir` with openssl,
/// and its claims.
fn check_jwt(dir: &std::path::Path, jwt: &str, token_uri: Option<&str>) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let decode = |part: &str, name: &str| -> std::path::PathBuf {
        let mut b64 = part.replace('-', "+").replace('_', "/");
        while !b64.len().is_multiple_of(4) {
            b64.push('=');
        }
        let encoded = dir.join(format!("{name}.b64"));
        std::fs::write(&encoded, b64).unwrap();
        let out_path = dir.join(name);
        let out = Command::new("openssl")
            .args(["base64", "-d", "-A", "-in"])
            .arg(&encoded)
            .arg("-out")
            .arg(&out_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        out_path
    };
    let claims: serde_json::Value =
        serde_json::from_slice(&std::fs::read(decode(parts[1], "claims.json")).unwrap()).unwrap();
    assert_eq!(claims["iss"], "backup@test.iam.gserviceaccount.com");
    if let Some(aud) = token_uri {
        assert_eq!(claims["aud"], aud);
    }
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/devstorage.read_write"
    );
    let signature = decode(parts[2], "signature.bin");
    let input = dir.join("signed.txt");
    std::fs::write(&input, format!("{}.{}", parts[0], parts[1])).unwrap();
    let public = dir.join("public.pem");
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(&signature)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "{}",
        text(&out)
    );
}

#[test]
fn application_default_credentials_are_used_when_the_config_is_silent() {
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let (token_uri, requests) = token_server(
        "400 Bad Request",
        r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
    );
    // No endpoint: the real one, which is never reached because the token
    // request fails first.
    let backup = |env: &[(&str, &std::path::Path)]| {
        let mut cmd = dbkeep_gcs();
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd
            .args(["backup", "--to", "gs://dbkeep-adc-test/x"])
            .arg(&db))
    };

    // Nothing at all: the metadata server (here a closed port) is the last resort.
    let started = Instant::now();
    let closed = std::path::PathBuf::from("127.0.0.1:9");
    let out = backup(&[("GCE_METADATA_HOST", &closed)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:9/computeMetadata")
            && String::from_utf8_lossy(&out.stderr).contains("run where a metadata server answers"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{").unwrap();
    let out = backup(&[("GOOGLE_APPLICATION_CREDENTIALS", &garbage)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{}",
        text(&out)
    );

    let user = dir.path().join("user.json");
    std::fs::write(
        &user,
        serde_json::json!({
            "type": "authorized_user",
            "client_id": "cid.apps.googleusercontent.com",
            "client_secret": "client-secret-value-55",
            "refresh_token": "1//refresh-token-value-56",
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    let out = backup(&[("GOOGLE_APPLICATION_CREDENTIALS", &user)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid_grant"),
        "{}",
        text(&out)
    );
    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("refresh_token") && r.contains("refresh-token-value-56"))
    );

    // gcloud's file, from `gcloud auth application-default login`.
    let gcloud = dir.path().join("gcloud");
    std::fs::create_dir(&gcloud).unwrap();
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        serde_json::json!({
            "type": "authorized_user",
            "client_id": "cid.apps.googleusercontent.com",
            "client_secret": "client-secret-value-77",
            "refresh_token": "1//refresh-token-value-99",
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    let out = backup(&[("CLOUDSDK_CONFIG", &gcloud)]);
    // And where gcloud keeps it by default, under the home folder.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".config")).unwrap();
    std::fs::rename(&gcloud, home.join(".config/gcloud")).unwrap();
    let nowhere = std::path::PathBuf::from("/nonexistent-dbkeep-test");
    let from_home = backup(&[("HOME", &home), ("CLOUDSDK_CONFIG", &nowhere)]);
    assert_eq!(from_home.status.code(), Some(1), "{}", text(&from_home));
    assert!(
        text(&from_home).contains("invalid_grant"),
        "{}",
        text(&from_home)
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("invalid_grant"), "{all}");
    assert!(!all.contains("client-secret-value-77") && !all.contains("refresh-token-value-99"));
    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("refresh_token") && r.contains("refresh-token-value-99"))
    );
}

/// Requests seen: first line, `Authorization`, body.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A stand-in for Google's identity endpoints, not Google: a security token
/// service (`/sts`), the IAM credentials impersonation call
/// (`/impersonate`) and a metadata server's token route. Records each
/// request's first line, `Authorization` header and body.
fn identity_stand_in() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (head, body) = read_request(&conn);
            let first = head.first().cloned().unwrap_or_default();
            let auth = header(&head, "authorization").unwrap_or("").to_string();
            record.lock().unwrap().push((first.clone(), auth, body));
            let answer = if first.contains(" /sts") {
                r#"{"access_token":"sts-federated-token-7","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#
            } else if first.contains(" /impersonate") {
                r#"{"accessToken":"impersonated-token-8","expireTime":"2099-01-01T00:00:00Z"}"#
            } else if first.contains("/computeMetadata/v1/instance/service-accounts/default/token")
            {
                r#"{"access_token":"metadata-token-9","expires_in":3600,"token_type":"Bearer"}"#
            } else {
                r#"{}"#
            };
            let _ = (&conn).write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMetadata-Flavor: Google\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            );
        }
    });
    (base, seen)
}

#[test]
fn workload_identity_federation_with_impersonation_signs_every_request() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "wif");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let (base, seen) = identity_stand_in();
    // The subject token a CI system or another cloud leaves in a file.
    let subject = dir.path().join("oidc-token");
    std::fs::write(&subject, "eyJhbGciOiJSUzI1NiJ9.subject-token-value-5.sig").unwrap();
    let file = dir.path().join("wif.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/gh",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("{base}/sts"),
            "service_account_impersonation_url": format!("{base}/impersonate"),
            "credential_source": { "file": subject },
        })
        .to_string(),
    )
    .unwrap();
    let proxy = FaultProxy::start(Service::Gcs, &endpoint, Fault::None, 0);
    let config = gcs_config(
        dir.path(),
        &format!(
            "{{ type: gcs, bucket: {bucket}, endpoint: \"{}\", credentials_file: {} }}",
            proxy.url,
            file.display()
        ),
        &db,
    );
    let out = run(dbkeep_gcs()
        .env("DBKEEP_LOG", "dbkeep=debug")
        .arg("-c")
        .arg(&config)
        .arg("backup"));
    ok(out.clone());
    let all = text(&out);
    for secret in [
        "subject-token-value-5",
        "sts-federated-token-7",
        "impersonated-token-8",
    ] {
        assert!(!all.contains(secret), "{secret} was shown: {all}");
    }
    // The subject token went to the STS; its answer to the impersonation call.
    let seen = seen.lock().unwrap().clone();
    let sts = seen
        .iter()
        .find(|(l, _, _)| l.contains(" /sts"))
        .expect("the STS was asked");
    assert!(sts.2.contains("subject-token-value-5"), "{sts:?}");
    assert!(sts.2.contains("token-exchange"), "{sts:?}");
    let imp = seen
        .iter()
        .find(|(l, _, _)| l.contains(" /impersonate"))
        .expect("the impersonation call was made");
    assert_eq!(imp.1, "Bearer sts-federated-token-7");
    // Every storage request carried the impersonated token.
    let auth = proxy.authorization.lock().unwrap().clone();
    assert!(!auth.is_empty());
    assert!(
        auth.iter().all(|a| a == "Bearer impersonated-token-8"),
        "{auth:?}"
    );
    assert!(
        gcs_keys(&endpoint, &bucket)
            .iter()
            .any(|k| k.ends_with("manifest.json"))
    );
}

#[test]
fn the_metadata_server_named_by_gce_metadata_host_signs_every_request() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "mds");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let (base, seen) = identity_stand_in();
    let proxy = FaultProxy::start(Service::Gcs, &endpoint, Fault::None, 0);
    let config = gcs_config(
        dir.path(),
        &format!(
            "{{ type: gcs, bucket: {bucket}, endpoint: \"{}\" }}",
            proxy.url
        ),
        &db,
    );
    ok(run(dbkeep_gcs()
        .env("GCE_METADATA_HOST", base.trim_start_matches("http://"))
        .arg("-c")
        .arg(&config)
        .arg("backup")));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(l, _, _)| l
                .contains("/computeMetadata/v1/instance/service-accounts/default/token")),
        "{seen:?}"
    );
    let auth = proxy.authorization.lock().unwrap().clone();
    assert!(!auth.is_empty());
    assert!(
        auth.iter().all(|a| a == "Bearer metadata-token-9"),
        "{auth:?}"
    );
}

/// `object_lock` on GCS: artifacts (a resumable upload) and manifests (a
/// multipart one) carry an object retention, the job lock none; the
/// backup's own prune and `prune` keep the locked older backup and say until
/// when; `verify` shows the date. fake-gcs-server keeps and returns an
/// object's retention but does not refuse deleting it, so GCS's own refusal
/// is not tested here.
#[test]
fn object_lock_sets_a_retention_that_prune_keeps_and_verify_shows() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "lock");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 6);
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  vault: {{ type: gcs, bucket: {bucket}, endpoint: \"{endpoint}\", part_size_mib: 5, \
             object_lock: {{ mode: compliance, days: 1 }} }}\n\
             jobs:\n  app:\n    storage: vault\n    source: {{ type: sqlite, path: {} }}\n    \
             retention: {{ keep_last: 1 }}\n",
            db.display()
        ),
    )
    .unwrap();
    let dbkeep_c = || {
        let mut cmd = dbkeep_gcs();
        cmd.arg("-c").arg(&config);
        cmd
    };
    ok(run(dbkeep_c().args(["backup", "app"])));
    std::thread::sleep(Duration::from_millis(1100));
    let out = ok(run(dbkeep_c().args(["backup", "app", "--json"])));
    assert!(out.contains("object lock until"), "{out}");

    let objects = gcs_objects(&endpoint, &bucket);
    let backups: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["name"].as_str().unwrap() != "app/lock.json")
        .collect();
    assert_eq!(
        backups.len(),
        4,
        "two artifacts and two manifests: {objects:?}"
    );
    for o in &backups {
        assert_eq!(o["retention"]["mode"], "Locked", "{o}");
        a_day_from_now(time(o["retention"]["retainUntilTime"].as_str().unwrap()));
    }
    assert!(
        backups
            .iter()
            .any(|o| o["size"].as_str().unwrap().parse::<u64>().unwrap() > 5 << 20),
        "an artifact larger than one chunk went up in a session"
    );
    if let Some(lock) = objects.iter().find(|o| o["name"] == "app/lock.json") {
        assert!(lock.get("retention").is_none(), "{lock}");
    }

    the_older_backup_is_held(&ok(run(dbkeep_c().args(["prune", "app", "--json"]))));
    assert_eq!(gcs_keys(&endpoint, &bucket).len(), objects.len());

    let verified = ok(run(dbkeep_c().args(["verify", "app", "--json"])));
    let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
    a_day_from_now(time(
        verified["objects"][0]["retained_until"].as_str().unwrap(),
    ));
    let shown = ok(run(dbkeep_c().args(["verify", "app"])));
    assert!(shown.contains("retained until "), "{shown}");
}
