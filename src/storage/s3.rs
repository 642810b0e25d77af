//! Amazon S3 and S3-compatible services (MinIO, R2, Ceph).
//!
//! Uploads are multipart: the stream is cut into parts as it arrives, and at
//! most `parallel_parts` parts are in flight; a writer that has that many
//! waits (backpressure). Memory is part size × (parts in flight + 1): 16 MiB
//! × 5 = 80 MiB by default. Parts start at `part_size_mib` (default 16) and
//! double every 1,000 parts, so 10,000 parts reach past 5 TiB without
//! knowing the size in advance. Each request is retried on transient
//! errors (5xx, throttling, timeouts, connection resets) with exponential
//! backoff and jitter, by the SDK and then by dbkeep; a permanent failure
//! aborts the multipart upload, so no object and no dangling upload remain.
//! An object smaller than one part is sent with one PUT at commit.
//!
//! Credentials: the explicit keys of the config, else the standard AWS chain
//! (environment, profile, SSO, web identity, container, instance metadata).
//!
//! With `object_lock`, every object written through `create` and `put`
//! (artifacts, manifests) carries an Object Lock mode and a retain-until
//! date, and a CRC32, which S3 requires with them. The conditional writes
//! (`create_if_absent`, `replace_if`: the job lock, the config probe) carry
//! none, so they stay deletable.

use std::io::{self, Read};
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockMode,
    ServerSideEncryption, StorageClass,
};
use bytes::Bytes;
use tokio::task::JoinHandle;

use super::config::{ObjectLock, ObjectLockMode as LockMode, S3Checksum, S3Config};
use super::parts::{PartSizes, PartWriter, Parts};
use super::retry::Backoff;
use super::runtime::{block_on, runtime};
use super::{ObjectWriter, Storage, Version, check_key};
use crate::util::secret::secret_from;

/// Default part size.
const DEFAULT_PART_MIB: u64 = 16;
/// Default parts in flight.
const DEFAULT_PARALLEL: usize = 4;
/// S3's largest part.
const MAX_PART: usize = 5 << 30;
/// Parts of one size before the size doubles.
const PARTS_PER_SIZE: u64 = 1000;
/// Bytes per ranged read when a download resumes.
const READ_CHUNKS: usize = 8;

/// An S3 bucket.
pub struct S3 {
    name: String,
    bucket: String,
    client: Client,
    part_size: usize,
    parallel: usize,
    storage_class: Option<StorageClass>,
    sse: Option<ServerSideEncryption>,
    sse_kms_key_id: Option<String>,
    object_lock: Option<ObjectLock>,
}

/// What an Object Lock adds to one new object's write: the mode, the
/// retain-until date (now + the days, in whole seconds, as S3 and moto
/// parse the header), and the checksum S3 requires with them.
type LockParts = (
    Option<ObjectLockMode>,
    Option<aws_sdk_s3::primitives::DateTime>,
    Option<ChecksumAlgorithm>,
);

fn lock_parts(lock: Option<&ObjectLock>) -> LockParts {
    let Some(lock) = lock else {
        return (None, None, None);
    };
    let mode = match lock.mode {
        LockMode::Governance => ObjectLockMode::Governance,
        LockMode::Compliance => ObjectLockMode::Compliance,
    };
    let until = lock.until();
    (
        Some(mode),
        Some(aws_sdk_s3::primitives::DateTime::from_secs(
            until.timestamp(),
        )),
        Some(ChecksumAlgorithm::Crc32),
    )
}

/// Turns an SDK error into text: the service's code and message, never credentials.
fn explain<E: std::error::Error + 'static, R: std::fmt::Debug>(e: &SdkError<E, R>) -> String {
    let text = format!("{}", DisplayErrorContext(e));
    crate::util::secret::clean(&text)
}

/// Whether an SDK error is worth another attempt.
fn transient<E, R>(e: &SdkError<E, R>) -> bool
where
    R: HttpStatus,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status_code();
            status >= 500 || status == 429 || status == 408
        }
        _ => false,
    }
}

/// The HTTP status of a raw response.
trait HttpStatus {
    fn status_code(&self) -> u16;
    /// Its `Retry-After`, if any.
    fn retry_after(&self) -> Option<Duration>;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }

    fn retry_after(&self) -> Option<Duration> {
        self.headers()
            .get("retry-after")
            .and_then(super::retry::parse_retry_after)
    }
}

/// How long the service asked to wait before another attempt.
fn retry_after<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<Duration> {
    match e {
        SdkError::ServiceError(s) => s.raw().retry_after(),
        _ => None,
    }
}

/// Runs `op` until it succeeds, fails permanently, or runs out of attempts.
async fn with_retries<T, E, F, Fut>(what: &str, mut op: F) -> Result<T>
where
    E: std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>>,
{
    let backoff = Backoff::default();
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if transient(&e) && attempt < backoff.attempts => {
                tracing::debug!(what, attempt, error = %explain(&e), "transient S3 error, retrying");
                tokio::time::sleep(backoff.wait(attempt, retry_after(&e))).await;
                attempt += 1;
            }
            Err(e) => anyhow::bail!("{what}: {}", explain(&e)),
        }
    }
}

impl S3 {
    /// Connects to the bucket a storage entry names.
    pub fn new(name: &str, s: &S3Config) -> Result<S3> {
        let bucket = s.bucket.clone();
        let secret = secret_from(
            &s.secret_access_key,
            &s.secret_access_key_file,
            "secret_access_key",
        )?;
        let client = block_on(async {
            let timeouts = aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(300))
                .build();
            let retries = aws_config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(200));
            // rustls on ring, the crypto the rest of dbkeep uses.
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https();
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .http_client(http)
                .timeout_config(timeouts)
                .retry_config(retries);
            let env_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .any(|v| std::env::var_os(v).is_some());
            match (&s.region, &s.endpoint) {
                (Some(r), _) => loader = loader.region(Region::new(r.clone())),
                // An S3-compatible endpoint: no instance-metadata lookup for a region it ignores.
                (None, Some(_)) if !env_region => loader = loader.region(Region::new("us-east-1")),
                _ => {}
            }
            if let (Some(id), Some(secret)) = (&s.access_key_id, &secret) {
                loader = loader.credentials_provider(Credentials::new(
                    id.clone(),
                    secret.expose().to_string(),
                    None,
                    None,
                    "dbkeep-config",
                ));
            }
            if let Some(endpoint) = &s.endpoint {
                loader = loader.endpoint_url(endpoint.clone());
            }
            let shared = loader.load().await;
            let mut config = aws_sdk_s3::config::Builder::from(&shared);
            if shared.region().is_none() {
                config = config.region(Region::new("us-east-1"));
            }
            if s.path_style == Some(true) {
                config = config.force_path_style(true);
            }
            match s.checksum {
                Some(S3Checksum::WhenSupported) => {
                    config = config
                        .request_checksum_calculation(RequestChecksumCalculation::WhenSupported)
                        .response_checksum_validation(ResponseChecksumValidation::WhenSupported);
                }
                Some(S3Checksum::WhenRequired) => {
                    config = config
                        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
                }
                None => {}
            }
            Client::from_conf(config.build())
        });
        Ok(S3 {
            name: name.to_string(),
            bucket,
            client,
            part_size: (s.part_size_mib.unwrap_or(DEFAULT_PART_MIB) << 20) as usize,
            parallel: s
                .parallel_parts
                .map(|n| n as usize)
                .unwrap_or(DEFAULT_PARALLEL),
            storage_class: s.storage_class.as_deref().map(StorageClass::from),
            sse: s.sse.as_deref().map(ServerSideEncryption::from),
            sse_kms_key_id: s.sse_kms_key_id.clone(),
            object_lock: s.object_lock,
        })
    }

    fn what(&self, action: &str, key: &str) -> String {
        format!(
            "storage `{}` (s3://{}/{key}): {action}",
            self.name, self.bucket
        )
    }

    /// A conditional PUT of a small object: its new ETag, or `None` when the
    /// condition did not hold (412, or 404 for `If-Match` on a missing key).
    fn put_if(&self, key: &str, data: &[u8], condition: Condition<'_>) -> Result<Option<Version>> {
        check_key(key)?;
        let data = Bytes::copy_from_slice(data);
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(data));
        let request = match condition {
            Condition::Absent => request.if_none_match("*"),
            Condition::Match(v) => request.if_match(&v.0),
        };
        match block_on(request.send()) {
            Ok(out) => match out.e_tag() {
                Some(etag) => Ok(Some(Version(etag.to_string()))),
                None => anyhow::bail!("{}: S3 sent no ETag", self.what("cannot write", key)),
            },
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => Ok(None),
            Err(SdkError::ServiceError(e))
                if matches!(condition, Condition::Match(_)) && e.raw().status().as_u16() == 404 =>
            {
                Ok(None)
            }
            Err(e) => anyhow::bail!("{}: {}", self.what("cannot write", key), explain(&e)),
        }
    }
}

/// What a conditional PUT expects to find.
#[derive(Clone, Copy)]
enum Condition<'a> {
    /// No object (`If-None-Match: *`).
    Absent,
    /// The object at this ETag (`If-Match`).
    Match(&'a Version),
}

impl Storage for S3 {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        check_key(key)?;
        let sizes = PartSizes {
            base: self.part_size,
            every: PARTS_PER_SIZE,
            max: MAX_PART,
        };
        Ok(Box::new(PartWriter::new(
            self.what("upload", key),
            sizes,
            Multipart {
                client: self.client.clone(),
                bucket: self.bucket.clone(),
                key: key.to_string(),
                what: self.what("upload", key),
                parallel: self.parallel.max(1),
                storage_class: self.storage_class.clone(),
                sse: self.sse.clone(),
                sse_kms_key_id: self.sse_kms_key_id.clone(),
                object_lock: self.object_lock,
                upload_id: None,
                next_part: 1,
                in_flight: Vec::new(),
                done: Vec::new(),
            },
        )))
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        check_key(key)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Bytes>>(READ_CHUNKS);
        let client = self.client.clone();
        let (bucket, key_owned, what) = (
            self.bucket.clone(),
            key.to_string(),
            self.what("download", key),
        );
        // Fail now, clearly, when the object is not there.
        block_on(client.head_object().bucket(&bucket).key(key).send())
            .map_err(|e| anyhow::anyhow!("{}: {}", self.what("cannot read", key), explain(&e)))?;
        runtime().spawn(async move {
            let backoff = Backoff::default();
            let mut offset: u64 = 0;
            let mut attempt = 1;
            loop {
                let mut request = client.get_object().bucket(&bucket).key(&key_owned);
                if offset > 0 {
                    request = request.range(format!("bytes={offset}-"));
                }
                let mut body = match request.send().await {
                    Ok(out) => out.body,
                    Err(e) if transient(&e) && attempt < backoff.attempts => {
                        tokio::time::sleep(backoff.wait(attempt, retry_after(&e))).await;
                        attempt += 1;
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other(format!("{what}: {}", explain(&e)))));
                        return;
                    }
                };
                loop {
                    match body.try_next().await {
                        Ok(Some(chunk)) => {
                            offset += chunk.len() as u64;
                            attempt = 1;
                            let tx = tx.clone();
                            // The channel is bounded: wait for the reader off the async threads.
                            let sent = tokio::task::spawn_blocking(move || tx.send(Ok(chunk)).is_ok()).await;
                            if !matches!(sent, Ok(true)) {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(e) if attempt < backoff.attempts => {
                            tracing::debug!(offset, error = %e, "S3 download interrupted, resuming");
                            tokio::time::sleep(backoff.pause(attempt)).await;
                            attempt += 1;
                            break;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(io::Error::other(format!("{what}: {e}"))));
                            return;
                        }
                    }
                }
            }
        });
        Ok(Box::new(ChannelReader {
            rx,
            chunk: Bytes::new(),
        }))
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        check_key(key)?;
        let result = block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await?;
            let etag = out.e_tag().map(str::to_string);
            Ok::<_, SdkError<_, _>>(out.body.collect().await.map(|b| (b.into_bytes(), etag)))
        });
        match result {
            Ok(Ok((bytes, Some(etag)))) => Ok(Some((bytes.to_vec(), Version(etag)))),
            Ok(Ok((_, None))) => {
                anyhow::bail!("{}: S3 sent no ETag", self.what("cannot read", key))
            }
            Ok(Err(e)) => anyhow::bail!("{}: {e}", self.what("cannot read", key)),
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => Ok(None),
            Err(e) => anyhow::bail!("{}: {}", self.what("cannot read", key), explain(&e)),
        }
    }

    fn create_if_absent(&self, key: &str, data: &[u8]) -> Result<Option<Version>> {
        self.put_if(key, data, Condition::Absent)
    }

    fn replace_if(&self, key: &str, data: &[u8], version: &Version) -> Result<Option<Version>> {
        self.put_if(key, data, Condition::Match(version))
    }

    fn delete_if(&self, key: &str, version: &Version) -> Result<bool> {
        check_key(key)?;
        let result = block_on(
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .if_match(&version.0)
                .send(),
        );
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if matches!(e.raw().status().as_u16(), 404 | 412) => {
                Ok(false)
            }
            Err(e) => anyhow::bail!("{}: {}", self.what("cannot delete", key), explain(&e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = super::folder(prefix);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = block_on(with_retries(&self.what("cannot list", &prefix), || {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&prefix)
                    .set_continuation_token(token.clone())
                    .send()
            }))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match (page.is_truncated(), page.next_continuation_token()) {
                (Some(true), Some(t)) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        block_on(with_retries(&self.what("cannot delete", key), || {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
        }))?;
        Ok(())
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        check_key(key)?;
        let data = Bytes::copy_from_slice(data);
        block_on(with_retries(&self.what("cannot write", key), || {
            let (mode, until, checksum) = lock_parts(self.object_lock.as_ref());
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .set_storage_class(self.storage_class.clone())
                .set_server_side_encryption(self.sse.clone())
                .set_ssekms_key_id(self.sse_kms_key_id.clone())
                .set_object_lock_mode(mode)
                .set_object_lock_retain_until_date(until)
                .set_checksum_algorithm(checksum)
                .body(ByteStream::from(data.clone()))
                .send()
        }))?;
        Ok(())
    }

    fn retained_until(&self, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        check_key(key)?;
        let what = self.what("cannot read the retention of", key);
        let head = block_on(with_retries(&what, || async {
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(out) => Ok(Some(out)),
                // Gone already: nothing holds it.
                Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => Ok(None),
                Err(e) => Err(e),
            }
        }))?;
        let now = chrono::Utc::now();
        Ok(head
            .as_ref()
            .and_then(|out| out.object_lock_retain_until_date())
            .and_then(|d| chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos()))
            .filter(|until| *until > now))
    }
}

/// Reads chunks handed over by a download task.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => self.chunk = chunk,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// A multipart upload in progress: up to `parallel` parts in flight.
struct Multipart {
    client: Client,
    bucket: String,
    key: String,
    what: String,
    parallel: usize,
    storage_class: Option<StorageClass>,
    sse: Option<ServerSideEncryption>,
    sse_kms_key_id: Option<String>,
    object_lock: Option<ObjectLock>,
    upload_id: Option<String>,
    next_part: i32,
    in_flight: Vec<JoinHandle<Result<CompletedPart>>>,
    done: Vec<CompletedPart>,
}

impl Multipart {
    fn start(&mut self) -> Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let out = block_on(with_retries(
            &format!("{}: cannot start the multipart upload", self.what),
            || {
                let (mode, until, checksum) = lock_parts(self.object_lock.as_ref());
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .set_storage_class(self.storage_class.clone())
                    .set_server_side_encryption(self.sse.clone())
                    .set_ssekms_key_id(self.sse_kms_key_id.clone())
                    .set_object_lock_mode(mode)
                    .set_object_lock_retain_until_date(until)
                    .set_checksum_algorithm(checksum)
                    .send()
            },
        ))?;
        let id = out
            .upload_id()
            .context("S3 returned no upload id")?
            .to_string();
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Waits for the oldest part in flight.
    fn settle_one(&mut self) -> Result<()> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let handle = self.in_flight.remove(0);
        let part = block_on(handle).map_err(|e| anyhow::anyhow!("upload task failed: {e}"))??;
        self.done.push(part);
        Ok(())
    }
}

impl Parts for Multipart {
    fn send(&mut self, data: Bytes) -> Result<()> {
        let upload_id = self.start()?;
        while self.in_flight.len() >= self.parallel {
            self.settle_one()?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let (client, bucket, key, what) = (
            self.client.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.what.clone(),
        );
        // An upload started with a checksum algorithm needs it on every part
        // and each part's checksum at completion.
        let checksum = self.object_lock.map(|_| ChecksumAlgorithm::Crc32);
        self.in_flight.push(runtime().spawn(async move {
            let out = with_retries(&format!("{what}: part {number} failed"), || {
                client
                    .upload_part()
                    .bucket(&bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .set_checksum_algorithm(checksum.clone())
                    .body(ByteStream::from(data.clone()))
                    .send()
            })
            .await?;
            let crc32 = checksum.and(out.checksum_crc32().map(str::to_string));
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag().map(str::to_string))
                .set_checksum_crc32(crc32)
                .part_number(number)
                .build())
        }));
        Ok(())
    }

    /// One PUT.
    fn put_whole(&mut self, data: Bytes) -> Result<()> {
        block_on(with_retries(
            &format!("{}: cannot write", self.what),
            || {
                let (mode, until, checksum) = lock_parts(self.object_lock.as_ref());
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .set_storage_class(self.storage_class.clone())
                    .set_server_side_encryption(self.sse.clone())
                    .set_ssekms_key_id(self.sse_kms_key_id.clone())
                    .set_object_lock_mode(mode)
                    .set_object_lock_retain_until_date(until)
                    .set_checksum_algorithm(checksum)
                    .body(ByteStream::from(data.clone()))
                    .send()
            },
        ))?;
        Ok(())
    }

    fn finish(&mut self, rest: Bytes) -> Result<()> {
        if !rest.is_empty() {
            self.send(rest)?;
        }
        while !self.in_flight.is_empty() {
            self.settle_one()?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        block_on(with_retries(
            &format!("{}: cannot complete the multipart upload", self.what),
            || {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .upload_id(&upload_id)
                    .multipart_upload(upload.clone())
                    .send()
            },
        ))?;
        Ok(())
    }

    /// Stops every part and aborts the multipart upload, so nothing is left.
    fn cancel(&mut self) {
        for h in self.in_flight.drain(..) {
            h.abort();
        }
        if let Some(id) = self.upload_id.take() {
            let result = block_on(with_retries(
                &format!("{}: cannot abort the multipart upload", self.what),
                || {
                    self.client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(&self.key)
                        .upload_id(&id)
                        .send()
                },
            ));
            if let Err(e) = result {
                tracing::warn!(error = %format!("{e:#}"), "the multipart upload may be left open; a bucket lifecycle rule can clean it");
            }
        }
    }
}
