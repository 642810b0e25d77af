//! Receivers for notifications: an HTTP listener and an SMTP mailbox.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- receivers

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// GET, POST, PUT.
    pub method: String,
    /// The path with query.
    pub path: String,
    /// Header names in lower case.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// An HTTP listener on 127.0.0.1 that records requests and answers 200
/// (or 500 for the first `fail_first` requests).
pub struct HttpSink {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

impl HttpSink {
    /// Starts a listener that always answers 200.
    pub fn start() -> HttpSink {
        Self::start_failing(0)
    }

    /// Starts a listener whose first `fail_first` answers are 500.
    pub fn start_failing(fail_first: usize) -> HttpSink {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            let mut served = 0usize;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let path = parts.next().unwrap_or_default().to_string();
                let mut headers = std::collections::BTreeMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                seen.lock().unwrap().push(Request {
                    method,
                    path,
                    headers,
                    body,
                });
                served += 1;
                let status = if served <= fail_first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
            }
        });
        HttpSink { url, requests }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A local SMTP server (aiosmtpd) writing each mail into a Maildir.
pub struct Smtp {
    /// Its port.
    pub port: u16,
    maildir: tempfile::TempDir,
    child: std::process::Child,
}

impl Smtp {
    /// Starts aiosmtpd; needs DBKEEP_TEST_PYTHON (set by scripts/test.sh).
    pub fn start() -> Smtp {
        let python = std::env::var("DBKEEP_TEST_PYTHON")
            .expect("DBKEEP_TEST_PYTHON is not set: run the tests through scripts/test.sh, which installs aiosmtpd");
        let maildir = tempfile::Builder::new()
            .prefix("dbkeep-mail-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("box"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd");
        let smtp = Smtp {
            port,
            maildir,
            child,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return smtp;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("aiosmtpd did not start");
    }

    /// Every mail received, as text.
    pub fn mails(&self) -> Vec<String> {
        files(&self.maildir.path().join("box").join("new"))
            .into_iter()
            .map(|f| {
                std::fs::read_to_string(self.maildir.path().join("box").join("new").join(f))
                    .unwrap()
            })
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
