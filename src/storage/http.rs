//! What the REST backends (GCS, Azure) share: percent-encoding, error text,
//! how an answer is judged worth another try, the retrying request loop, and
//! the shapes of small conditional writes and reads.

use anyhow::Context;
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::Version;
use super::retry::{self, Backoff, Failure, Transient};

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

/// The text of header `name` of an answer.
pub(super) fn header_text(
    r: &Response,
    name: impl reqwest::header::AsHeaderName,
) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// How long a transient answer asks the client to wait (`Retry-After`).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<std::time::Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry::parse_retry_after)
}

/// What a request came to.
pub(super) enum Outcome {
    /// A success (or an answer the caller counts as one).
    Done(Box<Response>),
    /// Worth another try.
    Transient(Transient),
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
        Ok(r) if transient_status(r.status()) => {
            let after = retry_after(r.headers());
            Outcome::Transient(Transient {
                why: answer(r),
                after,
            })
        }
        Ok(r) if r.status().is_success() || Some(r.status()) == also_done => {
            Outcome::Done(Box::new(r))
        }
        Ok(r) => Outcome::Failed(Box::new(r)),
        Err(e) => Outcome::Transient(Transient::new(describe(&e))),
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

impl Service {
    /// Judges a request's result the way this service does.
    pub fn outcome(&self, result: reqwest::Result<Response>) -> Outcome {
        outcome(result, self.answer, self.also_done)
    }
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
    let log = format!("{what} ({})", service.name);
    retry::retry(backoff, &log, |_| {
        let request = make().map_err(Failure::Fatal)?;
        match service.outcome(request.send()) {
            Outcome::Done(r) => Ok(*r),
            Outcome::Failed(r) => {
                refused(*r).map_err(|why| Failure::Fatal(anyhow::anyhow!("{what}: {why}")))
            }
            Outcome::Transient(t) => Err(Failure::Transient(t)),
        }
    })
    .map_err(|stop| stop.into_error(what))
}

/// The body of a ranged GET from `offset` on, or why there is none: a
/// server that ignored the range is worth another try; `refused` gives the
/// text of an answer not worth one.
pub(super) fn ranged(
    service: &Service,
    result: reqwest::Result<Response>,
    offset: u64,
    refused: impl FnOnce(Response) -> String,
) -> Result<Response, Failure<String>> {
    match service.outcome(result) {
        Outcome::Done(r) if offset > 0 && r.status() != StatusCode::PARTIAL_CONTENT => Err(
            Failure::Transient(Transient::new("the server ignored the range request")),
        ),
        Outcome::Done(r) => Ok(*r),
        Outcome::Transient(t) => Err(Failure::Transient(t)),
        Outcome::Failed(r) => Err(Failure::Fatal(refused(*r))),
    }
}

/// A small object's bytes and version from a GET's answer, `None` for a
/// 404; the version is the header `header`, named `label` in messages.
pub(super) fn versioned(
    r: Response,
    what: &str,
    header: &str,
    label: &str,
) -> anyhow::Result<Option<(Vec<u8>, Version)>> {
    if r.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let version =
        header_text(&r, header).with_context(|| format!("{what}: the server sent no {label}"))?;
    let bytes = crate::util::read_capped(r, crate::util::SMALL_OBJECT_MAX)
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    Ok(Some((bytes, Version(version))))
}

/// What a small write expects to find.
#[derive(Clone, Copy)]
pub(super) enum Condition<'a> {
    /// Anything: no precondition.
    None,
    /// No object (`If-None-Match: *`, `ifGenerationMatch=0`).
    Absent,
    /// The object at this version (`If-Match`, `ifGenerationMatch`).
    Match(&'a Version),
}

impl Condition<'_> {
    /// The start of a message about the write.
    pub fn action(&self) -> &'static str {
        match self {
            Condition::None => "cannot write",
            Condition::Absent => "cannot create",
            Condition::Match(_) => "cannot replace",
        }
    }
}

/// What a small write came to.
pub(super) enum Small {
    /// The service's answer, a success or a refusal, for the caller to judge.
    Answer(Response),
    /// The precondition did not hold: `None`, or the object's version when
    /// what is there is this write's own earlier attempt.
    Unmet(Option<Version>),
}

/// Sends a small write in one request, again after a transient failure.
/// `unmet` tells an answer that says the precondition did not hold. When it
/// says so on a retry, an earlier attempt may have landed without its
/// answer: the object is ours if `read_back` finds our bytes there.
pub(super) fn put_small(
    service: &Service,
    backoff: &Backoff,
    what: &str,
    data: &[u8],
    make: impl Fn() -> anyhow::Result<RequestBuilder>,
    unmet: impl Fn(&Response) -> bool,
    read_back: impl FnOnce() -> anyhow::Result<Option<(Vec<u8>, Version)>>,
) -> anyhow::Result<Small> {
    let log = format!("{what} ({})", service.name);
    // `None`: unmet on a retry, to be read back.
    let small = retry::retry(backoff, &log, |attempt| {
        let request = make().map_err(Failure::Fatal)?;
        match service.outcome(request.send()) {
            Outcome::Failed(r) if unmet(&r) && attempt > 1 => Ok(None),
            Outcome::Failed(r) if unmet(&r) => Ok(Some(Small::Unmet(None))),
            Outcome::Done(r) | Outcome::Failed(r) => Ok(Some(Small::Answer(*r))),
            Outcome::Transient(t) => Err(Failure::Transient(t)),
        }
    })
    .map_err(|stop| stop.into_error(what))?;
    match small {
        Some(small) => Ok(small),
        None => Ok(Small::Unmet(match read_back()? {
            Some((there, version)) if there == data => Some(version),
            _ => None,
        })),
    }
}

/// An error and its causes, one after another, with anything secret-looking
/// cleaned out.
pub(super) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    crate::util::secret::clean(&text)
}
