//! The WAL archive of a PostgreSQL job, in its storages.
//!
//! Layout, under `<prefix>/<job>/wal/`:
//! - `<NAME>.<suffix>`: the file PostgreSQL handed to `archive_command`,
//!   compressed with the job's compression (and encrypted with its
//!   `encryption`, if any), written like any backup object: under a temp
//!   name, visible only once complete;
//! - `<NAME>.json`: its record ([`Record`]): sizes, the sha256 of the file
//!   and of the stored object, and the cluster's system identifier. It is
//!   written last, with a conditional create, so an object without a record
//!   is an unfinished push that the next push of the name replaces;
//! - `cluster.json`: the system identifier of the cluster the archive
//!   belongs to, created by the first push.
//!
//! Names are what PostgreSQL archives and nothing else: segments
//! (`000000010000000000000003`), `.partial` segments, timeline `.history`
//! files and `.backup` history files.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use crate::connector::pg_wal::{
    Kind, Lsn, check_name, kind, parse_segment, segment_name, segment_of, system_identifier,
};

use crate::catalog::manifest::join_key;
use crate::pipeline::codec::{Compression, Decoder, Encoder};
use crate::pipeline::crypt::{Keys, Sealed, Sealing};
use crate::pipeline::{Hashing, Packing};
use crate::storage::Target;

/// The most of a WAL file dbkeep takes (PostgreSQL's largest segment size).
pub const MAX_FILE: u64 = 1 << 30;
/// The most of a record or `cluster.json` dbkeep reads.
const RECORD_MAX: usize = 64 << 10;

/// The record of one archived file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The file's name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// sha256 of the file, hex.
    pub sha256: String,
    /// Bytes stored.
    pub stored_size: u64,
    /// sha256 of the stored object, hex.
    pub stored_sha256: String,
    /// Compression of the stored object.
    pub compression: Compression,
    /// Whether the stored object is encrypted (age).
    #[serde(default)]
    pub encrypted: bool,
    /// The cluster's system identifier, read from a segment's first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<u64>,
    /// When it was archived (UTC).
    pub archived_at: chrono::DateTime<chrono::Utc>,
}

/// The cluster an archive belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cluster {
    system_identifier: u64,
}

/// One job's log archive: its PostgreSQL WAL (`wal/`) or its MariaDB/MySQL
/// binary logs (`binlog/`). Both are kept the same way.
#[derive(Debug, Clone, Copy)]
pub struct Log<'a> {
    /// The job.
    pub job: &'a str,
    /// The folder under the job.
    area: &'static str,
    /// Which file names belong in it.
    valid: fn(&str) -> bool,
}

impl<'a> Log<'a> {
    /// The WAL archive of `job`.
    pub fn wal(job: &'a str) -> Log<'a> {
        Log {
            job,
            area: "wal",
            valid: |n| kind(n).is_some(),
        }
    }

    /// The binlog archive of `job`.
    pub fn binlog(job: &'a str) -> Log<'a> {
        Log {
            job,
            area: "binlog",
            valid: crate::connector::binlog_name_ok,
        }
    }
}

/// The folder of a job's log archive.
pub fn folder(prefix: &str, log: Log<'_>) -> String {
    join_key(&[prefix, log.job, log.area])
}

fn data_key(prefix: &str, log: Log<'_>, name: &str, compression: Compression) -> String {
    join_key(&[
        &folder(prefix, log),
        &format!("{name}{}", compression.suffix()),
    ])
}

fn record_key(prefix: &str, log: Log<'_>, name: &str) -> String {
    join_key(&[&folder(prefix, log), &format!("{name}.json")])
}

/// Reads and checks a record from the storage (hostile input).
fn read_record(target: &Target, key: &str, name: &str) -> Result<Option<Record>> {
    let Some(bytes) = target.storage.get_if_exists(key)? else {
        return Ok(None);
    };
    if bytes.len() > RECORD_MAX {
        anyhow::bail!(
            "storage `{}`: {key} is {} bytes, more than a WAL record can be; it is damaged or crafted",
            target.storage.name(),
            bytes.len()
        );
    }
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "storage `{}`: {key} is not a WAL record ({e}); it is damaged or crafted",
            target.storage.name()
        )
    })?;
    if record.name != name
        || !hex_sha(&record.sha256)
        || !hex_sha(&record.stored_sha256)
        || record.size > MAX_FILE
    {
        anyhow::bail!(
            "storage `{}`: {key} does not describe `{name}` with valid sizes and checksums; it is damaged or crafted",
            target.storage.name()
        );
    }
    Ok(Some(record))
}

fn hex_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// What `wal push` did in one storage.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Stored now.
    Stored,
    /// The same file was archived already.
    Already,
}

/// Reads a WAL file PostgreSQL handed over: whole (a segment is 16 MiB by
/// default, at most 1 GiB), checked by name.
pub fn read_file(path: &Path) -> Result<(String, Kind, Vec<u8>)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("`{}` names no WAL file", path.display()))?
        .to_string();
    let kind = check_name(&name)?;
    Ok((name, kind, read_whole(path)?))
}

/// Reads a log file whole (at most 1 GiB).
pub fn read_whole(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the WAL file {}", path.display()))?;
    crate::util::read_capped(file, MAX_FILE as usize)
        .map_err(|e| anyhow::anyhow!("cannot read the WAL file {}: {e}", path.display()))
}

/// Archives one WAL file into `target`: refuses a file of another cluster
/// and a different file under an archived name; the same file again is
/// [`Pushed::Already`].
#[allow(clippy::too_many_arguments)]
pub fn push(
    target: &Target,
    log: Log<'_>,
    name: &str,
    data: &[u8],
    sysid: Option<u64>,
    packing: Packing,
    sealing: Option<&Sealing>,
) -> Result<Pushed> {
    // The file's checksum is computed on another core while it is compressed.
    std::thread::scope(|scope| {
        let hasher = scope.spawn(|| sha256_hex(data));
        let sha = move || {
            hasher
                .join()
                .map_err(|_| anyhow::anyhow!("the checksum thread stopped"))
        };
        push_with(target, log, name, data, sysid, packing, sealing, sha)
    })
}

#[allow(clippy::too_many_arguments)]
fn push_with(
    target: &Target,
    log: Log<'_>,
    name: &str,
    data: &[u8],
    sysid: Option<u64>,
    packing: Packing,
    sealing: Option<&Sealing>,
    sha: impl FnOnce() -> Result<String>,
) -> Result<Pushed> {
    let storage = target.storage.name();
    if let Some(id) = sysid {
        check_cluster(target, log, id)?;
    }
    let rkey = record_key(&target.prefix, log, name);
    if let Some(old) = read_record(target, &rkey, name)? {
        return same_or_conflict(storage, name, &old, &sha()?, data.len());
    }
    let dkey = data_key(&target.prefix, log, name, packing.compression);
    let writer = target.storage.create(&dkey)?;
    let hashing = Hashing::new(writer);
    let sealed = Sealed::new(sealing, hashing).context("cannot start the encryption")?;
    let mut encoder = Encoder::new(packing, sealed).context("cannot start the compressor")?;
    encoder
        .write_all(data)
        .with_context(|| format!("storage `{storage}`: cannot store {dkey}"))?;
    let sealed = encoder
        .finish()
        .with_context(|| format!("storage `{storage}`: cannot store {dkey}"))?;
    let hashing = sealed
        .finish()
        .with_context(|| format!("storage `{storage}`: cannot store {dkey}"))?;
    let (writer, stored_size, stored_sha256) = hashing.into_parts();
    writer.commit()?;
    let sha = sha()?;
    let record = Record {
        name: name.to_string(),
        size: data.len() as u64,
        sha256: sha.clone(),
        stored_size,
        stored_sha256,
        compression: packing.compression,
        encrypted: sealing.is_some(),
        system_identifier: sysid,
        archived_at: chrono::Utc::now(),
    };
    let json = serde_json::to_vec_pretty(&record)?;
    match target.storage.create_if_absent(&rkey, &json)? {
        Some(_) => Ok(Pushed::Stored),
        // Another push of the name finished first.
        None => match read_record(target, &rkey, name)? {
            Some(old) => same_or_conflict(storage, name, &old, &sha, data.len()),
            None => anyhow::bail!("storage `{storage}`: cannot write {rkey}"),
        },
    }
}

fn same_or_conflict(
    storage: &str,
    name: &str,
    old: &Record,
    sha: &str,
    size: usize,
) -> Result<Pushed> {
    if old.sha256 == sha && old.size == size as u64 {
        return Ok(Pushed::Already);
    }
    anyhow::bail!(
        "storage `{storage}`: `{name}` is archived already with other contents (archived sha256 {}, {} bytes; \
         this file sha256 {sha}, {size} bytes): two clusters, or a restored one, may be archiving into one \
         job; refused, nothing was overwritten",
        old.sha256,
        old.size
    )
}

/// The system identifier of a WAL file PostgreSQL hands over, for the
/// cluster check ([`push`]): segments carry it, history files do not.
pub fn sysid_of(kind: Kind, data: &[u8]) -> Option<u64> {
    match kind {
        Kind::Segment | Kind::Partial => system_identifier(data),
        Kind::History | Kind::Backup => None,
    }
}

/// Creates or checks `cluster.json`.
fn check_cluster(target: &Target, log: Log<'_>, id: u64) -> Result<()> {
    let job = log.job;
    let key = join_key(&[&folder(&target.prefix, log), "cluster.json"]);
    let storage = target.storage.name();
    let read = |bytes: Vec<u8>| -> Result<u64> {
        if bytes.len() > RECORD_MAX {
            anyhow::bail!("storage `{storage}`: {key} is too large; it is damaged or crafted");
        }
        let c: Cluster = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "storage `{storage}`: {key} is not dbkeep's ({e}); it is damaged or crafted"
            )
        })?;
        Ok(c.system_identifier)
    };
    let known = match target.storage.get_if_exists(&key)? {
        Some(bytes) => read(bytes)?,
        None => {
            let json = serde_json::to_vec(&Cluster {
                system_identifier: id,
            })?;
            match target.storage.create_if_absent(&key, &json)? {
                Some(_) => id,
                None => read(target.storage.get_if_exists(&key)?.unwrap_or_default())?,
            }
        }
    };
    if known != id {
        anyhow::bail!(
            "storage `{storage}`: the WAL archive of job `{job}` belongs to the cluster with system identifier \
             {known}, this segment to {id}: refused, so two clusters never mix in one archive; give the other \
             cluster a job of its own"
        );
    }
    Ok(())
}

/// Fetches `name` from the first storage of `targets` that has it, checks
/// it whole, and writes it to `dest` under a temp name renamed into place.
/// `Ok(false)` when no storage has it (nothing is written).
pub fn fetch(
    targets: &[Target],
    log: Log<'_>,
    name: &str,
    dest: &Path,
    keys: &Keys,
) -> Result<bool> {
    for target in targets {
        let rkey = record_key(&target.prefix, log, name);
        let Some(record) = read_record(target, &rkey, name)? else {
            continue;
        };
        let data = download(target, log, &record, keys)?;
        write_atomically(dest, &data)?;
        return Ok(true);
    }
    Ok(false)
}

/// The archived file, read and checked against its record: the stored
/// object's size and sha256, then the file's.
pub fn download(target: &Target, log: Log<'_>, record: &Record, keys: &Keys) -> Result<Vec<u8>> {
    let storage = target.storage.name();
    let dkey = data_key(&target.prefix, log, &record.name, record.compression);
    let reader = target.storage.open(&dkey)?;
    let mut hashing = Hashing::new(reader.take(record.stored_size + 1));
    let data = {
        let plain: Box<dyn Read + '_> = if record.encrypted {
            Box::new(keys.open(&mut hashing, &dkey)?)
        } else {
            Box::new(&mut hashing)
        };
        let decoder = Decoder::new(record.compression, plain)?;
        // The record is read back from a storage: its size only hints.
        let mut out = Vec::with_capacity(record.size.min(64 << 20) as usize);
        decoder
            .take(record.size + 1)
            .read_to_end(&mut out)
            .with_context(|| {
                format!(
                    "storage `{storage}`: {dkey} is corrupt or truncated (cannot decompress it)"
                )
            })?;
        out
    };
    std::io::copy(&mut hashing, &mut std::io::sink())
        .with_context(|| format!("storage `{storage}`: cannot read {dkey}"))?;
    let (_, stored, stored_sha) = hashing.into_parts();
    if stored != record.stored_size || stored_sha != record.stored_sha256 {
        anyhow::bail!(
            "storage `{storage}`: {dkey} is {stored} bytes with sha256 {stored_sha}, its record says {} bytes \
             with sha256 {}: the archived `{}` is corrupt, so it is not used",
            record.stored_size,
            record.stored_sha256,
            record.name
        );
    }
    let sha = sha256_hex(&data);
    if data.len() as u64 != record.size || sha != record.sha256 {
        anyhow::bail!(
            "storage `{storage}`: the archived `{}` unpacks to {} bytes with sha256 {sha}, its record says {} \
             bytes with sha256 {}: it is corrupt, so it is not used",
            record.name,
            data.len(),
            record.size,
            record.sha256
        );
    }
    Ok(data)
}

/// Writes `data` to `dest` through a temp file in the same folder, renamed
/// into place, so `dest` is either absent or whole. It is not synced:
/// PostgreSQL reads it at once, and after a crash recovery fetches it again.
fn write_atomically(dest: &Path, data: &[u8]) -> Result<()> {
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = dest
        .file_name()
        .with_context(|| format!("`{}` names no file", dest.display()))?;
    let temp = dir.join(format!(
        ".{}.dbkeep-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        f.write_all(data)?;
        std::fs::rename(&temp, dest)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", dest.display()));
    }
    Ok(())
}

/// Every archived name in `target` (those with a record), sorted.
pub fn archived(target: &Target, log: Log<'_>) -> Result<Vec<String>> {
    let dir = folder(&target.prefix, log);
    let mut names: Vec<String> = target
        .storage
        .list(&dir)?
        .into_iter()
        .filter_map(|k| {
            let file = k.rsplit('/').next()?.strip_suffix(".json")?.to_string();
            (log.valid)(&file).then_some(file)
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The record of `name` in `target`.
pub fn record(target: &Target, log: Log<'_>, name: &str) -> Result<Option<Record>> {
    read_record(target, &record_key(&target.prefix, log, name), name)
}

/// Removes an archived file: its record first, then its object.
pub fn remove(target: &Target, log: Log<'_>, name: &str) -> Result<()> {
    let rkey = record_key(&target.prefix, log, name);
    let record = read_record(target, &rkey, name)?;
    target.storage.delete(&rkey)?;
    let compression = record.map(|r| r.compression);
    for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
        if compression.is_none_or(|x| x == c) {
            target
                .storage
                .delete(&data_key(&target.prefix, log, name, c))?;
        }
    }
    Ok(())
}

/// The first segment missing on `tli` from `from` to `to` (segment
/// numbers, inclusive) among `names`, or `None` when the chain is whole.
/// A `.partial` segment does not count: recovery never reads it.
pub fn first_gap(names: &[String], tli: u32, from: u64, to: u64, seg_size: u64) -> Option<String> {
    let have: std::collections::HashSet<u64> = names
        .iter()
        .filter_map(|n| parse_segment(n, seg_size))
        .filter(|(t, _)| *t == tli)
        .map(|(_, s)| s)
        .collect();
    (from..=to)
        .find(|s| !have.contains(s))
        .map(|s| segment_name(tli, s, seg_size))
}

/// The newest segment number archived on `tli`.
pub fn newest(names: &[String], tli: u32, seg_size: u64) -> Option<u64> {
    names
        .iter()
        .filter_map(|n| parse_segment(n, seg_size))
        .filter(|(t, _)| *t == tli)
        .map(|(_, s)| s)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 16 << 20;

    #[test]
    fn gaps_are_found_on_the_timeline() {
        let names: Vec<String> = [
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000005",
            "000000020000000000000004",
            "000000010000000000000004.partial",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(first_gap(&names, 1, 2, 3, SEG), None);
        assert_eq!(
            first_gap(&names, 1, 2, 5, SEG).as_deref(),
            Some("000000010000000000000004")
        );
        assert_eq!(newest(&names, 1, SEG), Some(5));
        assert_eq!(newest(&names, 2, SEG), Some(4));
    }
}
