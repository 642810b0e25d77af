//! Azure sign-in with Microsoft Entra ID, end to end. dbkeep gets its token
//! from a stand-in for Entra ID or for the managed identity endpoint
//! (tests/integration/entra_standin.py; no real identity provider runs
//! here), or from a stand-in `az` executable, and hands it to an Azurite
//! started by scripts/test.sh with `--oauth basic` over HTTPS, which checks
//! the bearer token of every call: its issuer, audience and lifetime (not its
//! signature). Both speak TLS with the test PKI, trusted through
//! SSL_CERT_FILE.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::azure::{ACCOUNT, shared_key};
use crate::util::*;

const STANDIN: &str = include_str!("entra_standin.py");
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "0b5c2d61-1b8e-4f4a-9a77-5a5c1d0e0001";

/// The Azurite that checks bearer tokens, started by scripts/test.sh.
fn oauth_endpoint() -> String {
    std::env::var("DBKEEP_TEST_AZURE_OAUTH_ENDPOINT").expect(
        "DBKEEP_TEST_AZURE_OAUTH_ENDPOINT is not set: run the tests through scripts/test.sh, which starts Azurite in OAuth mode",
    )
}

fn tls_dir() -> PathBuf {
    PathBuf::from(std::env::var("DBKEEP_TEST_TLS_DIR").expect(
        "DBKEEP_TEST_TLS_DIR is not set: run the tests through scripts/test.sh, which makes the test PKI",
    ))
}

/// A client that trusts the test CA, for what the tests do outside dbkeep.
fn https_client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(tls_dir().join("ca.pem")).unwrap();
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap()
}

/// A SharedKey-signed request to the OAuth Azurite: (status, body).
fn oauth_azurite(method: &str, path: &str, query: &[(&str, &str)]) -> (u16, String) {
    let endpoint = oauth_endpoint();
    let base = url_path(&endpoint);
    let full = format!("{base}{path}");
    let (date, sig) = shared_key(method, &full, query);
    let r = https_client()
        .request(method.parse().unwrap(), format!("{endpoint}{path}"))
        .query(query)
        .header("x-ms-date", date)
        .header("x-ms-version", "2021-08-06")
        .header("Authorization", format!("SharedKey {ACCOUNT}:{sig}"))
        .header("Content-Length", "0")
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn url_path(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").unwrap().1;
    format!("/{}", rest.split_once('/').unwrap().1)
}

/// A fresh container on the OAuth Azurite.
fn container(prefix: &str) -> String {
    let name = unique(prefix).replace('_', "-").to_lowercase();
    let (status, body) = oauth_azurite("PUT", &format!("/{name}"), &[("restype", "container")]);
    assert_eq!(status, 201, "cannot create container {name}: {body}");
    name
}

/// Every blob name in a container, read with the account key.
fn blobs(container: &str) -> Vec<String> {
    let (status, body) = oauth_azurite(
        "GET",
        &format!("/{container}"),
        &[("comp", "list"), ("restype", "container")],
    );
    assert_eq!(status, 200, "{body}");
    body.split("<Name>")
        .skip(1)
        .map(|s| s.split("</Name>").next().unwrap().to_string())
        .collect()
}

/// The stand-in Entra ID (HTTPS) and identity endpoint (HTTP).
struct StandIn {
    child: Child,
    https: u16,
    http: u16,
    log: PathBuf,
}

impl StandIn {
    fn start(dir: &Path, args: &[&str]) -> StandIn {
        let script = dir.join("entra_standin.py");
        std::fs::write(&script, STANDIN).unwrap();
        let log = dir.join("entra-requests.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--tls-dir")
            .arg(tls_dir())
            .arg("--log")
            .arg(&log)
            .args(["--tenant", TENANT, "--client", CLIENT])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut ports = line.split_whitespace().map(|p| p.parse::<u16>().unwrap());
        let (https, http) = (ports.next().unwrap(), ports.next().unwrap());
        StandIn {
            child,
            https,
            http,
            log,
        }
    }

    fn authority(&self) -> String {
        format!("https://127.0.0.1:{}", self.https)
    }

    /// The requests it has answered, oldest first.
    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dbkeep with no Azure settings in its environment but trust in the test CA.
fn dbkeep_entra() -> Command {
    let mut cmd = dbkeep();
    for var in [
        "AZURE_STORAGE_ACCOUNT",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("SSL_CERT_FILE", tls_dir().join("ca.pem"))
        .env("DBKEEP_LOG", "dbkeep=debug");
    cmd
}

fn sample_db(dir: &Path) -> PathBuf {
    let db = dir.join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "create table t (id integer primary key, v text);
             insert into t (v) values ('one'), ('two'), ('three');",
        )
        .unwrap();
    db
}

fn rows(db: &Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("select id, v from t order by id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A config with the storage `offsite` given as YAML lines (below `type`,
/// `container`, `endpoint` and `account`) and one SQLite job.
fn config(dir: &Path, container: &str, extra: &str, db: &Path) -> PathBuf {
    let path = dir.join("dbkeep.yaml");
    let extra: String = extra.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(
        &path,
        format!(
            "storages:\n  offsite:\n    type: azure\n    container: {container}\n    endpoint: {}\n    account: {ACCOUNT}\n{extra}\
             jobs:\n  app:\n    storage: offsite\n    source: {{ type: sqlite, path: {} }}\n",
            oauth_endpoint(),
            db.display()
        ),
    )
    .unwrap();
    path
}

/// Backs up, lists, verifies and restores through `cmd`'s sign-in; the
/// restored rows equal the original ones.
fn round_trip(dir: &Path, config: &Path, db: &Path, cmd: impl Fn() -> Command) -> String {
    let out = run(cmd().arg("-c").arg(config).arg("backup"));
    let mut all = text(&out);
    ok(out);
    for args in [&["list"][..], &["verify", "app"]] {
        let out = run(cmd().arg("-c").arg(config).args(args));
        all.push_str(&text(&out));
        ok(out);
    }
    let restored = dir.join("restored.db");
    let out = run(cmd()
        .arg("-c")
        .arg(config)
        .args(["restore", "app", "--target"])
        .arg(&restored));
    all.push_str(&text(&out));
    ok(out);
    assert_eq!(rows(db), rows(&restored));
    all
}

/// What a token looks like in text: every JWT starts with `eyJ`.
fn assert_no_token(all: &str) {
    assert!(!all.contains("eyJ"), "a token was shown:\n{all}");
}

#[test]
fn a_service_principal_secret_from_the_environment_signs_in() {
    let dir = tempdir();
    let secret = "sp-secret-Xq7~dbkeep-test";
    let entra = StandIn::start(dir.path(), &["--secret", secret]);
    let container = container("entra-sp");
    let db = sample_db(dir.path());
    let config = config(dir.path(), &container, "", &db);
    let all = round_trip(dir.path(), &config, &db, || {
        let mut c = dbkeep_entra();
        c.env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT)
            .env("AZURE_CLIENT_SECRET", secret)
            .env("AZURE_AUTHORITY_HOST", entra.authority());
        c
    });
    assert_no_token(&all);
    assert!(!all.contains(secret), "{all}");
    let requests = entra.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r["path"], format!("/{TENANT}/oauth2/v2.0/token"));
        assert_eq!(r["form"]["client_secret"], secret);
        assert_eq!(r["form"]["scope"], "https://storage.azure.com/.default");
    }
    assert!(
        blobs(&container)
            .iter()
            .any(|k| k.ends_with("manifest.json")),
        "{:?}",
        blobs(&container)
    );
}

#[test]
fn a_wrong_secret_is_named_and_never_shown() {
    let dir = tempdir();
    let entra = StandIn::start(dir.path(), &["--secret", "the-right-one"]);
    let container = container("entra-bad");
    let db = sample_db(dir.path());
    let secret_file = dir.path().join("client-secret");
    let wrong = "wrong-secret-7f3a9c";
    std::fs::write(&secret_file, format!("{wrong}\n")).unwrap();
    let config = config(
        dir.path(),
        &container,
        &format!(
            "tenant_id: {TENANT}\nclient_id: {CLIENT}\nclient_secret_file: {}\nauthority_host: {}",
            secret_file.display(),
            entra.authority()
        ),
        &db,
    );
    let out = run(dbkeep_entra().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("storage `offsite`")
            && all.contains("client secret")
            && all.contains("AADSTS7000215"),
        "{all}"
    );
    assert!(!all.contains(wrong), "{all}");
    assert_eq!(blobs(&container), Vec::<String>::new(), "nothing is left");
}

#[test]
fn workload_identity_trades_the_federated_token_file() {
    let dir = tempdir();
    let token_file = dir.path().join("azure-identity-token");
    let projected = format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"sub":"system:serviceaccount:backup:dbkeep"}"#)
    );
    std::fs::write(&token_file, &projected).unwrap();
    let entra = StandIn::start(
        dir.path(),
        &["--assertion-file", token_file.to_str().unwrap()],
    );
    let container = container("entra-wi");
    let db = sample_db(dir.path());
    // As AKS sets it up: the three variables, and the authority in the config.
    let config = config(
        dir.path(),
        &container,
        &format!("authority_host: {}", entra.authority()),
        &db,
    );
    let all = round_trip(dir.path(), &config, &db, || {
        let mut c = dbkeep_entra();
        c.env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT)
            .env("AZURE_FEDERATED_TOKEN_FILE", &token_file);
        c
    });
    assert!(!all.contains(&projected), "{all}");
    let requests = entra.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r["form"]["client_assertion"], projected.as_str());
        assert!(r["form"].get("client_secret").is_none());
    }
}

#[test]
fn a_managed_identity_behind_identity_endpoint_signs_in() {
    let dir = tempdir();
    let header = "identity-header-5d1e";
    let entra = StandIn::start(dir.path(), &["--identity-header", header]);
    let container = container("entra-mi");
    let db = sample_db(dir.path());
    let config = config(dir.path(), &container, "", &db);
    let all = round_trip(dir.path(), &config, &db, || {
        let mut c = dbkeep_entra();
        c.env(
            "IDENTITY_ENDPOINT",
            format!("http://127.0.0.1:{}/msi/token", entra.http),
        )
        .env("IDENTITY_HEADER", header);
        c
    });
    assert_no_token(&all);
    assert!(!all.contains(header), "{all}");
    let requests = entra.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r["kind"], "identity");
        assert_eq!(r["header"], header);
        assert_eq!(r["query"]["resource"], "https://storage.azure.com");
    }
}

#[test]
fn the_azure_cli_login_signs_in() {
    let dir = tempdir();
    let container = container("entra-cli");
    let db = sample_db(dir.path());
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let now = chrono::Utc::now().timestamp();
    let token = stand_in_jwt("https://storage.azure.com", now);
    let calls = dir.path().join("az-calls");
    // A stand-in `az`: records its arguments, prints what `az account
    // get-access-token -o json` prints.
    stand_in(
        &bin,
        "az",
        &format!(
            "echo \"$*\" >> {}\ncat <<EOF\n{{\"accessToken\": \"{token}\", \"expiresOn\": \"2099-01-01 00:00:00.000000\", \"expires_on\": {}, \"subscription\": \"sub\", \"tenant\": \"{TENANT}\", \"tokenType\": \"Bearer\"}}\nEOF",
            calls.display(),
            now + 3600
        ),
    );
    let config = config(dir.path(), &container, "credential: azure_cli", &db);
    let all = round_trip(dir.path(), &config, &db, || {
        let mut c = dbkeep_entra();
        c.env("PATH", path_with(&bin));
        c
    });
    assert!(!all.contains(&token), "{all}");
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert!(
        calls.contains(
            "account get-access-token -o json --scope https://storage.azure.com/.default"
        ),
        "{calls}"
    );
}

/// A token for another audience is refused by Azurite: the tests above pass
/// because their tokens are checked, not because any token would do.
#[test]
fn a_token_for_another_audience_is_refused_and_nothing_is_left() {
    let dir = tempdir();
    let entra = StandIn::start(
        dir.path(),
        &[
            "--secret",
            "s3cret-aud",
            "--audience",
            "https://vault.azure.net",
        ],
    );
    let container = container("entra-aud");
    let db = sample_db(dir.path());
    let config = config(
        dir.path(),
        &container,
        &format!(
            "credential: client_secret\ntenant_id: {TENANT}\nclient_id: {CLIENT}\nclient_secret: s3cret-aud\nauthority_host: {}",
            entra.authority()
        ),
        &db,
    );
    let out = run(dbkeep_entra().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("was refused") && all.contains("client secret"),
        "{all}"
    );
    assert_no_token(&all);
    assert_eq!(blobs(&container), Vec::<String>::new());
}

#[test]
fn a_bearer_token_is_never_sent_over_http_and_bad_settings_are_named() {
    let dir = tempdir();
    let db = sample_db(dir.path());
    // No key and an http endpoint: no sign-in is attempted.
    let out = run(dbkeep_entra()
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", "never-sent-secret")
        .args([
            "backup",
            "--to",
            &format!("az://c/p?endpoint=http://127.0.0.1:9/{ACCOUNT}&account={ACCOUNT}"),
        ])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("needs an https endpoint"),
        "{}",
        text(&out)
    );

    // An authority that is not https, and Entra ID next to a key.
    let bad = config(
        dir.path(),
        "c",
        "authority_host: http://login.example\ncredential: managed_identity\naccount_key: a2V5",
        &db,
    );
    let out = run(dbkeep_entra()
        .arg("-c")
        .arg(&bad)
        .args(["config", "validate"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("storages.offsite.authority_host")
            && all.contains("storages.offsite.credential"),
        "{all}"
    );

    // Workload identity without its tenant.
    let bad = config(dir.path(), "c", "credential: workload_identity", &db);
    let out = run(dbkeep_entra()
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent")
        .arg("-c")
        .arg(&bad)
        .arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out)
            .contains("workload identity needs `tenant_id` in the storage or AZURE_TENANT_ID"),
        "{}",
        text(&out)
    );
}

/// A JWT like the stand-in's, for the stand-in `az`.
fn stand_in_jwt(audience: &str, now: i64) -> String {
    let claims = serde_json::json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "tid": TENANT, "ver": "1.0",
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode("stand-in, not signed")
    )
}
