//! `dbkeep notify test`: send a test message through the notifiers.

use std::path::Path;

use anyhow::Result;
use chrono::Utc;

use super::{load_config, print};
use crate::notify::{Event, Notifiers, Status};
use crate::util::exit::{Failure, Reported};

/// `dbkeep notify` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Send a test message through one notifier, or all of them.
    #[command(after_help = "Examples:\n  dbkeep notify test\n  dbkeep notify test team-slack")]
    Test {
        /// The notifier (default: every notifier in the config).
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
}

/// Runs `dbkeep notify ...`.
pub fn run(cmd: Command, config_path: Option<&Path>) -> Result<()> {
    let Command::Test { name } = cmd;
    let config = load_config(config_path)?;
    let names: Vec<String> = match name {
        Some(n) => vec![n],
        None => config.notifiers.keys().cloned().collect(),
    };
    if names.is_empty() {
        return Err(Failure::Usage(
            "the config defines no notifiers; add one under `notifiers:`".into(),
        )
        .into());
    }
    let notifiers = Notifiers::for_test(&config.notifiers, &names)
        .map_err(|e| Failure::Usage(format!("{e:#}")))?;
    let now = Utc::now();
    let event = Event {
        event: "test",
        job: "dbkeep-test".into(),
        status: Status::Success,
        backup_id: None,
        started_at: now,
        finished_at: now,
        duration_seconds: 0.0,
        stored_size: 0,
        raw_size: 0,
        storages: Vec::new(),
        databases: Vec::new(),
        error: None,
        host: crate::util::hostname(),
        dbkeep_version: env!("CARGO_PKG_VERSION"),
    };
    let failed = notifiers.finished(&event);
    let mut text = String::new();
    for n in &names {
        text.push_str(&format!(
            "{}  {n}\n",
            if failed.contains(n) {
                "failed"
            } else {
                "sent  "
            }
        ));
    }
    print(&text)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Reported(Reported::Failed).into())
    }
}
