//! The backup record (`manifest.json`), object naming, and reading the
//! catalog back from a storage.
//!
//! A backup is the folder `<prefix>/<job>/<id>/` holding its data objects and
//! `manifest.json`, which is written last. A folder without a manifest is not
//! a backup: `list` and `restore` only ever read manifests, and there is no
//! local state.

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Compression, Engine};
use crate::storage::Storage;

/// The manifest's file name inside a backup folder.
pub const MANIFEST: &str = "manifest.json";
/// The manifest format this dbkeep writes and reads.
pub const FORMAT: u32 = 1;
/// No manifest is larger: a bigger object is not read as one.
pub const MAX_MANIFEST: usize = 64 << 20;

/// Parses a manifest's bytes, as read from a storage (which does not vouch
/// for them): input over [`MAX_MANIFEST`] is refused without parsing.
pub fn parse(bytes: &[u8]) -> Result<Manifest> {
    if bytes.len() > MAX_MANIFEST {
        anyhow::bail!(
            "a manifest of {} bytes is larger than the {} MiB limit",
            bytes.len(),
            MAX_MANIFEST >> 20
        );
    }
    Ok(serde_json::from_slice(bytes)?)
}

/// The record of one complete backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// Backup id: UTC start time and a random suffix, e.g. `20261122T135501Z-3f2a`.
    pub id: String,
    /// Job name.
    pub job: String,
    /// Database engine.
    pub engine: Engine,
    /// The server's version, as it reports it.
    pub server_version: Option<String>,
    /// The dump tool's name.
    pub dump_tool: String,
    /// The dump tool's version line.
    pub dump_tool_version: Option<String>,
    /// The databases in this backup.
    pub databases: Vec<String>,
    /// When the backup started (UTC).
    pub started_at: DateTime<Utc>,
    /// When the last object was stored (UTC).
    pub finished_at: DateTime<Utc>,
    /// Compression of every object.
    pub compression: Compression,
    /// Compression level.
    pub compression_level: i32,
    /// Encryption of every object (after compression), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::crypt::Encryption>,
    /// Total bytes the dump tools produced.
    pub raw_size: u64,
    /// Total bytes stored.
    pub stored_size: u64,
    /// The data objects.
    pub artifacts: Vec<Artifact>,
    /// The dbkeep version that wrote it.
    pub dbkeep_version: String,
    /// The host that ran the backup.
    pub hostname: String,
}

/// One data object of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    /// File name inside the backup folder.
    pub name: String,
    /// What it holds.
    pub kind: ArtifactKind,
    /// The database, for `database` artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The dump format.
    pub format: DumpFormat,
    /// Bytes the dump tool produced.
    pub raw_size: u64,
    /// Bytes stored.
    pub stored_size: u64,
    /// sha256 of the stored bytes, hex.
    pub sha256: String,
}

/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// One database.
    Database,
    /// Server-wide objects: PostgreSQL roles and tablespaces.
    Globals,
}

/// The format of the dump inside an artifact (before compression).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DumpFormat {
    /// `pg_dump -Fc` custom archive.
    PgCustom,
    /// SQL script for psql (`pg_dumpall --globals-only`).
    PgSql,
    /// SQL script from mariadb-dump / mysqldump.
    MysqlSql,
    /// A SQLite database file.
    SqliteDb,
    /// `mongodump --archive` output.
    MongoArchive,
    /// dbkeep's Redis key stream (see `connector::redis`).
    RedisKeys,
}

impl DumpFormat {
    /// The file-name extension before the compression suffix.
    pub fn extension(self) -> &'static str {
        match self {
            DumpFormat::PgCustom => "pgdump",
            DumpFormat::PgSql | DumpFormat::MysqlSql => "sql",
            DumpFormat::SqliteDb => "sqlite",
            DumpFormat::MongoArchive => "archive",
            DumpFormat::RedisKeys => "redis",
        }
    }
}

impl Manifest {
    /// The folder of this backup inside its storage.
    pub fn dir(&self, prefix: &str) -> String {
        backup_dir(prefix, &self.job, &self.id)
    }
}

/// `<prefix>/<job>/<id>` (no trailing slash).
pub fn backup_dir(prefix: &str, job: &str, id: &str) -> String {
    join_key(&[prefix, job, id])
}

/// Joins key segments with `/`, skipping empty ones.
pub fn join_key(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// A new backup id for a backup starting at `now`.
pub fn new_id(now: DateTime<Utc>) -> String {
    let nanos = now.timestamp_subsec_nanos();
    let mix = (u64::from(nanos) ^ (u64::from(std::process::id()) << 16))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%SZ"),
        (mix >> 48) & 0xffff
    )
}

/// The start time encoded in a backup id (`20261122T135501Z-3f2a`).
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.get(..16)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Formats a time the way manifests and `list` show it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A manifest and the storage folder it was read from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The manifest.
    pub manifest: Manifest,
    /// Its backup folder key.
    pub dir: String,
}

/// Writes `manifest` into its backup folder (the last write of a backup).
pub fn write(storage: &dyn Storage, dir: &str, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest).context("cannot encode the manifest")?;
    storage.put(&join_key(&[dir, MANIFEST]), &json)
}

/// Every backup of `job` (all jobs when `None`) in a storage, newest first.
pub fn list(storage: &dyn Storage, prefix: &str, job: Option<&str>) -> Result<Vec<Entry>> {
    let base = match job {
        Some(job) => join_key(&[prefix, job]),
        None => prefix.trim_matches('/').to_string(),
    };
    let keys = storage.list(&base).with_context(|| {
        format!(
            "cannot list backups in storage `{}` ({})",
            storage.name(),
            storage.location()
        )
    })?;
    let mut entries = Vec::new();
    for key in keys {
        let Some(dir) = key.strip_suffix(&format!("/{MANIFEST}")) else {
            continue;
        };
        // Only `<prefix>/<job>/<id>/manifest.json`.
        let rel = if base.is_empty() {
            dir
        } else {
            dir.strip_prefix(&format!("{base}/")).unwrap_or(dir)
        };
        let depth = rel.split('/').count();
        if depth != if job.is_some() { 1 } else { 2 } {
            continue;
        }
        let bytes = storage
            .get(&key)
            .with_context(|| format!("cannot read {key}"))?;
        match parse(&bytes) {
            Ok(m) if m.format <= FORMAT => entries.push(Entry {
                manifest: m,
                dir: dir.to_string(),
            }),
            Ok(m) => tracing::warn!(
                key,
                format = m.format,
                "skipping a manifest written by a newer dbkeep"
            ),
            Err(e) => tracing::warn!(key, error = %e, "skipping an unreadable manifest"),
        }
    }
    entries.sort_by(|a, b| {
        b.manifest
            .started_at
            .cmp(&a.manifest.started_at)
            .then_with(|| b.manifest.id.cmp(&a.manifest.id))
    });
    Ok(entries)
}

/// Parses `--before` times: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` or `YYYY-MM-DD` (UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_default());
    }
    anyhow::bail!(
        "cannot read time `{text}`: use RFC 3339 (2026-11-22T03:00:00Z) or `YYYY-MM-DD [HH:MM[:SS]]` in UTC"
    )
}

/// Picks a backup: by id (or unique id prefix), else the newest started
/// before `before`, else the newest.
pub fn select(entries: &[Entry], id: Option<&str>, before: Option<DateTime<Utc>>) -> Result<Entry> {
    if let Some(id) = id {
        let hits: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.manifest.id.starts_with(id))
            .collect();
        return match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => anyhow::bail!("no backup with id `{id}`; `dbkeep list` shows the ids"),
            _ => anyhow::bail!("id `{id}` matches {} backups; give more of it", hits.len()),
        };
    }
    if let Some(before) = before {
        return entries
            .iter()
            .find(|e| e.manifest.started_at < before)
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no backup started before {}; `dbkeep list` shows what there is",
                    rfc3339(before)
                )
            });
    }
    entries
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("there are no backups yet"))
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time() {
        let a = new_id("2026-01-02T03:04:05Z".parse().unwrap());
        let b = new_id("2026-01-02T03:04:06Z".parse().unwrap());
        assert!(a.starts_with("20260102T030405Z-") && a < b, "{a} {b}");
    }

    #[test]
    fn times_parse() {
        let t = parse_time("2026-11-22").unwrap();
        assert_eq!(rfc3339(t), "2026-11-22T00:00:00Z");
        assert_eq!(
            rfc3339(parse_time("2026-11-22 10:30").unwrap()),
            "2026-11-22T10:30:00Z"
        );
        assert_eq!(
            rfc3339(parse_time("2026-11-22T10:30:00+01:00").unwrap()),
            "2026-11-22T09:30:00Z"
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn parse_refuses_oversized_and_malformed_input() {
        let big = vec![b' '; MAX_MANIFEST + 1];
        let e = parse(&big).unwrap_err().to_string();
        assert!(e.contains("larger than the 64 MiB limit"), "{e}");
        assert!(parse(b"").is_err());
        assert!(parse(b"{").is_err());
        assert!(parse(b"{\"format\": 1}").is_err());
        assert!(parse(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[").is_err());
    }
}
