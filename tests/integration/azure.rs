//! Azure Blob Storage against Azurite, with a fault proxy in between where
//! failures must be injected.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::util::*;

const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The Azurite endpoint, started by scripts/test.sh.
fn az_endpoint() -> String {
    std::env::var("DBKEEP_TEST_AZURE_ENDPOINT").expect(
        "DBKEEP_TEST_AZURE_ENDPOINT is not set: run the tests through scripts/test.sh, which starts Azurite",
    )
}

/// A signed request to Azurite, outside dbkeep: (status, body).
fn az_http(endpoint: &str, method: &str, path: &str, query: &[(&str, &str)]) -> (u16, String) {
    let rest = endpoint.trim_start_matches("http://");
    let (host, base) = rest.split_once('/').unwrap();
    let full = format!("/{base}{path}");
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let mut resource = format!("/{ACCOUNT}{full}");
    let mut sorted = query.to_vec();
    sorted.sort();
    for (k, v) in &sorted {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    let to_sign = format!(
        "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2021-08-06\n{resource}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&STANDARD.decode(KEY).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let url = if qs.is_empty() {
        full
    } else {
        format!("{full}?{}", qs.join("&"))
    };
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} {url} HTTP/1.0\r\nHost: {host}\r\nx-ms-date: {date}\r\nx-ms-version: 2021-08-06\r\n\
         Authorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Creates a container with a unique name; returns the name.
fn az_container(endpoint: &str, prefix: &str) -> String {
    let name = unique(prefix).replace('_', "-").to_lowercase();
    let (status, body) = az_http(
        endpoint,
        "PUT",
        &format!("/{name}"),
        &[("restype", "container")],
    );
    assert_eq!(status, 201, "cannot create container {name}: {body}");
    name
}

/// Every blob name in a container (through Azurite, not dbkeep).
fn az_keys(endpoint: &str, container: &str) -> Vec<String> {
    let (status, body) = az_http(
        endpoint,
        "GET",
        &format!("/{container}"),
        &[("comp", "list"), ("restype", "container")],
    );
    assert_eq!(status, 200, "{body}");
    let mut keys = Vec::new();
    let mut rest = body.as_str();
    while let Some(start) = rest.find("<Name>") {
        let after = &rest[start + 6..];
        let end = after.find("</Name>").unwrap();
        keys.push(after[..end].to_string());
        rest = &after[end..];
    }
    keys.sort();
    keys
}

/// `az://container/prefix` with the test endpoint and account as parameters.
fn az_url(endpoint: &str, container: &str, prefix: &str) -> String {
    format!("az://{container}/{prefix}?endpoint={endpoint}&account={ACCOUNT}")
}

/// dbkeep with the dev account's key in the environment, and nothing else.
fn dbkeep_az() -> Command {
    let mut cmd = dbkeep();
    cmd.env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .env_remove("AZURE_STORAGE_SAS_TOKEN")
        .env("AZURE_STORAGE_ACCOUNT", ACCOUNT)
        .env("AZURE_STORAGE_KEY", KEY);
    cmd
}

#[test]
fn postgres_round_trip_through_azure() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "rt");
    let mut db = PgDb::new("az_rt");
    psql(
        &db.name,
        "create table t (id int primary key, v text, b bytea); insert into t select i, md5(i::text), decode(md5(i::text), 'hex') from generate_series(1, 20000) i",
    );
    let copy = db.another("copy");
    let url = az_url(&endpoint, &container, "team/prod");
    ok(run(dbkeep_az().args([
        "backup",
        &pg_url(&db.name),
        "--to",
        &url,
    ])));
    let keys = az_keys(&endpoint, &container);
    assert!(
        keys.iter()
            .any(|k| k.starts_with("team/prod/") && k.ends_with("/manifest.json")),
        "{keys:?}"
    );
    let listed = ok(run(dbkeep_az().args(["list", "--json", "--from", &url])));
    assert!(listed.contains(&db.name), "{listed}");
    ok(run(dbkeep_az().args(["verify", "--from", &url])));
    ok(run(dbkeep_az().args([
        "restore",
        "--from",
        &url,
        "--target",
        &pg_url(&copy),
    ])));
    assert_eq!(pg_rows(&db.name, "t"), pg_rows(&copy, "t"));

    // The same through a config file with the key in it, small blocks and
    // an access tier; then `config validate` probes the container.
    let dir = tempdir();
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  offsite:\n    type: azure\n    container: {container}\n    prefix: via-config\n    endpoint: {endpoint}\n    \
             account: {ACCOUNT}\n    account_key: \"{KEY}\"\n    access_tier: Cool\n    part_size_mib: 5\n    parallel_parts: 2\n\
             jobs:\n  app:\n    storage: offsite\n    source: {{ type: postgres, host: {}, port: {}, user: postgres, database: {} }}\n",
            pg_host(),
            pg_port(),
            db.name
        ),
    )
    .unwrap();
    let plain = || {
        let mut c = dbkeep();
        c.env_remove("AZURE_STORAGE_ACCOUNT")
            .env_remove("AZURE_STORAGE_KEY")
            .env_remove("AZURE_STORAGE_CONNECTION_STRING")
            .env_remove("AZURE_STORAGE_SAS_TOKEN");
        c
    };
    ok(run(plain().arg("-c").arg(&config).arg("backup")));
    ok(run(plain()
        .arg("-c")
        .arg(&config)
        .args(["config", "validate"])));
    let keys = az_keys(&endpoint, &container);
    assert!(
        keys.iter().any(|k| k.starts_with("via-config/app/")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.contains("dbkeep-probe")),
        "the probe blob is removed: {keys:?}"
    );
    let copy2 = db.another("copy2");
    ok(run(plain().arg("-c").arg(&config).args([
        "restore",
        "app",
        "--target",
        &pg_url(&copy2),
    ])));
    assert_eq!(pg_rows(&db.name, "t"), pg_rows(&copy2, "t"));
}
