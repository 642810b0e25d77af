//! Google Cloud Storage against fake-gcs-server, with a fault proxy in
//! between where failures must be injected.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::s3::sqlite_with_random_data;
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
    let mut keys: Vec<String> = v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

/// `gs://bucket/prefix` with the test endpoint as a parameter.
fn gcs_url(endpoint: &str, bucket: &str, prefix: &str) -> String {
    format!("gs://{bucket}/{prefix}?endpoint={endpoint}")
}

/// dbkeep without any Google credentials from the environment.
pub(crate) fn dbkeep_gcs() -> Command {
    let mut cmd = dbkeep();
    cmd.env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("STORAGE_EMULATOR_HOST")
        .env("CLOUDSDK_CONFIG", "/nonexistent-dbkeep-test")
        .env("GCE_METADATA_HOST", "127.0.0.1:9");
    cmd
}

/// What the proxy does.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// Nothing: forward everything (and count chunks).
    None,
    /// Cut the connection halfway through a chunk's body.
    Reset,
    /// Answer 500 to a chunk without forwarding it.
    Status500,
    /// Forward a chunk, then cut the connection before the answer, so the
    /// server kept bytes the client does not know about.
    ResetAfterForward,
    /// Forward object downloads, but cut the response halfway through.
    CutDownload,
    /// Forward a conditional create (`ifGenerationMatch=0`), then cut the
    /// connection before the answer.
    ResetAfterCreate,
}

/// An HTTP proxy between dbkeep and fake-gcs-server that injects `fault`
/// into the next `count` chunks (or downloads).
///
/// It also answers the session status query (`PUT` with `Content-Range:
/// bytes */*`) itself, from the offsets the server confirmed: fake-gcs-server
/// 1.54 takes that query for a final, empty chunk and completes the object
/// with whatever it holds, where GCS answers 308 with the persisted range.
struct GcsProxy {
    url: String,
    chunks: Arc<AtomicUsize>,
    cancels: Arc<AtomicUsize>,
    queries: Arc<AtomicUsize>,
    authorization: Arc<Mutex<Vec<String>>>,
    left: Arc<AtomicI64>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    fault: Fault,
    left: Arc<AtomicI64>,
    chunks: Arc<AtomicUsize>,
    cancels: Arc<AtomicUsize>,
    queries: Arc<AtomicUsize>,
    authorization: Arc<Mutex<Vec<String>>>,
    /// Per upload id: the bytes the server confirmed, `u64::MAX` once complete.
    kept: Arc<Mutex<HashMap<String, u64>>>,
}

impl GcsProxy {
    fn start(upstream: &str, fault: Fault, count: i64) -> GcsProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = ProxyState {
            upstream: upstream.trim_start_matches("http://").to_string(),
            fault,
            left: Arc::new(AtomicI64::new(count)),
            chunks: Arc::new(AtomicUsize::new(0)),
            cancels: Arc::new(AtomicUsize::new(0)),
            queries: Arc::new(AtomicUsize::new(0)),
            authorization: Arc::new(Mutex::new(Vec::new())),
            kept: Arc::new(Mutex::new(HashMap::new())),
        };
        let proxy = GcsProxy {
            url,
            chunks: state.chunks.clone(),
            cancels: state.cancels.clone(),
            queries: state.queries.clone(),
            authorization: state.authorization.clone(),
            left: state.left.clone(),
        };
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || proxy_one(conn, &state));
            }
        });
        proxy
    }
}

/// Closes a socket with a reset, as a dropped connection would.
fn reset(client: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(client),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().find_map(|h| {
        let (k, v) = h.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn proxy_one(client: TcpStream, st: &ProxyState) {
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
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(a) = header(&head, "authorization") {
        st.authorization.lock().unwrap().push(a.to_string());
    }
    let upload_id = request_line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.split("upload_id=").nth(1))
        .map(|id| id.split('&').next().unwrap_or("").to_string());
    let range = header(&head, "content-range").map(str::to_string);
    let put = request_line.starts_with("PUT ");
    let is_query = put && upload_id.is_some() && range.as_deref() == Some("bytes */*");
    let is_chunk = put && upload_id.is_some() && range.is_some() && !is_query;
    let is_download = request_line.starts_with("GET ")
        && request_line.contains("alt=media")
        && !request_line.contains("manifest.json")
        && !request_line.contains("lock.json");
    if request_line.starts_with("DELETE ") && upload_id.is_some() {
        st.cancels.fetch_add(1, Ordering::SeqCst);
    }
    if is_query {
        st.queries.fetch_add(1, Ordering::SeqCst);
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let kept = st
            .kept
            .lock()
            .unwrap()
            .get(upload_id.as_deref().unwrap())
            .copied()
            .unwrap_or(0);
        let answer = match kept {
            u64::MAX => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_string(),
            0 => "HTTP/1.1 308 Resume Incomplete\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
            n => format!("HTTP/1.1 308 Resume Incomplete\r\nRange: bytes=0-{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", n - 1),
        };
        let _ = (&client).write_all(answer.as_bytes());
        return;
    }
    if is_chunk {
        st.chunks.fetch_add(1, Ordering::SeqCst);
    }
    let faulted = match st.fault {
        Fault::None => false,
        Fault::CutDownload => is_download,
        Fault::ResetAfterCreate => {
            request_line.starts_with("POST ") && request_line.contains("ifGenerationMatch=0")
        }
        _ => is_chunk,
    } && st.left.fetch_sub(1, Ordering::SeqCst) > 0;
    if faulted {
        match st.fault {
            Fault::Reset => {
                let mut half = vec![0; length / 2];
                let _ = reader.read_exact(&mut half);
                reset(&client);
                return;
            }
            Fault::Status500 => {
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let json = r#"{"error":{"code":500,"message":"injected backend error"}}"#;
                let _ = (&client).write_all(
                    format!("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}", json.len())
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
    let Ok(mut up) = TcpStream::connect(&st.upstream) else {
        return;
    };
    head.insert(head.len() - 1, "Connection: close\r\n".to_string());
    let _ = up.write_all(head.concat().as_bytes());
    let _ = up.write_all(&body);
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    if is_chunk {
        let text = String::from_utf8_lossy(&response[..response.len().min(4096)]).into_owned();
        let status = text.split_whitespace().nth(1).unwrap_or("");
        let mut kept = st.kept.lock().unwrap();
        let id = upload_id.clone().unwrap();
        if status == "308" {
            let lines: Vec<String> = text.lines().map(|l| format!("{l}\r\n")).collect();
            if let Some(end) = header(&lines, "range")
                .and_then(|r| r.rsplit('-').next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                kept.insert(id, end + 1);
            }
        } else if status == "200" || status == "201" {
            kept.insert(id, u64::MAX);
        }
    }
    if faulted && matches!(st.fault, Fault::ResetAfterForward | Fault::ResetAfterCreate) {
        reset(&client);
        return;
    }
    if faulted && st.fault == Fault::CutDownload {
        let _ = (&client).write_all(&response[..response.len() / 2]);
        return;
    }
    let _ = (&client).write_all(&response);
}

#[test]
fn postgres_round_trip_through_gcs() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "rt");
    let mut db = PgDb::new("gcs_rt");
    psql(
        &db.name,
        "create table t (id int primary key, v text, b bytea); insert into t select i, md5(i::text), decode(md5(i::text), 'hex') from generate_series(1, 20000) i",
    );
    let copy = db.another("copy");
    let url = gcs_url(&endpoint, &bucket, "team/prod");
    ok(run(dbkeep_gcs().args([
        "backup",
        &pg_url(&db.name),
        "--to",
        &url,
    ])));
    let keys = gcs_keys(&endpoint, &bucket);
    assert!(
        keys.iter()
            .any(|k| k.starts_with("team/prod/") && k.ends_with("/manifest.json")),
        "{keys:?}"
    );
    let listed = ok(run(dbkeep_gcs().args(["list", "--json", "--from", &url])));
    assert!(listed.contains(&db.name), "{listed}");
    ok(run(dbkeep_gcs().args(["verify", "--from", &url])));
    ok(run(dbkeep_gcs().args([
        "restore",
        "--from",
        &url,
        "--target",
        &pg_url(&copy),
    ])));
    assert_eq!(pg_rows(&db.name, "t"), pg_rows(&copy, "t"));

    // The same through a config file, then `config validate` probes the bucket.
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
fn a_large_backup_goes_up_in_chunks_with_bounded_memory() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "big");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 210);
    let proxy = GcsProxy::start(&endpoint, Fault::None, 0);
    let url = gcs_url(&proxy.url, &bucket, "big");
    let started = Instant::now();
    let child = dbkeep_gcs()
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
    let chunks = proxy.chunks.load(Ordering::SeqCst);
    eprintln!(
        "gcs: {} MiB in {chunks} chunks, {elapsed:?}, peak RSS {} MiB",
        stored >> 20,
        peak_kib / 1024
    );
    assert!(chunks >= 12, "uploaded in {chunks} chunks");
    // The documented bound: 64 MiB plus chunk size × 2 (one filling, one
    // being sent), with a third chunk of slack for allocator reuse.
    let bound_kib = (64 + 16 * 3) * 1024;
    assert!(
        peak_kib > 0 && peak_kib < bound_kib,
        "peak RSS {peak_kib} KiB, bound {bound_kib} KiB"
    );
    ok(run(dbkeep_gcs().args([
        "verify",
        "--from",
        &gcs_url(&endpoint, &bucket, "big"),
    ])));
}

fn backup_through(fault: Fault, count: i64) -> (std::process::Output, String, String, GcsProxy) {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "fault");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 24);
    let proxy = GcsProxy::start(&endpoint, fault, count);
    let url = format!("{}&part_size_mib=5", gcs_url(&proxy.url, &bucket, "p"));
    let out = run(dbkeep_gcs()
        .args(["backup", "--compression", "none", "--to", &url])
        .arg(&db));
    (out, endpoint, bucket, proxy)
}

#[test]
fn a_reset_connection_mid_chunk_is_retried() {
    let (out, endpoint, bucket, proxy) = backup_through(Fault::Reset, 1);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        proxy.queries.load(Ordering::SeqCst) >= 1,
        "the session offset was asked for"
    );
    // The stored bytes still match the manifest's sha256.
    ok(run(dbkeep_gcs().args([
        "verify",
        "--from",
        &gcs_url(&endpoint, &bucket, "p"),
    ])));
}

#[test]
fn a_500_on_a_chunk_is_retried() {
    let (out, endpoint, bucket, proxy) = backup_through(Fault::Status500, 1);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        proxy.left.load(Ordering::SeqCst) <= 0,
        "the fault was injected"
    );
    ok(run(dbkeep_gcs().args([
        "verify",
        "--from",
        &gcs_url(&endpoint, &bucket, "p"),
    ])));
}

#[test]
fn a_chunk_kept_by_the_server_but_unanswered_is_not_sent_twice() {
    let (out, endpoint, bucket, proxy) = backup_through(Fault::ResetAfterForward, 2);
    assert!(out.status.success(), "{}", text(&out));
    assert!(proxy.queries.load(Ordering::SeqCst) >= 2);
    // 24 MiB in 5 MiB chunks: 5 chunks, none sent again.
    let chunks = proxy.chunks.load(Ordering::SeqCst);
    assert!(chunks <= 6, "{chunks} chunk requests");
    ok(run(dbkeep_gcs().args([
        "verify",
        "--from",
        &gcs_url(&endpoint, &bucket, "p"),
    ])));
}

#[test]
fn a_chunk_that_always_fails_leaves_nothing_behind() {
    let started = Instant::now();
    let (out, endpoint, bucket, proxy) = backup_through(Fault::Status500, i64::MAX);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("injected backend error") && err.contains(&format!("gs://{bucket}/")),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(
        gcs_keys(&endpoint, &bucket),
        Vec::<String>::new(),
        "no object and no manifest"
    );
    assert!(
        proxy.cancels.load(Ordering::SeqCst) >= 1,
        "the upload session was cancelled"
    );
}

#[test]
fn a_download_cut_halfway_resumes() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "dl");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 12);
    ok(run(dbkeep_gcs()
        .args(["backup", "--to", &gcs_url(&endpoint, &bucket, "d")])
        .arg(&db)));
    // Each of the first three downloads of the object is cut off halfway.
    let proxy = GcsProxy::start(&endpoint, Fault::CutDownload, 3);
    let out = ok(run(dbkeep_gcs().args([
        "verify",
        "--from",
        &gcs_url(&proxy.url, &bucket, "d"),
    ])));
    assert!(out.contains("intact"), "{out}");
    let proxy = GcsProxy::start(&endpoint, Fault::CutDownload, 3);
    let target = dir.path().join("restored.db");
    ok(run(dbkeep_gcs()
        .args([
            "restore",
            "--from",
            &gcs_url(&proxy.url, &bucket, "d"),
            "--target",
        ])
        .arg(&target)));
    let count: i64 = rusqlite::Connection::open(&target)
        .unwrap()
        .query_row("select count(*) from blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 12 * 256);
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
            let mut request = vec![0; length];
            let _ = reader.read_exact(&mut request);
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&request).into_owned());
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
    let proxy = GcsProxy::start(&endpoint, Fault::None, 0);
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
    // One token for the whole run, traded for a signed JWT.
    let requests = requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
            && requests[0].contains("assertion="),
        "{}",
        requests[0]
    );
    let assertion = requests[0]
        .split('&')
        .find_map(|p| p.strip_prefix("assertion="))
        .unwrap();
    check_jwt(dir.path(), assertion, &token_uri);
    let auth = proxy.authorization.lock().unwrap().clone();
    assert!(!auth.is_empty());
    assert!(
        auth.iter()
            .all(|a| a == "Bearer ya29.dbkeep-test-token-value"),
        "{auth:?}"
    );
    assert!(
        gcs_keys(&endpoint, &bucket)
            .iter()
            .any(|k| k.ends_with("manifest.json"))
    );
}

#[test]
fn missing_bucket_unreachable_endpoint_and_bad_credentials_are_clear() {
    let endpoint = gcs_endpoint();
    let dir = tempdir();
    let db = dir.path().join("x.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("create table t (v int); insert into t values (1);")
        .unwrap();

    let started = Instant::now();
    let out = run(dbkeep_gcs()
        .args([
            "backup",
            "--to",
            &gcs_url(&endpoint, "no-such-bucket-dbkeep", "x"),
        ])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gs://no-such-bucket-dbkeep")
            && err.contains("bucket `no-such-bucket-dbkeep` does not exist"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));

    let started = Instant::now();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = run(dbkeep_gcs()
        .args(["backup", "--to", &gcs_url(&dead, "b", "x")])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gs://b/") && err.contains("onnection refused"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );

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

    // A well-formed key that the token endpoint refuses.
    let started = Instant::now();
    let (token_uri, _) = token_server(
        "400 Bad Request",
        r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
    );
    let (key, pem) = service_account_key(dir.path(), &token_uri);
    let config = gcs_config(
        dir.path(),
        &format!(
            "{{ type: gcs, bucket: {bucket}, endpoint: \"{endpoint}\", credentials_file: {} }}",
            key.display()
        ),
        &db,
    );
    let out = run(dbkeep_gcs().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("gs://{bucket}"))
            && err.contains("access token")
            && err.contains("invalid_grant: Invalid JWT Signature"),
        "{err}"
    );
    assert!(!err.contains(pem.lines().nth(1).unwrap()));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(gcs_keys(&endpoint, &bucket), Vec::<String>::new());
}

/// The job lock is a conditional create (`ifGenerationMatch=0`) in GCS too.
#[test]
fn the_job_lock_works_in_gcs() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "lock");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  offsite: {{ type: gcs, bucket: {bucket}, prefix: locked, endpoint: \"{endpoint}\" }}\n\
             jobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n    hooks: {{ before: [[sleep, \"2\"]] }}\n",
            db.display()
        ),
    )
    .unwrap();
    let first = dbkeep_gcs()
        .arg("-c")
        .arg(&config)
        .args(["backup", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !gcs_keys(&endpoint, &bucket).contains(&"locked/app/lock.json".to_string()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no lock appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = run(dbkeep_gcs().arg("-c").arg(&config).args(["backup", "app"]));
    assert_eq!(second.status.code(), Some(75), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!("pid {}", first.id())),
        "{}",
        text(&second)
    );
    ok(first.wait_with_output().unwrap());
    assert!(!gcs_keys(&endpoint, &bucket).contains(&"locked/app/lock.json".to_string()));

    // A lock from another host, not refreshed for an hour: taken over.
    let old = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let lock = format!(
        r#"{{"job":"app","command":"backup","host":"gone.example","pid":7,"started_at":"{old}","refreshed_at":"{old}","token":"x"}}"#
    );
    let (status, body) = http(
        "POST",
        &format!(
            "{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=locked%2Fapp%2Flock.json"
        ),
        lock.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let out = run(dbkeep_gcs().arg("-c").arg(&config).args(["backup", "app"]));
    ok(out.clone());
    assert!(String::from_utf8_lossy(&out.stderr).contains("taking over a stale lock"));
    let manifests = gcs_keys(&endpoint, &bucket)
        .into_iter()
        .filter(|k| k.ends_with("manifest.json"))
        .count();
    assert_eq!(manifests, 2);
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

#[test]
fn a_lock_created_but_unanswered_is_recognised_as_ours() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "lockcut");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    // The lock object is created, but its answer is lost: the retry finds
    // an object, and it holds this run's own lock.
    let proxy = GcsProxy::start(&endpoint, Fault::ResetAfterCreate, 1);
    let out = run(dbkeep_gcs()
        .args(["backup", "--to", &gcs_url(&proxy.url, &bucket, "l")])
        .arg(&db));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        proxy.left.load(Ordering::SeqCst) <= 0,
        "the fault was injected"
    );
    let keys = gcs_keys(&endpoint, &bucket);
    assert!(
        keys.iter().any(|k| k.ends_with("manifest.json")),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.ends_with("lock.json")), "{keys:?}");
}

#[test]
fn retention_and_prune_delete_old_backups_in_gcs() {
    let endpoint = gcs_endpoint();
    let bucket = gcs_bucket(&endpoint, "keep");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let config = dir.path().join("dbkeep.yaml");
    let write = |retention: &str| {
        std::fs::write(
            &config,
            format!(
                "storages:\n  offsite: {{ type: gcs, bucket: {bucket}, prefix: r, endpoint: \"{endpoint}\" }}\n\
                 jobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n{retention}",
                db.display()
            ),
        )
        .unwrap();
    };
    write("");
    for _ in 0..3 {
        ok(run(dbkeep_gcs()
            .arg("-c")
            .arg(&config)
            .args(["backup", "app"])));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let manifests = |keys: &[String]| keys.iter().filter(|k| k.ends_with("manifest.json")).count();
    assert_eq!(manifests(&gcs_keys(&endpoint, &bucket)), 3);
    write("    retention: { keep_last: 1 }\n");
    let out = ok(run(dbkeep_gcs()
        .arg("-c")
        .arg(&config)
        .args(["prune", "--force", "app"])));
    assert!(out.contains("1 backups kept, 2 deleted"), "{out}");
    let keys = gcs_keys(&endpoint, &bucket);
    assert_eq!(manifests(&keys), 1, "{keys:?}");
    // Only the kept backup's objects are left (its data and its manifest).
    assert_eq!(keys.len(), 2, "{keys:?}");
    let listed = ok(run(dbkeep_gcs()
        .arg("-c")
        .arg(&config)
        .args(["list", "app", "--json"])));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    ok(run(dbkeep_gcs()
        .arg("-c")
        .arg(&config)
        .args(["verify", "app"])));
}

/// Checks a JWT's RS256 signature against the key in `dir` with openssl,
/// and its claims.
fn check_jwt(dir: &std::path::Path, jwt: &str, token_uri: &str) {
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
    assert_eq!(claims["aud"], token_uri);
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
    let out = backup(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no credentials were found"),
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

    let (key, _) = service_account_key(dir.path(), &token_uri);
    let out = backup(&[("GOOGLE_APPLICATION_CREDENTIALS", &key)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid_grant: Token has been expired"),
        "{}",
        text(&out)
    );
    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("jwt-bearer"))
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
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("invalid_grant"), "{all}");
    assert!(!all.contains("client-secret-value-77") && !all.contains("refresh-token-value-99"));
    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("grant_type=refresh_token")
                && r.contains("refresh_token=1%2F%2Frefresh-token-value-99"))
    );
}
