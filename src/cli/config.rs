//! `dbkeep config`: validate, show the effective config, or write a starter.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::print;
use crate::config::{self, Config};
use crate::storage;
use crate::util::exit::Failure;

/// The starter config that `config init` writes (also the full reference).
pub const EXAMPLE: &str = include_str!("../../config.example.yaml");

/// `dbkeep config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check the config: report every problem with its YAML path (exit 78),
    /// then check tools, password files and storages (exit 1 on failure).
    #[command(
        after_help = "Examples:\n  dbkeep config validate\n  dbkeep -c /etc/dbkeep/config.yaml config validate --no-environment"
    )]
    Validate {
        /// Only check the file; do not look for tools or touch storages.
        #[arg(long)]
        no_environment: bool,
    },
    /// Print the effective config (file + DBKEEP_* env + defaults), secrets redacted.
    Show,
    /// Print the JSON Schema of the config file (for editors: yaml-language-server).
    #[command(
        after_help = "Examples:\n  dbkeep config schema > dbkeep.schema.json\n  \
        # then, first line of dbkeep.yaml:\n  # yaml-language-server: $schema=./dbkeep.schema.json"
    )]
    Schema,
    /// Write a commented starter config.
    #[command(
        after_help = "Examples:\n  dbkeep config init\n  dbkeep config init /etc/dbkeep/config.yaml\n  dbkeep config init - > my.yaml"
    )]
    Init {
        /// Where to write it (`-` for stdout).
        #[arg(value_name = "PATH", default_value = config::LOCAL_NAME)]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `dbkeep config ...`.
pub fn run(cmd: Command, explicit: Option<&Path>) -> Result<()> {
    match cmd {
        Command::Validate { no_environment } => {
            let path = config::locate(explicit)?;
            let cfg = config::load(&path)?;
            print(&format!(
                "{}: valid ({} job{}, {} storage{})\n",
                path.display(),
                cfg.jobs.len(),
                if cfg.jobs.len() == 1 { "" } else { "s" },
                cfg.storages.len(),
                if cfg.storages.len() == 1 { "" } else { "s" },
            ))?;
            if no_environment {
                return Ok(());
            }
            let problems = environment(&cfg);
            if problems.is_empty() {
                print("environment: tools found, password files readable, storages writable\n")?;
                return Ok(());
            }
            Err(Failure::Environment(problems).into())
        }
        Command::Show => {
            let path = config::locate(explicit)?;
            let cfg = config::load(&path)?;
            let yaml = serde_yaml_ng::to_string(&cfg).context("cannot print the config")?;
            print(&format!(
                "# effective config from {}\n{yaml}",
                path.display()
            ))?;
            Ok(())
        }
        Command::Schema => {
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&config::json_schema())?
            ))?;
            Ok(())
        }
        Command::Init { path, force } => {
            if path.as_os_str() == "-" {
                print(EXAMPLE)?;
                return Ok(());
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true);
            // A config may hold passwords.
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            if force {
                options.create(true).truncate(true);
            } else {
                options.create_new(true);
            }
            let mut file = match options.open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Failure::Usage(format!(
                        "{} already exists; pass `--force` to overwrite it",
                        path.display()
                    ))
                    .into());
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            };
            file.write_all(EXAMPLE.as_bytes())?;
            eprintln!(
                "wrote {}; edit it, then run `dbkeep config validate`",
                path.display()
            );
            Ok(())
        }
    }
}

/// Checks what the file alone cannot show.
fn environment(cfg: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, job) in &cfg.jobs {
        let at = format!("jobs.{name}.source");
        match crate::connector::connect(&job.source, job.temp_dir.clone()) {
            Ok(conn) => {
                for e in conn.preflight() {
                    problems.push(format!("{at}: {e:#}"));
                }
            }
            Err(e) => problems.push(format!("{at}: {e:#}")),
        }
    }
    for (name, sc) in &cfg.storages {
        let probe = || -> Result<()> {
            let st = storage::open(name, sc)?;
            let key = crate::catalog::manifest::join_key(&[
                sc.prefix(),
                &format!(".dbkeep-probe-{}", std::process::id()),
            ]);
            let Some(version) = st.create_if_absent(&key, b"dbkeep probe")? else {
                anyhow::bail!("the probe object `{key}` already exists");
            };
            if !st.delete_if(&key, &version)? {
                anyhow::bail!("the probe object `{key}` changed before it could be removed");
            }
            Ok(())
        };
        if let Err(e) = probe() {
            problems.push(format!(
                "storages.{name}: cannot write and remove a test object: {e:#}"
            ));
        }
    }
    problems
}
