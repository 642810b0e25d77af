//! Google Cloud Storage, over its JSON API.
//!
//! Uploads are resumable upload sessions: the stream is cut into chunks of
//! `part_size_mib` (default 16 MiB, always a multiple of 256 KiB) and sent
//! one after another, because a session takes its bytes in order. One chunk
//! is being sent while the next one fills, so memory is chunk size × 2:
//! 32 MiB by default. `parallel_parts` does not apply and is refused.
//!
//! Each request is retried on transient errors (5xx, 429, 408, timeouts,
//! connection resets) with exponential backoff and jitter. Before a chunk is
//! sent again, the session is asked how much it kept (`Content-Range:
//! bytes */*`) and the upload resumes from there. A permanent failure cancels
//! the session (DELETE on its URI), so no object is created. An object
//! smaller than one chunk goes up in one multipart request. Downloads stream
//! and resume with a `Range` request after an interruption.
//!
//! Credentials come from Google's `google-cloud-auth`, which mints, caches
//! and refreshes the tokens: `credentials_file` (a service-account key, an
//! authorized user, an `external_account` file for workload identity
//! federation, an impersonated service account), else Application Default
//! Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//! `application_default_credentials.json` (under `CLOUDSDK_CONFIG`, else
//! `~/.config/gcloud`, `%APPDATA%\gcloud` on Windows), then the metadata
//! server (`GCE_METADATA_HOST`, else `metadata.google.internal`, else its IP).
//! The endpoint is `endpoint`, else `STORAGE_EMULATOR_HOST`, else
//! `https://storage.googleapis.com`. Requests to an emulator carry no
//! credentials unless `credentials_file`, `GOOGLE_APPLICATION_CREDENTIALS`
//! or `GCE_METADATA_HOST` asks for them. Tokens and keys never appear in
//! messages.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::HeaderMap;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};

use super::config::{GcsConfig, ObjectLock};
use super::http::{self, Condition, Outcome, Service, Small};
use super::parts::{PartSizes, PartWriter, Parts};
use super::rest::{Api, Common, Page, Remote};
use super::retry::{self, Failure, Transient};
use super::{ObjectWriter, Version};

/// Default chunk size.
const DEFAULT_CHUNK_MIB: u64 = 16;
/// Chunks of a resumable session are multiples of this.
const CHUNK_QUANTUM: usize = 256 << 10;
/// The public endpoint.
const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";
/// Read and write access to objects.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// A GCS bucket.
pub struct Gcs {
    name: String,
    inner: Arc<Inner>,
    chunk: usize,
}

/// What every request needs; shared with upload threads.
pub(super) struct Inner {
    bucket: String,
    auth: Auth,
    storage_class: Option<String>,
    kms_key: Option<String>,
    object_lock: Option<ObjectLock>,
    common: Common,
}

/// Percent-encodes everything but unreserved characters (so `/` too).
fn enc(text: &str) -> String {
    http::enc(text, false)
}

/// A JSON answer, read up to [`crate::util::PAGE_MAX`] bytes.
fn json_capped(r: Response) -> Result<serde_json::Value> {
    let bytes = crate::util::read_capped(r, crate::util::PAGE_MAX)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// The message of an error response: the service's own words, short.
fn answer(response: Response) -> String {
    let status = response.status();
    let body = crate::util::error_text(response);
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    let message = message.trim();
    if message.is_empty() {
        format!("HTTP {status}")
    } else {
        crate::util::secret::clean(&format!("HTTP {status}: {message}"))
    }
}

impl Gcs {
    /// Connects to the bucket a storage entry names.
    pub fn new(name: &str, s: &GcsConfig) -> Result<Gcs> {
        let bucket = s.bucket.clone();
        let emulator = std::env::var("STORAGE_EMULATOR_HOST")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let (base, anonymous) = match (&s.endpoint, &emulator) {
            (Some(e), _) => (e.clone(), e.starts_with("http://")),
            (None, Some(host)) if host.contains("://") => (host.clone(), true),
            (None, Some(host)) => (format!("http://{host}"), true),
            (None, None) => (GOOGLE_ENDPOINT.to_string(), false),
        };
        let base = base.trim_end_matches('/').to_string();
        // An emulator gets credentials only when they are asked for.
        let asked = ["GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        let auth = match &s.credentials_file {
            Some(path) => Auth::from_file(path)
                .with_context(|| format!("storage `{name}`: bad `credentials_file`"))?,
            None if anonymous && !(asked && s.endpoint.is_some()) => Auth::None,
            None => Auth::default_credentials()
                .with_context(|| format!("storage `{name}`: no Google credentials"))?,
        };
        let mib = s.part_size_mib.unwrap_or(DEFAULT_CHUNK_MIB).max(1);
        let chunk = ((mib << 20) as usize).div_ceil(CHUNK_QUANTUM) * CHUNK_QUANTUM;
        Ok(Gcs {
            name: name.to_string(),
            chunk,
            inner: Arc::new(Inner {
                common: Common::new(name, format!("gs://{bucket}"), base)?,
                bucket,
                auth,
                storage_class: s.storage_class.clone(),
                kms_key: s.sse_kms_key_id.clone(),
                object_lock: s.object_lock,
            }),
        })
    }
}

impl Inner {
    fn object_url(&self, key: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.common.base,
            enc(&self.bucket),
            enc(key)
        )
    }

    /// A request with credentials.
    fn request(&self, method: reqwest::Method, url: &str) -> Result<RequestBuilder> {
        Ok(self
            .common
            .http
            .request(method, url)
            .headers(self.auth.headers()?))
    }

    /// Sends the request `make` builds until it succeeds, fails for good, or
    /// runs out of attempts. A 404, or a 412 (a precondition did not hold),
    /// is returned as `Ok` for the caller to judge.
    fn send(&self, what: &str, make: impl Fn() -> Result<RequestBuilder>) -> Result<Response> {
        let make = || make().with_context(|| what.to_string());
        http::send(
            &Self::SERVICE,
            &self.common.backoff,
            what,
            make,
            |r| match r.status() {
                StatusCode::NOT_FOUND | StatusCode::PRECONDITION_FAILED => Ok(r),
                _ => Err(self.refused(r)),
            },
        )
    }

    /// The reason for a refusal, with a hint for the usual causes.
    fn refused(&self, r: Response) -> String {
        let status = r.status();
        let text = answer(r);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                format!("{text} (check the credentials and their access to the bucket)")
            }
            _ => text,
        }
    }

    fn bucket_missing(&self, r: Response) -> String {
        format!(
            "the bucket `{}` does not exist ({})",
            self.bucket,
            answer(r)
        )
    }

    /// The JSON metadata of new objects; `retained` ones (artifacts and
    /// manifests, not the job lock) carry the `object_lock` retention.
    fn metadata(&self, key: &str, retained: bool) -> serde_json::Value {
        let mut m = serde_json::json!({ "name": key });
        if let Some(lock) = self.object_lock.filter(|_| retained) {
            m["retention"] = serde_json::json!({
                "mode": lock.azure_gcs_mode(),
                "retainUntilTime": lock.until().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
        }
        if let Some(c) = &self.storage_class {
            m["storageClass"] = c.clone().into();
        }
        if let Some(k) = &self.kms_key {
            m["kmsKeyName"] = k.clone().into();
        }
        m
    }

    /// Opens a resumable upload session; returns its URI.
    fn start_session(&self, key: &str) -> Result<String> {
        let what = self.what("cannot start the upload", key);
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
            self.common.base,
            enc(&self.bucket),
            enc(key)
        );
        let metadata = self.metadata(key, true).to_string();
        let r = self.send(&what, || {
            Ok(self
                .request(reqwest::Method::POST, &url)?
                .header(CONTENT_TYPE, "application/json; charset=UTF-8")
                .body(metadata.clone()))
        })?;
        if r.status() == StatusCode::NOT_FOUND {
            anyhow::bail!("{what}: {}", self.bucket_missing(r));
        }
        let uri = http::header_text(&r, LOCATION)
            .with_context(|| format!("{what}: the server gave no session URI"))?;
        crate::util::secret::register(&uri);
        Ok(uri)
    }

    /// Asks a session how many bytes it holds; `None` when it is complete.
    fn persisted(&self, session: &str) -> std::result::Result<Option<u64>, Outcome> {
        let r = self
            .request(reqwest::Method::PUT, session)
            .map_err(|e| Outcome::Transient(Transient::new(format!("{e:#}"))))?
            .header(CONTENT_RANGE, "bytes */*")
            .header(CONTENT_LENGTH, "0")
            .send();
        match Self::SERVICE.outcome(r) {
            Outcome::Done(r) if r.status().as_u16() == 308 => Ok(Some(kept(&r))),
            Outcome::Done(_) => Ok(None),
            other => Err(other),
        }
    }

    /// Sends the chunk that starts at `offset`; `total` is the object's size
    /// when this is the last chunk. After a transient failure the session is
    /// asked how much it kept, and the chunk goes on from there.
    fn send_chunk(
        &self,
        session: &str,
        what: &str,
        offset: u64,
        data: Bytes,
        total: Option<u64>,
    ) -> Result<()> {
        let end = offset + data.len() as u64;
        let mut pos = offset;
        let mut ask = false;
        let fatal = |e: anyhow::Error| Err(Failure::Fatal(e));
        retry::retry(&self.common.backoff, what, |_| {
            if ask {
                match self.persisted(session) {
                    Ok(Some(kept)) => {
                        if kept < offset || kept > end {
                            return fatal(anyhow::anyhow!(
                                "{what}: the upload session holds {kept} bytes, expected {offset} to {end}"
                            ));
                        }
                        tracing::debug!(kept, "GCS upload resumes from the session's offset");
                        pos = kept;
                        ask = false;
                    }
                    Ok(None) if total == Some(end) => return Ok(()),
                    Ok(None) => {
                        return fatal(anyhow::anyhow!(
                            "{what}: the server ended the upload session early"
                        ));
                    }
                    Err(Outcome::Failed(r)) => {
                        return fatal(anyhow::anyhow!("{what}: {}", self.refused(*r)));
                    }
                    Err(Outcome::Transient(t)) => return Err(Failure::Transient(t)),
                    Err(Outcome::Done(_)) => unreachable!(),
                }
                if pos == end && total.is_none() {
                    return Ok(());
                }
            }
            let body = data.slice((pos - offset) as usize..);
            let range = match total {
                Some(t) if body.is_empty() => format!("bytes */{t}"),
                Some(t) => format!("bytes {pos}-{}/{t}", end - 1),
                None => format!("bytes {pos}-{}/*", end - 1),
            };
            let r = self
                .request(reqwest::Method::PUT, session)
                .map_err(Failure::Fatal)?
                .header(CONTENT_RANGE, range)
                .header(CONTENT_LENGTH, body.len().to_string())
                .body(body)
                .send();
            match Self::SERVICE.outcome(r) {
                Outcome::Done(r) if r.status().as_u16() == 308 => {
                    let kept = kept(&r);
                    if kept == end && total.is_none() {
                        return Ok(());
                    }
                    if kept <= pos || kept > end {
                        return fatal(anyhow::anyhow!(
                            "{what}: the upload session holds {kept} bytes after a chunk that ends at {end}"
                        ));
                    }
                    // Part of the chunk was kept: send the rest.
                    pos = kept;
                    Err(Failure::Progress)
                }
                Outcome::Done(_) if total.is_some() => Ok(()),
                Outcome::Done(_) => fatal(anyhow::anyhow!(
                    "{what}: the server ended the upload session early"
                )),
                Outcome::Failed(r) => fatal(anyhow::anyhow!("{what}: {}", self.refused(*r))),
                Outcome::Transient(t) => {
                    ask = true;
                    Err(Failure::Transient(t))
                }
            }
        })
        .map_err(|stop| stop.into_error(what))
    }

    /// Cancels a session, so it leaves no object behind.
    fn cancel(&self, session: &str) {
        let result = self
            .request(reqwest::Method::DELETE, session)
            .and_then(|r| Ok(r.header(CONTENT_LENGTH, "0").send()?));
        match result {
            // 499 is GCS's answer to a cancelled session.
            Ok(r)
                if r.status().is_success()
                    || r.status().as_u16() == 499
                    || r.status() == StatusCode::NOT_FOUND => {}
            Ok(r) => {
                tracing::warn!(error = %answer(r), "cannot cancel the GCS upload session; it expires within a week")
            }
            Err(e) => {
                tracing::warn!(error = %crate::util::secret::clean(&format!("{e:#}")), "cannot cancel the GCS upload session; it expires within a week")
            }
        }
    }
}

impl Api for Inner {
    /// How GCS answers are judged: 308 is a resumable upload's "go on".
    const SERVICE: Service = Service {
        name: "GCS",
        answer,
        also_done: Some(StatusCode::PERMANENT_REDIRECT),
    };

    fn common(&self) -> &Common {
        &self.common
    }

    fn size(&self, key: &str) -> Result<u64> {
        let what = self.what("cannot read", key);
        let url = self.object_url(key);
        let r = self.send(&what, || self.request(reqwest::Method::GET, &url))?;
        if r.status() == StatusCode::NOT_FOUND {
            anyhow::bail!("{what}: {}", answer(r));
        }
        let meta: serde_json::Value = json_capped(r).with_context(|| what.clone())?;
        meta["size"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .with_context(|| format!("{what}: the server gave no object size"))
    }

    fn get(&self, key: &str, offset: u64) -> Result<Response, Failure<String>> {
        let url = format!("{}?alt=media", self.object_url(key));
        let mut r = self
            .request(reqwest::Method::GET, &url)
            .map_err(|e| Failure::Transient(Transient::new(format!("{e:#}"))))?;
        if offset > 0 {
            r = r.header(RANGE, format!("bytes={offset}-"));
        }
        http::ranged(&Self::SERVICE, r.send(), offset, answer)
    }

    fn page(&self, prefix: &str, token: Option<&str>, what: &str) -> Result<Page> {
        let mut url = format!(
            "{}/storage/v1/b/{}/o?prefix={}",
            self.common.base,
            enc(&self.bucket),
            enc(prefix)
        );
        if let Some(t) = token {
            url.push_str(&format!("&pageToken={}", enc(t)));
        }
        let r = self.send(what, || self.request(reqwest::Method::GET, &url))?;
        if r.status() == StatusCode::NOT_FOUND {
            anyhow::bail!("{what}: {}", self.bucket_missing(r));
        }
        let page: serde_json::Value = json_capped(r).with_context(|| what.to_string())?;
        let keys = page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let next = page["nextPageToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        Ok((keys, next))
    }

    fn delete(&self, key: &str) -> Result<()> {
        let url = self.object_url(key);
        self.send(&self.what("cannot delete", key), || {
            self.request(reqwest::Method::DELETE, &url)
        })?;
        Ok(())
    }

    /// One multipart request; the version is the new generation (none
    /// without a condition).
    fn put_small(&self, key: &str, data: &[u8], condition: Condition) -> Result<Option<Version>> {
        let generation = match condition {
            Condition::None => None,
            Condition::Absent => Some(0),
            Condition::Match(version) => Some(version.0.parse::<u64>().with_context(|| {
                self.what(&format!("`{version}` is not a GCS generation"), key)
            })?),
        };
        let what = self.what(condition.action(), key);
        let mut boundary = format!("dbkeep-{:016x}", nonce());
        while data
            .windows(boundary.len())
            .any(|w| w == boundary.as_bytes())
        {
            boundary = format!("dbkeep-{:016x}", nonce());
        }
        let mut body = format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n",
            self.metadata(key, matches!(condition, Condition::None))
        )
        .into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let body = Bytes::from(body);
        let mut url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=multipart",
            self.common.base,
            enc(&self.bucket)
        );
        if let Some(g) = generation {
            url.push_str(&format!("&ifGenerationMatch={g}"));
        }
        let make = || {
            let r = self.request(reqwest::Method::POST, &url);
            r.map(|r| {
                r.header(
                    CONTENT_TYPE,
                    format!("multipart/related; boundary={boundary}"),
                )
                .body(body.clone())
            })
            .with_context(|| what.clone())
        };
        let unmet =
            |r: &Response| generation.is_some() && r.status() == StatusCode::PRECONDITION_FAILED;
        let response = match self.send_small(key, data, &what, make, unmet)? {
            Small::Unmet(version) => return Ok(version),
            Small::Answer(r) => r,
        };
        match response.status() {
            s if s.is_success() && generation.is_none() => Ok(Some(Version(String::new()))),
            s if s.is_success() => {
                let meta: serde_json::Value = response.json().with_context(|| what.clone())?;
                let generation = meta["generation"]
                    .as_str()
                    .with_context(|| format!("{what}: the server gave no generation"))?;
                Ok(Some(Version(generation.to_string())))
            }
            StatusCode::NOT_FOUND => anyhow::bail!("{what}: {}", self.bucket_missing(response)),
            _ => anyhow::bail!("{what}: {}", self.refused(response)),
        }
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let what = self.what("cannot read", key);
        let url = format!("{}?alt=media", self.object_url(key));
        let r = self.send(&what, || self.request(reqwest::Method::GET, &url))?;
        http::versioned(r, &what, "x-goog-generation", "`x-goog-generation`")
    }

    /// The object's `retention.retainUntilTime`, while it is to come.
    fn retained_until(&self, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let what = self.what("cannot read the retention of", key);
        let url = format!("{}?fields=retention", self.object_url(key));
        let r = self.send(&what, || self.request(reqwest::Method::GET, &url))?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let meta: serde_json::Value = json_capped(r).with_context(|| what.clone())?;
        let Some(text) = meta["retention"]["retainUntilTime"].as_str() else {
            return Ok(None);
        };
        let until = chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|_| {
                anyhow::anyhow!("{what}: `{}` is not a date", crate::util::printable(text))
            })?
            .with_timezone(&chrono::Utc);
        Ok(Some(until).filter(|u| *u > chrono::Utc::now()))
    }

    /// The version is a generation.
    fn delete_if(&self, key: &str, version: &Version) -> Result<bool> {
        let what = self.what("cannot delete", key);
        let generation: u64 = version
            .0
            .parse()
            .with_context(|| format!("{what}: `{version}` is not a GCS generation"))?;
        let url = format!("{}?ifGenerationMatch={generation}", self.object_url(key));
        let r = self.send(&what, || self.request(reqwest::Method::DELETE, &url))?;
        Ok(r.status().is_success())
    }
}

/// The bytes a session holds, from a 308's `Range: bytes=0-N`.
fn kept(r: &Response) -> u64 {
    r.headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit('-').next())
        .and_then(|n| n.trim().parse::<u64>().ok())
        .map(|n| n + 1)
        .unwrap_or(0)
}

/// A number unlikely to repeat.
fn nonce() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ u64::from(std::process::id()).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Remote for Gcs {
    type Api = Inner;

    fn parts(&self) -> (&str, &Arc<Inner>) {
        (&self.name, &self.inner)
    }

    fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(PartWriter::new(
            self.inner.what("upload", key),
            PartSizes::fixed(self.chunk),
            Session {
                inner: self.inner.clone(),
                key: key.to_string(),
                sender: None,
                worker: None,
            },
        )))
    }
}

/// What the writer hands its upload thread.
enum Chunk {
    More(Bytes),
    Last(Bytes),
}

/// A resumable upload in progress: a thread sends one chunk while the
/// writer fills the next.
struct Session {
    inner: Arc<Inner>,
    key: String,
    sender: Option<SyncSender<Chunk>>,
    worker: Option<std::thread::JoinHandle<Result<()>>>,
}

/// The upload thread: one session, its chunks in order. A sender that goes
/// away without a last chunk, or any failure, cancels the session.
fn upload(inner: Arc<Inner>, key: String, rx: Receiver<Chunk>) -> Result<()> {
    let what = inner.what("upload", &key);
    let session = inner.start_session(&key)?;
    let mut offset = 0u64;
    let result = (|| loop {
        match rx.recv() {
            Ok(Chunk::More(data)) => {
                let len = data.len() as u64;
                inner.send_chunk(&session, &what, offset, data, None)?;
                offset += len;
            }
            Ok(Chunk::Last(data)) => {
                let total = offset + data.len() as u64;
                return inner.send_chunk(&session, &what, offset, data, Some(total));
            }
            Err(_) => anyhow::bail!("{what}: abandoned"),
        }
    })();
    if result.is_err() {
        inner.cancel(&session);
    }
    result
}

impl Session {
    /// Hands a chunk to the upload thread, starting it with the first one.
    fn hand_over(&mut self, chunk: Chunk) -> Result<()> {
        if self.sender.is_none() {
            // Rendezvous: the writer waits while the thread is still busy
            // with the previous chunk, so at most two chunks exist.
            let (tx, rx) = sync_channel(0);
            let (inner, key) = (self.inner.clone(), self.key.clone());
            self.worker = Some(
                std::thread::Builder::new()
                    .name("dbkeep-gcs".into())
                    .spawn(move || upload(inner, key, rx))?,
            );
            self.sender = Some(tx);
        }
        let sent = self.sender.as_ref().map(|tx| tx.send(chunk).is_ok());
        if sent != Some(true) {
            return Err(self.join().err().unwrap_or_else(|| {
                anyhow::anyhow!(
                    "{}: the upload stopped",
                    self.inner.what("upload", &self.key)
                )
            }));
        }
        Ok(())
    }

    /// Waits for the upload thread and returns its result.
    fn join(&mut self) -> Result<()> {
        self.sender = None;
        match self.worker.take() {
            Some(w) => w
                .join()
                .map_err(|_| anyhow::anyhow!("the GCS upload thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Parts for Session {
    fn send(&mut self, part: Bytes) -> Result<()> {
        self.hand_over(Chunk::More(part))
    }

    fn put_whole(&mut self, data: Bytes) -> Result<()> {
        self.inner.put_small(&self.key, &data, Condition::None)?;
        Ok(())
    }

    fn finish(&mut self, rest: Bytes) -> Result<()> {
        self.hand_over(Chunk::Last(rest))?;
        self.join()
    }

    fn cancel(&mut self) {
        // The thread sees the sender go and cancels the session.
        let _ = self.join();
    }
}

// ------------------------------------------------------------- credentials

/// Where access tokens come from: nowhere (emulators), or Google's own
/// `google-cloud-auth`, which mints, caches and refreshes them.
enum Auth {
    /// No credentials (emulators).
    None,
    /// Credentials of one of Google's kinds.
    Google(GoogleAuth),
}

struct GoogleAuth {
    credentials: Credentials,
    /// The metadata server at its IP, tried once when the name
    /// `metadata.google.internal` does not resolve.
    fallback: Mutex<Option<Credentials>>,
    /// What the credentials are, for messages.
    what: String,
}

/// The key file kinds `credentials_file` takes (those of ADC files).
const FILE_KINDS: [&str; 5] = [
    "service_account",
    "authorized_user",
    "external_account",
    "impersonated_service_account",
    "external_account_authorized_user",
];

impl Auth {
    /// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`,
    /// gcloud's file, then the metadata server (`GCE_METADATA_HOST`).
    fn default_credentials() -> Result<Auth> {
        if let Some(path) =
            std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty())
        {
            return Auth::from_file(Path::new(&path))
                .context("GOOGLE_APPLICATION_CREDENTIALS names an unusable file");
        }
        // gcloud keeps its files under CLOUDSDK_CONFIG when that is set.
        if let Some(file) = std::env::var_os("CLOUDSDK_CONFIG")
            .map(|d| Path::new(&d).join("application_default_credentials.json"))
            .filter(|f| f.is_file())
        {
            return Auth::from_file(&file);
        }
        // The credentials refresh their token on the shared runtime.
        let _runtime = super::runtime::runtime().enter();
        let credentials = google_cloud_auth::credentials::Builder::default()
            .with_scopes([SCOPE])
            .build()
            .map_err(|e| anyhow::anyhow!("{}", http::with_causes(&e)))?;
        // Without GCE_METADATA_HOST and where the metadata server's name does
        // not resolve (a custom DNS in a container), its IP still answers.
        let fallback = (std::env::var_os("GCE_METADATA_HOST").is_none()
            && std::net::ToSocketAddrs::to_socket_addrs(&("metadata.google.internal", 80))
                .is_err())
        .then(|| {
            google_cloud_auth::credentials::mds::Builder::default()
                .with_endpoint(METADATA_IP)
                .with_scopes([SCOPE])
                .build()
                .ok()
        })
        .flatten();
        Ok(Auth::Google(GoogleAuth {
            credentials,
            fallback: Mutex::new(fallback),
            what: "Application Default Credentials".to_string(),
        }))
    }

    /// A JSON credentials file of any of Google's kinds. Its contents never
    /// reach a message.
    fn from_file(path: &Path) -> Result<Auth> {
        let text = crate::util::read_capped(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
            1 << 20,
        )
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not JSON (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        use google_cloud_auth::credentials::{
            external_account, external_account_authorized_user, impersonated, service_account,
            user_account,
        };
        let kind = json["type"].as_str().unwrap_or("none").to_string();
        let _runtime = super::runtime::runtime().enter();
        let built = match kind.as_str() {
            "service_account" => service_account::Builder::new(json)
                .with_access_specifier(service_account::AccessSpecifier::from_scopes([SCOPE]))
                .build(),
            "authorized_user" => user_account::Builder::new(json)
                .with_scopes([SCOPE])
                .build(),
            "external_account" => external_account::Builder::new(json)
                .with_scopes([SCOPE])
                .build(),
            "impersonated_service_account" => impersonated::Builder::new(json)
                .with_scopes([SCOPE])
                .build(),
            "external_account_authorized_user" => {
                external_account_authorized_user::Builder::new(json).build()
            }
            other => anyhow::bail!(
                "{}: credentials of type `{}` are not known; use one of {}",
                path.display(),
                crate::util::printable(other),
                FILE_KINDS.join(", ")
            ),
        };
        let credentials =
            built.map_err(|e| anyhow::anyhow!("{}: {}", path.display(), http::with_causes(&e)))?;
        Ok(Auth::Google(GoogleAuth {
            credentials,
            fallback: Mutex::new(None),
            what: format!("`{kind}` credentials from {}", path.display()),
        }))
    }

    /// The headers that authorize one request (none without credentials).
    fn headers(&self) -> Result<HeaderMap> {
        let Auth::Google(g) = self else {
            return Ok(HeaderMap::new());
        };
        let first = headers_of(&g.credentials);
        let err = match first {
            Ok(h) => return Ok(h),
            Err(e) => e,
        };
        let fallback = g.fallback.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(ip) = fallback
            && let Ok(h) = headers_of(&ip)
        {
            tracing::info!("the metadata server answered at {METADATA_IP}");
            return Ok(h);
        }
        let hint = if g.what.starts_with("Application") {
            "; set `credentials_file` or GOOGLE_APPLICATION_CREDENTIALS, or run where a metadata server answers"
        } else {
            ""
        };
        anyhow::bail!(
            "cannot get a Google access token with {}: {err}{hint}",
            g.what
        )
    }
}

/// The metadata server's fixed address.
const METADATA_IP: &str = "http://169.254.169.254";

fn headers_of(credentials: &Credentials) -> std::result::Result<HeaderMap, String> {
    let answer = super::runtime::block_on(credentials.headers(::http::Extensions::new()));
    match answer {
        Ok(CacheableResource::New { data, .. }) => Ok(data),
        Ok(CacheableResource::NotModified) => Err("no new headers".to_string()),
        Err(e) => Err(http::with_causes(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_whole() {
        assert_eq!(enc("a/b c+d.zst"), "a%2Fb%20c%2Bd.zst");
    }

    #[test]
    fn chunks_are_multiples_of_256_kib() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s = GcsConfig {
            bucket: "b".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            part_size_mib: Some(5),
            ..Default::default()
        };
        let g = Gcs::new("g", &s).unwrap();
        assert_eq!(g.chunk % CHUNK_QUANTUM, 0);
        assert_eq!(g.chunk, 5 << 20);
        assert!(matches!(g.inner.auth, Auth::None));
    }
}
