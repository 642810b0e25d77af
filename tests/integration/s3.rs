//! S3 against a real S3 server (moto), with a fault proxy in between where
//! failures must be injected.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use crate::util::*;

/// What the proxy does to part uploads (`PUT ...?partNumber=`).
#[derive(Clone, Copy)]
pub(crate) enum Fault {
    /// Cut the connection halfway through the part's body.
    Reset,
    /// Answer 500 without forwarding.
    Status500,
    /// Forward object downloads, but cut the response halfway through.
    CutDownload,
    /// Forward the conditional create of a lock (`PUT .../lock.json` with
    /// `If-None-Match`), then drop the connection without its answer.
    DropLockCreateAnswer,
    /// Forward everything, but hold every removal of a lock (`DELETE
    /// .../lock.json`) back for a while, so that racing takeovers interleave.
    DelayLockDelete,
}

/// An HTTP proxy between dbkeep and the S3 server that injects `fault` into
/// the next `count` part uploads, and counts the parts it saw.
pub(crate) struct FaultProxy {
    pub(crate) url: String,
    parts: Arc<AtomicUsize>,
    /// Faults still to inject.
    pub(crate) left: Arc<AtomicI64>,
}

impl FaultProxy {
    pub(crate) fn start(upstream: &str, fault: Fault, count: i64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let left = Arc::new(AtomicI64::new(count));
        let parts = Arc::new(AtomicUsize::new(0));
        let (seen, remaining) = (parts.clone(), left.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (upstream, left, seen) = (upstream.clone(), remaining.clone(), seen.clone());
                std::thread::spawn(move || handle(conn, &upstream, fault, &left, &seen));
            }
        });
        FaultProxy { url, parts, left }
    }
}

fn handle(client: TcpStream, upstream: &str, fault: Fault, left: &AtomicI64, parts: &AtomicUsize) {
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
    let is_part = request_line.starts_with("PUT ") && request_line.contains("partNumber=");
    if is_part {
        parts.fetch_add(1, Ordering::SeqCst);
    }
    let is_download = request_line.starts_with("GET ") && request_line.contains(".zst");
    let is_lock_create = request_line.starts_with("PUT ")
        && request_line.contains("lock.json")
        && head
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("if-none-match:"));
    if matches!(fault, Fault::DelayLockDelete)
        && request_line.starts_with("DELETE ")
        && request_line.contains("lock.json")
    {
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    let faulted = match fault {
        Fault::CutDownload => is_download,
        Fault::DropLockCreateAnswer => is_lock_create,
        Fault::DelayLockDelete => false,
        _ => is_part,
    };
    let after_forward = matches!(fault, Fault::CutDownload | Fault::DropLockCreateAnswer);
    if faulted && !after_forward && left.fetch_sub(1, Ordering::SeqCst) > 0 {
        match fault {
            Fault::Reset => {
                let mut half = vec![0; length / 2];
                let _ = reader.read_exact(&mut half);
                // SO_LINGER 0: close with a reset, as a dropped connection would.
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
                    format!("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}", xml.len())
                        .as_bytes(),
                );
                return;
            }
            Fault::CutDownload | Fault::DropLockCreateAnswer | Fault::DelayLockDelete => {}
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
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    if faulted && after_forward && left.fetch_sub(1, Ordering::SeqCst) > 0 {
        if matches!(fault, Fault::CutDownload) {
            let _ = (&client).write_all(&response[..response.len() / 2]);
        }
        return;
    }
    let _ = (&client).write_all(&response);
}

pub(crate) fn sqlite_with_random_data(
    dir: &std::path::Path,
    megabytes: usize,
) -> std::path::PathBuf {
    let path = dir.join("big.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "create table blobs (id integer primary key, data blob);
         with recursive s(i) as (select 1 union all select i + 1 from s where i < {})
         insert into blobs (data) select randomblob(4000) from s;",
        megabytes * 256
    ))
    .unwrap();
    path
}

#[test]
fn postgres_round_trip_through_s3() {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "rt");
    let mut db = PgDb::new("s3_rt");
    psql(
        &db.name,
        "create table t (id int primary key, v text, b bytea); insert into t select i, md5(i::text), decode(md5(i::text), 'hex') from generate_series(1, 20000) i",
    );
    let copy = db.another("copy");
    let url = s3_url(&endpoint, &bucket, "team/prod");
    ok(run(dbkeep_s3().args([
        "backup",
        &pg_url(&db.name),
        "--to",
        &url,
    ])));
    let keys = s3_keys(&endpoint, &bucket);
    assert!(
        keys.iter()
            .any(|k| k.starts_with("team/prod/") && k.ends_with("/manifest.json")),
        "{keys:?}"
    );
    let listed = ok(run(dbkeep_s3().args(["list", "--json", "--from", &url])));
    assert!(listed.contains(&db.name), "{listed}");
    ok(run(dbkeep_s3().args(["verify", "--from", &url])));
    ok(run(dbkeep_s3().args([
        "restore",
        "--from",
        &url,
        "--target",
        &pg_url(&copy),
    ])));
    assert_eq!(pg_rows(&db.name, "t"), pg_rows(&copy, "t"));

    // The same through a config file, with keys from the config.
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
fn a_large_backup_goes_up_in_parts_with_bounded_memory() {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "big");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 210);
    let proxy = FaultProxy::start(&endpoint, Fault::Status500, 0);
    let url = s3_url(&proxy.url, &bucket, "big");
    let child = dbkeep_s3()
        .args(["backup", "--compression", "none", "--to", &url])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let peak = peak_rss(child.id());
    let out = child.wait_with_output().unwrap();
    let peak_kib = peak.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stored = std::fs::metadata(&db).unwrap().len();
    assert!(
        stored >= 200 << 20,
        "the test object must be at least 200 MB"
    );
    let parts = proxy.parts.load(Ordering::SeqCst);
    assert!(parts >= 12, "uploaded in {parts} parts");
    // The documented bound: 64 MiB plus part size × (parts in flight + 1).
    let bound_kib = (64 + 16 * (4 + 1)) * 1024;
    assert!(
        peak_kib > 0 && peak_kib < bound_kib,
        "peak RSS {peak_kib} KiB, bound {bound_kib} KiB"
    );
    ok(run(dbkeep_s3().args([
        "verify",
        "--from",
        &s3_url(&endpoint, &bucket, "big"),
    ])));
}

fn backup_through(fault: Fault, count: i64) -> (std::process::Output, String, String) {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "fault");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 24);
    let proxy = FaultProxy::start(&endpoint, fault, count);
    let url = format!("{}&part_size_mib=5", s3_url(&proxy.url, &bucket, "p"));
    let out = run(dbkeep_s3()
        .args(["backup", "--compression", "none", "--to", &url])
        .arg(&db));
    (out, endpoint, bucket)
}

#[test]
fn a_reset_connection_mid_part_is_retried() {
    let (out, endpoint, bucket) = backup_through(Fault::Reset, 1);
    assert!(out.status.success(), "{}", text(&out));
    // The stored bytes still match the manifest's sha256.
    ok(run(dbkeep_s3().args([
        "verify",
        "--from",
        &s3_url(&endpoint, &bucket, "p"),
    ])));
}

#[test]
fn a_500_on_a_part_is_retried() {
    let (out, endpoint, bucket) = backup_through(Fault::Status500, 1);
    assert!(out.status.success(), "{}", text(&out));
    ok(run(dbkeep_s3().args([
        "verify",
        "--from",
        &s3_url(&endpoint, &bucket, "p"),
    ])));
    assert_eq!(s3_open_uploads(&endpoint, &bucket), 0);
}

#[test]
fn a_download_cut_halfway_resumes() {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "dl");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 12);
    ok(run(dbkeep_s3()
        .args(["backup", "--to", &s3_url(&endpoint, &bucket, "d")])
        .arg(&db)));
    // Each of the first three downloads of the object is cut off halfway.
    let proxy = FaultProxy::start(&endpoint, Fault::CutDownload, 3);
    let out = ok(run(dbkeep_s3().args([
        "verify",
        "--from",
        &s3_url(&proxy.url, &bucket, "d"),
    ])));
    assert!(out.contains("intact"), "{out}");
    let target = dir.path().join("restored.db");
    ok(run(dbkeep_s3()
        .args([
            "restore",
            "--from",
            &s3_url(&proxy.url, &bucket, "d"),
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
fn a_part_that_always_fails_leaves_nothing_behind() {
    let started = std::time::Instant::now();
    let (out, endpoint, bucket) = backup_through(Fault::Status500, i64::MAX);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InternalError"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed().as_secs() < 120);
    assert_eq!(
        s3_keys(&endpoint, &bucket),
        Vec::<String>::new(),
        "no object and no manifest"
    );
    assert_eq!(
        s3_open_uploads(&endpoint, &bucket),
        0,
        "no multipart upload left open"
    );
}

#[test]
fn missing_bucket_unreachable_endpoint_and_wrong_credentials_are_clear() {
    let endpoint = s3_endpoint();
    let dir = tempdir();
    let db = dir.path().join("x.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("create table t (v int); insert into t values (1);")
        .unwrap();

    let started = std::time::Instant::now();
    let out = run(dbkeep_s3()
        .args([
            "backup",
            "--to",
            &s3_url(&endpoint, "no-such-bucket-dbkeep", "x"),
        ])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s3://no-such-bucket-dbkeep") && err.contains("NoSuchBucket"),
        "{err}"
    );

    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = run(dbkeep_s3()
        .args(["backup", "--to", &s3_url(&dead, "b", "x")])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s3://b/")
            && (err.contains("dispatch failure") || err.contains("onnection refused")),
        "{err}"
    );
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );

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

/// The job lock is a conditional create in S3 too: a second run is refused
/// while the first holds it, and a stale lock left by another host is taken over.
#[test]
fn the_job_lock_works_in_s3() {
    let endpoint = s3_endpoint();
    let bucket = s3_bucket(&endpoint, "lock");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let config = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "storages:\n  offsite: {{ type: s3, bucket: {bucket}, prefix: locked, endpoint: {endpoint}, region: us-east-1, path_style: true }}\n\
             jobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n    hooks: {{ before: [[sleep, \"2\"]] }}\n",
            db.display()
        ),
    )
    .unwrap();
    let first = dbkeep_s3()
        .arg("-c")
        .arg(&config)
        .args(["backup", "app"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !s3_keys(&endpoint, &bucket).contains(&"locked/app/lock.json".to_string()) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "no lock appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = run(dbkeep_s3().arg("-c").arg(&config).args(["backup", "app"]));
    assert_eq!(second.status.code(), Some(75), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!("pid {}", first.id())),
        "{}",
        text(&second)
    );
    ok(first.wait_with_output().unwrap());
    assert!(!s3_keys(&endpoint, &bucket).contains(&"locked/app/lock.json".to_string()));

    // A lock from another host, not refreshed for an hour: taken over.
    let old = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let lock = format!(
        r#"{{"job":"app","command":"backup","host":"gone.example","pid":7,"started_at":"{old}","refreshed_at":"{old}","token":"x"}}"#
    );
    let (status, body) = http(
        "PUT",
        &format!("{endpoint}/{bucket}/locked/app/lock.json"),
        lock.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let out = run(dbkeep_s3().arg("-c").arg(&config).args(["backup", "app"]));
    ok(out.clone());
    assert!(String::from_utf8_lossy(&out.stderr).contains("taking over a stale lock"));
    let manifests = s3_keys(&endpoint, &bucket)
        .into_iter()
        .filter(|k| k.ends_with("manifest.json"))
        .count();
    assert_eq!(manifests, 2);
}
