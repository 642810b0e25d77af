//! The storage seam: one trait for every place backups are kept.
//!
//! Keys are `/`-separated relative paths. Objects are written through an
//! [`ObjectWriter`] that only becomes visible on [`ObjectWriter::commit`];
//! dropping or aborting it leaves nothing behind.

#[cfg(feature = "azure")]
mod azure;
pub mod config;
#[cfg(feature = "azure")]
mod entra;
#[cfg(feature = "gcs")]
mod gcs;
#[cfg(any(feature = "gcs", feature = "azure"))]
mod http;
mod local;
pub mod location;
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
mod parts;
#[cfg(any(feature = "gcs", feature = "azure"))]
mod rest;
#[cfg(any(feature = "gcs", feature = "azure"))]
mod resume;
pub mod retry;
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
pub mod runtime;
#[cfg(feature = "s3")]
mod s3;
mod sftp;

use std::io::{Read, Write};

use anyhow::Result;

pub use config::StorageConfig;
pub use local::Local;

/// A place that holds backups.
pub trait Storage: Send + Sync {
    /// The storage's name in the config (or `--to`/`--from` for one-offs).
    fn name(&self) -> &str;

    /// Where it is, for messages: a folder, a bucket URL.
    fn location(&self) -> String;

    /// Starts writing `key`; nothing is visible until `commit`.
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;

    /// Streams the object at `key`.
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>>;

    /// Every key under `prefix` (a folder path, `""` for all), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// Writes a small object only if nothing is at `key` yet (a conditional
    /// create: S3 `If-None-Match: *`, GCS `ifGenerationMatch=0`, Azure
    /// `If-None-Match: *`, local a check under the folder's `flock`). Returns
    /// the new object's version, `None` when something was there.
    fn create_if_absent(&self, key: &str, data: &[u8]) -> Result<Option<Version>>;

    /// Reads a small object whole with its version, or `None` when there is
    /// none at `key`.
    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>>;

    /// Replaces a small object only if it is still at `version` (S3 and Azure
    /// `If-Match`, GCS `ifGenerationMatch`, local a compare-and-rename under
    /// the folder's `flock`). Returns the new version, `None` when the object
    /// changed or is gone.
    fn replace_if(&self, key: &str, data: &[u8], version: &Version) -> Result<Option<Version>>;

    /// Removes an object only if it is still at `version`. False when it
    /// changed or is gone.
    fn delete_if(&self, key: &str, version: &Version) -> Result<bool>;

    /// Crash leftovers under `prefix` that `list` does not show (local temp
    /// files), with their last change; cloud storages expire theirs.
    fn leftovers(&self, _prefix: &str) -> Result<Vec<(String, std::time::SystemTime)>> {
        Ok(Vec::new())
    }

    /// Until when the object at `key` cannot be deleted (S3 Object Lock), or
    /// `None` when nothing holds it there (or the storage has no such lock).
    fn retained_until(&self, _key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(None)
    }

    /// Writes a small object whole.
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let mut w = self.create(key)?;
        w.write_all(data)?;
        w.commit()?;
        Ok(())
    }

    /// Reads a small object whole, or `None` when there is none at `key`.
    fn get_if_exists(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(key)?.map(|(data, _)| data))
    }

    /// Reads a small object whole (a manifest, a lock), refusing one over
    /// [`crate::util::SMALL_OBJECT_MAX`].
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        crate::util::read_capped(self.open(key)?, crate::util::SMALL_OBJECT_MAX)
            .map_err(|e| anyhow::anyhow!("cannot read {key}: {e}"))
    }
}

/// Which state of an object a conditional write expects: an S3 or Azure
/// ETag, a GCS generation, a hash of a local file's bytes. Opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object being written.
pub trait ObjectWriter: Write + Send {
    /// Makes the object durable and visible under its key.
    fn commit(self: Box<Self>) -> Result<()>;

    /// Discards what was written. Dropping without `commit` does the same.
    fn abort(self: Box<Self>);
}

/// A storage and the prefix a job's backups go under.
pub struct Target {
    /// The storage.
    pub storage: Box<dyn Storage>,
    /// Its prefix.
    pub prefix: String,
    /// Whether its failure fails the backup.
    pub required: bool,
}

impl Target {
    /// A required target.
    pub fn new(storage: Box<dyn Storage>, prefix: String) -> Target {
        Target {
            storage,
            prefix,
            required: true,
        }
    }
}

/// Opens the storage a config entry describes.
pub fn open(name: &str, config: &StorageConfig) -> Result<Box<dyn Storage>> {
    match config {
        StorageConfig::Local(c) => Ok(Box::new(Local::new(name, &c.path))),
        #[cfg(feature = "s3")]
        StorageConfig::S3(c) => Ok(Box::new(s3::S3::new(name, c)?)),
        #[cfg(feature = "gcs")]
        StorageConfig::Gcs(c) => Ok(Box::new(gcs::Gcs::new(name, c)?)),
        #[cfg(feature = "azure")]
        StorageConfig::Azure(c) => Ok(Box::new(azure::Azure::new(name, c)?)),
        StorageConfig::Sftp(c) => Ok(Box::new(sftp::Sftp::new(name, c)?)),
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "storage `{name}`: this dbkeep was built without {} support (enable the cargo feature `{}`)",
            other.kind(),
            other.kind()
        ),
    }
}

/// A listing prefix as a folder path: `a/b/`, or `""` for everything.
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn folder(prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

/// Checks that a key is a plain relative path.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        anyhow::bail!("invalid object key `{key}`");
    }
    Ok(())
}
