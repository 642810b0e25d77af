//! What the REST backends (GCS, Azure) share: percent-encoding, error text,
//! and how an answer is judged worth another try.

use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};

use super::retry::Backoff;

/// Percent-encodes everything but unreserved characters, and `/` unless
/// `keep_slash`.
pub(super) fn enc(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A reqwest error as text: the cause chain, without the URL.
pub(super) fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect (is the endpoint reachable?)".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !last.contains(&part) && !part.contains("http") {
            text.push_str(": ");
            text.push_str(&part);
        }
        last = part;
        source = s.source();
    }
    crate::util::secret::clean(&text)
}

/// Answers worth another try: the server's own trouble, or a rate limit.
pub(super) fn transient_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// What a request came to.
pub(super) enum Outcome {
    /// A success (or an answer the caller counts as one).
    Done(Box<Response>),
    /// Worth another try: the reason.
    Transient(String),
    /// Not worth another try.
    Failed(Box<Response>),
}

/// Judges a request's result; `answer` turns an error answer into text, and
/// `also_done` is a status the caller counts as success (GCS's 308).
pub(super) fn outcome(
    result: reqwest::Result<Response>,
    answer: fn(Response) -> String,
    also_done: Option<StatusCode>,
) -> Outcome {
    match result {
        Ok(r) if transient_status(r.status()) => Outcome::Transient(answer(r)),
        Ok(r) if r.status().is_success() || Some(r.status()) == also_done => {
            Outcome::Done(Box::new(r))
        }
        Ok(r) => Outcome::Failed(Box::new(r)),
        Err(e) => Outcome::Transient(describe(&e)),
    }
}

/// How one backend sends a request: its name in logs, its error text, and
/// the status it counts as success beside 2xx.
pub(super) struct Service {
    /// `GCS`, `Azure`.
    pub name: &'static str,
    /// The text of an error answer.
    pub answer: fn(Response) -> String,
    /// Another status that counts as done.
    pub also_done: Option<StatusCode>,
}

/// Sends the request `make` builds, again after a transient failure (up to
/// `backoff.attempts` in all). A refused answer goes to `refused`, which
/// hands it back to the caller (`Ok`) or says why the call failed (`Err`).
pub(super) fn send(
    service: &Service,
    backoff: &Backoff,
    what: &str,
    make: impl Fn() -> anyhow::Result<RequestBuilder>,
    refused: impl Fn(Response) -> Result<Response, String>,
) -> anyhow::Result<Response> {
    let mut attempt = 1;
    loop {
        match outcome(make()?.send(), service.answer, service.also_done) {
            Outcome::Done(r) => return Ok(*r),
            Outcome::Failed(r) => {
                return refused(*r).map_err(|why| anyhow::anyhow!("{what}: {why}"));
            }
            Outcome::Transient(why) if attempt < backoff.attempts => {
                tracing::debug!(what, attempt, service = service.name, error = %why, "transient error, retrying");
                std::thread::sleep(backoff.pause(attempt));
                attempt += 1;
            }
            Outcome::Transient(why) => {
                anyhow::bail!("{what}: {why} (after {attempt} attempts)")
            }
        }
    }
}
