//! `dbkeep binlog pull`: archive a MariaDB/MySQL server's binary logs for a
//! `binlog: true` job.

use std::path::Path;

use anyhow::Result;

use super::{load_config, print, unknown_job};
use crate::util::exit::Failure;

/// `dbkeep binlog`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Archive every closed binlog file the job's storages lack.
    #[command(after_help = "\
The server is asked to close its current binlog first (FLUSH BINARY LOGS), so the
newest writes are archived too; --no-rotate leaves it open. Safe to run every
minute (the job's `binlog_schedule` does it under `dbkeep schedule run`).

Examples:
  dbkeep binlog pull shop
  dbkeep binlog pull shop --no-rotate")]
    Pull(PullArgs),
}

/// Arguments of `dbkeep binlog pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The job (a MariaDB or MySQL source with `binlog: true`).
    #[arg(value_name = "JOB")]
    pub job: String,
    /// Do not close the server's current binlog first.
    #[arg(long)]
    pub no_rotate: bool,
}

/// Runs `dbkeep binlog`.
pub fn run(command: Command, config_path: Option<&Path>) -> Result<()> {
    let Command::Pull(args) = command;
    let config = load_config(config_path)?;
    pull(&config, &args.job, !args.no_rotate).and_then(|text| print(&text))
}

/// Pulls the binlogs of job `name`; returns the summary line.
pub fn pull(config: &crate::config::Config, name: &str, rotate: bool) -> Result<String> {
    if !config.jobs.contains_key(name) {
        return Err(unknown_job(config, name));
    }
    if !config.jobs[name].source.has_binlog() {
        return Err(Failure::Usage(format!(
            "job `{name}` does not archive binlogs: give its MariaDB or MySQL source `binlog: true`"
        ))
        .into());
    }
    crate::app::binlog::pull_job(config, name, rotate)
}
