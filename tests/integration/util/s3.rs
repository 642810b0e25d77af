//! HTTP requests, the S3 test server, and memory sampling.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- HTTP and S3

/// One plain HTTP/1.1 request; returns the status and the body.
pub fn http(method: &str, url: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The S3 test server (moto), started by scripts/test.sh.
pub fn s3_endpoint() -> String {
    std::env::var("DBKEEP_TEST_S3_ENDPOINT")
        .expect("DBKEEP_TEST_S3_ENDPOINT is not set: run the tests through scripts/test.sh, which starts moto")
}

/// Creates a bucket with a unique name on `endpoint`; returns the name.
pub fn s3_bucket(endpoint: &str, prefix: &str) -> String {
    let name = unique(prefix).replace('_', "-").to_lowercase();
    let (status, body) = http("PUT", &format!("{endpoint}/{name}"), b"");
    assert!(
        status == 200,
        "cannot create bucket {name}: {status} {body}"
    );
    name
}

/// Every key in a bucket (through the server's API, not dbkeep's).
pub fn s3_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let (_, body) = http("GET", &format!("{endpoint}/{bucket}?list-type=2"), b"");
    body.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// A request to moto with a (never checked) signature, so that it treats
/// it as from the owner of the bucket; HTTP/1.0, so the answer is not chunked.
pub fn s3_raw(method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} /{path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&answer[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer[split + 4..].to_vec())
}

/// A request to moto as [`s3_raw`] makes it, with extra headers; returns
/// the status, the response's header lines and its body.
pub fn s3_request(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, Vec<String>, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} /{path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: 0\r\n{extra}\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let head: Vec<String> = head.lines().map(|l| format!("{l}\r\n")).collect();
    let status = head[0]
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, body.to_string())
}

/// Creates a bucket with Object Lock (and so versioning) on; returns its name.
pub fn s3_lock_bucket(endpoint: &str, prefix: &str) -> String {
    let name = unique(prefix).replace('_', "-").to_lowercase();
    let (status, _, body) = s3_request(
        "PUT",
        &format!("{endpoint}/{name}"),
        &[("x-amz-bucket-object-lock-enabled", "true")],
    );
    assert!(
        status == 200,
        "cannot create bucket {name}: {status} {body}"
    );
    name
}

/// The version ids of `key` (not its delete markers), through the server's API.
pub fn s3_versions(endpoint: &str, bucket: &str, key: &str) -> Vec<String> {
    let (_, _, body) = s3_request(
        "GET",
        &format!("{endpoint}/{bucket}?versions&prefix={key}"),
        &[],
    );
    let tag = |chunk: &str, name: &str| {
        chunk
            .split(&format!("<{name}>"))
            .nth(1)
            .and_then(|s| s.split(&format!("</{name}>")).next())
            .map(str::to_string)
    };
    body.split("<Version>")
        .skip(1)
        .filter_map(|v| v.split("</Version>").next())
        .filter(|v| tag(v, "Key").as_deref() == Some(key))
        .filter_map(|v| tag(v, "VersionId"))
        .collect()
}

/// Multipart uploads still open in a bucket.
pub fn s3_open_uploads(endpoint: &str, bucket: &str) -> usize {
    let (_, body) = http("GET", &format!("{endpoint}/{bucket}?uploads"), b"");
    body.matches("<Upload>").count()
}

/// `s3://bucket/prefix` with the test endpoint as parameters.
pub fn s3_url(endpoint: &str, bucket: &str, prefix: &str) -> String {
    format!("s3://{bucket}/{prefix}?endpoint={endpoint}&path_style=true&region=us-east-1")
}

/// dbkeep with test credentials for S3.
pub fn dbkeep_s3() -> Command {
    let mut cmd = dbkeep();
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-key")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    cmd
}

/// Peak RSS (VmHWM, KiB) of a running child, polled until it exits.
pub fn peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if status.contains("State:\tZ") {
                break;
            }
            if let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        peak
    })
}

/// Writes a real `pg_dump -Fc -Z0` archive of `db` to `path`.
pub fn pg_archive(db: &str, path: &Path) {
    let out = Command::new("pg_dump")
        .args([
            "-Fc",
            "-Z0",
            "-h",
            &pg_host(),
            "-p",
            &pg_port(),
            "-U",
            "postgres",
            "-f",
        ])
        .arg(path)
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
