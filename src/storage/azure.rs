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
//! `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_SAS_TOKEN`, else Microsoft
//! Entra ID (see `entra`: service principal, workload identity, managed
//! identity, Azure CLI). With a key every request is signed (SharedKey); a
//! SAS token is added to each URL; an Entra ID token is a bearer token. The
//! endpoint is `endpoint` (path-style emulators such as Azurite:
//! `http://127.0.0.1:10000/devstoreaccount1`), else the connection string's
//! `BlobEndpoint`, else `https://{account}.blob.core.windows.net`. Keys,
//! tokens and connection strings never appear in messages.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use sha2::Sha256;

use super::config::{AzureConfig, ObjectLock};
use super::http::{self, Condition, Service, Small, enc};
use super::parts::{PartSizes, PartWriter, Parts};
use super::rest::{Api, Common, Page, Remote};
use super::retry::Failure;
use super::{ObjectWriter, Version};
use crate::util::secret::Secret;

/// The DNS suffix of Azure's public cloud.
const PUBLIC_SUFFIX: &str = "core.windows.net";

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
    /// A bearer token from Microsoft Entra ID.
    Entra(super::entra::Entra),
}

/// What every request needs; shared with upload threads.
pub(super) struct Inner {
    account: String,
    container: String,
    /// The path of `base` (`/devstoreaccount1` for Azurite), for signing.
    base_path: String,
    auth: Auth,
    access_tier: Option<String>,
    object_lock: Option<ObjectLock>,
    common: Common,
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
    let header_code = http::header_text(&response, "x-ms-error-code");
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
        let (conn, key, token) = if s.credential.is_some() {
            (None, None, None)
        } else if conn.is_none() && key.is_none() && token.is_none() {
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
                    let suffix = c
                        .suffix
                        .as_deref()
                        .or(s.endpoint_suffix.as_deref())
                        .unwrap_or(PUBLIC_SUFFIX);
                    Some(format!("{protocol}://{account}.blob.{suffix}"))
                });
            }
            Some(match (&c.key, &c.sas) {
                (Some(k), _) => decode_key(name, k)?,
                (None, Some(t)) => sas(t),
                (None, None) => anyhow::bail!(
                    "storage `{name}`: the connection string has neither AccountKey nor SharedAccessSignature"
                ),
            })
        } else if let Some(k) = key {
            Some(decode_key(name, &k)?)
        } else {
            // None: Entra ID, once the endpoint is known.
            token.map(|t| sas(&t))
        };
        let account = account
            .or_else(|| env("AZURE_STORAGE_ACCOUNT"))
            .with_context(|| {
                format!(
                    "storage `{name}`: no Azure account: set `account` or AZURE_STORAGE_ACCOUNT"
                )
            })?;
        let base = endpoint
            .unwrap_or_else(|| {
                let suffix = s.endpoint_suffix.as_deref().unwrap_or(PUBLIC_SUFFIX);
                format!("https://{account}.blob.{suffix}")
            })
            .trim_end_matches('/')
            .to_string();
        let parsed = url::Url::parse(&base)
            .with_context(|| format!("storage `{name}`: `endpoint` is not a URL"))?;
        let base_path = parsed.path().trim_end_matches('/').to_string();
        let auth = match auth {
            Some(auth) => auth,
            None if parsed.scheme() != "https" => {
                anyhow::bail!(
                    "storage `{name}`: no Azure credentials for {base}: set `account_key`, `sas_token` or `connection_string` (or `_file`), or AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN; Entra ID sign-in needs an https endpoint, since a bearer token is never sent in clear"
                );
            }
            None => Auth::Entra(super::entra::Entra::new(name, s)?),
        };
        let mib = s.part_size_mib.unwrap_or(DEFAULT_BLOCK_MIB).max(1);
        let in_flight = s.parallel_parts.unwrap_or(DEFAULT_IN_FLIGHT).max(1) as usize;
        Ok(Azure {
            name: name.to_string(),
            block: ((mib << 20) as usize).min(MAX_BLOCK),
            in_flight,
            inner: Arc::new(Inner {
                common: Common::new(name, format!("az://{container}"), base)?,
                account,
                container,
                base_path,
                auth,
                access_tier: s.access_tier.clone(),
                object_lock: s.object_lock,
            }),
        })
    }
}

impl Inner {
    /// A signed request. `key` is the blob (None: the container), `query`
    /// unencoded pairs, `headers` the `x-ms-*` and conditional headers.
    fn request(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<RequestBuilder> {
        let mut path = format!("/{}", enc(&self.container, false));
        if let Some(k) = key {
            path.push('/');
            path.push_str(&enc(k, true));
        }
        let mut url = format!("{}{path}", self.common.base);
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
        let mut r = self.common.http.request(method.clone(), &url);
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
        if let Auth::Entra(entra) = &self.auth {
            let mut value = reqwest::header::HeaderValue::from_str(&format!(
                "Bearer {}",
                entra.token()?.expose()
            ))
            .map_err(|_| {
                anyhow::anyhow!(
                    "{}): {} gave a token that is not header text",
                    self.common.label,
                    entra.what()
                )
            })?;
            value.set_sensitive(true);
            r = r.header("Authorization", value);
        }
        Ok(match body {
            Some(b) => r.body(b),
            None if method == reqwest::Method::PUT => r.header("Content-Length", "0"),
            None => r,
        })
    }

    /// Sends the request `make` builds until it succeeds, fails for good, or
    /// runs out of attempts. A 404 (but a missing container), or a 412 (a
    /// precondition did not hold), is returned as `Ok` for the caller to judge.
    fn send(&self, what: &str, make: impl Fn() -> Result<RequestBuilder>) -> Result<Response> {
        http::send(
            &Self::SERVICE,
            &self.common.backoff,
            what,
            make,
            |r| match r.status() {
                StatusCode::PRECONDITION_FAILED => Ok(r),
                StatusCode::NOT_FOUND if !Inner::container_missing(&r) => Ok(r),
                _ => Err(self.refused(r)),
            },
        )
    }

    /// The reason for a refusal, with a hint for the usual causes.
    fn refused(&self, r: Response) -> String {
        let (status, code, message) = answer_parts(r);
        let hint = match code.as_str() {
            "ContainerNotFound" => format!("the container `{}` does not exist", self.container),
            "BlobImmutableDueToPolicy" => {
                "an immutability policy holds the blob until its date".to_string()
            }
            "KeyBasedAuthenticationNotPermitted" => {
                "the account does not allow Shared Key: drop the account key, SAS token or connection string and sign in with Entra ID".to_string()
            }
            "AuthenticationFailed" | "AuthorizationFailure" | "InvalidAuthenticationInfo" => {
                match &self.auth {
                    Auth::Entra(e) => format!("the token from {} was refused", e.what()),
                    _ => "wrong account key or SAS token".to_string(),
                }
            }
            "AuthorizationPermissionMismatch" | "AuthorizationResourceTypeMismatch" => {
                match &self.auth {
                    Auth::Entra(e) => format!(
                        "{} may not do this: give it the `Storage Blob Data Contributor` role on the container",
                        e.what()
                    ),
                    _ => "the credentials may not do this".to_string(),
                }
            }
            _ if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED => {
                match &self.auth {
                    Auth::Entra(e) => format!("check the role of {} on the container", e.what()),
                    _ => "check the account key or SAS token".to_string(),
                }
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
        self.immutability(&mut headers);
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

    /// The version-level immutability policy of `object_lock`, for a new
    /// backup blob.
    fn immutability(&self, headers: &mut Vec<(&str, String)>) {
        if let Some(lock) = &self.object_lock {
            headers.push((
                "x-ms-immutability-policy-until-date",
                lock.until().format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            ));
            headers.push((
                "x-ms-immutability-policy-mode",
                lock.azure_gcs_mode().into(),
            ));
        }
    }

    /// Whether an answer says the container does not exist.
    fn container_missing(r: &Response) -> bool {
        r.headers()
            .get("x-ms-error-code")
            .is_some_and(|c| c == "ContainerNotFound")
    }
}

/// The id of block `n`: base64 of a fixed-width number, so all are equally long.
fn block_id(n: u64) -> String {
    STANDARD.encode(format!("dbkeep-{n:010}"))
}

impl Api for Inner {
    /// How Azure answers are judged.
    const SERVICE: Service = Service {
        name: "Azure",
        answer,
        also_done: None,
    };

    fn common(&self) -> &Common {
        &self.common
    }

    fn size(&self, key: &str) -> Result<u64> {
        let what = self.what("cannot read", key);
        let r = self.send(&what, || {
            self.request(reqwest::Method::HEAD, Some(key), &[], &[], None)
        })?;
        if r.status() == StatusCode::NOT_FOUND {
            anyhow::bail!("{what}: no such blob");
        }
        http::header_text(&r, reqwest::header::CONTENT_LENGTH)
            .and_then(|s| s.parse::<u64>().ok())
            .with_context(|| format!("{what}: the server gave no blob size"))
    }

    fn get(&self, key: &str, offset: u64) -> Result<Response, Failure<String>> {
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push(("x-ms-range", format!("bytes={offset}-")));
        }
        let r = self
            .request(reqwest::Method::GET, Some(key), &[], &headers, None)
            .map_err(|e| Failure::Fatal(format!("{e:#}")))?;
        http::ranged(&Self::SERVICE, r.send(), offset, |r| self.refused(r))
    }

    fn page(&self, prefix: &str, token: Option<&str>, what: &str) -> Result<Page> {
        let mut query = vec![("restype", "container"), ("comp", "list")];
        if !prefix.is_empty() {
            query.push(("prefix", prefix));
        }
        if let Some(marker) = token {
            query.push(("marker", marker));
        }
        let r = self.send(what, || {
            self.request(reqwest::Method::GET, None, &query, &[], None)
        })?;
        if r.status() == StatusCode::NOT_FOUND {
            anyhow::bail!("{what}: {}", self.refused(r));
        }
        let xml = crate::util::read_capped(r, crate::util::PAGE_MAX)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        let mut keys = Vec::new();
        let mut at = 0;
        while let Some((blob, end)) = element(&xml, "Blob", at) {
            if let Some((name, _)) = element(blob, "Name", 0) {
                keys.push(unescape(name));
            }
            at = end;
        }
        let next = element(&xml, "NextMarker", 0)
            .map(|(m, _)| m.trim())
            .filter(|m| !m.is_empty())
            .map(unescape);
        Ok((keys, next))
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.send(&self.what("cannot delete", key), || {
            self.request(reqwest::Method::DELETE, Some(key), &[], &[], None)
        })?;
        Ok(())
    }

    /// One Put Blob; the version is the new ETag. An unmet condition is a
    /// 409 or 412, or a 404 for `If-Match`.
    fn put_small(&self, key: &str, data: &[u8], condition: Condition) -> Result<Option<Version>> {
        let what = self.what(condition.action(), key);
        let body = Bytes::copy_from_slice(data);
        let mut headers = vec![("x-ms-blob-type", "BlockBlob".to_string())];
        if let Some(t) = &self.access_tier {
            headers.push(("x-ms-access-tier", t.clone()));
        }
        match condition {
            Condition::None => self.immutability(&mut headers),
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
        let unmet = |r: &Response| {
            let status = r.status();
            !Inner::container_missing(r)
                && match condition {
                    Condition::None => false,
                    Condition::Absent => matches!(
                        status,
                        StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED
                    ),
                    Condition::Match(_) => matches!(
                        status,
                        StatusCode::NOT_FOUND | StatusCode::PRECONDITION_FAILED
                    ),
                }
        };
        let r = match self.send_small(key, data, &what, make, unmet)? {
            Small::Unmet(version) => return Ok(version),
            Small::Answer(r) if r.status().is_success() => r,
            Small::Answer(r) => anyhow::bail!("{what}: {}", self.refused(r)),
        };
        match http::header_text(&r, "etag") {
            Some(etag) => Ok(Some(Version(etag))),
            None if matches!(condition, Condition::None) => Ok(Some(Version(String::new()))),
            None => anyhow::bail!("{what}: the server sent no ETag"),
        }
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let what = self.what("cannot read", key);
        let r = self.send(&what, || {
            self.request(reqwest::Method::GET, Some(key), &[], &[], None)
        })?;
        http::versioned(r, &what, "etag", "ETag")
    }

    /// The blob's `x-ms-immutability-policy-until-date`, while it is to come.
    fn retained_until(&self, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let what = self.what("cannot read the retention of", key);
        let r = self.send(&what, || {
            self.request(reqwest::Method::HEAD, Some(key), &[], &[], None)
        })?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let Some(text) = http::header_text(&r, "x-ms-immutability-policy-until-date") else {
            return Ok(None);
        };
        let until = chrono::DateTime::parse_from_rfc2822(&text)
            .map_err(|_| {
                anyhow::anyhow!("{what}: `{}` is not a date", crate::util::printable(&text))
            })?
            .with_timezone(&chrono::Utc);
        Ok(Some(until).filter(|u| *u > chrono::Utc::now()))
    }

    /// The version is an ETag.
    fn delete_if(&self, key: &str, version: &Version) -> Result<bool> {
        let what = self.what("cannot delete", key);
        let headers = [("If-Match", version.0.clone())];
        let r = self.send(&what, || {
            self.request(reqwest::Method::DELETE, Some(key), &[], &headers, None)
        })?;
        Ok(r.status().is_success())
    }
}

impl Remote for Azure {
    type Api = Inner;

    fn parts(&self) -> (&str, &Arc<Inner>) {
        (&self.name, &self.inner)
    }

    fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let sizes = PartSizes {
            base: self.block,
            every: BLOCKS_PER_SIZE,
            max: MAX_BLOCK,
        };
        Ok(Box::new(PartWriter::new(
            self.inner.what("upload", key),
            sizes,
            Blocks {
                inner: self.inner.clone(),
                key: key.to_string(),
                in_flight: self.in_flight,
                ids: Vec::new(),
                running: VecDeque::new(),
            },
        )))
    }
}

/// A block upload in progress: up to `in_flight` threads stage blocks while
/// the writer fills the next one. Staged blocks are never visible, and Azure
/// drops uncommitted ones on its own.
struct Blocks {
    inner: Arc<Inner>,
    key: String,
    in_flight: usize,
    /// The ids of the blocks staged so far, in order.
    ids: Vec<String>,
    running: VecDeque<JoinHandle<Result<()>>>,
}

impl Blocks {
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
}

impl Parts for Blocks {
    /// Stages the block in a thread, waiting first when enough are busy.
    fn send(&mut self, data: Bytes) -> Result<()> {
        let n = self.ids.len() as u64;
        if n >= MAX_BLOCKS {
            anyhow::bail!(
                "{}: more than {MAX_BLOCKS} blocks",
                self.inner.what("upload", &self.key)
            );
        }
        while self.running.len() >= self.in_flight {
            self.wait_one()?;
        }
        let id = block_id(n);
        self.ids.push(id.clone());
        let (inner, key) = (self.inner.clone(), self.key.clone());
        let handle = std::thread::Builder::new()
            .name("dbkeep-azure".into())
            .spawn(move || inner.put_block(&key, &id, data))?;
        self.running.push_back(handle);
        Ok(())
    }

    fn put_whole(&mut self, data: Bytes) -> Result<()> {
        self.inner.put_small(&self.key, &data, Condition::None)?;
        Ok(())
    }

    /// Stages the rest, waits for every block, and commits them in order.
    fn finish(&mut self, rest: Bytes) -> Result<()> {
        if !rest.is_empty()
            && let Err(e) = self.send(rest)
        {
            let _ = self.wait_all();
            return Err(e);
        }
        self.wait_all()?;
        self.inner.put_block_list(&self.key, &self.ids)
    }

    fn cancel(&mut self) {
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
        let sizes = PartSizes {
            base: 16 << 20,
            every: BLOCKS_PER_SIZE,
            max: MAX_BLOCK,
        };
        let total: u64 = (0..MAX_BLOCKS).map(|n| sizes.of(n) as u64).sum();
        assert!(total > 5u64 << 40);
    }

    #[test]
    fn a_sovereign_cloud_is_reached_through_its_suffix() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s = AzureConfig {
            container: "c".into(),
            account: Some("acct".into()),
            account_key: Some(Secret::new("a2V5")),
            endpoint_suffix: Some("core.chinacloudapi.cn".into()),
            ..Default::default()
        };
        let a = Azure::new("az", &s).unwrap();
        assert_eq!(
            a.inner.common.base,
            "https://acct.blob.core.chinacloudapi.cn"
        );
        let public = AzureConfig {
            endpoint_suffix: None,
            ..s
        };
        let a = Azure::new("az", &public).unwrap();
        assert_eq!(a.inner.common.base, "https://acct.blob.core.windows.net");
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
