//! `dbkeep backup`: run jobs from the config, or one database URL with `--to`.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{job_targets, load_config, location, print, unknown_job};
use crate::app::job::Surroundings;
use crate::config::{Compression, Job};
use crate::connector::url;
use crate::notify::Notifiers;
use crate::util::exit::{Failure, Reported};
use crate::util::human_size;
use crate::util::rfc3339;
use crate::util::signal;

/// Arguments of `dbkeep backup`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  dbkeep backup                       every job in the config
  dbkeep backup app billing           two jobs
  dbkeep backup postgres://postgres@127.0.0.1:5432/app --to ./backups
  dbkeep backup mysql://root@127.0.0.1/shop --to /srv/backups --compression gzip
  dbkeep backup ./app.db --to ./backups")]
pub struct Args {
    /// Jobs to run (all when none is named); with `--to`, one database URL or SQLite path.
    #[arg(value_name = "JOB|URL")]
    pub targets: Vec<String>,

    /// One-off: store into this folder, with no config file.
    #[arg(long, value_name = "DIR")]
    pub to: Option<String>,

    /// One-off: the job name to file the backup under (default: the database name).
    #[arg(long, value_name = "NAME", requires = "to")]
    pub job: Option<String>,

    /// Override the compression.
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,

    /// Override the compression level.
    #[arg(long, value_name = "N")]
    pub level: Option<i32>,

    /// Override the zstd worker threads (0: one per core, at most 4).
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,

    /// Print one JSON result per job on stdout.
    #[arg(long)]
    pub json: bool,

    /// Jobs to run at the same time (default: `defaults.concurrency`, else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,

    /// Wait this long for the job's lock when another run holds it (e.g. `30m`),
    /// instead of failing at once with exit code 75.
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub wait_lock: Option<std::time::Duration>,
}

/// One job's result, as printed with `--json`.
#[derive(Debug, Serialize)]
struct JobResult {
    job: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    databases: Vec<String>,
    raw_size: u64,
    stored_size: u64,
    seconds: f64,
    storages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Problems that did not fail the job (undelivered notifications, retention).
    warnings: Vec<String>,
    /// Backups that retention kept or deleted after this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    retention: Vec<crate::catalog::retention::Row>,
}

fn apply_overrides(job: &mut Job, args: &Args) -> Result<()> {
    if let Some(c) = args.compression {
        job.compression = c;
        job.compression_level = c.default_level();
    }
    if let Some(l) = args.level {
        job.compression_level = l;
    }
    if !job.compression.levels().contains(&job.compression_level) {
        let r = job.compression.levels();
        return Err(Failure::Usage(format!(
            "`--level {}` is out of range for {}: use {} to {}",
            job.compression_level,
            job.compression.as_str(),
            r.start(),
            r.end()
        ))
        .into());
    }
    if let Some(t) = args.threads {
        job.compression_threads = t;
    }
    Ok(())
}

/// Runs `dbkeep backup`.
pub fn run(
    args: Args,
    config_path: Option<&Path>,
    progress: crate::pipeline::progress::Mode,
) -> Result<()> {
    let mut runs: Vec<(String, Job, Vec<crate::storage::Target>)> = Vec::new();
    let mut loaded: Option<crate::config::Config> = None;
    if let Some(to) = &args.to {
        let [url] = args.targets.as_slice() else {
            return Err(Failure::Usage(
                "with `--to`, give exactly one database URL or SQLite path".into(),
            )
            .into());
        };
        let source = url::parse(url).map_err(|e| Failure::Usage(format!("{e:#}")))?;
        let name = match &args.job {
            Some(n) if crate::config::is_plain_name(n) => n.clone(),
            Some(n) => {
                return Err(Failure::Usage(format!(
                    "`--job {n}`: use letters, digits, `.`, `_` and `-`"
                ))
                .into());
            }
            None => url::default_job_name(&source),
        };
        let mut job = Job::new(source, vec![to.clone()], Compression::Zstd);
        apply_overrides(&mut job, &args)?;
        runs.push((name, job, vec![location(to)?]));
    } else {
        let config = load_config(config_path)?;
        if config.jobs.is_empty() {
            return Err(Failure::Config(
                "the config defines no jobs; add one under `jobs:`".into(),
            )
            .into());
        }
        let names: Vec<String> = if args.targets.is_empty() {
            config.jobs.keys().cloned().collect()
        } else {
            args.targets.clone()
        };
        for name in names {
            if name.contains("://") {
                return Err(Failure::Usage(format!(
                    "`{}` looks like a database URL: add `--to DIR` for a one-off backup",
                    crate::util::secret::redact(&name)
                ))
                .into());
            }
            let mut job = config
                .jobs
                .get(&name)
                .cloned()
                .ok_or_else(|| unknown_job(&config, &name))?;
            apply_overrides(&mut job, &args)?;
            let targets = job_targets(&config, &job)?;
            runs.push((name, job, targets));
        }
        loaded = Some(config);
    }

    let (width, per_host) = match &loaded {
        Some(config) => (
            args.jobs.map_or(config.limits.concurrency, |n| n as usize),
            config.limits.per_host,
        ),
        None => (1, None),
    };
    // Bars of jobs that run side by side would overwrite each other.
    let progress = match progress {
        crate::pipeline::progress::Mode::Bar if width > 1 => {
            crate::pipeline::progress::Mode::Log(std::time::Duration::from_secs(10))
        }
        other => other,
    };
    let one =
        |(name, job, targets): &(String, Job, Vec<crate::storage::Target>)| -> Result<JobResult> {
            let storages: Vec<String> = targets
                .iter()
                .map(|t| t.storage.name().to_string())
                .collect();
            let around = match &loaded {
                Some(config) => Surroundings {
                    global_hooks: &config.hooks,
                    notifiers: Notifiers::for_names(&config.notifiers, &job.notify),
                    metrics: config.metrics.as_ref(),
                    progress,
                    lock: Some(crate::app::lock::Options {
                        stale_after: config.lock.stale_after,
                        wait: args.wait_lock,
                    }),
                },
                None => Surroundings {
                    progress,
                    lock: Some(crate::app::lock::Options {
                        wait: args.wait_lock,
                        ..crate::app::lock::Options::default()
                    }),
                    ..Surroundings::none()
                },
            };
            let report = crate::app::job::execute(name, job, targets, &around);
            let mut warnings = report.warnings;
            let retention = report.retention;
            let result = match report.result {
                Ok(o) => {
                    let m = &o.manifest;
                    for (storage, why) in &o.failed_storages {
                        eprintln!(
                            "warning: job `{name}`: optional storage `{storage}` did not get the backup: {why}"
                        );
                        warnings.push(format!("storage `{storage}` failed: {why}"));
                    }
                    let stored_in: Vec<String> = storages
                        .iter()
                        .filter(|s| !o.failed_storages.iter().any(|(f, _)| f == *s))
                        .cloned()
                        .collect();
                    if !args.json {
                        print(&format!(
                            "{name}: backup {} stored {} ({} raw, {}) in {:.1}s to {}\n",
                            m.id,
                            human_size(m.stored_size),
                            human_size(m.raw_size),
                            m.compression.as_str(),
                            o.seconds,
                            stored_in.join(", ")
                        ))?;
                        for row in retention.iter().filter(|r| r.action == "delete") {
                            print(&format!(
                                "{name}: retention deleted backup {} from {}\n",
                                row.id, row.storage
                            ))?;
                        }
                    }
                    JobResult {
                        job: name.clone(),
                        status: if o.failed_storages.is_empty() {
                            "ok"
                        } else {
                            "partial"
                        },
                        id: Some(m.id.clone()),
                        databases: m.databases.clone(),
                        raw_size: m.raw_size,
                        stored_size: m.stored_size,
                        seconds: o.seconds,
                        storages: stored_in,
                        finished_at: Some(rfc3339(m.finished_at)),
                        error: None,
                        warnings,
                        retention,
                    }
                }
                Err(e) => {
                    let msg = crate::util::secret::redact(&format!("{e:#}"));
                    let locked = super::is_locked(&e);
                    if signal::cancelled() {
                        eprintln!("error: job `{name}`: interrupted; partial objects were removed");
                    } else {
                        eprintln!("error: job `{name}`: {msg}");
                    }
                    JobResult {
                        job: name.clone(),
                        status: if signal::cancelled() {
                            "interrupted"
                        } else if locked {
                            "locked"
                        } else {
                            "failed"
                        },
                        id: None,
                        databases: Vec::new(),
                        raw_size: 0,
                        stored_size: 0,
                        seconds: 0.0,
                        storages,
                        finished_at: None,
                        error: Some(msg),
                        warnings,
                        retention,
                    }
                }
            };
            Ok(result)
        };
    let mut results = Vec::new();
    for result in crate::app::job::run_limited(
        &runs,
        width,
        per_host,
        |(_, job, _)| job.source.server(),
        one,
    )
    .into_iter()
    .flatten()
    {
        results.push(result?);
    }
    if args.json {
        print(&format!("{}\n", serde_json::to_string_pretty(&results)?))?;
    }
    if signal::cancelled() {
        return Err(Failure::Reported(Reported::Interrupted).into());
    }
    let failed = results
        .iter()
        .filter(|r| matches!(r.status, "failed" | "interrupted" | "locked"))
        .count();
    let partial = results.iter().any(|r| r.status == "partial");
    if !results.is_empty() && results.iter().all(|r| r.status == "locked") {
        return Err(Failure::Reported(Reported::Locked).into());
    }
    match failed {
        0 if !partial => Ok(()),
        n if n == results.len() => Err(Failure::Reported(Reported::Failed).into()),
        _ => Err(Failure::Partial.into()),
    }
}
