//! Azure Blob Storage, over its REST API.
//!
//! Uploads stage blocks (Put Block) as the stream arrives, at most
//! `parallel_parts` (default 4) at once; a writer that has that many waits.
//! Put Block List then commits them in order, and only then does the blob
//! exist. Memory is block size × (blocks in flight + 1): 16 MiB × 5 = 80 MiB
//! by default. Blocks start at `part_size_mib` (default 16) and double every
//! 5,000 blocks (up to 4,000 MiB), so 50,000 blocks reach past 5 TiB without
//! knowing the size in advance; the bound above holds for the first 80 GiB
//! of a blob at the default size. A blob smaller than one block is a single
//! Put Blob.
//!
//! Each request is retried on transient errors (5xx, 429, 408, timeouts,
//! connection resets) with exponential backoff and jitter. After a permanent
//! failure no Put Block List is sent, so no blob is committed; the staged
//! blocks are never visible and Azure discards uncommitted blocks on its own
//! after a week. Downloads stream and resume with `x-ms-range` after an
//! interruption.
//!
//! Credentials: `connection_string`, `account_key` or `sas_token` (each with
//! a `_file` variant), else `AZURE_STORAGE_CONNECTION_STRING`, else
//! `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_KEY`, else
//! `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_SAS_TOKEN`. With a key every
//! request is signed (SharedKey); a SAS token is added to each URL. The
//! endpoint is `endpoint` (path-style emulators such as Azurite:
//! `http://127.0.0.1:10000/devstoreaccount1`), else the connection string's
//! `BlobEndpoint`, else `https://{account}.blob.core.windows.net`. Keys,
//! tokens and connection strings never appear in messages.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use sha2::Sha256;

use super::config::AzureConfig;
use super::http::{self, Outcome, enc};
use super::resume::{self, Refused};
use super::retry::Backoff;
use super::{ObjectWriter, Storage, Version, check_key};
use crate::util::secret::Secret;

/// Default block size.
const DEFAULT_BLOCK_MIB: u64 = 16;
/// Default blocks staged at once.
const DEFAULT_IN_FLIGHT: u32 = 4;
/// The largest block Azure takes.
const MAX_BLOCK: usize = 4000 << 20;
/// Blocks of one size before the size doubles.
const BLOCKS_PER_SIZE: u64 = 5000;
/// Azure's limit of blocks in one blob.
const MAX_BLOCKS: u64 = 50_000;
/// The REST API version spoken.
const API_VERSION: &str = "2021-08-06";

/// An Azure Blob Storage container.
pub struct Azure {
    name: String,
    inner: Arc<Inner>,
    block: usize,
    in_flight: usize,
}

/// How requests prove who sends them.
enum Auth {
    /// SharedKey: HMAC-SHA256 with the decoded account key.
    Key(Vec<u8>),
    /// A SAS token, added to the query.
    Sas(Secret),
}

/// What every request needs; shared with upload threads.
struct Inner {
    account: String,
    container: String,
    base: String,
    /// The path of `base` (`/devstoreaccount1` for Azurite), for signing.
    base_path: String,
    http: Client,
    auth: Auth,
    access_tier: Option<String>,
    backoff: Backoff,
    label: String,
}

/// The text between `<tag>` and `</tag>`, from `from` on: (text, end).
fn element<'a>(xml: &'a str, tag: &str, from: usize) -> Option<(&'a str, usize)> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml[from..].find(&open)? + from + open.len();
    let end = xml[start..].find(&close)? + start;
    Some((&xml[start..end], end + close.len()))
}

/// Undoes XML's escapes.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The error code and message of an error response.
fn answer_parts(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    let header_code = response
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = crate::util::error_text(response);
    let code = header_code
        .or_else(|| element(&body, "Code", 0).map(|(c, _)| c.to_string()))
        .unwrap_or_default();
    let message = element(&body, "Message", 0)
        .map(|(m, _)| unescape(m.lines().next().unwrap_or("")))
        .unwrap_or_default();
    (status, code, crate::util::secret::clean(message.trim()))
}

/// The message of an error response: the service's own words, short.
fn answer(response: Response) -> String {
    let (status, code, message) = answer_parts(response);
    match (code.is_empty(), message.is_empty()) {
        (true, true) => format!("HTTP {status}"),
        (false, true) => format!("HTTP {status}: {code}"),
        (true, false) => format!("HTTP {status}: {message}"),
        (false, false) => format!("HTTP {status}: {code}: {message}"),
    }
}

/// How Azure answers are judged.
const SERVICE: http::Service = http::Service {
    name: "Azure",
    answer,
    also_done: None,
};

fn outcome(result: reqwest::Result<Response>) -> Outcome {
    http::outcome(result, SERVICE.answer, SERVICE.also_done)
}

/// A setting from the config, its `_file` variant, or nothing.
fn setting(
    name: &str,
    value: &Option<Secret>,
    file: &Option<std::path::PathBuf>,
    what: &str,
) -> Result<Option<String>> {
    if let Some(v) = value {
        return Ok(Some(v.expose().trim().to_string()));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "storage `{name}`: cannot read `{what}_file` {}",
                path.display()
            )
        })?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(None)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The parts of a connection string that matter here.
#[derive(Default)]
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    endpoint: Option<String>,
    protocol: Option<String>,
    suffix: Option<String>,
}

fn parse_connection_string(text: &str) -> ConnectionString {
    let mut c = ConnectionString::default();
    for part in text.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "accountname" => c.account = Some(v),
            "accountkey" => c.key = Some(v),
            "sharedaccesssignature" => c.sas = Some(v),
            "blobendpoint" => c.endpoint = Some(v),
            "defaultendpointsprotocol" => c.protocol = Some(v),
            "endpointsuffix" => c.suffix = Some(v),
            _ => {}
        }
    }
    c
}

/// Decodes an account key, without ever showing it.
fn decode_key(name: &str, key: &str) -> Result<Auth> {
    crate::util::secret::register(key);
    let bytes = STANDARD
        .decode(key.trim())
        .map_err(|_| anyhow::anyhow!("storage `{name}`: the account key is not valid base64"))?;
    Ok(Auth::Key(bytes))
}

fn sas(token: &str) -> Auth {
    let token = token.trim().trim_start_matches('?').to_string();
    crate::util::secret::register(&token);
    for part in token.split('&') {
        if let Some(sig) = part.strip_prefix("sig=") {
            crate::util::secret::register(sig);
        }
    }
    Auth::Sas(Secret::new(token))
}

impl Azure {
    /// Connects to the container a storage entry names.
    pub fn new(name: &str, s: &AzureConfig) -> Result<Azure> {
        let container = s.container.clone();
        let key = setting(name, &s.account_key, &s.account_key_file, "account_key")?;
        let token = setting(name, &s.sas_token, &s.sas_token_file, "sas_token")?;
        let conn = setting(
            name,
            &s.connection_string,
            &s.connection_string_file,
            "connection_string",
        )?;
        let (conn, key, token) = if conn.is_none() && key.is_none() && token.is_none() {
            match env("AZURE_STORAGE_CONNECTION_STRING") {
                Some(c) => (Some(c), None, None),
                None => (
                    None,
                    env("AZURE_STORAGE_KEY"),
                    env("AZURE_STORAGE_KEY")
                        .is_none()
                        .then(|| env("AZURE_STORAGE_SAS_TOKEN"))
                        .flatten(),
                ),
            }
        } else {
            (conn, key, token)
        };
        let mut account = s.account.clone();
        let mut endpoint = s.endpoint.clone();
        let auth = if let Some(text) = conn {
            crate::util::secret::register(&text);
            let c = parse_connection_string(&text);
            if account.is_none() {
                account = c.account.clone();
            }
            if endpoint.is_none() {
                endpoint = c.endpoint.clone().or_else(|| {
                    let account = account.as_deref()?;
                    let protocol = c.protocol.as_deref().unwrap_or("https");
                    let suffix = c.suffix.as_deref().unwrap_or("core.windows.net");
                    Some(format!("{protocol}://{account}.blob.{suffix}"))
                });
            }
            match (&c.key, &c.sas) {
                (Some(k), _) => decode_key(name, k)?,
                (None, Some(t)) => sas(t),
                (None, None) => anyhow::bail!(
                    "storage `{name}`: the connection string has neither AccountKey nor SharedAccessSignature"
                ),
            }
        } else if let Some(k) = key {
            decode_key(name, &k)?
        } else if let Some(t) = token {
            sas(&t)
        } else {
            anyhow::bail!(
                "storage `{name}`: no Azure credentials: set `account_key`, `sas_token` or `connection_string` (or `_file`), or AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
            )
        };
        let account = account
            .or_else(|| env("AZURE_STORAGE_ACCOUNT"))
            .with_context(|| {
                format!(
                    "storage `{name}`: no Azure account: set `account` or AZURE_STORAGE_ACCOUNT"
                )
            })?;
        let base = endpoint
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"))
            .trim_end_matches('/')
            .to_string();
        let parsed = url::Url::parse(&base)
            .with_context(|| format!("storage `{name}`: `endpoint` is not a URL"))?;
        let base_path = parsed.path().trim_end_matches('/').to_string();
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("dbkeep/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mib = s.part_size_mib.unwrap_or(DEFAULT_BLOCK_MIB).max(1);
        let in_flight = s.parallel_parts.unwrap_or(DEFAULT_IN_FLIGHT).max(1) as usize;
        Ok(Azure {
            name: name.to_string(),
            block: ((mib << 20) as usize).min(MAX_BLOCK),
            in_flight,
            inner: Arc::new(Inner {
                label: format!("storage `{name}` (az://{container}"),
                account,
                container,
                base,
                base_path,
                http,
                auth,
                access_tier: s.access_tier.clone(),
                backoff: Backoff::default(),
            }),
        })
    }
}

impl Inner {
    /// `storage `x` (az://container/key): action`.
    fn what(&self, action: &str, key: &str) -> String {
        format!("{}/{key}): {action}", self.label)
    }

    /// A signed request. `key` is the blob (None: the container), `query`
    /// unencoded pairs, `headers` the `x-ms-*` and conditional headers.
    fn request(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Option<Bytes>,
    ) -> RequestBuilder {
        let mut path = format!("/{}", enc(&self.container, false));
        if let Some(k) = key {
            path.push('/');
            path.push_str(&enc(k, true));
        }
        let mut url = format!("{}{path}", self.base);
        let mut sep = '?';
        for (k, v) in query {
            url.push(sep);
            url.push_str(&format!("{k}={}", enc(v, false)));
            sep = '&';
        }
        if let Auth::Sas(token) = &self.auth {
            url.push(sep);
            url.push_str(token.expose());
        }
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let mut ms: Vec<(String, String)> = vec![
            ("x-ms-date".into(), date),
            ("x-ms-version".into(), API_VERSION.into()),
        ];
        let mut if_match = String::new();
        let mut if_none_match = String::new();
        let mut r = self.http.request(method.clone(), &url);
        for (k, v) in headers {
            if k.starts_with("x-ms-") {
                ms.push((k.to_string(), v.clone()));
            } else if *k == "If-None-Match" {
                if_none_match = v.clone();
                r = r.header(*k, v);
            } else if *k == "If-Match" {
                if_match = v.clone();
                r = r.header(*k, v);
            }
        }
        ms.sort();
        for (k, v) in &ms {
            r = r.header(k.as_str(), v.as_str());
        }
        let length = body.as_ref().map(|b| b.len()).unwrap_or(0);
        if let Auth::Key(secret) = &self.auth {
            let mut canonical = String::new();
            for (k, v) in &ms {
                canonical.push_str(&format!("{k}:{}\n", v.trim()));
            }
            let mut resource = format!("/{}{}{path}", self.account, self.base_path);
            let mut q: Vec<(String, &str)> = query
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                .collect();
            q.sort();
            for (k, v) in q {
                resource.push_str(&format!("\n{k}:{v}"));
            }
            let to_sign = format!(
                "{method}\n\n\n{}\n\n\n\n\n{if_match}\n{if_none_match}\n\n\n{canonical}{resource}",
                if length > 0 {
                    length.to_string()
                } else {
                    String::new()
                }
            );
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
            mac.update(to_sign.as_bytes());
            let sig = STANDARD.encode(mac.finalize().into_bytes());
            r = r.header("Authorization", format!("SharedKey {}:{sig}", self.account));
        }
        match body {
            Some(b) => r.body(b),
            None if method == reqwest::Method::PUT => r.header("Content-Length", "0"),
            None => r,
        }
    }

    /// Sends the request `make` builds until it succeeds, fails for good, or
    /// runs out of attempts. A 404 (but a missing container), or a 412 (a
    /// precondition did not hold), is returned as `Ok` for the caller to judge.
    fn send(&self, what: &str, make: impl Fn() -> RequestBuilder) -> Result<Response> {
        http::send(
            &SERVICE,
            &self.backoff,
            what,
            || Ok(make()),
            |r| {
                let container_missing = r
                    .headers()
                    .get("x-ms-error-code")
                    .is_some_and(|c| c == "ContainerNotFound");
                match r.status() {
                    StatusCode::PRECONDITION_FAILED => Ok(r),
                    StatusCode::NOT_FOUND if !container_missing => Ok(r),
                    _ => Err(self.refused(r)),
                }
            },
        )
    }

    /// The reason for a refusal, with a hint for the usual causes.
    fn refused(&self, r: Response) -> String {
        let (status, code, message) = answer_parts(r);
        let hint = match code.as_str() {
            "ContainerNotFound" => format!("the container `{}` does not exist", self.container),
            "AuthenticationFailed" | "AuthorizationFailure" | "InvalidAuthenticationInfo" => {
                "wrong account key or SAS token".to_string()
            }
            "AuthorizationPermissionMismatch" | "AuthorizationResourceTypeMismatch" => {
                "the credentials may not do this".to_string()
            }
            _ if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED => {
                "check the account key or SAS token".to_string()
            }
            _ => String::new(),
        };
        let mut text = format!("HTTP {status}");
        for part in [hint.as_str(), code.as_str(), message.as_str()] {
            if !part.is_empty() {
                text.push_str(": ");
                text.push_str(part);
            }
        }
        text
    }

    /// Writes a small blob in one request, if `condition` holds: its new
    /// ETag, or `None` when it did not (409/412, or 404 for `If-Match`).
    fn put_blob(
        &self,
        key: &str,
        data: &[u8],
        condition: Condition<'_>,
    ) -> Result<Option<Version>> {
        let what = self.what(
            match condition {
                Condition::None => "cannot write",
                Condition::Absent => "cannot create",
                Condition::Match(_) => "cannot replace",
            },
            key,
        );
        let body = Bytes::copy_from_slice(data);
        let mut headers = vec![("x-ms-blob-type", "BlockBlob".to_string())];
        if let Some(t) = &self.access_tier {
            headers.push(("x-ms-access-tier", t.clone()));
        }
        match condition {
            Condition::None => {}
            Condition::Absent => headers.push(("If-None-Match", "*".to_string())),
            Condition::Match(v) => headers.push(("If-Match", v.0.clone())),
        }
        let make = || {
            self.request(
                reqwest::Method::PUT,
                Some(key),
                &[],
                &headers,
                Some(body.clone()),
            )
        };
        let mut attempt = 1;
        loop {
            match outcome(make().send()) {
                Outcome::Done(r) => {
                    let etag = r
                        .headers()
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    return match etag {
                        Some(etag) => Ok(Some(Version(etag))),
                        None if matches!(condition, Condition::None) => {
                            Ok(Some(Version(String::new())))
                        }
                        None => anyhow::bail!("{what}: the server sent no ETag"),
                    };
                }
                Outcome::Failed(r)
                    if match condition {
                        Condition::None => false,
                        Condition::Absent => matches!(
                            r.status(),
                            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED
                        ),
                        Condition::Match(_) => matches!(
                            r.status(),
                            StatusCode::NOT_FOUND | StatusCode::PRECONDITION_FAILED
                        ),
                    } =>
                {
                    if r.headers()
                        .get("x-ms-error-code")
                        .is_some_and(|c| c == "ContainerNotFound")
                    {
                        anyhow::bail!("{what}: {}", self.refused(*r));
                    }
                    if attempt > 1 {
                        // An earlier attempt may have landed without its
                        // answer: the blob is ours if it holds our bytes.
                        return Ok(match self.get_versioned(key)? {
                            Some((there, version)) if there == data => Some(version),
                            _ => None,
                        });
                    }
                    return Ok(None);
                }
                Outcome::Failed(r) => anyhow::bail!("{what}: {}", self.refused(*r)),
                Outcome::Transient(why) if attempt < self.backoff.attempts => {
                    tracing::debug!(what, attempt, error = %why, "transient Azure error, retrying");
                    std::thread::sleep(self.backoff.pause(attempt));
                    attempt += 1;
                }
                Outcome::Transient(why) => {
                    anyhow::bail!("{what}: {why} (after {attempt} attempts)")
                }
            }
        }
    }

    /// Reads a small blob whole with its ETag, or `None` when there is none.
    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let what = self.what("cannot read", key);
        let r = self.send(&what, || {
            self.request(reqwest::Method::GET, Some(key), &[], &[], None)
        })?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .with_context(|| format!("{what}: the server sent no ETag"))?;
        let bytes = crate::util::read_capped(r, crate::util::SMALL_OBJECT_MAX)
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        Ok(Some((bytes, Version(etag))))
    }

    /// Removes a blob if it is still at ETag `version`.
    fn delete_if(&self, key: &str, version: &Version) -> Result<bool> {
        let what = self.what("cannot delete", key);
        let headers = [("If-Match", version.0.clone())];
        let r = self.send(&what, || {
            self.request(reqwest::Method::DELETE, Some(key), &[], &headers, None)
        })?;
        Ok(r.status().is_success())
    }

    /// Stages one block.
    fn put_block(&self, key: &str, id: &str, data: Bytes) -> Result<()> {
        let what = self.what("cannot upload a block", key);
        let r = self.send(&what, || {
            self.request(
                reqwest::Method::PUT,
                Some(key),
                &[("comp", "block"), ("blockid", id)],
                &[],
                Some(data.clone()),
            )
        })?;
        if r.status() == StatusCode::NOT_FOUND {
            anyhow::bail!("{what}: {}", self.refused(r));
        }
        Ok(())
    }

    /// Commits the staged blocks, in order, as the blob.
    fn put_block_list(&self, key: &str, ids: &[String]) -> Result<()> {
        let what = self.what("cannot commit the blocks", key);
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in ids {
            xml.push_str(&format!("<Latest>{id}</Latest>"));
        }
        xml.push_str("</BlockList>");
        let body = Bytes::from(xml);
        let mut headers = Vec::new();
        if let Some(t) = &self.access_tier {
            headers.push(("x-ms-access-tier", t.clone()));
        }
        let r = self.send(&what, || {
            self.request(
                reqwest::Method::PUT,
                Some(key),
                &[("comp", "blocklist")],
                &headers,
                Some(body.clone()),
            )
        })?;
        if r.status() == StatusCode::NOT_FOUND {
            anyhow::bail!("{what}: {}", self.refused(r));
        }
        Ok(())
    }

    /// Starts reading `key` at `offset`.
    fn get(&self, key: &str, offset: u64) -> Result<Response, Outcome> {
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push(("x-ms-range", format!("bytes={offset}-")));
        }
        let r = self.request(reqwest::Method::GET, Some(key), &[], &headers, None);
        match outcome(r.send()) {
            Outcome::Done(r) if offset > 0 && r.status() != StatusCode::PARTIAL_CONTENT => Err(
                Outcome::Transient("the server ignored the range request".to_string()),
            ),
            Outcome::Done(r) => Ok(*r),
            other => Err(other),
        }
    }
}

/// The id of block `n`: base64 of a fixed-width number, so all are equally long.
fn block_id(n: u64) -> String {
    STANDARD.encode(format!("dbkeep-{n:010}"))
}

impl Storage for Azure {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        format!("az://{}", self.inner.container)
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        check_key(key)?;
        Ok(Box::new(AzureWriter {
            inner: self.inner.clone(),
            key: key.to_string(),
            base_block: self.block,
            in_flight: self.in_flight,
            buf: Vec::new(),
            next: 0,
            ids: Vec::new(),
            running: VecDeque::new(),
            broken: false,
        }))
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        check_key(key)?;
        let inner = &self.inner;
        let what = inner.what("cannot read", key);
        let r = inner.send(&what, || {
            inner.request(reqwest::Method::HEAD, Some(key), &[], &[], None)
        })?;
        if r.status() == StatusCode::NOT_FOUND {
            anyhow::bail!("{what}: no such blob");
        }
        let size = r
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<u64>().ok())
            .with_context(|| format!("{what}: the server gave no blob size"))?;
        let (fetcher, key) = (self.inner.clone(), key.to_string());
        Ok(Box::new(resume::Download::new(
            "Azure",
            inner.what("download", &key),
            size,
            inner.backoff,
            move |offset| match fetcher.get(&key, offset) {
                Ok(r) => Ok(r),
                Err(Outcome::Transient(why)) => Err(Refused::Transient(why)),
                Err(Outcome::Failed(r)) => Err(Refused::Failed(fetcher.refused(*r))),
                Err(Outcome::Done(_)) => unreachable!(),
            },
        )))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let inner = &self.inner;
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let what = inner.what("cannot list", &prefix);
        let mut keys = Vec::new();
        let mut marker = String::new();
        loop {
            let mut query = vec![("restype", "container"), ("comp", "list")];
            if !prefix.is_empty() {
                query.push(("prefix", prefix.as_str()));
            }
            if !marker.is_empty() {
                query.push(("marker", marker.as_str()));
            }
            let r = inner.send(&what, || {
                inner.request(reqwest::Method::GET, None, &query, &[], None)
            })?;
            if r.status() == StatusCode::NOT_FOUND {
                anyhow::bail!("{what}: {}", inner.refused(r));
            }
            let xml = crate::util::read_capped(r, crate::util::PAGE_MAX)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            let mut at = 0;
            while let Some((blob, end)) = element(&xml, "Blob", at) {
                if let Some((name, _)) = element(blob, "Name", 0) {
                    keys.push(unescape(name));
                }
                at = end;
            }
            match element(&xml, "NextMarker", 0) {
                Some((m, _)) if !m.trim().is_empty() => marker = unescape(m.trim()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let inner = &self.inner;
        inner.send(&inner.what("cannot delete", key), || {
            inner.request(reqwest::Method::DELETE, Some(key), &[], &[], None)
        })?;
        Ok(())
    }

    fn create_if_absent(&self, key: &str, data: &[u8]) -> Result<Option<Version>> {
        check_key(key)?;
        self.inner.put_blob(key, data, Condition::Absent)
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        check_key(key)?;
        self.inner.get_versioned(key)
    }

    fn replace_if(&self, key: &str, data: &[u8], version: &Version) -> Result<Option<Version>> {
        check_key(key)?;
        self.inner.put_blob(key, data, Condition::Match(version))
    }

    fn delete_if(&self, key: &str, version: &Version) -> Result<bool> {
        check_key(key)?;
        self.inner.delete_if(key, version)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        check_key(key)?;
        self.inner.put_blob(key, data, Condition::None)?;
        Ok(())
    }
}

/// What a small upload expects to find.
#[derive(Clone, Copy)]
enum Condition<'a> {
    /// Anything: no precondition.
    None,
    /// No blob (`If-None-Match: *`).
    Absent,
    /// The blob at this ETag (`If-Match`).
    Match(&'a Version),
}

/// A block upload in progress: the writer fills a block while up to
/// `in_flight` threads stage earlier ones.
struct AzureWriter {
    inner: Arc<Inner>,
    key: String,
    base_block: usize,
    in_flight: usize,
    buf: Vec<u8>,
    /// The number of the next block.
    next: u64,
    ids: Vec<String>,
    running: VecDeque<JoinHandle<Result<()>>>,
    /// Whether a write failed: nothing may be committed after that.
    broken: bool,
}

impl AzureWriter {
    /// The size of the block being filled: doubled every 5,000 blocks.
    fn block_size(&self) -> usize {
        let doublings = (self.next / BLOCKS_PER_SIZE).min(20) as u32;
        self.base_block
            .saturating_mul(1 << doublings)
            .min(MAX_BLOCK)
    }

    /// Waits for the oldest staging thread.
    fn wait_one(&mut self) -> Result<()> {
        match self.running.pop_front() {
            Some(h) => h
                .join()
                .map_err(|_| anyhow::anyhow!("an Azure upload thread panicked"))?,
            None => Ok(()),
        }
    }

    fn wait_all(&mut self) -> Result<()> {
        let mut first = Ok(());
        while !self.running.is_empty() {
            let r = self.wait_one();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Stages the full buffer in a thread, waiting first when enough are busy.
    fn stage(&mut self) -> Result<()> {
        if self.next >= MAX_BLOCKS {
            anyhow::bail!(
                "{}: more than {MAX_BLOCKS} blocks",
                self.inner.what("upload", &self.key)
            );
        }
        while self.running.len() >= self.in_flight {
            self.wait_one()?;
        }
        let data = Bytes::from(std::mem::take(&mut self.buf));
        let id = block_id(self.next);
        self.next += 1;
        self.ids.push(id.clone());
        let (inner, key) = (self.inner.clone(), self.key.clone());
        let handle = std::thread::Builder::new()
            .name("dbkeep-azure".into())
            .spawn(move || inner.put_block(&key, &id, data))?;
        self.running.push_back(handle);
        Ok(())
    }
}

impl Write for AzureWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Err(io::Error::other("the upload already failed"));
        }
        let mut rest = data;
        while !rest.is_empty() {
            let size = self.block_size();
            if self.buf.capacity() < size {
                self.buf.reserve_exact(size - self.buf.len());
            }
            let take = (size - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() >= size
                && let Err(e) = self.stage()
            {
                self.broken = true;
                return Err(io::Error::other(format!("{e:#}")));
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for AzureWriter {
    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.broken {
            let _ = self.wait_all();
            anyhow::bail!(
                "{}: a write failed, so nothing is committed",
                self.inner.what("upload", &self.key)
            );
        }
        if self.next == 0 {
            // Smaller than one block: one request.
            let rest = std::mem::take(&mut self.buf);
            self.inner.put_blob(&self.key, &rest, Condition::None)?;
            return Ok(());
        }
        if !self.buf.is_empty() {
            let staged = self.stage();
            if let Err(e) = staged {
                let _ = self.wait_all();
                return Err(e);
            }
        }
        self.wait_all()?;
        self.inner.put_block_list(&self.key, &self.ids)
    }

    fn abort(mut self: Box<Self>) {
        // Staged blocks are never committed; Azure drops them on its own.
        let _ = self.wait_all();
    }
}

impl Drop for AzureWriter {
    fn drop(&mut self) {
        let _ = self.wait_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_are_equally_long() {
        assert_eq!(block_id(0).len(), block_id(49_999).len());
    }

    #[test]
    fn blocks_reach_five_tib() {
        let mut total = 0u64;
        let base = 16u64 << 20;
        for n in 0..MAX_BLOCKS {
            let d = (n / BLOCKS_PER_SIZE).min(20) as u32;
            total += (base << d).min(MAX_BLOCK as u64);
        }
        assert!(total > 5u64 << 40);
    }

    #[test]
    fn connection_strings_are_parsed() {
        let c = parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=acc;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/acc;",
        );
        assert_eq!(c.account.as_deref(), Some("acc"));
        assert_eq!(c.key.as_deref(), Some("a2V5"));
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:1/acc"));
    }

    #[test]
    fn list_pages_are_parsed() {
        let xml = "<EnumerationResults><Blobs><Blob><Name>a/b&amp;c</Name></Blob><Blob><Name>a/d</Name></Blob></Blobs><NextMarker>m</NextMarker></EnumerationResults>";
        let (blob, end) = element(xml, "Blob", 0).unwrap();
        assert_eq!(unescape(element(blob, "Name", 0).unwrap().0), "a/b&c");
        assert!(element(xml, "Blob", end).is_some());
    }
}
