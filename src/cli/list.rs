//! `dbkeep list`: backups newest first, read from the storages' manifests.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{job_storage, load_config, location, print};
use crate::catalog::manifest::{self, Manifest, rfc3339};
use crate::config::StorageConfig;
use crate::storage;
use crate::storage::Target;
use crate::util::human_size;
use crate::util::printable;

/// Arguments of `dbkeep list`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  dbkeep list
  dbkeep list app --json
  dbkeep list --from ./backups")]
pub struct Args {
    /// Only this job's backups.
    #[arg(value_name = "JOB")]
    pub job: Option<String>,

    /// Read backups from this folder, with no config file.
    #[arg(long, value_name = "DIR")]
    pub from: Option<String>,

    /// Only this storage of the job (default: every storage in the config).
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Row<'a> {
    storage: &'a str,
    #[serde(flatten)]
    manifest: &'a Manifest,
}

/// Runs `dbkeep list`.
pub fn run(args: Args, config_path: Option<&Path>) -> Result<()> {
    let mut targets: Vec<Target> = Vec::new();
    let mut signing = None;
    if let Some(from) = &args.from {
        targets.push(location(from)?);
    } else {
        let config = load_config(config_path)?;
        signing = config.signing.clone();
        match (&args.job, &args.storage) {
            (Some(job), wanted) => {
                let job_cfg = config
                    .jobs
                    .get(job)
                    .ok_or_else(|| super::unknown_job(&config, job))?;
                if wanted.is_some() {
                    targets.push(job_storage(&config, job, wanted.as_deref())?);
                } else {
                    for name in &job_cfg.storage {
                        targets.push(open(name, &config.storages[name])?);
                    }
                }
            }
            (None, Some(name)) => {
                let sc = config
                    .storages
                    .get(name)
                    .ok_or_else(|| anyhow::anyhow!("storage `{name}` is not defined"))?;
                targets.push(open(name, sc)?);
            }
            (None, None) => {
                for (name, sc) in &config.storages {
                    targets.push(open(name, sc)?);
                }
            }
        }
    }
    let key = signing
        .as_ref()
        .map(manifest::SigningKey::load)
        .transpose()?;
    let mut rows: Vec<(String, manifest::Entry)> = Vec::new();
    for t in &targets {
        let entries =
            manifest::scan(&*t.storage, &t.prefix, args.job.as_deref(), key.as_ref())?.entries;
        for e in entries {
            rows.push((t.storage.name().to_string(), e));
        }
    }
    rows.sort_by(|a, b| {
        b.1.manifest
            .started_at
            .cmp(&a.1.manifest.started_at)
            .then(b.1.manifest.id.cmp(&a.1.manifest.id))
    });
    if args.json {
        let out: Vec<Row> = rows
            .iter()
            .map(|(s, e)| Row {
                storage: s,
                manifest: &e.manifest,
            })
            .collect();
        return print(&format!("{}\n", serde_json::to_string_pretty(&out)?));
    }
    if rows.is_empty() {
        eprintln!("no backups found");
        return Ok(());
    }
    let mut table = vec![[
        "ID".to_string(),
        "JOB".into(),
        "STARTED (UTC)".into(),
        "ENGINE".into(),
        "DATABASES".into(),
        "SIZE".into(),
        "COMPRESSION".into(),
        "STORAGE".into(),
    ]];
    for (storage, e) in &rows {
        let m = &e.manifest;
        table.push([
            printable(&m.id),
            printable(&m.job),
            rfc3339(m.started_at),
            m.engine.to_string(),
            printable(&m.databases.join(",")),
            human_size(m.stored_size),
            m.compression.as_str().to_string(),
            storage.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    // A job with base backups: the window a point-in-time restore can reach.
    if let Some(job) = &args.job {
        for t in &targets {
            let entries: Vec<manifest::Entry> = rows
                .iter()
                .filter(|(s, _)| s == t.storage.name())
                .map(|(_, e)| e.clone())
                .collect();
            if let Some(w) = crate::app::pitr::window(t, job, &entries)? {
                text.push_str(&format!(
                    "recoverable in storage `{}`: from {} (the oldest base backup's end) to {} ({}, the newest archived segment)\n",
                    t.storage.name(),
                    rfc3339(w.window_start),
                    w.window_end.map(rfc3339).unwrap_or_else(|| "?".into()),
                    w.to
                ));
            }
        }
    }
    print(&text)
}

fn open(name: &str, sc: &StorageConfig) -> Result<Target> {
    Ok(Target::new(
        storage::open(name, sc)?,
        sc.prefix().to_string(),
    ))
}
