//! Running one backup job: probe, dump each item through the pipeline to
//! every storage, check the tool's exit and end marker, commit, and write the
//! manifest last. On any failure every object of the run is removed and no
//! manifest is written.

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Utc;

use crate::config::Job;
use crate::connector::{self, DumpItem};
use crate::crypt::Sealing;
use crate::manifest::{self, Artifact, Manifest};
use crate::pipeline::{self, Fanout, Packing};
use crate::progress::Counters;
use crate::signal;
use crate::storage::Storage;
use std::sync::Arc;

/// A storage and the prefix a job's backups go under.
pub struct Target {
    /// The storage.
    pub storage: Box<dyn Storage>,
    /// Its prefix.
    pub prefix: String,
}

/// What a successful job produced.
#[derive(Debug)]
pub struct Outcome {
    /// The manifest that was written.
    pub manifest: Manifest,
    /// Wall time.
    pub seconds: f64,
}

/// Objects stored so far in this run, removed again if the run fails.
struct Written<'a> {
    targets: &'a [Target],
    keys: Vec<String>,
    done: bool,
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for key in &self.keys {
            for t in self.targets {
                if let Err(e) = t.storage.delete(key) {
                    tracing::warn!(storage = t.storage.name(), key, error = %e, "cannot remove a partial object");
                }
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
    let mut conn = connector::connect(&job.source, job.temp_dir.clone())?;
    let info = conn.probe()?;
    let items = conn.plan()?;
    if items.iter().all(|i| i.database.is_none()) {
        anyhow::bail!("there is no database to back up");
    }
    tracing::info!(job = name, id, engine = %job.source.engine(), items = items.len(), "backup started");
    let packing = Packing {
        compression: job.compression,
        level: job.compression_level,
        threads: job.compression_threads,
    };
    let mut written = Written {
        targets,
        keys: Vec::new(),
        done: false,
    };
    let mut artifacts = Vec::new();
    for item in &items {
        let artifact = dump_one(
            counters,
            name,
            &id,
            item,
            &mut *conn,
            packing,
            sealing.as_ref(),
            targets,
            &mut written,
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
    let finished_at = Utc::now();
    let manifest = Manifest {
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
        hostname: manifest::hostname(),
    };
    for t in targets {
        let dir = manifest::backup_dir(&t.prefix, name, &id);
        let key = manifest::join_key(&[&dir, manifest::MANIFEST]);
        written.keys.push(key);
        manifest::write(&*t.storage, &dir, &manifest).with_context(|| {
            format!(
                "cannot write the manifest to storage `{}`",
                t.storage.name()
            )
        })?;
    }
    written.done = true;
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
    })
}

#[allow(clippy::too_many_arguments)]
fn dump_one(
    counters: &Arc<Counters>,
    job: &str,
    id: &str,
    item: &DumpItem,
    conn: &mut dyn connector::Connector,
    packing: Packing,
    sealing: Option<&Sealing>,
    targets: &[Target],
    written: &mut Written<'_>,
) -> Result<Artifact> {
    let what = match &item.database {
        Some(db) => format!("database `{db}`"),
        None => "the server's roles and tablespaces".to_string(),
    };
    let file = format!(
        "{}{}{}",
        item.base_name(),
        packing.compression.suffix(),
        if sealing.is_some() { ".age" } else { "" }
    );
    let mut writers = Vec::new();
    for t in targets {
        let key = manifest::join_key(&[&manifest::backup_dir(&t.prefix, job, id), &file]);
        writers.push(t.storage.create(&key).with_context(|| {
            format!(
                "cannot write to storage `{}` ({})",
                t.storage.name(),
                t.storage.location()
            )
        })?);
    }
    let out = Fanout::new(writers).counted(counters.clone());
    let (mut source, mut check) = conn
        .dump(item)
        .with_context(|| format!("cannot start the dump of {what}"))?;
    let staged = match pipeline::store(&mut source, &mut *check, packing, sealing, out) {
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
    for t in targets {
        written.keys.push(manifest::join_key(&[
            &manifest::backup_dir(&t.prefix, job, id),
            &file,
        ]));
    }
    staged
        .out
        .commit()
        .context("cannot commit the stored object")?;
    tracing::info!(job, item = %what, raw = staged.raw_size, stored = staged.stored_size, "stored");
    Ok(Artifact {
        name: file,
        kind: item.kind,
        database: item.database.clone(),
        format: item.format,
        raw_size: staged.raw_size,
        stored_size: staged.stored_size,
        sha256: staged.sha256,
    })
}
