//! Running one backup job: probe, dump each item once through the pipeline
//! to every storage, check the tool's exit and end marker, commit, and write
//! the manifest last.
//!
//! On failure every object of the run is removed and no manifest is written.
//! A storage marked `required: false` that fails drops out on its own: its
//! objects are removed, it gets no manifest, the others carry on, and the
//! run is "partial".

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Utc;

use crate::catalog::manifest::{self, Artifact, Manifest};
use crate::config::Job;
use crate::connector::{self, DumpItem};
use crate::pipeline::crypt::Sealing;
use crate::pipeline::progress::Counters;
use crate::pipeline::{self, Fanout, Packing};
use crate::storage::Target;
use crate::util::signal;

/// What a successful job produced.
#[derive(Debug)]
pub struct Outcome {
    /// The manifest that was written.
    pub manifest: Manifest,
    /// Wall time.
    pub seconds: f64,
    /// Optional storages that failed, with why; the backup is in the others.
    pub failed_storages: Vec<(String, String)>,
}

/// Objects stored so far in this run, per target, removed again from every
/// target whose copy does not complete.
struct Written<'a> {
    targets: &'a [Target],
    keys: Vec<Vec<String>>,
    done: Vec<bool>,
}

impl Written<'_> {
    fn remove(&mut self, t: usize) {
        for key in self.keys[t].drain(..) {
            if let Err(e) = self.targets[t].storage.delete(&key) {
                tracing::warn!(storage = self.targets[t].storage.name(), key, error = %e, "cannot remove a partial object");
            }
        }
    }
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        for t in 0..self.targets.len() {
            if !self.done[t] {
                self.remove(t);
            }
        }
    }
}

/// Runs the job `name` into `targets`.
pub fn run(name: &str, job: &Job, targets: &[Target], counters: &Arc<Counters>) -> Result<Outcome> {
    let clock = Instant::now();
    let started_at = Utc::now();
    let id = manifest::new_id(started_at);
    let sealing = job
        .encryption
        .as_ref()
        .map(Sealing::from_config)
        .transpose()
        .context("cannot set up encryption")?;
    let signing = job
        .signing
        .as_ref()
        .map(manifest::SigningKey::load)
        .transpose()?;
    let mut conn = connector::connect(&job.source, job.temp_dir.clone())?;
    let info = conn.probe()?;
    let items = conn.plan()?;
    connector::check_plan(&items)?;
    if items
        .iter()
        .all(|i| i.database.is_none() && i.kind != connector::ArtifactKind::Cluster)
    {
        anyhow::bail!("there is no database to back up");
    }
    tracing::info!(job = name, id, engine = %job.source.engine(), items = items.len(), "backup started");
    if counters.shown {
        estimate(name, &mut *conn, &items, counters);
    }
    let packing = Packing {
        compression: job.compression,
        level: job.compression_level,
        threads: job.compression_threads,
    };
    let mut written = Written {
        targets,
        keys: vec![Vec::new(); targets.len()],
        done: vec![false; targets.len()],
    };
    let mut alive = vec![true; targets.len()];
    let mut failed_storages = Vec::new();
    let mut artifacts = Vec::new();
    for item in &items {
        let step = Step {
            job: name,
            id: &id,
            packing,
            sealing: sealing.as_ref(),
            counters,
        };
        let artifact = dump_one(
            &step,
            item,
            &mut *conn,
            targets,
            &mut alive,
            &mut written,
            &mut failed_storages,
        )
        .map_err(|e| {
            if signal::cancelled() {
                anyhow::Error::new(signal::Interrupted)
            } else {
                e
            }
        })?;
        artifacts.push(artifact);
    }
    signal::check()?;
    let base_backup = conn.base_backup()?;
    if let Some(base) = &base_backup {
        let wait = match &job.source {
            connector::source::SourceConfig::Postgres(s) => s.wal_wait.map(|w| w.0),
            _ => None,
        }
        .unwrap_or(connector::source::WAL_WAIT);
        wait_for_wal(
            name,
            base,
            wait,
            targets,
            &mut alive,
            &mut written,
            &mut failed_storages,
        )?;
    }
    let finished_at = Utc::now();
    let mut manifest = Manifest {
        format: manifest::FORMAT,
        id: id.clone(),
        job: name.to_string(),
        engine: job.source.engine(),
        server_version: info.server_version,
        dump_tool: info.tool,
        dump_tool_version: info.tool_version,
        databases: items.iter().filter_map(|i| i.database.clone()).collect(),
        started_at,
        finished_at,
        compression: job.compression,
        compression_level: job.compression_level,
        encryption: sealing.as_ref().map(Sealing::describe),
        raw_size: artifacts.iter().map(|a| a.raw_size).sum(),
        stored_size: artifacts.iter().map(|a| a.stored_size).sum(),
        artifacts,
        dbkeep_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: crate::util::hostname(),
        base_backup,
        authentication: None,
    };
    if let Some(key) = &signing {
        manifest.sign(key);
    }
    // The manifest goes last, and only where every object arrived.
    for (i, t) in targets.iter().enumerate() {
        if !alive[i] {
            continue;
        }
        let dir = manifest::backup_dir(&t.prefix, name, &id);
        written.keys[i].push(manifest::join_key(&[&dir, manifest::MANIFEST]));
        if let Err(e) = manifest::write(&*t.storage, &dir, &manifest) {
            let e = e.context(format!(
                "cannot write the manifest to storage `{}`",
                t.storage.name()
            ));
            if t.required {
                return Err(e);
            }
            drop_out(t, i, &e, &mut alive, &mut written, &mut failed_storages);
            continue;
        }
        written.done[i] = true;
    }
    if !alive.iter().any(|a| *a) {
        anyhow::bail!("no storage received the whole backup");
    }
    tracing::info!(
        job = name,
        id,
        raw = manifest.raw_size,
        stored = manifest.stored_size,
        seconds = clock.elapsed().as_secs_f64(),
        "backup complete"
    );
    Ok(Outcome {
        manifest,
        seconds: clock.elapsed().as_secs_f64(),
        failed_storages,
    })
}

/// A base backup is complete only with every WAL segment from its start to
/// its stop in the job's archive: waits for them in each storage still in
/// the run, at most `wait`. A required storage without them fails the
/// backup; another one drops out.
#[allow(clippy::too_many_arguments)]
fn wait_for_wal(
    job: &str,
    base: &connector::pg_physical::BaseBackup,
    wait: std::time::Duration,
    targets: &[Target],
    alive: &mut [bool],
    written: &mut Written<'_>,
    failed_storages: &mut Vec<(String, String)>,
) -> Result<()> {
    let (from, to) = base.segments();
    let deadline = Instant::now() + wait;
    tracing::info!(job, from = %base.start_wal, to = %base.stop_wal, "waiting for the base backup's WAL in the archive");
    for (i, t) in targets.iter().enumerate() {
        if !alive[i] {
            continue;
        }
        let missing = loop {
            signal::check()?;
            let names = crate::catalog::wal::archived(t, crate::catalog::wal::Log::wal(job))?;
            let gap = crate::catalog::wal::first_gap(
                &names,
                base.timeline,
                from,
                to,
                base.wal_segment_size,
            );
            match gap {
                None => break None,
                Some(_) if Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                Some(seg) => break Some(seg),
            }
        };
        if let Some(seg) = missing {
            let e = anyhow::anyhow!(
                "the base backup is incomplete: WAL segment {seg} (of {} to {}) is not in the archive of storage                  `{}` after {} s; check that the server's archive_command is `dbkeep -c CONFIG wal push {job} %p`                  and that pg_stat_archiver shows no failures, or raise `wal_wait`",
                base.start_wal,
                base.stop_wal,
                t.storage.name(),
                wait.as_secs()
            );
            if t.required {
                return Err(e);
            }
            drop_out(t, i, &e, alive, written, failed_storages);
        }
    }
    Ok(())
}

/// Asks the server how big the dumps will be, for progress. No answer is
/// no estimate: the backup does not depend on it.
fn estimate(
    name: &str,
    conn: &mut dyn connector::Connector,
    items: &[DumpItem],
    counters: &Counters,
) {
    let mut total = 0u64;
    for item in items.iter().filter(|i| i.database.is_some()) {
        match conn.estimate(item) {
            Ok(Some(n)) => total += n,
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(job = name, error = %format!("{e:#}"), "no size estimate");
                return;
            }
        }
    }
    if total > 0 {
        tracing::info!(
            job = name,
            estimated = crate::util::human_size(total),
            "dump size estimated from the server's statistics"
        );
        counters
            .expected
            .store(total, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What every item of one run shares.
struct Step<'a> {
    job: &'a str,
    id: &'a str,
    packing: Packing,
    sealing: Option<&'a Sealing>,
    counters: &'a Arc<Counters>,
}

/// An optional storage failed: remove what it got and carry on without it.
fn drop_out(
    t: &Target,
    i: usize,
    error: &anyhow::Error,
    alive: &mut [bool],
    written: &mut Written<'_>,
    failed: &mut Vec<(String, String)>,
) {
    let why = crate::util::secret::clean(&format!("{error:#}"));
    tracing::warn!(storage = t.storage.name(), error = %why, "optional storage failed; the backup goes on without it");
    alive[i] = false;
    written.remove(i);
    failed.push((t.storage.name().to_string(), why));
}

fn dump_one(
    step: &Step<'_>,
    item: &DumpItem,
    conn: &mut dyn connector::Connector,
    targets: &[Target],
    alive: &mut [bool],
    written: &mut Written<'_>,
    failed: &mut Vec<(String, String)>,
) -> Result<Artifact> {
    let what = match (&item.database, item.kind) {
        (Some(db), _) => format!("database `{db}`"),
        (None, connector::ArtifactKind::Cluster) => "the cluster (base backup)".to_string(),
        (None, _) => "the server's roles and tablespaces".to_string(),
    };
    let file = format!(
        "{}{}{}",
        item.base_name(),
        step.packing.compression.suffix(),
        if step.sealing.is_some() { ".age" } else { "" }
    );
    let key_in = |t: &Target| {
        manifest::join_key(&[&manifest::backup_dir(&t.prefix, step.job, step.id), &file])
    };
    let mut writers = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        if !alive[i] {
            continue;
        }
        match t.storage.create(&key_in(t)) {
            Ok(w) => writers.push(pipeline::Output {
                index: i,
                required: t.required,
                writer: w,
            }),
            Err(e) => {
                let e = e.context(format!(
                    "cannot write to storage `{}` ({})",
                    t.storage.name(),
                    t.storage.location()
                ));
                if t.required {
                    return Err(e);
                }
                drop_out(t, i, &e, alive, written, failed);
            }
        }
    }
    if writers.is_empty() {
        anyhow::bail!("no storage is left to write to");
    }
    let out = Fanout::new(writers).counted(step.counters.clone());
    let (mut source, mut check) = conn
        .dump(item)
        .with_context(|| format!("cannot start the dump of {what}"))?;
    let staged = match pipeline::store(&mut source, &mut *check, step.packing, step.sealing, out) {
        Ok(s) => s,
        Err(e) => {
            // The tool's own failure explains more than a broken pipe.
            return Err(match source.finish() {
                Err(tool) => tool.context(format!("dump of {what} failed")),
                Ok(_) => e.context(format!("dump of {what} failed")),
            });
        }
    };
    let stderr = match source.finish() {
        Ok(stderr) => stderr,
        Err(e) => {
            staged.out.abort();
            return Err(e.context(format!("dump of {what} failed")));
        }
    };
    let tail = if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; its stderr ends: {}", stderr.trim())
    };
    if staged.raw_size == 0 {
        staged.out.abort();
        anyhow::bail!("dump of {what} failed: the dump tool exited 0 but produced no output{tail}");
    }
    if let Err(reason) = check.finish() {
        staged.out.abort();
        anyhow::bail!("dump of {what} failed: {reason}{tail}");
    }
    let report = staged.out.commit();
    for &i in &report.committed {
        written.keys[i].push(key_in(&targets[i]));
    }
    for (i, e) in report.failed {
        if targets[i].required {
            return Err(e.context(format!(
                "cannot store {file} in storage `{}`",
                targets[i].storage.name()
            )));
        }
        drop_out(&targets[i], i, &e, alive, written, failed);
    }
    tracing::info!(job = step.job, item = %what, raw = staged.raw_size, stored = staged.stored_size, "stored");
    let binlog = conn.binlog_position(item)?;
    Ok(Artifact {
        name: file,
        kind: item.kind,
        database: item.database.clone(),
        format: item.format,
        raw_size: staged.raw_size,
        stored_size: staged.stored_size,
        sha256: staged.sha256,
        binlog,
    })
}
