//! `dbkeep wal push` and `dbkeep wal fetch`: PostgreSQL's `archive_command`
//! and `restore_command` for a `method: physical` job.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{load_config, unknown_job};
use crate::catalog::wal::{self, Log, Pushed};
use crate::config::{Config, Job, SourceConfig};
use crate::connector::source::Method;
use crate::util::exit::Failure;

/// `dbkeep wal`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Archive one WAL file into the job's storages (PostgreSQL's `archive_command`).
    #[command(after_help = "\
In postgresql.conf:
  archive_mode = on
  archive_command = 'dbkeep -c /etc/dbkeep/dbkeep.yaml wal push app %p'

Exits 0 only when the file is stored in every required storage. The same file
again is success; other contents under an archived name are refused.")]
    Push(PushArgs),
    /// Fetch one archived WAL file (PostgreSQL's `restore_command`).
    #[command(after_help = "\
`dbkeep restore JOB --data-dir DIR` writes it into the restored cluster:
  restore_command = 'dbkeep -c /etc/dbkeep/dbkeep.yaml wal fetch app %f %p'

The file is checked against its record before anything is written, and written
under a temp name that is renamed into place. A file the archive does not hold
exits 1 and writes nothing: that is how PostgreSQL learns where the archive ends.")]
    Fetch(FetchArgs),
    /// Fetch WAL segments ahead into a spool folder (started by `wal fetch`).
    #[command(hide = true)]
    Prefetch(PrefetchArgs),
}

/// Arguments of `dbkeep wal prefetch`.
#[derive(Debug, clap::Args)]
pub struct PrefetchArgs {
    /// The job.
    #[arg(value_name = "JOB")]
    pub job: String,
    /// The spool folder.
    #[arg(long, value_name = "DIR")]
    pub spool: PathBuf,
    /// The segments to fetch, in order.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// Arguments of `dbkeep wal push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The job (a PostgreSQL source with `method: physical`).
    #[arg(value_name = "JOB")]
    pub job: String,
    /// The WAL file (`%p`).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// Arguments of `dbkeep wal fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// The job.
    #[arg(value_name = "JOB")]
    pub job: String,
    /// The file's name (`%f`).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where to write it (`%p`).
    #[arg(value_name = "PATH")]
    pub dest: PathBuf,
    /// Keys for an encrypted archive.
    #[command(flatten)]
    pub keys: super::KeyArgs,
}

/// Runs `dbkeep wal`.
pub fn run(command: Command, config_path: Option<&Path>) -> Result<()> {
    match command {
        Command::Push(args) => push(args, config_path),
        Command::Fetch(args) => fetch(args, config_path),
        Command::Prefetch(args) => {
            let config = load_config(config_path)?;
            let job = physical_job(&config, &args.job)?;
            let targets = crate::app::job::targets(&config, job)?;
            let keys = super::KeyArgs::default().load(job.encryption.as_ref())?;
            crate::app::prefetch::run(&targets, &args.job, &args.spool, &args.names, &keys)
        }
    }
}

/// The job, which must be a physical PostgreSQL one.
fn physical_job<'a>(config: &'a Config, name: &str) -> Result<&'a Job> {
    let job = config
        .jobs
        .get(name)
        .ok_or_else(|| unknown_job(config, name))?;
    match &job.source {
        SourceConfig::Postgres(s) if s.method == Method::Physical => Ok(job),
        _ => Err(Failure::Usage(format!(
            "job `{name}` does not archive WAL: give its PostgreSQL source `method: physical`"
        ))
        .into()),
    }
}

fn push(args: PushArgs, config_path: Option<&Path>) -> Result<()> {
    let config = load_config(config_path)?;
    let job = physical_job(&config, &args.job)?;
    let (name, kind, data) = wal::read_file(&args.path)?;
    let targets = crate::app::job::targets(&config, job)?;
    let (packing, sealing) = crate::app::binlog::packing(job)?;
    let mut failed = Vec::new();
    for t in &targets {
        let sysid = wal::sysid_of(kind, &data);
        match wal::push(
            t,
            Log::wal(&args.job),
            &name,
            &data,
            sysid,
            packing,
            sealing.as_ref(),
        ) {
            Ok(Pushed::Stored) => {
                tracing::info!(
                    job = args.job,
                    storage = t.storage.name(),
                    file = name,
                    "archived"
                );
            }
            Ok(Pushed::Already) => {
                tracing::info!(
                    job = args.job,
                    storage = t.storage.name(),
                    file = name,
                    "archived already, with the same contents"
                );
            }
            Err(e) if t.required => failed.push(format!("{e:#}")),
            Err(e) => {
                tracing::warn!(job = args.job, storage = t.storage.name(), file = name, error = %format!("{e:#}"), "not archived in an optional storage");
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("cannot archive {name}: {}", failed.join("; "));
    }
    Ok(())
}

fn fetch(args: FetchArgs, config_path: Option<&Path>) -> Result<()> {
    let config = load_config(config_path)?;
    let job = physical_job(&config, &args.job)?;
    wal::check_name(&args.name).map_err(|e| Failure::Usage(format!("{e:#}")))?;
    let spool = crate::app::prefetch::spool(&args.job);
    let config_file = crate::config::locate(config_path)
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let ahead = |name: &str, size: u64| {
        if let (Some(spool), Some(config)) = (&spool, &config_file) {
            let next = crate::app::prefetch::next(name, size);
            crate::app::prefetch::start(config, &args.job, spool, &next);
        }
    };
    if let Some(spool) = &spool
        && crate::app::prefetch::take(spool, &args.name, &args.dest)
    {
        let size = std::fs::metadata(&args.dest).map(|m| m.len()).unwrap_or(0);
        ahead(&args.name, size);
        tracing::info!(
            job = args.job,
            file = args.name,
            "restored from the archive (fetched ahead)"
        );
        return Ok(());
    }
    let targets = crate::app::job::targets(&config, job)?;
    let keys = args.keys.load(job.encryption.as_ref())?;
    if wal::fetch(&targets, Log::wal(&args.job), &args.name, &args.dest, &keys)? {
        let size = std::fs::metadata(&args.dest).map(|m| m.len()).unwrap_or(0);
        ahead(&args.name, size);
        tracing::info!(
            job = args.job,
            file = args.name,
            "restored from the archive"
        );
        Ok(())
    } else {
        // A file the archive lacks: its end, or the end of recovery (which
        // asks for the next timeline's history): nothing more to fetch ahead.
        if let Some(spool) = &spool {
            crate::app::prefetch::clear(spool);
        }
        tracing::info!(job = args.job, file = args.name, "not in the archive");
        anyhow::bail!(
            "{} is not in the WAL archive of job `{}`",
            args.name,
            args.job
        )
    }
}
