//! What only Azure does, against Azurite: a key, an access tier and small
//! blocks from the config file, a fan-out to local, S3 and Azure, refused
//! keys, connection strings and SAS tokens. What every storage does is in
//! the conformance suite (`storage.rs`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::util::*;

pub(crate) const ACCOUNT: &str = "devstoreaccount1";
pub(crate) const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The Azurite endpoint, started by scripts/test.sh.
pub(crate) fn az_endpoint() -> String {
    std::env::var("DBKEEP_TEST_AZURE_ENDPOINT").expect(
        "DBKEEP_TEST_AZURE_ENDPOINT is not set: run the tests through scripts/test.sh, which starts Azurite",
    )
}

/// A signed request to Azurite, outside dbkeep: (status, body).
fn az_http(endpoint: &str, method: &str, path: &str, query: &[(&str, &str)]) -> (u16, String) {
    let rest = endpoint.trim_start_matches("http://");
    let (host, base) = rest.split_once('/').unwrap();
    let full = format!("/{base}{path}");
    let (date, sig) = shared_key(method, &full, query);
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

/// The `x-ms-date` and SharedKey signature of a body-less request to `full`
/// (the path with the account) with the dev account's key.
pub(crate) fn shared_key(method: &str, full: &str, query: &[(&str, &str)]) -> (String, String) {
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
    (date, STANDARD.encode(mac.finalize().into_bytes()))
}

/// Writes a blob outside dbkeep, unconditionally; returns the status.
pub(crate) fn az_put_blob(endpoint: &str, container: &str, key: &str, data: &[u8]) -> u16 {
    let rest = endpoint.trim_start_matches("http://");
    let (host, base) = rest.split_once('/').unwrap();
    let full = format!("/{base}/{container}/{key}");
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let to_sign = format!(
        "PUT\n\n\n{}\n\n\n\n\n\n\n\n\nx-ms-blob-type:BlockBlob\nx-ms-date:{date}\nx-ms-version:2021-08-06\n/{ACCOUNT}{full}",
        data.len()
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&STANDARD.decode(KEY).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "PUT {full} HTTP/1.0\r\nHost: {host}\r\nx-ms-blob-type: BlockBlob\r\nx-ms-date: {date}\r\n\
         x-ms-version: 2021-08-06\r\nAuthorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    s.write_all(data).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Reads a blob outside dbkeep: `None` when there is none.
pub(crate) fn az_get_blob(endpoint: &str, container: &str, key: &str) -> Option<Vec<u8>> {
    let (status, body) = az_http_bytes(endpoint, &format!("/{container}/{key}"));
    match status {
        200 => Some(body),
        404 => None,
        _ => panic!("reading {key}: HTTP {status}"),
    }
}

/// Creates a container with a unique name; returns the name.
pub(crate) fn az_container(endpoint: &str, prefix: &str) -> String {
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
pub(crate) fn az_keys(endpoint: &str, container: &str) -> Vec<String> {
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
pub(crate) fn az_url(endpoint: &str, container: &str, prefix: &str) -> String {
    format!("az://{container}/{prefix}?endpoint={endpoint}&account={ACCOUNT}")
}

/// dbkeep with the dev account's key in the environment, and nothing else.
pub(crate) fn dbkeep_az() -> Command {
    let mut cmd = dbkeep();
    cmd.env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .env_remove("AZURE_STORAGE_SAS_TOKEN")
        .env("AZURE_STORAGE_ACCOUNT", ACCOUNT)
        .env("AZURE_STORAGE_KEY", KEY);
    cmd
}

/// A storage in a config file with the key in it, small blocks and an
/// access tier; then `config validate` probes the container.
#[test]
fn a_key_an_access_tier_and_small_blocks_from_the_config_file() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "cfg");
    let mut db = PgDb::new("az_cfg");
    psql(
        &db.name,
        "create table t (v int); insert into t select generate_series(1, 5000)",
    );
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

/// One dump, three copies: local, S3 and Azure hold the same bytes.
#[test]
fn one_dump_fans_out_to_local_s3_and_azure() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "fan");
    let s3 = s3_endpoint();
    let bucket = s3_bucket(&s3, "azfan");
    let db = PgDb::new("az_fan");
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
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  local: {{ type: local, path: {local} }}\n  \
             s3: {{ type: s3, bucket: {bucket}, endpoint: \"{s3}\", path_style: true, region: us-east-1 }}\n  \
             az: {{ type: azure, container: {container}, endpoint: \"{endpoint}\", account: {ACCOUNT} }}\n\
             jobs:\n  app:\n    storage: [local, s3, az]\n    source: {{ type: postgres, host: {h}, port: {p}, user: postgres, database: {d} }}\n",
            local = dir.path().join("backups").display(),
            h = pg_host(),
            p = pg_port(),
            d = db.name
        ),
    )
    .unwrap();
    let both = |c: &mut Command| {
        let s3env = dbkeep_s3();
        for (k, v) in s3env.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
    };
    let mut cmd = dbkeep_az();
    both(&mut cmd);
    ok(run(cmd
        .env("PATH", path_with(tools.path()))
        .arg("-c")
        .arg(&config)
        .args(["backup", "--json"])));
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
    let path = dir
        .path()
        .join("backups/app")
        .join(local[0]["id"].as_str().unwrap())
        .join(&object);
    let sha = |bytes: &[u8]| {
        use sha2::Digest;
        hex::encode(Sha256::digest(bytes))
    };
    let local_sha = sha(&std::fs::read(&path).unwrap());
    assert_eq!(
        local_sha,
        local[0]["artifacts"][0]["sha256"].as_str().unwrap()
    );
    let az_key = az_keys(&endpoint, &container)
        .into_iter()
        .find(|k| k.ends_with(&object))
        .expect("the object is in Azure");
    let s3_key = s3_keys(&s3, &bucket)
        .into_iter()
        .find(|k| k.ends_with(&object))
        .expect("the object is in S3");
    // The bytes of each copy, read back through dbkeep's own storages.
    for (storage, key) in [("az", &az_key), ("s3", &s3_key)] {
        let out_dir = tempdir();
        let mut cmd = dbkeep_az();
        both(&mut cmd);
        let listed = ok(run(cmd.arg("-c").arg(&config).args([
            "list",
            "app",
            "--storage",
            storage,
            "--json",
        ])));
        let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(
            listed[0]["artifacts"][0]["sha256"].as_str().unwrap(),
            local_sha,
            "{storage} {key}"
        );
        let mut cmd = dbkeep_az();
        both(&mut cmd);
        ok(run(cmd.arg("-c").arg(&config).args([
            "verify",
            "app",
            "--storage",
            storage,
        ])));
        drop(out_dir);
    }
    let (status, blob) = az_http_bytes(&endpoint, &format!("/{container}/{az_key}"));
    assert_eq!(status, 200);
    assert_eq!(sha(&blob), local_sha, "the Azure blob's bytes");
}

/// The raw bytes of a blob, outside dbkeep.
fn az_http_bytes(endpoint: &str, path: &str) -> (u16, Vec<u8>) {
    let rest = endpoint.trim_start_matches("http://");
    let (host, base) = rest.split_once('/').unwrap();
    let full = format!("/{base}{path}");
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let to_sign = format!(
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2021-08-06\n/{ACCOUNT}{full}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&STANDARD.decode(KEY).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {full} HTTP/1.0\r\nHost: {host}\r\nx-ms-date: {date}\r\nx-ms-version: 2021-08-06\r\n\
         Authorization: SharedKey {ACCOUNT}:{sig}\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer[split + 4..].to_vec())
}

#[test]
fn a_wrong_key_and_missing_credentials_are_clear() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "err");
    let dir = tempdir();
    let db = dir.path().join("x.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("create table t (v int); insert into t values (1);")
        .unwrap();
    let wrong = STANDARD.encode([7u8; 64]);

    let started = Instant::now();
    let out = run(dbkeep_az()
        .env("AZURE_STORAGE_KEY", &wrong)
        .args(["backup", "--to", &az_url(&endpoint, &container, "x")])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains(&format!("az://{container}"))
            && all.contains("wrong account key or SAS token"),
        "{all}"
    );
    assert!(!all.contains(&wrong) && !all.contains(KEY), "{all}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // No credentials anywhere.
    let out = run(dbkeep()
        .env_remove("AZURE_STORAGE_ACCOUNT")
        .env_remove("AZURE_STORAGE_KEY")
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .env_remove("AZURE_STORAGE_SAS_TOKEN")
        .args(["backup", "--to", &az_url(&endpoint, &container, "x")])
        .arg(&db));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no Azure credentials"),
        "{}",
        text(&out)
    );
}

#[test]
fn credentials_from_a_connection_string_or_a_file() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "conn");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint};"
    );
    let bare = || {
        let mut c = dbkeep();
        c.env_remove("AZURE_STORAGE_ACCOUNT")
            .env_remove("AZURE_STORAGE_KEY")
            .env_remove("AZURE_STORAGE_CONNECTION_STRING")
            .env_remove("AZURE_STORAGE_SAS_TOKEN");
        c
    };
    // From AZURE_STORAGE_CONNECTION_STRING, endpoint and account included.
    let out = ok(run(bare()
        .env("AZURE_STORAGE_CONNECTION_STRING", &conn)
        .args(["backup", "--to", &format!("az://{container}/env")])
        .arg(&db)));
    assert!(!out.contains(KEY), "{out}");
    // From `connection_string_file` and `account_key_file` in a config.
    std::fs::write(dir.path().join("conn"), &conn).unwrap();
    std::fs::write(dir.path().join("key"), KEY).unwrap();
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  a: {{ type: azure, container: {container}, prefix: file, connection_string_file: {c} }}\n  \
             b: {{ type: azure, container: {container}, prefix: key, endpoint: \"{endpoint}\", account: {ACCOUNT}, account_key_file: {k} }}\n\
             jobs:\n  app:\n    storage: [a, b]\n    source: {{ type: sqlite, path: {d} }}\n",
            c = dir.path().join("conn").display(),
            k = dir.path().join("key").display(),
            d = db.display()
        ),
    )
    .unwrap();
    let out = ok(run(bare().arg("-c").arg(&config).arg("backup")));
    assert!(!out.contains(KEY), "{out}");
    let keys = az_keys(&endpoint, &container);
    for p in ["env/", "file/app/", "key/app/"] {
        assert!(
            keys.iter()
                .any(|k| k.starts_with(p) && k.ends_with("manifest.json")),
            "{p}: {keys:?}"
        );
    }
}

/// An account SAS for the dev account: blobs, every resource type, read,
/// write, delete, list, create; until 2030.
fn account_sas() -> String {
    let (sp, ss, srt, se, spr, sv) = (
        "rwdlc",
        "b",
        "sco",
        "2030-01-01T00:00:00Z",
        "https,http",
        "2021-08-06",
    );
    let to_sign = format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n\n");
    let mut mac = Hmac::<Sha256>::new_from_slice(&STANDARD.decode(KEY).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let sig: String = sig
        .bytes()
        .map(|b| match b {
            b'+' => "%2B".to_string(),
            b'/' => "%2F".to_string(),
            b'=' => "%3D".to_string(),
            _ => (b as char).to_string(),
        })
        .collect();
    format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={se}&spr={spr}&sig={sig}")
}

#[test]
fn a_sas_token_from_the_environment_is_used_and_never_shown() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "sas");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let token = account_sas();
    let sas = || {
        let mut c = dbkeep();
        c.env_remove("AZURE_STORAGE_KEY")
            .env_remove("AZURE_STORAGE_CONNECTION_STRING")
            .env("AZURE_STORAGE_ACCOUNT", ACCOUNT)
            .env("AZURE_STORAGE_SAS_TOKEN", &token);
        c
    };
    let url = format!("az://{container}/sas?endpoint={endpoint}");
    let out = ok(run(sas().args(["backup", "--to", &url]).arg(&db)));
    assert!(!out.contains("sig="), "{out}");
    ok(run(sas().args(["verify", "--from", &url])));
    // A token with a wrong signature: refused, and the token is not shown.
    let bad = format!("{}AAAA", &token[..token.len() - 4]);
    let out = run(sas()
        .env("AZURE_STORAGE_SAS_TOKEN", &bad)
        .args(["backup", "--to", &url])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("az://"), "{all}");
    assert!(!all.contains(&bad[bad.len() - 20..]), "{all}");
}

/// `object_lock` on Azure: every artifact's Put Block List and manifest's
/// Put Blob carries a version-level immutability policy (mode `Unlocked`
/// for `governance`), the job lock none. Azurite ignores such policies, so a
/// proxy stands in for Azure's side: it shows a blob's policy on HEAD and
/// refuses to delete it. Through it, the backup's own prune and `prune`
/// keep the locked older backup and say until when, and `verify` shows the
/// date.
#[test]
fn object_lock_sends_an_immutability_policy_that_prune_keeps_and_verify_shows() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "lock");
    let proxy = FaultProxy::start(Service::Azure, &endpoint, Fault::AzureImmutability, 0);
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 6);
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  vault: {{ type: azure, container: {container}, endpoint: \"{}\", account: {ACCOUNT}, \
             part_size_mib: 5, object_lock: {{ mode: governance, days: 1 }} }}\n\
             jobs:\n  app:\n    storage: vault\n    source: {{ type: sqlite, path: {} }}\n    \
             retention: {{ keep_last: 1 }}\n",
            proxy.url,
            db.display()
        ),
    )
    .unwrap();
    let dbkeep_c = || {
        let mut cmd = dbkeep_az();
        cmd.arg("-c").arg(&config);
        cmd
    };
    ok(run(dbkeep_c().args(["backup", "app"])));
    std::thread::sleep(Duration::from_millis(1100));
    let out = ok(run(dbkeep_c().args(["backup", "app", "--json"])));
    assert!(out.contains("object lock until"), "{out}");

    let requests = proxy.requests.lock().unwrap().clone();
    let writes: Vec<&Vec<String>> = requests
        .iter()
        .filter(|h| {
            h[0].starts_with("PUT ") && (!h[0].contains("comp=") || h[0].contains("comp=blocklist"))
        })
        .collect();
    let (locks, backups): (Vec<&&Vec<String>>, Vec<&&Vec<String>>) =
        writes.iter().partition(|h| h[0].contains("lock.json"));
    assert!(!locks.is_empty());
    for h in &locks {
        assert_eq!(
            header(h, "x-ms-immutability-policy-until-date"),
            None,
            "{h:?}"
        );
    }
    assert!(
        backups.iter().any(|h| h[0].contains("comp=blocklist")),
        "an artifact went up in blocks: {backups:?}"
    );
    assert_eq!(
        backups
            .iter()
            .filter(|h| h[0].contains("manifest.json"))
            .count(),
        2
    );
    for h in &backups {
        assert_eq!(header(h, "x-ms-immutability-policy-mode"), Some("Unlocked"));
        let until = header(h, "x-ms-immutability-policy-until-date").unwrap();
        a_day_from_now(
            chrono::DateTime::parse_from_rfc2822(until)
                .unwrap()
                .with_timezone(&chrono::Utc),
        );
    }

    the_older_backup_is_held(&ok(run(dbkeep_c().args(["prune", "app", "--json"]))));
    assert_eq!(
        az_keys(&endpoint, &container)
            .iter()
            .filter(|k| k.ends_with("manifest.json"))
            .count(),
        2
    );
    let shown = ok(run(dbkeep_c().args(["verify", "app"])));
    assert!(shown.contains("retained until "), "{shown}");
}
