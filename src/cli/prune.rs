//! `dbkeep prune`: apply the jobs' retention rules to their storages.

use std::path::Path;

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;

use super::{job_targets, load_config, print, unknown_job};
use crate::catalog::retention::{self, Row};
use crate::util::exit::{Failure, Reported};
use crate::util::rfc3339;

/// Arguments of `dbkeep prune`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each backup is shown as kept, with the rules that keep it, or deleted.
Retention rules follow restic's `forget`; see the README.

Examples:
  dbkeep prune --dry-run
  dbkeep prune app
  dbkeep prune app --json
  dbkeep prune app --force      when the rules delete more than half of the backups")]
pub struct Args {
    /// Jobs to prune (all when none is named).
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,

    /// Only show what would be deleted.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Delete even when the rules would delete more than half of a job's
    /// backups (otherwise such a prune stops, in case a clock or a manifest
    /// is wrong).
    #[arg(long)]
    pub force: bool,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Wait this long for the job's lock when another run holds it.
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub wait_lock: Option<std::time::Duration>,
}

#[derive(Serialize)]
struct JobRow<'a> {
    job: &'a str,
    #[serde(flatten)]
    row: &'a Row,
}

/// Runs `dbkeep prune`.
pub fn run(args: Args, config_path: Option<&Path>) -> Result<()> {
    let config = load_config(config_path)?;
    let names: Vec<String> = if args.jobs.is_empty() {
        config.jobs.keys().cloned().collect()
    } else {
        args.jobs.clone()
    };
    let mut rows: Vec<(String, Row)> = Vec::new();
    let mut wal_lines: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    for name in &names {
        let job = config
            .jobs
            .get(name)
            .ok_or_else(|| unknown_job(&config, name))?;
        if !job.retention.has_rules() && !args.json {
            eprintln!(
                "job `{name}`: no retention rules, so every backup is kept (set `retention:` on the job or in `defaults`)"
            );
        }
        let targets = job_targets(&config, job)?;
        let options = crate::app::lock::Options {
            stale_after: config.lock.stale_after,
            wait: args.wait_lock,
        };
        let key = job
            .signing
            .as_ref()
            .map(crate::catalog::manifest::SigningKey::load)
            .transpose()?;
        let mut wal = Vec::new();
        let outcome = crate::app::lock::hold(&targets, name, "prune", options, || {
            let mut found = Vec::new();
            for t in &targets {
                let how = retention::Pruning {
                    now: Utc::now(),
                    dry_run: args.dry_run,
                    force: args.force,
                    protect: None,
                    key: key.as_ref(),
                };
                let r = retention::prune(t, name, &job.retention, job.timezone, how)?;
                if job.source.is_physical() || job.source.has_binlog() {
                    let w = crate::app::pitr::prune_after(
                        t,
                        job,
                        name,
                        key.as_ref(),
                        &r,
                        args.dry_run,
                    )?;
                    wal.push((t.storage.name().to_string(), w));
                }
                found.extend(r);
            }
            Ok(found)
        })
        .and_then(|r| r);
        for (storage, w) in wal {
            wal_lines.push(wal_line(name, &storage, &w, args.dry_run));
        }
        match outcome {
            Ok(found) => rows.extend(found.into_iter().map(|r| (name.clone(), r))),
            Err(e) => {
                let msg = crate::util::secret::redact(&format!("{e:#}"));
                eprintln!("error: job `{name}`: {msg}");
                failures.push(super::is_locked(&e));
            }
        }
    }
    if args.json {
        let out: Vec<JobRow> = rows.iter().map(|(job, row)| JobRow { job, row }).collect();
        print(&format!("{}\n", serde_json::to_string_pretty(&out)?))?;
    } else {
        let mut text = table(&rows, args.dry_run);
        for line in &wal_lines {
            text.push_str(line);
            text.push('\n');
        }
        print(&text)?;
    }
    if args.json {
        for line in &wal_lines {
            eprintln!("{line}");
        }
    }
    match failures.as_slice() {
        [] => Ok(()),
        all if all.len() == names.len() && all.iter().all(|locked| *locked) => {
            Err(Failure::Reported(Reported::Locked).into())
        }
        _ => Err(Failure::Reported(Reported::Failed).into()),
    }
}

fn table(rows: &[(String, Row)], dry_run: bool) -> String {
    let mut lines = vec![[
        "JOB".to_string(),
        "STORAGE".into(),
        "ID".into(),
        "STARTED (UTC)".into(),
        "ACTION".into(),
        "WHY".into(),
    ]];
    for (job, r) in rows {
        let action = match (r.action, dry_run) {
            ("delete", true) => "would delete",
            (a, _) => a,
        };
        let why = if r.action == "delete" && r.incomplete {
            "incomplete (no manifest)".to_string()
        } else if r.action == "delete" {
            "no rule keeps it".to_string()
        } else {
            r.reasons.join(", ")
        };
        lines.push([
            job.clone(),
            r.storage.clone(),
            r.id.clone(),
            rfc3339(r.started_at),
            action.to_string(),
            why,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    let deleted = rows.iter().filter(|(_, r)| r.action == "delete").count();
    text.push_str(&format!(
        "{} backups kept, {deleted} {}\n",
        rows.len() - deleted,
        if dry_run {
            "would be deleted"
        } else {
            "deleted"
        }
    ));
    text
}

fn wal_line(job: &str, storage: &str, w: &crate::app::pitr::WalPruned, dry_run: bool) -> String {
    match &w.kept_from {
        None => format!(
            "job `{job}` storage `{storage}`: log archive kept whole (no kept backup says what it needs)"
        ),
        Some(from) => format!(
            "job `{job}` storage `{storage}`: WAL or binlogs from {from} kept (the oldest kept backup needs them); {} {} older file(s){}",
            if dry_run { "would delete" } else { "deleted" },
            w.deleted.len(),
            if w.deleted.is_empty() {
                String::new()
            } else {
                format!(": {}", w.deleted.join(", "))
            }
        ),
    }
}
