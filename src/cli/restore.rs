//! `dbkeep restore`: pick a backup, verify it, and restore it into a database.

use std::path::Path;

use anyhow::Result;

use super::{job_storage, load_config, location, print};
use crate::app::restore::{self, Plan};
use crate::catalog::manifest;
use crate::config::{Databases, SourceConfig as Source};
use crate::connector::{self, RestoreOptions, url};
use crate::storage::Target;
use crate::util::exit::Failure;

/// Arguments of `dbkeep restore`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The backup's checksum is verified before anything is written, and a target that
already holds tables is refused unless --force is given.

Examples:
  dbkeep restore app                                 latest backup into the configured database
  dbkeep restore app --to-database app_restored      into a new database on the same server
  dbkeep restore app --before 2026-11-01 --target postgres://postgres@10.0.0.5/app
  dbkeep restore --from ./backups --job app --target postgres://postgres@127.0.0.1/app_copy
  dbkeep restore --from ./backups --job app --target ./restored.db")]
pub struct Args {
    /// The job whose backup to restore.
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

    /// The latest backup started before this time (RFC 3339 or `YYYY-MM-DD [HH:MM]`, UTC).
    #[arg(long, value_name = "TIME", conflicts_with = "id")]
    pub before: Option<String>,

    /// Where to restore: a database URL or SQLite path (default: the job's source).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,

    /// Restore into this database name instead.
    #[arg(long, value_name = "NAME")]
    pub to_database: Option<String>,

    /// Only this database of a multi-database backup.
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,

    /// Skip PostgreSQL roles and tablespaces of a `databases: all` backup.
    #[arg(long)]
    pub no_globals: bool,

    /// PostgreSQL: do not restore object ownership.
    #[arg(long)]
    pub no_owner: bool,

    /// Restore into a target that is not empty, replacing the objects the backup holds.
    #[arg(long)]
    pub force: bool,

    /// PostgreSQL `method: physical`: restore the cluster into this new (or
    /// empty) data directory, set up to replay the job's WAL archive.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["target", "to_database", "database", "from"])]
    pub data_dir: Option<std::path::PathBuf>,

    /// Recover to this time (RFC 3339, fractional seconds allowed, e.g.
    /// 2026-12-01T09:30:00.25Z): with `--data-dir`, replay the WAL archive to
    /// it and promote; for a `binlog: true` job, restore the last dump
    /// before it and replay the binlogs up to it.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["to_lsn", "to_xid", "id", "before"])]
    pub to_time: Option<String>,

    /// With `--data-dir`: recover to this WAL position (e.g. 0/3000028), then promote.
    #[arg(long, value_name = "LSN", requires = "data_dir", conflicts_with_all = ["to_xid", "id", "before"])]
    pub to_lsn: Option<String>,

    /// With `--data-dir`: recover through this transaction id, then promote.
    #[arg(long, value_name = "XID", requires = "data_dir", conflicts_with_all = ["id", "before"])]
    pub to_xid: Option<u64>,

    /// Keys for an encrypted backup.
    #[command(flatten)]
    pub keys: super::KeyArgs,
}

/// Runs `dbkeep restore`.
pub fn run(args: Args, config_path: Option<&Path>) -> Result<()> {
    if args.data_dir.is_some() {
        return physical(args, config_path);
    }
    let job = args.job.clone().or(args.job_flag.clone());
    let mut job_encryption = None;
    let mut job_config = None;
    let (target, storage, source): (Option<Source>, Target, Option<Source>) =
        if let Some(from) = &args.from {
            let Some(t) = &args.target else {
                return Err(Failure::Usage(
                    "with `--from`, give `--target URL` (a database URL or SQLite path)".into(),
                )
                .into());
            };
            (
                Some(url::parse(t).map_err(|e| Failure::Usage(format!("{e:#}")))?),
                location(from)?,
                None,
            )
        } else {
            let Some(job_name) = &job else {
                return Err(Failure::Usage(
                    "name the job to restore (`dbkeep restore JOB`), or use `--from DIR`".into(),
                )
                .into());
            };
            let config = load_config(config_path)?;
            let storage = job_storage(&config, job_name, args.storage.as_deref())?;
            let target = args
                .target
                .as_deref()
                .map(url::parse)
                .transpose()
                .map_err(|e| Failure::Usage(format!("{e:#}")))?;
            job_encryption = config.jobs[job_name].encryption.clone();
            job_config = Some(config.jobs[job_name].clone());
            (target, storage, Some(config.jobs[job_name].source.clone()))
        };
    let keys = args.keys.load(job_encryption.as_ref())?;
    let binlog_job = job_config.as_ref().is_some_and(|j| j.source.has_binlog());
    let to_time = match &args.to_time {
        Some(_) if !binlog_job => {
            return Err(Failure::Usage(
                "`--to-time` needs `--data-dir` (a PostgreSQL `method: physical` job) or a job with `binlog: true`"
                    .into(),
            )
            .into());
        }
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    Failure::Usage(format!(
                        "`--to-time {}` is not an RFC 3339 time such as 2026-12-01T09:30:00.25Z",
                        crate::util::printable(t)
                    ))
                })?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };

    let crate::catalog::manifest::Scan {
        mut entries,
        skipped,
    } = super::backups_of(&storage, job.as_deref(), job_config.as_ref())?;
    if job.is_none() {
        let mut jobs: Vec<&str> = entries.iter().map(|e| e.manifest.job.as_str()).collect();
        jobs.sort();
        jobs.dedup();
        if jobs.len() > 1 {
            return Err(Failure::Usage(format!(
                "{} holds backups of several jobs ({}); choose one with `--job NAME`",
                storage.storage.location(),
                jobs.join(", ")
            ))
            .into());
        }
    }
    if entries.is_empty() && args.id.is_none() {
        anyhow::bail!(
            "no backups{} in storage `{}` ({})",
            job.as_deref()
                .map(|j| format!(" of job `{j}`"))
                .unwrap_or_default(),
            storage.storage.name(),
            storage.storage.location()
        );
    }
    let before = args
        .before
        .as_deref()
        .map(manifest::parse_time)
        .transpose()
        .map_err(|e| Failure::Usage(format!("{e:#}")))?
        .or(to_time);
    let entry = super::pick(&entries, &skipped, args.id.as_deref(), before)?;
    entries.clear();
    let m = &entry.manifest;
    super::admit(
        &entry,
        job.as_deref().zip(job_config.as_ref()),
        args.database.as_deref(),
    )?;

    // The target: --target, else the job's own source.
    let mut to_database = args.to_database.clone();
    let target = match (target, source) {
        (Some(t), _) => {
            // A URL naming one database is the target name for a single-database restore.
            if let Some(Databases::List(list)) = t.databases()
                && to_database.is_none()
                && (m.databases.len() == 1 || args.database.is_some())
            {
                to_database = list.first().cloned();
            }
            t
        }
        (None, Some(s)) => s,
        (None, None) => unreachable!("--from requires --target"),
    };
    if !target.engine().restores(m.engine) {
        return Err(Failure::Usage(format!(
            "backup {} is a {} backup and cannot be restored into a {} target",
            m.id,
            m.engine,
            target.engine()
        ))
        .into());
    }
    if let Source::Sqlite(_) = &target {
        to_database = None;
    }
    tracing::info!(id = m.id, job = m.job, started = %manifest::rfc3339(m.started_at), "selected backup");
    let mut conn = connector::connect(&target, None)?;
    let plan = Plan {
        entry: &entry,
        storage: &*storage.storage,
        database: args.database.clone(),
        to_database,
        no_globals: args.no_globals,
        options: RestoreOptions {
            force: args.force,
            no_owner: args.no_owner,
        },
        keys: &keys,
    };
    // A binlog job: the binlogs from each dump's position, checked whole
    // before anything is applied, then replayed after the dump's restore.
    let mut replayer = None;
    if binlog_job {
        let job_name = job.as_deref().unwrap_or_default();
        let mut server = connector::binlog_target(&target)?;
        for a in m.artifacts.iter().filter(|a| {
            a.binlog.is_some()
                && args
                    .database
                    .as_deref()
                    .is_none_or(|d| a.database.as_deref() == Some(d))
        }) {
            let files = crate::app::binlog::check(&mut server, &storage, job_name, a, &keys)?;
            tracing::info!(artifact = a.name, files, "binlogs checked before restore");
        }
        replayer = Some(server);
    }
    let done = restore::run(&plan, &mut *conn)?;
    let mut replayed = String::new();
    if let Some(server) = &mut replayer {
        let job_name = job.as_deref().unwrap_or_default();
        for (name, db) in &done.items {
            let Some(a) = m
                .artifacts
                .iter()
                .find(|a| &a.name == name && a.binlog.is_some())
            else {
                continue;
            };
            let files =
                crate::app::binlog::replay(server, &storage, job_name, a, db, to_time, &keys)?;
            replayed.push_str(&format!(
                "replayed {files} binlog file(s) into `{}` {}\n",
                crate::util::printable(db),
                match &args.to_time {
                    Some(t) => format!("up to {t}"),
                    None => "to the end of the archive".to_string(),
                }
            ));
        }
    }
    let mut text = String::new();
    for (artifact, db) in &done.items {
        if db.is_empty() {
            text.push_str(&format!("restored {artifact} from backup {}\n", m.id));
        } else {
            text.push_str(&format!(
                "restored {artifact} from backup {} into `{}`\n",
                m.id,
                crate::util::printable(db)
            ));
        }
    }
    text.push_str(&replayed);
    print(&text)?;
    Ok(())
}

/// `dbkeep restore JOB --data-dir DIR [--to-time T | --to-lsn L | --to-xid X]`.
fn physical(args: Args, config_path: Option<&Path>) -> Result<()> {
    use crate::app::pitr::{self, Stop};
    let Some(job) = args.job.clone().or(args.job_flag.clone()) else {
        return Err(Failure::Usage(
            "name the job to restore: `dbkeep restore JOB --data-dir DIR`".into(),
        )
        .into());
    };
    let stop = if let Some(t) = &args.to_time {
        let at = chrono::DateTime::parse_from_rfc3339(t).map_err(|_| {
            Failure::Usage(format!(
                "`--to-time {}` is not an RFC 3339 time such as 2026-12-01T09:30:00.25Z",
                crate::util::printable(t)
            ))
        })?;
        Stop::Time(at.with_timezone(&chrono::Utc), t.clone())
    } else if let Some(l) = &args.to_lsn {
        Stop::Lsn(
            crate::catalog::wal::Lsn::parse(l)
                .map_err(|e| Failure::Usage(format!("`--to-lsn`: {e:#}")))?,
        )
    } else if let Some(x) = args.to_xid {
        Stop::Xid(x)
    } else {
        Stop::End
    };
    let config_file = crate::config::locate(config_path)?;
    let config_file = config_file.canonicalize().unwrap_or(config_file);
    let config = load_config(Some(&config_file))?;
    let storage = job_storage(&config, &job, args.storage.as_deref())?;
    let job_config = config.jobs[&job].clone();
    let keys = args.keys.load(job_config.encryption.as_ref())?;
    let scan = super::backups_of(&storage, Some(&job), Some(&job_config))?;
    let data_dir = args.data_dir.clone().expect("checked by the caller");
    let plan = pitr::Plan {
        job: &job,
        entries: &scan.entries,
        storage: &storage,
        data_dir: &data_dir,
        stop: stop.clone(),
        force: args.force,
        keys: &keys,
        config: config_file,
    };
    let done = pitr::run(&plan)?;
    let target = match &stop {
        Stop::End => "the end of the archive".to_string(),
        Stop::Time(_, t) => t.clone(),
        Stop::Lsn(l) => format!("LSN {l}"),
        Stop::Xid(x) => format!("transaction {x}"),
    };
    let mut text = format!(
        "restored base backup {} into {}; {} WAL segments checked (through {})\n\
         recovery replays the archive of job `{job}` to {target}, then promotes; start the server with:\n  \
         pg_ctl -D {} -l {}/recovery.log start\n",
        done.id,
        data_dir.display(),
        done.segments,
        done.last,
        data_dir.display(),
        data_dir.display(),
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        text.push_str(&format!(
            "(as the server's user: first `chown -R postgres:postgres {}`)\n",
            data_dir.display()
        ));
    }
    text.push_str(
        "the restored server keeps the original's archive_command; start it with `-o '-c archive_mode=off'` \
         to keep it out of the archive\n",
    );
    print(&text)?;
    Ok(())
}
