//! One fault proxy for every cloud storage: it sits between dbkeep and the
//! test server (moto, fake-gcs-server, Azurite), counts what it sees, and
//! injects a fault into the requests it picks.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Which service is behind the proxy: what its requests look like.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Service {
    S3,
    Gcs,
    Azure,
}

/// What the proxy does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Nothing: forward everything (and count parts).
    None,
    /// Cut the connection halfway through a part's body (an S3 part, a GCS
    /// chunk, an Azure block).
    Reset,
    /// Answer 500 to a part without forwarding it.
    Status500,
    /// Forward a part, then cut the connection before the answer, so the
    /// server kept bytes the client does not know about.
    ResetAfterForward,
    /// Forward object downloads, but cut the response halfway through.
    CutDownload,
    /// Forward a conditional create (`If-None-Match: *`,
    /// `ifGenerationMatch=0`), then cut the connection before the answer.
    ResetAfterCreate,
    /// Forward everything, but hold every removal of a lock (`DELETE
    /// .../lock.json`) back for a while, so that racing takeovers interleave.
    DelayLockDelete,
    /// In front of Azurite, which ignores immutability policies: stand in for
    /// Azure's enforcement. A blob written with
    /// `x-ms-immutability-policy-until-date` shows it (and its mode) on HEAD,
    /// and a DELETE of it before the date gets Azure's 409
    /// `BlobImmutableDueToPolicy`.
    AzureImmutability,
}

/// A running proxy; it serves until the test process ends.
///
/// In front of fake-gcs-server it also answers the session status query
/// (`PUT` with `Content-Range: bytes */*`) itself, from the offsets the
/// server confirmed: fake-gcs-server 1.54 takes that query for a final,
/// empty chunk and completes the object with whatever it holds, where GCS
/// answers 308 with the persisted range.
pub struct FaultProxy {
    /// The endpoint to give dbkeep instead of the server's.
    pub url: String,
    /// Part uploads seen.
    pub parts: Arc<AtomicUsize>,
    /// GCS upload sessions cancelled.
    pub cancels: Arc<AtomicUsize>,
    /// GCS session status queries answered.
    pub queries: Arc<AtomicUsize>,
    /// Every `Authorization` header seen.
    pub authorization: Arc<Mutex<Vec<String>>>,
    /// Every request's line and headers, as sent.
    pub requests: Arc<Mutex<Vec<Vec<String>>>>,
    /// Faults still to inject.
    pub left: Arc<AtomicI64>,
}

#[derive(Clone)]
struct State {
    service: Service,
    upstream: String,
    fault: Fault,
    left: Arc<AtomicI64>,
    parts: Arc<AtomicUsize>,
    cancels: Arc<AtomicUsize>,
    queries: Arc<AtomicUsize>,
    authorization: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<Vec<String>>>>,
    /// Per GCS upload id: the bytes the server confirmed, `u64::MAX` once complete.
    kept: Arc<Mutex<HashMap<String, u64>>>,
    /// Per Azure blob path: the immutability headers it was written with.
    held: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl FaultProxy {
    /// A proxy to the server at `endpoint` (an Azurite endpoint keeps its
    /// account path) that injects `fault` into the next `count` requests it
    /// applies to.
    pub fn start(service: Service, endpoint: &str, fault: Fault, count: i64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let rest = endpoint.trim_start_matches("http://");
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let state = State {
            service,
            upstream: host.to_string(),
            fault,
            left: Arc::new(AtomicI64::new(count)),
            parts: Arc::new(AtomicUsize::new(0)),
            cancels: Arc::new(AtomicUsize::new(0)),
            queries: Arc::new(AtomicUsize::new(0)),
            authorization: Arc::new(Mutex::new(Vec::new())),
            requests: Arc::new(Mutex::new(Vec::new())),
            kept: Arc::new(Mutex::new(HashMap::new())),
            held: Arc::new(Mutex::new(HashMap::new())),
        };
        let proxy = FaultProxy {
            url,
            parts: state.parts.clone(),
            cancels: state.cancels.clone(),
            queries: state.queries.clone(),
            authorization: state.authorization.clone(),
            requests: state.requests.clone(),
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
pub fn reset(client: &TcpStream) {
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

/// The value of header `name` among request or response lines.
pub fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().find_map(|h| {
        let (k, v) = h.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// What a request is, as far as faults go.
struct Request {
    part: bool,
    download: bool,
    create: bool,
    lock_delete: bool,
    /// A GCS resumable upload's id.
    upload_id: Option<String>,
    /// A GCS session status query.
    query: bool,
}

fn classify(service: Service, head: &[String]) -> Request {
    let line = head[0].as_str();
    let (put, get) = (line.starts_with("PUT "), line.starts_with("GET "));
    let upload_id = line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.split("upload_id=").nth(1))
        .map(|id| id.split('&').next().unwrap_or("").to_string());
    let range = header(head, "content-range");
    let query = service == Service::Gcs && put && upload_id.is_some() && range == Some("bytes */*");
    let small = line.contains("manifest") || line.contains("lock");
    let part = match service {
        Service::S3 => put && line.contains("partNumber="),
        Service::Gcs => put && upload_id.is_some() && range.is_some() && !query,
        Service::Azure => put && line.contains("comp=block&"),
    };
    let download = match service {
        Service::S3 => get && line.contains(".zst"),
        Service::Gcs => get && line.contains("alt=media") && !small,
        Service::Azure => get && !line.contains("comp=") && !small,
    };
    let create = match service {
        Service::Gcs => line.starts_with("POST ") && line.contains("ifGenerationMatch=0"),
        _ => put && line.contains("lock.json") && header(head, "if-none-match").is_some(),
    };
    Request {
        part,
        download,
        create,
        lock_delete: line.starts_with("DELETE ") && line.contains("lock.json"),
        upload_id,
        query,
    }
}

/// The answer of a server's own trouble, as the service words it.
fn status_500(service: Service) -> String {
    let (kind, extra, body) = match service {
        Service::Gcs => (
            "application/json",
            "",
            r#"{"error":{"code":500,"message":"injected backend error"}}"#,
        ),
        Service::S3 => (
            "application/xml",
            "",
            "<Error><Code>InternalError</Code><Message>injected</Message></Error>",
        ),
        Service::Azure => (
            "application/xml",
            "x-ms-error-code: InternalError\r\n",
            "<Error><Code>InternalError</Code><Message>injected</Message></Error>",
        ),
    };
    format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: {kind}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn proxy_one(client: TcpStream, st: &State) {
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
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(a) = header(&head, "authorization") {
        st.authorization.lock().unwrap().push(a.to_string());
    }
    st.requests.lock().unwrap().push(head.clone());
    let request = classify(st.service, &head);
    if head[0].starts_with("DELETE ") && request.upload_id.is_some() {
        st.cancels.fetch_add(1, Ordering::SeqCst);
    }
    if request.query {
        st.queries.fetch_add(1, Ordering::SeqCst);
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let kept = st
            .kept
            .lock()
            .unwrap()
            .get(request.upload_id.as_deref().unwrap())
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
    if request.part {
        st.parts.fetch_add(1, Ordering::SeqCst);
    }
    let immutable = if st.fault == Fault::AzureImmutability {
        match immutability(st, &head) {
            Held::Refuse(answer) => {
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = (&client).write_all(answer.as_bytes());
                return;
            }
            Held::Show(lines) => lines,
            Held::Nothing => Vec::new(),
        }
    } else {
        Vec::new()
    };
    if st.fault == Fault::DelayLockDelete && request.lock_delete {
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    let faulted = match st.fault {
        Fault::None | Fault::DelayLockDelete | Fault::AzureImmutability => false,
        Fault::CutDownload => request.download,
        Fault::ResetAfterCreate => request.create,
        Fault::Reset | Fault::Status500 | Fault::ResetAfterForward => request.part,
    } && st.left.fetch_sub(1, Ordering::SeqCst) > 0;
    if faulted && st.fault == Fault::Reset {
        let mut half = vec![0; length / 2];
        let _ = reader.read_exact(&mut half);
        reset(&client);
        return;
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    if faulted && st.fault == Fault::Status500 {
        let _ = (&client).write_all(status_500(st.service).as_bytes());
        return;
    }
    let Ok(mut up) = TcpStream::connect(&st.upstream) else {
        return;
    };
    head.insert(head.len() - 1, "Connection: close\r\n".to_string());
    let _ = up.write_all(head.concat().as_bytes());
    let _ = up.write_all(&body);
    let gcs_chunk = st.service == Service::Gcs && request.part;
    if !immutable.is_empty() {
        let mut response = Vec::new();
        let _ = up.read_to_end(&mut response);
        let at = response
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(response.len(), |i| i + 2);
        let mut out = response[..at].to_vec();
        out.extend_from_slice(immutable.concat().as_bytes());
        out.extend_from_slice(&response[at..]);
        let _ = (&client).write_all(&out);
        return;
    }
    if !faulted && !gcs_chunk {
        // Stream the answer through, so a big download is not held whole.
        let _ = std::io::copy(&mut up, &mut &client);
        return;
    }
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    if gcs_chunk {
        note_kept(st, request.upload_id.clone().unwrap(), &response);
    }
    match st.fault {
        _ if !faulted => {
            let _ = (&client).write_all(&response);
        }
        Fault::CutDownload => {
            let _ = (&client).write_all(&response[..response.len() / 2]);
        }
        _ => reset(&client),
    }
}

/// Records how much of a GCS upload the server confirmed.
fn note_kept(st: &State, id: String, response: &[u8]) {
    let text = String::from_utf8_lossy(&response[..response.len().min(4096)]).into_owned();
    let status = text.split_whitespace().nth(1).unwrap_or("");
    let mut kept = st.kept.lock().unwrap();
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

/// What the Azure immutability stand-in does with one request.
enum Held {
    /// Answer this instead of forwarding.
    Refuse(String),
    /// Forward, and add these header lines to the answer.
    Show(Vec<String>),
    Nothing,
}

fn immutability(st: &State, head: &[String]) -> Held {
    let mut words = head[0].split_whitespace();
    let method = words.next().unwrap_or("");
    let path = words
        .next()
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
        .to_string();
    let mut held = st.held.lock().unwrap();
    match method {
        "PUT" => {
            if let Some(until) = header(head, "x-ms-immutability-policy-until-date") {
                let mode = header(head, "x-ms-immutability-policy-mode").unwrap_or("Unlocked");
                held.insert(
                    path,
                    vec![
                        format!("x-ms-immutability-policy-until-date: {until}\r\n"),
                        format!("x-ms-immutability-policy-mode: {}\r\n", mode.to_lowercase()),
                    ],
                );
            }
            Held::Nothing
        }
        "HEAD" => held.get(&path).cloned().map_or(Held::Nothing, Held::Show),
        "DELETE" if held.contains_key(&path) => {
            let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobImmutableDueToPolicy</Code>\
                        <Message>This operation is not permitted as the blob is immutable due to a policy.</Message></Error>";
            Held::Refuse(format!(
                "HTTP/1.1 409 Conflict\r\nContent-Type: application/xml\r\nx-ms-error-code: BlobImmutableDueToPolicy\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ))
        }
        _ => Held::Nothing,
    }
}
