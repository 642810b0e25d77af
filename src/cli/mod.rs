//! The command line: global flags, the subcommands, and where each finds its
//! backups (a config file, or `--to`/`--from` for config-less runs).

mod backup;
mod binlog;
mod config;
mod demo;
mod generate;
mod inspect;
mod list;
mod notify;
mod prune;
mod restore;
mod schedule;
mod verify;
mod wal;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::app::job::targets as job_targets;
use crate::config::{Config, Job};
use crate::storage;
use crate::storage::Target;
use crate::util::exit::{self, Failure, Reported};

const ABOUT: &str = "Back up and restore PostgreSQL, MariaDB/MySQL, SQLite, MongoDB and Redis databases.\n\n\
Dumps stream through compression to storage, with a checksummed manifest written last. \
A dump that fails, is killed or is incomplete is a failed backup: nothing is kept.";

const AFTER: &str = "\
Examples:
  dbkeep backup                                  run every job of the config
  dbkeep backup app                              run the job `app`
  dbkeep backup postgres://postgres@127.0.0.1/app --to ./backups
  dbkeep list app
  dbkeep restore app --to-database app_copy      restore the latest backup into a new database
  dbkeep restore --from ./backups --job app --target postgres://postgres@127.0.0.1/app_copy
  dbkeep verify app
  dbkeep inspect app                             server, client, TLS, databases and sizes
  dbkeep prune --dry-run                          what the retention rules would delete
  dbkeep schedule run                             run jobs at their `schedule` times

Config: -c FILE, or DBKEEP_CONFIG, or the first of ./dbkeep.yaml, ~/.config/dbkeep/config.yaml,
/etc/dbkeep/config.yaml. DBKEEP_* variables override keys (DBKEEP_JOBS__APP__SOURCE__PORT=5433).
Logs: -v/-vv, -q, or DBKEEP_LOG (e.g. DBKEEP_LOG=debug).

Exit codes:
  0    success
  1    failure (nothing stored, or restore/verify failed)
  2    usage error
  3    partial: some jobs failed, others succeeded
  75   locked: another run of the job holds its lock
  78   configuration invalid
  130  interrupted (SIGINT/SIGTERM); partial objects removed";

/// dbkeep's command line.
#[derive(Debug, Parser)]
#[command(name = "dbkeep", version, about = ABOUT, after_help = AFTER, max_term_width = 100)]
pub struct Cli {
    /// Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml).
    #[arg(short, long, global = true, env = "DBKEEP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// No progress display (a bar on a terminal, else a log line every 10 s).
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// Log format on stderr: `text` for people, `json` (one object per line) for machines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "DBKEEP_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up the config's jobs, or one database URL with `--to DIR`.
    Backup(backup::Args),
    /// Restore a backup into a database.
    Restore(restore::Args),
    /// List backups, newest first.
    List(list::Args),
    /// Re-read a backup and check it against its manifest.
    Verify(verify::Args),
    /// Show a source's server, client, TLS, databases and sizes, writing nothing.
    Inspect(inspect::Args),
    /// Delete old backups by the jobs' retention rules.
    Prune(prune::Args),
    /// Run jobs on their schedules, list fire times, or install timers.
    #[command(subcommand)]
    Schedule(schedule::Command),
    /// Check, show or create the config file.
    #[command(subcommand)]
    Config(config::Command),
    /// Send test notifications.
    #[command(subcommand)]
    Notify(notify::Command),
    /// Archive and fetch PostgreSQL WAL (`archive_command`, `restore_command`).
    #[command(subcommand)]
    Wal(wal::Command),
    /// Archive MariaDB/MySQL binary logs for point-in-time recovery.
    #[command(subcommand)]
    Binlog(binlog::Command),
    /// Write man pages and shell completions (for packagers).
    #[command(hide = true)]
    Generate(generate::Args),
    /// Try dbkeep: create a sample SQLite database, back it up to ./backups,
    /// restore it, and compare.
    Demo(demo::Args),
}

/// Runs the parsed command; [`exit_code`] turns the result into the exit code.
pub fn run(cli: Cli) -> Result<()> {
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::Backup(args) => backup::run(
            args,
            config_path,
            crate::pipeline::progress::Mode::detect(cli.no_progress || cli.quiet),
        ),
        Command::Restore(args) => restore::run(args, config_path),
        Command::List(args) => list::run(args, config_path),
        Command::Verify(args) => verify::run(args, config_path),
        Command::Inspect(args) => inspect::run(args, config_path),
        Command::Prune(args) => prune::run(args, config_path),
        Command::Wal(command) => wal::run(command, config_path),
        Command::Binlog(command) => binlog::run(command, config_path),
        Command::Schedule(cmd) => schedule::run(cmd, config_path),
        Command::Config(cmd) => config::run(cmd, config_path),
        Command::Notify(cmd) => notify::run(cmd, config_path),
        Command::Demo(args) => demo::run(args),
        Command::Generate(args) => generate::run(args),
    }
}

/// The exit code of a command's result: the one place where the causes of
/// failure become the documented codes of [`exit`].
pub fn exit_code(result: &Result<()>) -> u8 {
    let err = match result {
        Ok(()) => return exit::OK,
        Err(err) => err,
    };
    match cause(err) {
        Cause::Failure(failure) => match failure {
            Failure::Usage(_) | Failure::Reported(Reported::Usage) => exit::USAGE,
            Failure::Config(_) => exit::CONFIG,
            Failure::Locked { .. } | Failure::Reported(Reported::Locked) => exit::LOCKED,
            Failure::Interrupted | Failure::Stopped | Failure::Reported(Reported::Interrupted) => {
                exit::INTERRUPTED
            }
            Failure::Partial => exit::PARTIAL,
            Failure::Environment(_) | Failure::Reported(Reported::Failed) => exit::FAILED,
        },
        Cause::Invalid => exit::CONFIG,
        Cause::Signal => exit::INTERRUPTED,
        Cause::Other => exit::FAILED,
    }
}

/// What decides an error's exit code.
enum Cause<'a> {
    /// A [`Failure`] named it.
    Failure(&'a Failure),
    /// The config failed validation ([`crate::config::Invalid`]).
    Invalid,
    /// A signal stopped the work.
    Signal,
    /// Anything else.
    Other,
}

/// The first cause in `err`'s chain that names a reason; without one, a
/// signal that has arrived.
fn cause(err: &anyhow::Error) -> Cause<'_> {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return Cause::Failure(failure);
        }
        if cause.is::<crate::config::Invalid>() {
            return Cause::Invalid;
        }
        if crate::util::signal::is_interrupt(cause) {
            return Cause::Signal;
        }
    }
    if crate::util::signal::cancelled() {
        Cause::Signal
    } else {
        Cause::Other
    }
}

/// Whether `err` is another run holding the job's lock.
fn is_locked(err: &anyhow::Error) -> bool {
    matches!(cause(err), Cause::Failure(Failure::Locked { .. }))
}

/// What `main` prints for a failed command: nothing when the reasons were
/// already printed, the interruption when a signal stopped the work, else
/// the error with its causes.
pub fn error_text(err: &anyhow::Error) -> Option<String> {
    match err.downcast_ref::<Failure>() {
        Some(failure) if failure.is_reported() => None,
        Some(_) => Some(format!("{err:#}")),
        None if matches!(cause(err), Cause::Signal) => Some(Failure::Interrupted.to_string()),
        None => Some(format!("{err:#}")),
    }
}

/// Loads the config the user pointed at (or found on the search path).
fn load_config(explicit: Option<&Path>) -> Result<Config> {
    let path = crate::config::locate(explicit)?;
    tracing::info!(file = %path.display(), "using config");
    crate::config::load(&path)
}

/// A storage given on the command line (`--to`, `--from`): a folder, or
/// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`.
/// Query parameters set storage keys (`?endpoint=...&region=...&path_style=true`);
/// credentials come from each cloud's standard environment.
fn location(text: &str) -> Result<Target> {
    let sc = crate::storage::location::parse(text).map_err(|e| Failure::Usage(format!("{e:#}")))?;
    Ok(Target::new(
        storage::open(text, &sc)?,
        sc.prefix().to_string(),
    ))
}

/// Picks one storage of a job: `--storage NAME`, else the job's first.
fn job_storage(config: &Config, job_name: &str, wanted: Option<&str>) -> Result<Target> {
    let job = config
        .jobs
        .get(job_name)
        .ok_or_else(|| unknown_job(config, job_name))?;
    let name = match wanted {
        Some(w) if job.storage.iter().any(|s| s == w) => w,
        Some(w) => {
            return Err(Failure::Usage(format!(
                "job `{job_name}` does not use storage `{w}` (it uses: {})",
                job.storage.join(", ")
            ))
            .into());
        }
        None => job.storage.first().map(String::as_str).unwrap_or_default(),
    };
    let sc = config
        .storages
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("storage `{name}` is not defined"))?;
    Ok(Target::new(
        storage::open(name, sc)?,
        sc.prefix().to_string(),
    ))
}

fn unknown_job(config: &Config, name: &str) -> anyhow::Error {
    let known: Vec<&str> = config.jobs.keys().map(String::as_str).collect();
    Failure::Usage(if known.is_empty() {
        format!("no job `{name}`: the config defines no jobs")
    } else {
        format!("no job `{name}` in the config (jobs: {})", known.join(", "))
    })
    .into()
}

/// The backups of a job in `target`, for `restore` and `verify`: with the
/// job's `signing` key, only authentic manifests; `id` (when given) must
/// name one of them.
fn backups_of(
    target: &Target,
    job_name: Option<&str>,
    job: Option<&Job>,
) -> Result<crate::catalog::manifest::Scan> {
    let key = job
        .and_then(|j| j.signing.as_ref())
        .map(crate::catalog::manifest::SigningKey::load)
        .transpose()?;
    crate::catalog::manifest::scan(&*target.storage, &target.prefix, job_name, key.as_ref())
}

/// Picks a backup like [`crate::catalog::manifest::select`]; when `--id` names one
/// whose manifest was left out, says why.
fn pick(
    entries: &[crate::catalog::manifest::Entry],
    skipped: &[(String, String)],
    id: Option<&str>,
    before: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<crate::catalog::manifest::Entry> {
    crate::catalog::manifest::select(entries, id, before).map_err(|e| {
        let why = id.and_then(|id| {
            skipped
                .iter()
                .find(|(key, _)| key.split('/').any(|seg| seg.starts_with(id)))
        });
        match why {
            Some((key, why)) => anyhow::anyhow!(
                "refusing backup `{}`: its manifest {} {why}",
                crate::util::printable(id.unwrap_or_default()),
                crate::util::printable(key)
            ),
            None => e,
        }
    })
}

/// What a backup must be before `restore` or `verify` uses it for `job`:
/// artifacts dbkeep writes, encrypted when the job encrypts, and holding the
/// job's databases (unless `--database` picks one).
fn admit(
    entry: &crate::catalog::manifest::Entry,
    job: Option<(&str, &Job)>,
    database: Option<&str>,
) -> Result<()> {
    let m = &entry.manifest;
    m.check_artifacts()?;
    let Some((name, job)) = job else {
        return Ok(());
    };
    let id = crate::util::printable(&m.id);
    if job.encryption.is_some() && m.encryption.is_none() {
        anyhow::bail!(
            "refusing backup {id}: job `{name}` encrypts its backups, but this one is not encrypted; it was not \
             written by this job's dbkeep (restore it with `--from` if you trust it)"
        );
    }
    if let Some(crate::config::Databases::List(list)) = job.source.databases()
        && database.is_none()
        && m.base_backup.is_none()
    {
        let mut want = list.clone();
        let mut have = m.databases.clone();
        want.sort();
        have.sort();
        if want != have {
            let shown: Vec<String> = m
                .databases
                .iter()
                .map(|d| crate::util::printable(d))
                .collect();
            anyhow::bail!(
                "refusing backup {id}: it holds the databases {}, but job `{name}` backs up {}; choose one with \
                 `--database NAME` if you mean it",
                shown.join(", "),
                list.join(", ")
            );
        }
    }
    Ok(())
}

/// Keys for encrypted backups, shared by `restore` and `verify`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyArgs {
    /// age identity file (private keys) for an encrypted backup; may be repeated.
    #[arg(long, value_name = "FILE")]
    pub identity: Vec<PathBuf>,

    /// File whose first line is the passphrase of a passphrase-encrypted backup
    /// (else DBKEEP_AGE_PASSPHRASE, else the job's `passphrase_file`).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The keys from the flags, else from the job's `encryption.age` config.
    pub fn load(
        &self,
        job: Option<&crate::config::AgeConfig>,
    ) -> Result<crate::pipeline::crypt::Keys> {
        let mut files = self.identity.clone();
        if files.is_empty()
            && let Some(f) = job.and_then(|e| e.identity_file.clone())
        {
            files.push(f);
        }
        let pass_file = self.passphrase_file.clone();
        let mut passphrase = crate::pipeline::crypt::Keys::passphrase(pass_file.as_deref())?;
        if passphrase.is_none()
            && let Some(f) = job.and_then(|e| e.passphrase_file.as_deref())
        {
            passphrase = crate::pipeline::crypt::Keys::passphrase(Some(f))?;
        }
        crate::pipeline::crypt::Keys::load(&files, passphrase)
    }
}

/// Set once stdout turned out to be a closed pipe.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes results to stdout. A closed pipe (`| head`) stops the printing, not
/// the work: every job still runs, and the exit code stays the real one.
fn print(text: &str) -> Result<()> {
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let r = out
        .write_all(crate::util::secret::redact(text).as_bytes())
        .and_then(|()| out.flush());
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => Ok(other?),
    }
}

/// Parses a `DURATION` flag (`90s`, `15m`, `2h`, `1d`).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::util::duration::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    fn locked() -> Failure {
        Failure::Locked {
            job: "app".into(),
            storage: "local".into(),
            holder: "backup on host1 (pid 7)".into(),
            waited: false,
        }
    }

    fn invalid() -> crate::config::Invalid {
        crate::config::Invalid {
            file: PathBuf::from("dbkeep.yaml"),
            problems: Vec::new(),
        }
    }

    fn code_of(err: impl Into<anyhow::Error>) -> u8 {
        exit_code(&Err(err.into()))
    }

    #[test]
    fn each_cause_maps_to_its_documented_code() {
        assert_eq!(exit_code(&Ok(())), 0);
        assert_eq!(code_of(Failure::Usage("bad flag".into())), 2);
        assert_eq!(code_of(Failure::Reported(Reported::Usage)), 2);
        assert_eq!(code_of(Failure::Config("no jobs".into())), 78);
        assert_eq!(code_of(invalid()), 78);
        assert_eq!(code_of(locked()), 75);
        assert_eq!(code_of(Failure::Reported(Reported::Locked)), 75);
        assert_eq!(code_of(Failure::Partial), 3);
        assert_eq!(code_of(Failure::Interrupted), 130);
        assert_eq!(code_of(Failure::Stopped), 130);
        assert_eq!(code_of(Failure::Reported(Reported::Interrupted)), 130);
        assert_eq!(code_of(crate::util::signal::Interrupted), 130);
        assert_eq!(code_of(Failure::Environment(vec!["x".into()])), 1);
        assert_eq!(code_of(Failure::Reported(Reported::Failed)), 1);
        assert_eq!(code_of(anyhow::anyhow!("the dump failed")), 1);
    }

    #[test]
    fn a_cause_wrapped_in_context_keeps_its_code() {
        let wrapped = anyhow::Error::new(locked())
            .context("job `app`")
            .context("backup");
        assert_eq!(code_of(wrapped), 75);
        let from_result: Result<()> =
            Err::<(), _>(Failure::Usage("bad flag".into())).context("reading the flags");
        assert_eq!(exit_code(&from_result), 2);
        assert_eq!(
            code_of(anyhow::Error::new(invalid()).context("loading")),
            78
        );
        let stopped =
            anyhow::Error::new(crate::util::signal::Interrupted).context("pg_dump was stopped");
        assert_eq!(code_of(stopped), 130);
        let io = std::io::Error::other("disk full");
        assert_eq!(code_of(anyhow::Error::new(io).context("writing")), 1);
    }

    #[test]
    fn a_lock_held_elsewhere_is_recognised_through_context() {
        assert!(is_locked(
            &anyhow::Error::new(locked()).context("job `app`")
        ));
        assert!(!is_locked(&anyhow::anyhow!("the dump failed")));
        assert!(!is_locked(&Failure::Reported(Reported::Failed).into()));
    }

    #[test]
    fn what_main_prints() {
        assert_eq!(error_text(&Failure::Partial.into()), None);
        assert_eq!(
            error_text(&Failure::Reported(Reported::Locked).into()),
            None
        );
        assert_eq!(
            error_text(&anyhow::Error::new(Failure::Usage("bad flag".into())).context("backup"))
                .as_deref(),
            Some("backup: bad flag")
        );
        let stopped =
            anyhow::Error::new(crate::util::signal::Interrupted).context("pg_dump was stopped");
        assert_eq!(
            error_text(&stopped).as_deref(),
            Some("interrupted: the child was stopped and partial objects were removed")
        );
        assert_eq!(
            error_text(&Failure::Stopped.into()).as_deref(),
            Some("stopped: running jobs were interrupted and their partial objects removed")
        );
        assert_eq!(
            error_text(&anyhow::anyhow!("the dump failed").context("job `app`")).as_deref(),
            Some("job `app`: the dump failed")
        );
    }
}
