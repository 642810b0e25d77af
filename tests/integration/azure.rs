//! Azure Blob Storage against Azurite, with a fault proxy in between where
//! failures must be injected.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::s3::sqlite_with_random_data;
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
fn az_url(endpoint: &str, container: &str, prefix: &str) -> String {
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
fn wrong_key_missing_container_and_unreachable_endpoint_are_clear() {
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

    let started = Instant::now();
    let out = run(dbkeep_az()
        .args([
            "backup",
            "--to",
            &az_url(&endpoint, "no-such-container", "x"),
        ])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("az://no-such-container")
            && all.contains("container `no-such-container` does not exist"),
        "{all}"
    );
    assert!(!all.contains(KEY), "{all}");
    assert!(started.elapsed() < Duration::from_secs(20));

    let started = Instant::now();
    let dead = format!("http://127.0.0.1:{}/{ACCOUNT}", free_port());
    let out = run(dbkeep_az()
        .args(["backup", "--to", &az_url(&dead, "c", "x")])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("az://c/") && all.contains("cannot connect"),
        "{all}"
    );
    assert!(!all.contains(KEY), "{all}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );

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

/// What the proxy does to Put Block requests.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// Cut the connection halfway through the block's body.
    Reset,
    /// Answer 500 without forwarding.
    Status500,
    /// Forward blob downloads, but cut the response halfway through.
    CutDownload,
}

/// An HTTP proxy between dbkeep and Azurite that injects `fault` into the
/// next `count` block uploads, and counts the blocks it saw.
struct AzProxy {
    url: String,
    blocks: Arc<AtomicUsize>,
}

impl AzProxy {
    fn start(upstream: &str, fault: Fault, count: i64) -> AzProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let rest = upstream.trim_start_matches("http://");
        let (host, base) = rest.split_once('/').unwrap();
        let url = format!("http://{}/{base}", listener.local_addr().unwrap());
        let upstream = host.to_string();
        let left = Arc::new(AtomicI64::new(count));
        let blocks = Arc::new(AtomicUsize::new(0));
        let seen = blocks.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (upstream, left, seen) = (upstream.clone(), left.clone(), seen.clone());
                std::thread::spawn(move || proxy_one(conn, &upstream, fault, &left, &seen));
            }
        });
        AzProxy { url, blocks }
    }
}

fn proxy_one(
    client: TcpStream,
    upstream: &str,
    fault: Fault,
    left: &AtomicI64,
    blocks: &AtomicUsize,
) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let end = line == "\r\n";
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push(line);
        }
        if end {
            break;
        }
    }
    let request_line = head[0].clone();
    let length: usize = head
        .iter()
        .find_map(|h| {
            h.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let is_block = request_line.starts_with("PUT ") && request_line.contains("comp=block&");
    if is_block {
        blocks.fetch_add(1, Ordering::SeqCst);
    }
    let is_download = request_line.starts_with("GET ")
        && !request_line.contains("comp=")
        && !request_line.contains("manifest")
        && !request_line.contains("lock");
    let faulted = match fault {
        Fault::CutDownload => is_download,
        Fault::None => false,
        _ => is_block,
    };
    if faulted && !matches!(fault, Fault::CutDownload) && left.fetch_sub(1, Ordering::SeqCst) > 0 {
        match fault {
            Fault::Reset => {
                let mut half = vec![0; length / 2];
                let _ = reader.read_exact(&mut half);
                let linger = libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                // SAFETY: a valid socket and a correctly sized option value.
                unsafe {
                    libc::setsockopt(
                        std::os::fd::AsRawFd::as_raw_fd(&client),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&linger as *const libc::linger).cast(),
                        std::mem::size_of::<libc::linger>() as libc::socklen_t,
                    );
                }
                return;
            }
            Fault::Status500 => {
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let xml = "<Error><Code>InternalError</Code><Message>injected</Message></Error>";
                let _ = (&client).write_all(
                    format!("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nx-ms-error-code: InternalError\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}", xml.len())
                        .as_bytes(),
                );
                return;
            }
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    head.insert(head.len() - 1, "Connection: close\r\n".to_string());
    let _ = up.write_all(head.concat().as_bytes());
    let _ = up.write_all(&body);
    // Stream the answer through, so a big download is not held whole.
    let cut =
        faulted && matches!(fault, Fault::CutDownload) && left.fetch_sub(1, Ordering::SeqCst) > 0;
    if cut {
        let mut response = Vec::new();
        let _ = up.read_to_end(&mut response);
        let _ = (&client).write_all(&response[..response.len() / 2]);
        return;
    }
    let _ = std::io::copy(&mut up, &mut &client);
}

#[test]
fn a_large_backup_goes_up_in_blocks_with_bounded_memory() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "big");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 210);
    let proxy = AzProxy::start(&endpoint, Fault::None, 0);
    let url = az_url(&proxy.url, &container, "big");
    let started = Instant::now();
    let child = dbkeep_az()
        .args(["backup", "--compression", "none", "--to", &url])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let peak = peak_rss(child.id());
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let peak_kib = peak.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stored = std::fs::metadata(&db).unwrap().len();
    assert!(
        stored >= 200 << 20,
        "the test object must be at least 200 MB"
    );
    let blocks = proxy.blocks.load(Ordering::SeqCst);
    eprintln!(
        "azure: {} MiB in {blocks} blocks, {elapsed:?}, peak RSS {} MiB",
        stored >> 20,
        peak_kib / 1024
    );
    assert!(blocks >= 12, "uploaded in {blocks} blocks");
    // The documented bound: 64 MiB plus block size × (4 in flight + 1), with
    // one more block of slack for allocator reuse.
    let bound_kib = (64 + 16 * 6) * 1024;
    assert!(
        peak_kib > 0 && peak_kib < bound_kib,
        "peak RSS {peak_kib} KiB, bound {bound_kib} KiB"
    );
    ok(run(dbkeep_az().args([
        "verify",
        "--from",
        &az_url(&endpoint, &container, "big"),
    ])));
}

fn backup_through(fault: Fault, count: i64) -> (std::process::Output, String, String) {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "fault");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 24);
    let proxy = AzProxy::start(&endpoint, fault, count);
    let url = format!("{}&part_size_mib=5", az_url(&proxy.url, &container, "p"));
    let out = run(dbkeep_az()
        .args(["backup", "--compression", "none", "--to", &url])
        .arg(&db));
    (out, endpoint, container)
}

#[test]
fn a_reset_connection_mid_block_is_retried() {
    let (out, endpoint, container) = backup_through(Fault::Reset, 1);
    assert!(out.status.success(), "{}", text(&out));
    ok(run(dbkeep_az().args([
        "verify",
        "--from",
        &az_url(&endpoint, &container, "p"),
    ])));
}

#[test]
fn a_500_on_a_block_is_retried() {
    let (out, endpoint, container) = backup_through(Fault::Status500, 1);
    assert!(out.status.success(), "{}", text(&out));
    ok(run(dbkeep_az().args([
        "verify",
        "--from",
        &az_url(&endpoint, &container, "p"),
    ])));
}

#[test]
fn a_block_that_always_fails_leaves_nothing_behind() {
    let started = Instant::now();
    let (out, endpoint, container) = backup_through(Fault::Status500, i64::MAX);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InternalError"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed().as_secs() < 120);
    assert_eq!(
        az_keys(&endpoint, &container),
        Vec::<String>::new(),
        "no blob and no manifest"
    );
}

#[test]
fn a_download_cut_halfway_resumes() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "dl");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 12);
    ok(run(dbkeep_az()
        .args(["backup", "--to", &az_url(&endpoint, &container, "d")])
        .arg(&db)));
    let proxy = AzProxy::start(&endpoint, Fault::CutDownload, 3);
    let target = dir.path().join("restored.db");
    ok(run(dbkeep_az()
        .args([
            "restore",
            "--from",
            &az_url(&proxy.url, &container, "d"),
            "--target",
        ])
        .arg(&target)));
    let count: i64 = rusqlite::Connection::open(&target)
        .unwrap()
        .query_row("select count(*) from blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 12 * 256);
}

#[test]
fn the_job_lock_works_in_azure() {
    let endpoint = az_endpoint();
    let container = az_container(&endpoint, "lock");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  offsite: {{ type: azure, container: {container}, prefix: locked, endpoint: \"{endpoint}\" }}\n\
             jobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n    hooks: {{ before: [[sleep, \"2\"]] }}\n",
            db.display()
        ),
    )
    .unwrap();
    let first = dbkeep_az()
        .arg("-c")
        .arg(&config)
        .args(["backup", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !az_keys(&endpoint, &container).contains(&"locked/app/lock.json".to_string()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no lock appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = run(dbkeep_az().arg("-c").arg(&config).args(["backup", "app"]));
    assert_eq!(second.status.code(), Some(75), "{}", text(&second));
    ok(first.wait_with_output().unwrap());
    assert!(!az_keys(&endpoint, &container).contains(&"locked/app/lock.json".to_string()));
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
