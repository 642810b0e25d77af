//! The backup record (`manifest.json`), object naming, and reading the
//! catalog back from a storage.
//!
//! A backup is the folder `<prefix>/<job>/<id>/` holding its data objects and
//! `manifest.json`, which is written last. A folder without a manifest is not
//! a backup: `list` and `restore` only ever read manifests, and there is no
//! local state.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::connector::Engine;
pub use crate::connector::{ArtifactKind, DumpFormat};
use crate::pipeline::codec::Compression;
use crate::storage::Storage;
use crate::util::problem::Problems;

/// The manifest's file name inside a backup folder.
pub const MANIFEST: &str = "manifest.json";
/// The manifest format this dbkeep writes and reads.
pub const FORMAT: u32 = 1;
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
    pub encryption: Option<crate::pipeline::crypt::Encryption>,
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
    /// A physical base backup's WAL range and cluster (`method: physical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<crate::connector::pg_physical::BaseBackup>,
    /// HMAC-SHA256 over the manifest without this field, when the config has
    /// a `signing` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// A manifest's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// Always `hmac-sha256`.
    pub algorithm: String,
    /// The MAC, hex.
    pub mac: String,
}

/// The largest manifest dbkeep reads.
pub const MAX_MANIFEST: usize = 64 << 20;

/// Parses a manifest read from a storage (untrusted), refusing oversized input.
pub fn parse(bytes: &[u8]) -> Result<Manifest> {
    anyhow::ensure!(
        bytes.len() <= MAX_MANIFEST,
        "the manifest is {} bytes, over the {} MiB that dbkeep reads",
        bytes.len(),
        MAX_MANIFEST >> 20
    );
    serde_json::from_slice(bytes).context("not a dbkeep manifest")
}

/// Whether `name` can be a file name inside a backup folder.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(['.', '-'])
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

impl Manifest {
    /// Structural checks on a manifest read back from a storage, `dir_id` being
    /// the folder it was found in: the id, job and file names must be what
    /// dbkeep writes. Err says what is wrong.
    pub fn validate(&self, dir_id: &str) -> std::result::Result<(), String> {
        if self.format > FORMAT {
            return Err(format!(
                "written by a newer dbkeep (manifest format {})",
                self.format
            ));
        }
        if self.id != dir_id {
            return Err(format!(
                "its id `{}` is not its folder's name `{}`",
                crate::util::printable(&self.id),
                crate::util::printable(dir_id)
            ));
        }
        if id_time(&self.id).is_none() || !plain_file_name(&self.id) {
            return Err("its id is not a dbkeep backup id".to_string());
        }
        let mut names = std::collections::BTreeSet::new();
        for a in &self.artifacts {
            if !plain_file_name(&a.name) || a.name == MANIFEST {
                return Err(format!(
                    "artifact name `{}` is not a plain file name",
                    crate::util::printable(&a.name)
                ));
            }
            if !names.insert(a.name.as_str()) {
                return Err(format!("artifact `{}` is listed twice", a.name));
            }
            if a.sha256.len() != 64 || !a.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("artifact `{}` has no valid sha256", a.name));
            }
        }
        Ok(())
    }

    /// The bytes a signature covers: the manifest without its signature.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut plain = self.clone();
        plain.authentication = None;
        serde_json::to_vec(&plain).unwrap_or_default()
    }

    /// Signs the manifest with `key`.
    pub fn sign(&mut self, key: &SigningKey) {
        self.authentication = Some(Authentication {
            algorithm: "hmac-sha256".to_string(),
            mac: hex::encode(key.mac(&self.signed_bytes())),
        });
    }

    /// Checks the signature against `key`; Err says why it is not authentic.
    pub fn check_signature(&self, key: &SigningKey) -> std::result::Result<(), String> {
        let Some(auth) = &self.authentication else {
            return Err("it is not signed, and the config has a `signing` key".to_string());
        };
        if auth.algorithm != "hmac-sha256" {
            return Err(format!(
                "its signature algorithm `{}` is not hmac-sha256",
                crate::util::printable(&auth.algorithm)
            ));
        }
        let Ok(mac) = hex::decode(&auth.mac) else {
            return Err("its signature is not hex".to_string());
        };
        if key.verify(&self.signed_bytes(), &mac) {
            Ok(())
        } else {
            Err(
                "its signature does not match: it was altered, or signed with another key"
                    .to_string(),
            )
        }
    }
}

/// The key that authenticates manifests (HMAC-SHA256). With it set, backups
/// are signed, and `list`, `restore`, `verify` and `prune` trust only
/// manifests that carry a valid signature.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// The key itself (at least 32 characters; prefer `key_file`).
    pub key: Option<crate::util::secret::Secret>,
    /// A file whose content (trailing newline removed) is the key.
    pub key_file: Option<std::path::PathBuf>,
}

impl SigningConfig {
    /// One of `key` and `key_file`, and a key long enough to resist guessing.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        match (&self.key, &self.key_file) {
            (Some(_), Some(_)) => problems.add(at, "give `key` or `key_file`, not both"),
            (None, None) => {
                problems.add(at, "missing required key: set `key_file: PATH` (or `key`)")
            }
            (Some(k), None) if k.expose().len() < 32 => problems.add(
                format!("{at}.key"),
                "the key is too short: use at least 32 characters (e.g. `openssl rand -hex 32`)",
            ),
            _ => {}
        }
    }
}

/// The HMAC-SHA256 key that signs manifests.
pub struct SigningKey(crate::util::secret::Secret);

impl SigningKey {
    /// Loads the key the config's `signing` section names.
    pub fn load(config: &SigningConfig) -> Result<SigningKey> {
        let key = match (&config.key, &config.key_file) {
            (Some(k), _) => k.clone(),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "cannot read the signing key file {} (`signing.key_file`)",
                        path.display()
                    )
                })?;
                crate::util::secret::Secret::new(text.trim_end_matches(['\n', '\r']))
            }
            (None, None) => anyhow::bail!("`signing` needs `key_file` or `key`"),
        };
        anyhow::ensure!(
            key.expose().len() >= 32,
            "the signing key is too short: use at least 32 characters (e.g. `openssl rand -hex 32`)"
        );
        Ok(SigningKey(key))
    }

    fn hmac(&self) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        hmac::Hmac::<sha2::Sha256>::new_from_slice(self.0.expose().as_bytes())
            .expect("HMAC takes keys of any length")
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        use hmac::Mac;
        let mut m = self.hmac();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    fn verify(&self, data: &[u8], mac: &[u8]) -> bool {
        use hmac::Mac;
        let mut m = self.hmac();
        m.update(data);
        m.verify_slice(mac).is_ok()
    }
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
    /// Where the dump stands in the server's binary log (`binlog: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<crate::connector::mysql_binlog::BinlogPosition>,
}

impl Artifact {
    /// What a connector needs to restore it.
    pub fn item(&self) -> crate::connector::DumpItem {
        crate::connector::DumpItem {
            kind: self.kind,
            database: self.database.clone(),
            format: self.format,
        }
    }
}

impl Manifest {
    /// Checks every artifact against what its engine writes
    /// ([`crate::connector::expected_format`]).
    pub fn check_artifacts(&self) -> Result<()> {
        for a in &self.artifacts {
            let ok = crate::connector::expected_format(self.engine, a.kind) == Some(a.format)
                && (a.kind == ArtifactKind::Database) == a.database.is_some();
            if !ok {
                anyhow::bail!(
                    "backup {}: artifact `{}` claims to be a {:?} {:?} of a {} backup, which dbkeep never writes; \
                     the manifest is damaged or crafted, so the backup is refused",
                    crate::util::printable(&self.id),
                    crate::util::printable(&a.name),
                    a.kind,
                    a.format,
                    self.engine
                );
            }
        }
        self.base()?;
        for a in &self.artifacts {
            if let Some(b) = &a.binlog
                && let Err(why) = b.check()
            {
                anyhow::bail!(
                    "backup {}: artifact `{}`: {why}; the manifest is damaged or crafted, so the backup is refused",
                    crate::util::printable(&self.id),
                    crate::util::printable(&a.name)
                );
            }
        }
        Ok(())
    }

    /// A base backup's record, when this is one (checked: it is read back
    /// from a storage).
    pub fn base(&self) -> Result<Option<&crate::connector::pg_physical::BaseBackup>> {
        let cluster = self
            .artifacts
            .iter()
            .any(|a| a.kind == ArtifactKind::Cluster);
        match (&self.base_backup, cluster) {
            (None, false) => Ok(None),
            (Some(b), true) => match b.check() {
                Ok(()) => Ok(Some(b)),
                Err(why) => anyhow::bail!(
                    "backup {}: {why}; the manifest is damaged or crafted, so the backup is refused",
                    crate::util::printable(&self.id)
                ),
            },
            _ => anyhow::bail!(
                "backup {}: a base backup record and a cluster artifact go together, and this manifest has one                  without the other; it is damaged or crafted, so the backup is refused",
                crate::util::printable(&self.id)
            ),
        }
    }

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

pub use crate::util::rfc3339;

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
///
/// Manifests are untrusted: one that does not parse, fails
/// [`Manifest::validate`], names another job, or (with `key`) is not signed
/// by it is left out with a warning.
pub fn list(storage: &dyn Storage, prefix: &str, job: Option<&str>) -> Result<Vec<Entry>> {
    Ok(scan(storage, prefix, job, None)?.entries)
}

/// What [`scan`] found.
pub struct Scan {
    /// The usable backups, newest first.
    pub entries: Vec<Entry>,
    /// Manifests left out: (key, why).
    pub skipped: Vec<(String, String)>,
}

/// [`list`], with the manifests left out and why.
pub fn scan(
    storage: &dyn Storage,
    prefix: &str,
    job: Option<&str>,
    key_for_check: Option<&SigningKey>,
) -> Result<Scan> {
    let mut skipped = Vec::new();
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
        let dir_id = dir.rsplit('/').next().unwrap_or(dir);
        let checked = parse(&bytes)
            .map_err(|e| format!("{e:#}"))
            .and_then(|m| m.validate(dir_id).map(|()| m))
            .and_then(|m| match (job, key_for_check) {
                (Some(j), _) if m.job != j => Err(format!(
                    "it names job `{}`, not `{j}`",
                    crate::util::printable(&m.job)
                )),
                (_, Some(k)) => m.check_signature(k).map(|()| m),
                _ => Ok(m),
            });
        match checked {
            Ok(m) => entries.push(Entry {
                manifest: m,
                dir: dir.to_string(),
            }),
            Err(why) => {
                tracing::warn!(key = %crate::util::printable(&key), problem = %why, "skipping a manifest");
                skipped.push((key.clone(), why));
            }
        }
    }
    entries.sort_by(|a, b| {
        b.manifest
            .started_at
            .cmp(&a.manifest.started_at)
            .then_with(|| b.manifest.id.cmp(&a.manifest.id))
    });
    Ok(Scan { entries, skipped })
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

/// How far a manifest's time may lie ahead of this host's clock, and how much
/// `keep_within` allows for clocks that disagree.
pub const SKEW: std::time::Duration = std::time::Duration::from_secs(300);

/// Why a manifest is not ranked by the rules, if it is suspect (see the
/// module docs).
pub fn suspect(m: &Manifest, now: DateTime<Utc>) -> Option<String> {
    let skew = chrono::Duration::from_std(SKEW).unwrap_or_default();
    if m.started_at > now + skew {
        return Some(format!(
            "suspect: dated {} in the future",
            rfc3339(m.started_at)
        ));
    }
    match id_time(&m.id) {
        Some(t) if (m.started_at - t).num_seconds().abs() <= 2 => None,
        _ => Some(format!(
            "suspect: its start time {} disagrees with its id",
            rfc3339(m.started_at)
        )),
    }
}

/// Picks a backup: by id (or unique id prefix), else the newest started
/// before `before`, else the newest. Without an id, a [`suspect`] backup
/// (dated in the future, say) is never picked: it is named in a warning.
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
    let now = Utc::now();
    let entries: Vec<&Entry> = entries
        .iter()
        .filter(|e| match suspect(&e.manifest, now) {
            Some(why) => {
                tracing::warn!(
                    id = %crate::util::printable(&e.manifest.id),
                    problem = %why,
                    "not choosing this backup; name it with `--id` to restore it anyway"
                );
                false
            }
            None => true,
        })
        .collect();
    if let Some(before) = before {
        return entries
            .iter()
            .find(|e| e.manifest.started_at < before)
            .copied()
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
        .copied()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("there are no usable backups (see the warnings above)"))
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
        assert!(e.contains("over the 64 MiB that dbkeep reads"), "{e}");
        assert!(parse(b"").is_err());
        assert!(parse(b"{").is_err());
        assert!(parse(b"{\"format\": 1}").is_err());
        assert!(parse(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[").is_err());
    }
}
