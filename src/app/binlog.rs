//! Point-in-time recovery of MariaDB/MySQL: the binlog archive of a
//! `binlog: true` job (`dbkeep binlog pull`), and the replay of it after a
//! dump's restore, from the dump's recorded position up to a time.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::catalog::manifest::{Artifact, Entry};
use crate::catalog::wal::{self, Log, Pushed};
use crate::connector::BinlogServer;
use crate::connector::mysql_binlog::{binlog_chain, binlog_number};
use crate::pipeline::Packing;
use crate::pipeline::crypt::{Keys, Sealing};
use crate::storage::Target;

/// What a pull did.
#[derive(Debug, Default)]
pub struct Pulled {
    /// Files archived now.
    pub stored: Vec<String>,
    /// Files that were archived already.
    pub already: usize,
}

/// Archives every closed binlog file of `server` not yet in `targets`,
/// after closing the current one when `rotate` is set (so that the newest
/// writes are in a closed file). Each file goes through a private temp
/// folder under `temp_dir`, removed afterwards.
pub fn pull(
    server: &BinlogServer,
    targets: &[Target],
    job: &str,
    rotate: bool,
    temp_dir: &std::path::Path,
    packing: Packing,
    sealing: Option<&Sealing>,
) -> Result<Pulled> {
    if rotate {
        server.rotate()?;
    }
    let mut logs = server.binlogs()?;
    // The last one is the file the server is writing.
    logs.pop();
    let log = Log::binlog(job);
    let mut have: Vec<Vec<String>> = Vec::new();
    for t in targets {
        // A storage that holds nothing yet may have no folder to list: each
        // push then checks for its file itself.
        have.push(wal::archived(t, log).unwrap_or_else(|e| {
            tracing::debug!(storage = t.storage.name(), error = %format!("{e:#}"), "cannot list the binlog archive");
            Vec::new()
        }));
    }
    let mut pulled = Pulled::default();
    for (name, _) in logs {
        if have.iter().all(|h| h.binary_search(&name).is_ok()) {
            pulled.already += 1;
            continue;
        }
        let stamp = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let dir = temp_dir.join(format!(".dbkeep-binlog-{}-{stamp:x}", std::process::id()));
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let result = (|| -> Result<Vec<u8>> {
            let file = server.fetch_binlog(&name, &dir)?;
            wal::read_whole(&file)
        })();
        let _ = std::fs::remove_dir_all(&dir);
        let data = result?;
        for (i, t) in targets.iter().enumerate() {
            if have[i].binary_search(&name).is_ok() {
                continue;
            }
            match wal::push(t, log, &name, &data, None, packing, sealing) {
                Ok(Pushed::Stored) | Ok(Pushed::Already) => {}
                Err(e) if t.required => return Err(e),
                Err(e) => {
                    tracing::warn!(job, storage = t.storage.name(), file = name, error = %format!("{e:#}"), "not archived in an optional storage");
                }
            }
        }
        tracing::info!(job, file = name, bytes = data.len(), "archived binlog");
        pulled.stored.push(name);
    }
    Ok(pulled)
}

/// The binlog files a replay from `artifact`'s position needs, in order:
/// its file up to the newest archived one, with no gap.
pub fn needed(target: &Target, job: &str, artifact: &Artifact) -> Result<Vec<String>> {
    let Some(pos) = &artifact.binlog else {
        return Ok(Vec::new());
    };
    let names = wal::archived(target, Log::binlog(job))?;
    let newest = names
        .iter()
        .filter(|n| n.rsplit_once('.').map(|(b, _)| b) == pos.file.rsplit_once('.').map(|(b, _)| b))
        .filter_map(|n| binlog_number(n))
        .max();
    let Some(newest) = newest else {
        anyhow::bail!(
            "the binlog archive of job `{job}` in storage `{}` holds nothing from {} on: run `dbkeep binlog pull {job}`",
            target.storage.name(),
            pos.file
        );
    };
    let chain = binlog_chain(&pos.file, newest);
    if chain.is_empty() {
        anyhow::bail!(
            "the binlog archive of job `{job}` in storage `{}` ends before {}, where the dump stands",
            target.storage.name(),
            pos.file
        );
    }
    if let Some(gap) = chain.iter().find(|n| names.binary_search(n).is_err()) {
        anyhow::bail!(
            "the binlog archive of job `{job}` in storage `{}` lacks {gap}, which a replay from {}:{} needs; \
             nothing was applied",
            target.storage.name(),
            pos.file,
            pos.position
        );
    }
    Ok(chain)
}

/// Checks every file a replay needs before anything is applied: present,
/// unchanged (sizes and sha256 against its record), and decodable with no
/// client-side command in it.
pub fn check(
    server: &mut BinlogServer,
    target: &Target,
    job: &str,
    artifact: &Artifact,
    keys: &Keys,
) -> Result<usize> {
    let files = needed(target, job, artifact)?;
    let db = artifact.database.as_deref().unwrap_or_default();
    for name in &files {
        let data = load(target, job, name, keys)?;
        server
            .replay_binlog(&data, None, None, db, db, false)
            .with_context(|| format!("binlog {name} cannot be replayed"))?;
    }
    Ok(files.len())
}

fn load(target: &Target, job: &str, name: &str, keys: &Keys) -> Result<Vec<u8>> {
    let log = Log::binlog(job);
    let record = wal::record(target, log, name)?
        .with_context(|| format!("binlog {name} vanished from the archive"))?;
    wal::download(target, log, &record, keys)
}

/// Replays the archived binlogs after `artifact`'s restore into `into`,
/// from its recorded position up to `stop` (everything archived without
/// one). Returns the files replayed.
pub fn replay(
    server: &mut BinlogServer,
    target: &Target,
    job: &str,
    artifact: &Artifact,
    into: &str,
    stop: Option<DateTime<Utc>>,
    keys: &Keys,
) -> Result<usize> {
    let Some(pos) = &artifact.binlog else {
        return Ok(0);
    };
    let files = needed(target, job, artifact)?;
    let db = artifact.database.as_deref().unwrap_or_default();
    // Binlog events carry whole seconds: those stamped in T's second are
    // replayed, those after it are not.
    let stop = stop.map(|t| {
        let whole = t.timestamp();
        let up = if t.timestamp_subsec_nanos() > 0 {
            whole + 1
        } else {
            whole
        };
        DateTime::from_timestamp(up, 0).unwrap_or(t)
    });
    for (i, name) in files.iter().enumerate() {
        let data = load(target, job, name, keys)?;
        let start = (i == 0).then_some(pos.position);
        server
            .replay_binlog(&data, start, stop, db, into, true)
            .with_context(|| format!("cannot replay binlog {name}"))?;
    }
    Ok(files.len())
}

/// The oldest binlog file a kept dump among `kept` needs, per base name.
fn oldest_needed(kept: &[Entry]) -> Option<(String, u64)> {
    kept.iter()
        .flat_map(|e| e.manifest.artifacts.iter())
        .filter_map(|a| a.binlog.as_ref())
        .filter_map(|p| {
            let (base, _) = p.file.rsplit_once('.')?;
            Some((base.to_string(), binlog_number(&p.file)?))
        })
        .min_by_key(|(_, n)| *n)
}

/// Deletes archived binlogs older than the oldest one a kept dump needs.
/// With no kept dump that has a position, nothing is deleted.
pub fn prune(target: &Target, job: &str, kept: &[Entry], dry_run: bool) -> Result<Vec<String>> {
    if kept.iter().any(|e| e.manifest.check_artifacts().is_err()) {
        return Ok(Vec::new());
    }
    let Some((base, first)) = oldest_needed(kept) else {
        return Ok(Vec::new());
    };
    let log = Log::binlog(job);
    let mut deleted = Vec::new();
    for name in wal::archived(target, log)? {
        let same_base = name.rsplit_once('.').map(|(b, _)| b) == Some(base.as_str());
        if same_base && binlog_number(&name).is_some_and(|n| n < first) {
            if !dry_run {
                wal::remove(target, log, &name)?;
            }
            deleted.push(name);
        }
    }
    Ok(deleted)
}

/// Checks the binlog chain `entry`'s dumps need: no gap from their recorded
/// position to the newest archived file, and every file whole against its
/// record. Returns (first, last, files), `None` without positions.
pub fn verify(
    target: &Target,
    job: &str,
    entry: &Entry,
    keys: &Keys,
) -> Result<Option<(String, String, usize)>> {
    let mut all: Vec<String> = Vec::new();
    for a in entry
        .manifest
        .artifacts
        .iter()
        .filter(|a| a.binlog.is_some())
    {
        for name in needed(target, job, a)? {
            if !all.contains(&name) {
                load(target, job, &name, keys)?;
                all.push(name);
            }
        }
    }
    all.sort();
    Ok(match (all.first(), all.last()) {
        (Some(f), Some(l)) => Some((f.clone(), l.clone(), all.len())),
        _ => None,
    })
}

/// Pulls the binlogs of the configured job `name` into its storages;
/// returns a summary line.
pub fn pull_job(config: &crate::config::Config, name: &str, rotate: bool) -> Result<String> {
    let job = config
        .jobs
        .get(name)
        .with_context(|| format!("no job `{name}`"))?;
    let server = crate::connector::binlog_server(&job.source)?;
    let targets = crate::app::job::targets(config, job)?;
    let (packing, sealing) = packing(job)?;
    let temp = job.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let pulled = pull(
        &server,
        &targets,
        name,
        rotate,
        &temp,
        packing,
        sealing.as_ref(),
    )?;
    Ok(format!(
        "{name}: archived {} binlog file(s){}; {} were archived already\n",
        pulled.stored.len(),
        if pulled.stored.is_empty() {
            String::new()
        } else {
            format!(" ({})", pulled.stored.join(", "))
        },
        pulled.already
    ))
}

/// The binlog pulls of `schedule run`: every job with a `binlog_schedule`,
/// at its fire times, one pull at a time, until the scheduler stops. A
/// failed pull is logged; the next fire time tries again.
pub fn schedule(
    config: std::sync::Arc<crate::config::Config>,
) -> Option<std::thread::JoinHandle<()>> {
    let jobs: Vec<String> = config
        .jobs
        .iter()
        .filter(|(_, j)| j.binlog_schedule.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    if jobs.is_empty() {
        return None;
    }
    Some(std::thread::spawn(move || {
        let next_of = |name: &str, after: DateTime<Utc>| {
            let job = &config.jobs[name];
            job.binlog_schedule
                .as_ref()
                .and_then(|c| c.next_after(job.timezone, after))
        };
        let now = Utc::now();
        let mut next: Vec<(String, Option<DateTime<Utc>>)> =
            jobs.iter().map(|n| (n.clone(), next_of(n, now))).collect();
        while !crate::util::signal::stopping() {
            let now = Utc::now();
            for (name, at) in next.iter_mut() {
                if at.is_some_and(|t| t <= now) {
                    match pull_job(&config, name, true) {
                        Ok(line) => tracing::info!(job = name.as_str(), "{}", line.trim()),
                        Err(e) => {
                            tracing::warn!(job = name.as_str(), error = %crate::util::secret::redact(&format!("{e:#}")), "binlog pull failed")
                        }
                    }
                    *at = next_of(name, Utc::now());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }))
}

/// How a job's log files (WAL, binlogs) are stored: its compression, with
/// all of its zstd workers (the archiver waits for each file), and its
/// encryption.
pub fn packing(job: &crate::config::Job) -> Result<(Packing, Option<Sealing>)> {
    let sealing = job
        .encryption
        .as_ref()
        .map(Sealing::from_config)
        .transpose()?;
    let packing = Packing {
        compression: job.compression,
        level: job.compression_level,
        threads: job.compression_threads,
    };
    Ok((packing, sealing))
}
