//! Point-in-time recovery of a PostgreSQL cluster: a base backup unpacked
//! into a data directory, set up to replay the job's WAL archive through
//! `dbkeep wal fetch` to the target, then promote.
//!
//! Nothing is written before every object it needs checked out: the base
//! backup's artifact against its manifest, and each archived WAL segment
//! from the backup's start to the end of the archive against its record,
//! with no gap between them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::catalog::manifest::{ArtifactKind, Entry, join_key};
use crate::catalog::wal::{self, Log, Lsn};
use crate::connector::pg_physical::BaseBackup;
use crate::pipeline::crypt::Keys;
use crate::pipeline::{self, Expected};
use crate::storage::Target;
use crate::util::printable;

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// At the end of the archive.
    End,
    /// At a time (`recovery_target_time`), as given.
    Time(DateTime<Utc>, String),
    /// At an LSN (`recovery_target_lsn`).
    Lsn(Lsn),
    /// After a transaction (`recovery_target_xid`).
    Xid(u64),
}

/// A physical restore to do.
pub struct Plan<'a> {
    /// The job.
    pub job: &'a str,
    /// Its backups in `storage`, newest first.
    pub entries: &'a [Entry],
    /// Where they are read from.
    pub storage: &'a Target,
    /// The data directory to create.
    pub data_dir: &'a Path,
    /// Where recovery stops.
    pub stop: Stop,
    /// Empty a data directory that is not empty.
    pub force: bool,
    /// Keys for an encrypted backup.
    pub keys: &'a Keys,
    /// The config file `restore_command` names (absolute).
    pub config: PathBuf,
}

/// What a physical restore did.
#[derive(Debug)]
pub struct Restored {
    /// The base backup used.
    pub id: String,
    /// The WAL segments checked.
    pub segments: usize,
    /// The last archived segment.
    pub last: String,
}

/// The base backup to start from: the newest that ended before the target.
fn choose<'a>(entries: &'a [Entry], stop: &Stop) -> Result<(&'a Entry, &'a BaseBackup)> {
    let mut bases: Vec<(&Entry, &BaseBackup)> = entries
        .iter()
        .filter_map(|e| e.manifest.base_backup.as_ref().map(|b| (e, b)))
        .filter(|(_, b)| b.check().is_ok())
        .collect();
    bases.sort_by_key(|(_, b)| std::cmp::Reverse(b.stopped_at));
    let oldest = bases
        .last()
        .map(|(e, b)| (e.manifest.id.clone(), b.stopped_at, b.stop_lsn.clone()));
    let Some((oldest_id, oldest_end, oldest_lsn)) = oldest else {
        anyhow::bail!(
            "there is no base backup to restore (a job needs `method: physical` for them)"
        );
    };
    let found = match stop {
        Stop::End | Stop::Xid(_) => bases.first().copied(),
        Stop::Time(t, _) => bases.iter().find(|(_, b)| b.stopped_at < *t).copied(),
        Stop::Lsn(l) => bases.iter().find(|(_, b)| b.stop() <= *l).copied(),
    };
    found.with_context(|| match stop {
        Stop::Time(_, text) => format!(
            "no base backup ended before {text}: the oldest, {oldest_id}, ended at {}",
            crate::util::rfc3339(oldest_end)
        ),
        Stop::Lsn(l) => format!(
            "no base backup ended at or before LSN {l}: the oldest, {oldest_id}, ends at {oldest_lsn}"
        ),
        _ => "there is no base backup to restore".to_string(),
    })
}

/// Quotes a word for the shell that runs `restore_command`.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@".contains(&b))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Quotes a value for postgresql.auto.conf.
fn conf_value(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The recovery settings appended to postgresql.auto.conf.
pub fn recovery_settings(exe: &Path, config: &Path, job: &str, id: &str, stop: &Stop) -> String {
    let command = format!(
        "{} -c {} wal fetch {} %f %p",
        shell_word(&exe.to_string_lossy()),
        shell_word(&config.to_string_lossy()),
        shell_word(job)
    );
    let mut text = format!(
        "\n# Added by dbkeep restore of base backup {id}: replay the WAL archive of job `{job}`.\n\
         restore_command = {}\n",
        conf_value(&command)
    );
    match stop {
        Stop::End => {}
        Stop::Time(t, _) => {
            text.push_str(&format!(
                "recovery_target_time = {}\n",
                conf_value(&t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string())
            ));
        }
        Stop::Lsn(l) => text.push_str(&format!(
            "recovery_target_lsn = {}\n",
            conf_value(&l.to_string())
        )),
        Stop::Xid(x) => text.push_str(&format!(
            "recovery_target_xid = {}\n",
            conf_value(&x.to_string())
        )),
    }
    if *stop != Stop::End {
        text.push_str("recovery_target_action = 'promote'\n");
    }
    text
}

/// Whether `dir` holds anything.
fn non_empty(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Empties `dir` (what `--force` asks for) without following links out of it.
fn empty(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// Restores `plan`.
pub fn run(plan: &Plan<'_>) -> Result<Restored> {
    let (entry, base) = choose(plan.entries, &plan.stop)?;
    let m = &entry.manifest;
    m.check_artifacts()?;
    let artifact = m
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Cluster)
        .with_context(|| format!("backup {} holds no base backup", printable(&m.id)))?;
    tracing::info!(id = m.id, start = %base.start_wal, stop = %base.stop_wal, "selected base backup");

    // 1. The WAL chain, from the backup's start to the end of the archive.
    let seg = base.wal_segment_size;
    let names = wal::archived(plan.storage, Log::wal(plan.job))?;
    let (from, to) = base.segments();
    let newest = wal::newest(&names, base.timeline, seg).unwrap_or(0).max(to);
    let last_needed = match plan.stop {
        Stop::Lsn(l) => newest.max(wal::segment_of(l, seg)),
        _ => newest,
    };
    if let Some(gap) = wal::first_gap(&names, base.timeline, from, last_needed, seg) {
        anyhow::bail!(
            "the WAL archive of job `{}` in storage `{}` lacks segment {gap}, which a restore from base backup {} \
             needs (it needs {} up to the end of the archive, {}); nothing was written",
            plan.job,
            plan.storage.storage.name(),
            m.id,
            base.start_wal,
            wal::segment_name(base.timeline, last_needed, seg)
        );
    }

    // 2. Checksums: the base backup, then every segment, before anything is written.
    if m.encryption.is_some() && plan.keys.is_empty() {
        anyhow::bail!(
            "backup {} is encrypted with age: pass `--identity FILE`, or set `identity_file` under the job's `encryption.age`",
            m.id
        );
    }
    let key = join_key(&[&entry.dir, &artifact.name]);
    let expected = Expected {
        size: artifact.stored_size,
        sha256: artifact.sha256.clone(),
        raw_size: artifact.raw_size,
    };
    tracing::info!(
        key,
        size = artifact.stored_size,
        "verifying checksum before restore"
    );
    let mut reader = plan.storage.storage.open(&key)?;
    pipeline::check_object(&mut reader, &key, &expected)?;
    let mut checked = 0;
    for segno in from..=last_needed {
        let name = wal::segment_name(base.timeline, segno, seg);
        let record = wal::record(plan.storage, Log::wal(plan.job), &name)?
            .with_context(|| format!("segment {name} vanished from the archive"))?;
        wal::download(plan.storage, Log::wal(plan.job), &record, plan.keys)?;
        checked += 1;
    }
    tracing::info!(segments = checked, "WAL checked");

    // 3. The data directory.
    let dir = plan.data_dir;
    let existed = dir.exists();
    if non_empty(dir)? {
        if !plan.force {
            anyhow::bail!(
                "the data directory {} is not empty: give an empty or new folder, or `--force` to empty it first",
                dir.display()
            );
        }
        empty(dir)?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode_0700()
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let result = unpack(plan, entry, &key, &expected, base);
    if let Err(e) = result {
        // Only what this restore wrote goes.
        let _ = empty(dir);
        if !existed {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(e);
    }
    Ok(Restored {
        id: m.id.clone(),
        segments: checked,
        last: wal::segment_name(base.timeline, last_needed, seg),
    })
}

trait DirMode {
    fn mode_0700(&mut self) -> &mut Self;
}

impl DirMode for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o700)
    }
}

/// Streams the base backup into the data directory and adds the recovery settings.
fn unpack(
    plan: &Plan<'_>,
    entry: &Entry,
    key: &str,
    expected: &Expected,
    _base: &BaseBackup,
) -> Result<()> {
    let m = &entry.manifest;
    let dir = plan.data_dir.to_path_buf();
    let (mut writer, reader) = crate::util::chan::channel(4);
    let extractor = std::thread::spawn(move || {
        crate::util::tar::extract(
            std::io::BufReader::with_capacity(256 << 10, reader),
            &dir,
            &mut |_, _| {},
        )
    });
    let mut reader = plan.storage.storage.open(key)?;
    let keys = m.encryption.is_some().then_some(plan.keys);
    let unpacked = pipeline::unpack(
        &mut reader,
        key,
        m.compression,
        keys,
        expected,
        &mut writer,
        0,
    );
    drop(writer);
    let extracted = extractor
        .join()
        .map_err(|_| anyhow::anyhow!("the tar extraction stopped unexpectedly"))?;
    match (unpacked, extracted) {
        (Err(e), _) => return Err(e),
        (Ok(_), Err(e)) => return Err(e).with_context(|| format!("cannot unpack {key}")),
        (Ok(_), Ok(summary)) => {
            tracing::info!(
                files = summary.files,
                bytes = summary.bytes,
                "base backup unpacked"
            );
        }
    }
    if !plan.data_dir.join("backup_label").is_file() {
        anyhow::bail!("{key} holds no backup_label: it is not a base backup");
    }
    let exe = std::env::current_exe().context("cannot tell where dbkeep is")?;
    let settings = recovery_settings(&exe, &plan.config, plan.job, &m.id, &plan.stop);
    let auto = plan.data_dir.join("postgresql.auto.conf");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&auto)
        .with_context(|| format!("cannot write {}", auto.display()))?;
    f.write_all(settings.as_bytes())
        .with_context(|| format!("cannot write {}", auto.display()))?;
    std::fs::File::create(plan.data_dir.join("recovery.signal")).with_context(|| {
        format!(
            "cannot write recovery.signal in {}",
            plan.data_dir.display()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_command_quotes_what_the_shell_and_the_conf_would_read() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let text = recovery_settings(
            Path::new("/usr/bin/dbkeep"),
            Path::new("/etc/db keep/it's.yaml"),
            "app",
            "20261201T100000Z-abcd",
            &Stop::Time(t, "2026-12-01T10:00:00.250Z".into()),
        );
        assert!(
            text.contains(
                r#"restore_command = '/usr/bin/dbkeep -c ''/etc/db keep/it''\''''s.yaml'' wal fetch app %f %p'"#
            ),
            "{text}"
        );
        assert!(text.contains("recovery_target_time = '2026-12-01 10:00:00.250000+00'"));
        assert!(text.contains("recovery_target_action = 'promote'"));
        let end = recovery_settings(Path::new("/d"), Path::new("/c"), "app", "x", &Stop::End);
        assert!(!end.contains("recovery_target"), "{end}");
    }
}

/// What the WAL chain of a job holds, from its oldest kept base backup on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Chain {
    /// The first segment a kept base backup needs.
    pub from: String,
    /// The newest archived segment on that timeline.
    pub to: String,
    /// Segments checked (sha256 of the stored object and of the file).
    pub segments: usize,
    /// When the oldest kept base backup ended: the start of the recoverable window.
    pub window_start: DateTime<Utc>,
    /// When the newest segment was archived: about the end of the window.
    pub window_end: Option<DateTime<Utc>>,
}

/// Base backups among `entries`, checked, oldest first.
fn bases(entries: &[Entry]) -> Vec<(&Entry, &BaseBackup)> {
    let mut bases: Vec<(&Entry, &BaseBackup)> = entries
        .iter()
        .filter_map(|e| e.manifest.base().ok().flatten().map(|b| (e, b)))
        .collect();
    bases.sort_by_key(|(_, b)| b.stopped_at);
    bases
}

/// The recoverable window of a job without reading WAL contents: `None`
/// when it has no base backup.
pub fn window(target: &Target, job: &str, entries: &[Entry]) -> Result<Option<Chain>> {
    chain(target, job, entries, None)
}

/// Checks the WAL chain from each base backup in `entries` to the newest
/// archived segment: no gaps, and every segment read whole and checked.
pub fn verify(target: &Target, job: &str, entries: &[Entry], keys: &Keys) -> Result<Option<Chain>> {
    chain(target, job, entries, Some(keys))
}

fn chain(
    target: &Target,
    job: &str,
    entries: &[Entry],
    keys: Option<&Keys>,
) -> Result<Option<Chain>> {
    let bases = bases(entries);
    let Some((_, oldest)) = bases.first() else {
        return Ok(None);
    };
    let names = wal::archived(target, Log::wal(job))?;
    let mut checked = std::collections::BTreeSet::new();
    let mut newest_name = oldest.stop_wal.clone();
    for (entry, base) in &bases {
        let seg = base.wal_segment_size;
        let (from, to) = base.segments();
        let newest = wal::newest(&names, base.timeline, seg).unwrap_or(0).max(to);
        if let Some(gap) = wal::first_gap(&names, base.timeline, from, newest, seg) {
            anyhow::bail!(
                "the WAL archive of job `{job}` in storage `{}` lacks segment {gap}: base backup {} (from {}) \
                 cannot be recovered past it",
                target.storage.name(),
                entry.manifest.id,
                base.start_wal
            );
        }
        for segno in from..=newest {
            let name = wal::segment_name(base.timeline, segno, seg);
            if let Some(keys) = keys
                && checked.insert(name.clone())
            {
                let record = wal::record(target, Log::wal(job), &name)?
                    .with_context(|| format!("segment {name} vanished from the archive"))?;
                wal::download(target, Log::wal(job), &record, keys)?;
            }
            newest_name = newest_name.max(name);
        }
    }
    let window_end = wal::record(target, Log::wal(job), &newest_name)?.map(|r| r.archived_at);
    Ok(Some(Chain {
        from: oldest.start_wal.clone(),
        to: newest_name,
        segments: checked.len(),
        window_start: oldest.stopped_at,
        window_end,
    }))
}

/// What pruning the WAL archive did (or would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WalPruned {
    /// The first segment kept: the start of the oldest kept base backup.
    pub kept_from: Option<String>,
    /// The files deleted (or to delete).
    pub deleted: Vec<String>,
}

/// Deletes archived WAL older than the start of the oldest base backup in
/// `kept`. With no base backup kept, nothing is deleted. Timeline history
/// files are kept.
pub fn prune_wal(target: &Target, job: &str, kept: &[Entry], dry_run: bool) -> Result<WalPruned> {
    if let Some(odd) = kept.iter().find_map(|e| e.manifest.base().err()) {
        tracing::warn!(job, storage = target.storage.name(), error = %format!("{odd:#}"), "the WAL archive is not pruned");
        return Ok(WalPruned::default());
    }
    let bases = bases(kept);
    let Some(cut) = bases
        .iter()
        .map(|(_, b)| (b.segments().0, b.wal_segment_size, b.start_wal.clone()))
        .min()
    else {
        return Ok(WalPruned::default());
    };
    let (first, seg, first_name) = cut;
    let mut deleted = Vec::new();
    for name in wal::archived(target, Log::wal(job))? {
        let segment = match wal::kind(&name) {
            Some(wal::Kind::Segment) => name.clone(),
            Some(wal::Kind::Partial | wal::Kind::Backup) => name[..24].to_string(),
            _ => continue,
        };
        let Some((_, segno)) = wal::parse_segment(&segment, seg) else {
            continue;
        };
        if segno < first {
            if !dry_run {
                wal::remove(target, Log::wal(job), &name)?;
            }
            deleted.push(name);
        }
    }
    Ok(WalPruned {
        kept_from: Some(first_name),
        deleted,
    })
}

/// After retention ran on `target` (its `rows`): prunes the log archive of a
/// job (the WAL of a physical PostgreSQL job, the binlogs of a `binlog:
/// true` one) to what the backups it kept need. A manifest that cannot be
/// read keeps the archive whole.
pub fn prune_after(
    target: &Target,
    job: &crate::config::Job,
    name: &str,
    key: Option<&crate::catalog::manifest::SigningKey>,
    rows: &[crate::catalog::retention::Row],
    dry_run: bool,
) -> Result<WalPruned> {
    let scan = crate::catalog::manifest::scan(&*target.storage, &target.prefix, Some(name), key)?;
    if !scan.skipped.is_empty() {
        tracing::warn!(
            job = name,
            storage = target.storage.name(),
            "a manifest cannot be read, so the log archive is not pruned"
        );
        return Ok(WalPruned::default());
    }
    let kept: Vec<Entry> = scan
        .entries
        .into_iter()
        .filter(|e| {
            rows.iter()
                .any(|r| r.id == e.manifest.id && r.action == "keep")
                || !rows.iter().any(|r| r.id == e.manifest.id)
        })
        .collect();
    if job.source.has_binlog() {
        let deleted = crate::app::binlog::prune(target, name, &kept, dry_run)?;
        let kept_from = kept
            .iter()
            .flat_map(|e| e.manifest.artifacts.iter())
            .filter_map(|a| a.binlog.as_ref().map(|b| b.file.clone()))
            .min();
        return Ok(WalPruned { kept_from, deleted });
    }
    prune_wal(target, name, &kept, dry_run)
}
