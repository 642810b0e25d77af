//! `dbkeep verify`: re-read a backup and check it against its manifest.

use std::path::Path;

use anyhow::Result;

use super::{job_storage, load_config, location, print};
use crate::util::exit::Failure;

/// Arguments of `dbkeep verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks each object's size and sha256, decompresses it to the end, and checks the
dump inside (pg_restore --list for PostgreSQL, end lines for SQL, integrity_check for SQLite).

Examples:
  dbkeep verify app
  dbkeep verify app --id 20261122T030000Z
  dbkeep verify --from ./backups --job app --json")]
pub struct Args {
    /// The job whose backup to verify.
    #[arg(value_name = "JOB")]
    pub job: Option<String>,

    /// The job, when reading with `--from` (same as JOB).
    #[arg(long = "job", value_name = "NAME", conflicts_with = "job")]
    pub job_flag: Option<String>,

    /// Read backups from this folder, with no config file.
    #[arg(long, value_name = "DIR")]
    pub from: Option<String>,

    /// Which storage of the job to read from (default: its first).
    #[arg(long, value_name = "NAME", conflicts_with = "from")]
    pub storage: Option<String>,

    /// The backup id (or a unique prefix); default: the latest.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Keys for an encrypted backup (without them only size and sha256 are checked).
    #[command(flatten)]
    pub keys: super::KeyArgs,
}

/// Runs `dbkeep verify`.
pub fn run(args: Args, config_path: Option<&Path>) -> Result<()> {
    let job = args.job.clone().or(args.job_flag.clone());
    let mut job_encryption = None;
    let mut job_config = None;
    let target = match &args.from {
        Some(from) => location(from)?,
        None => {
            let Some(job) = &job else {
                return Err(Failure::Usage(
                    "name the job to verify (`dbkeep verify JOB`), or use `--from DIR`".into(),
                )
                .into());
            };
            let config = load_config(config_path)?;
            job_encryption = config.jobs.get(job).and_then(|j| j.encryption.clone());
            job_config = config.jobs.get(job).cloned();
            job_storage(&config, job, args.storage.as_deref())?
        }
    };
    let keys = args.keys.load(job_encryption.as_ref())?;
    let crate::catalog::manifest::Scan { entries, skipped } =
        super::backups_of(&target, job.as_deref(), job_config.as_ref())?;
    if entries.is_empty() && args.id.is_none() {
        anyhow::bail!(
            "no backups{} in storage `{}` ({})",
            job.as_deref()
                .map(|j| format!(" of job `{j}`"))
                .unwrap_or_default(),
            target.storage.name(),
            target.storage.location()
        );
    }
    let entry = super::pick(&entries, &skipped, args.id.as_deref(), None)?;
    super::admit(&entry, job.as_deref().zip(job_config.as_ref()), None)?;
    let tools = crate::app::verify::Tools {
        bin_dir: job_config.as_ref().and_then(|j| j.source.bin_dir()),
        temp_dir: job_config.as_ref().and_then(|j| j.temp_dir.clone()),
    };
    let checked = crate::app::verify::run(&entry, &*target.storage, &keys, &tools)?;
    // A physical job: the WAL chain from each base backup to the newest segment.
    let chain = match &job {
        Some(j) if entry.manifest.base_backup.is_some() => {
            crate::app::pitr::verify(&target, j, &entries, &keys)?
        }
        _ => None,
    };
    let binlogs = match (&job, &job_config) {
        (Some(j), Some(c)) if c.source.has_binlog() => {
            crate::app::binlog::verify(&target, j, &entry, &keys)?
        }
        _ => None,
    };
    if args.json {
        let mut out = serde_json::json!({
            "id": crate::util::printable(&entry.manifest.id),
            "job": crate::util::printable(&entry.manifest.job),
            "status": "ok",
            "objects": checked,
        });
        if let Some(c) = &chain {
            out["wal"] = serde_json::to_value(c)?;
        }
        if let Some((from, to, files)) = &binlogs {
            out["binlog"] = serde_json::json!({ "from": from, "to": to, "files": files });
        }
        print(&format!("{}\n", serde_json::to_string_pretty(&out)?))?;
    } else {
        let mut text = String::new();
        for c in &checked {
            let retained = c
                .retained_until
                .map(|t| format!("  retained until {}", crate::util::rfc3339(t)))
                .unwrap_or_default();
            text.push_str(&format!(
                "ok  {}  ({}){retained}\n",
                c.key,
                c.checks.join(", ")
            ));
        }
        if let Some(c) = &chain {
            text.push_str(&format!(
                "ok  WAL {} to {}  ({} segments: size, sha256, decompression; no gaps)\n",
                c.from, c.to, c.segments
            ));
        }
        if let Some((from, to, files)) = &binlogs {
            text.push_str(&format!(
                "ok  binlogs {from} to {to}  ({files} files: size, sha256; no gaps)\n"
            ));
        }
        text.push_str(&format!(
            "backup {} of job `{}` is intact\n",
            crate::util::printable(&entry.manifest.id),
            crate::util::printable(&entry.manifest.job)
        ));
        print(&text)?;
    }
    Ok(())
}
