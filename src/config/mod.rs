//! Loading the config: where it is found, figment layering, and the effective
//! (validated) types the rest of dbkeep works with.
//!
//! Layers, lowest first: built-in defaults < the YAML file < `DBKEEP_` env
//! variables (nested keys split on `__`, e.g. `DBKEEP_JOBS__APP__SOURCE__PORT`)
//! < command-line flags (applied by each command).

mod schema;
mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format};
use serde::Serialize;

pub use crate::catalog::manifest::SigningConfig;
pub use crate::catalog::retention::{Retention, RetentionConfig};
pub use crate::connector::{Databases, Engine, SourceConfig};
pub use crate::notify::metrics::MetricsConfig as Metrics;
pub use crate::notify::{NotifierConfig, NotifyOn, SmtpTls};
pub use crate::pipeline::codec::Compression;
pub use crate::pipeline::crypt::{AgeConfig, EncryptionConfig};
pub use crate::storage::StorageConfig;
pub use crate::util::problem::Problem;
pub use crate::util::secret::secret_from;
pub use schema::{HookArg, RawHooks as Hooks};
pub use validate::is_plain_name;

use crate::util::exit::Failure;

/// The config file name looked for in the current folder.
pub const LOCAL_NAME: &str = "dbkeep.yaml";
/// The system-wide config file.
pub const SYSTEM_PATH: &str = "/etc/dbkeep/config.yaml";

/// The effective configuration: validated, defaults applied.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    /// Named storages.
    pub storages: BTreeMap<String, StorageConfig>,
    /// Named jobs.
    pub jobs: BTreeMap<String, Job>,
    /// Named notifiers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub notifiers: BTreeMap<String, NotifierConfig>,
    /// Hooks around every job.
    pub hooks: Hooks,
    /// Metrics output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// The `schedule run` daemon.
    pub scheduler: Scheduler,
    /// Job locks.
    pub lock: LockSettings,
    /// The manifest signing key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningConfig>,
    /// How many jobs run at once.
    pub limits: Limits,
}

/// How many jobs run at once, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Jobs of one `dbkeep backup` at the same time.
    pub concurrency: usize,
    /// Jobs against one server at the same time (`None`: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_host: Option<usize>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            concurrency: 1,
            per_host: None,
        }
    }
}

/// Settings of the `schedule run` daemon, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Scheduler {
    /// Jobs that may run at once.
    pub max_concurrent_jobs: usize,
    /// How long running jobs get to finish after SIGTERM.
    #[serde(serialize_with = "crate::util::duration::serialize")]
    pub shutdown_grace: std::time::Duration,
}

impl Default for Scheduler {
    fn default() -> Scheduler {
        Scheduler {
            max_concurrent_jobs: 1,
            shutdown_grace: std::time::Duration::from_secs(300),
        }
    }
}

/// Job lock settings, validated.
#[derive(Debug, Clone, Serialize)]
pub struct LockSettings {
    /// A lock older than this (not refreshed) is stale.
    #[serde(serialize_with = "crate::util::duration::serialize")]
    pub stale_after: std::time::Duration,
}

impl Default for LockSettings {
    fn default() -> LockSettings {
        LockSettings {
            stale_after: std::time::Duration::from_secs(900),
        }
    }
}

/// A job, validated, with inherited defaults applied.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The database to back up.
    pub source: SourceConfig,
    /// Names of the storages the dump goes to.
    pub storage: Vec<String>,
    /// Compression.
    pub compression: Compression,
    /// Compression level.
    pub compression_level: i32,
    /// zstd worker threads (0: one per core, at most 4).
    pub compression_threads: u32,
    /// Folder for temp files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temp_dir: Option<PathBuf>,
    /// Notifiers this job reports to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// Hooks around this job.
    pub hooks: Hooks,
    /// age encryption of the stored objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<AgeConfig>,
    /// When `schedule run` runs it.
    #[serde(
        serialize_with = "serialize_cron",
        skip_serializing_if = "Option::is_none"
    )]
    pub schedule: Option<crate::schedule::Cron>,
    /// When `schedule run` archives the source's binlogs (`binlog: true`).
    #[serde(
        serialize_with = "serialize_cron",
        skip_serializing_if = "Option::is_none"
    )]
    pub binlog_schedule: Option<crate::schedule::Cron>,
    /// Time zone of the schedule and of retention buckets.
    #[serde(serialize_with = "serialize_tz")]
    pub timezone: chrono_tz::Tz,
    /// Run a missed scheduled backup at daemon start.
    pub catch_up: bool,
    /// The longest the backup may run.
    #[serde(
        serialize_with = "crate::util::duration::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_runtime: Option<std::time::Duration>,
    /// Which backups to keep.
    pub retention: Retention,
    /// The manifest signing key (the config's top-level `signing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningConfig>,
}

fn serialize_cron<S: serde::Serializer>(
    c: &Option<crate::schedule::Cron>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => s.serialize_str(c.text()),
        None => s.serialize_none(),
    }
}

fn serialize_tz<S: serde::Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

impl Job {
    /// A job with no notifiers or hooks.
    pub fn new(source: SourceConfig, storage: Vec<String>, compression: Compression) -> Job {
        Job {
            source,
            storage,
            compression,
            compression_level: compression.default_level(),
            compression_threads: 0,
            temp_dir: None,
            notify: Vec::new(),
            hooks: Hooks::default(),
            encryption: None,
            schedule: None,
            binlog_schedule: None,
            timezone: chrono_tz::Tz::UTC,
            catch_up: false,
            max_runtime: None,
            retention: Retention::default(),
            signing: None,
        }
    }
}

/// A config that failed validation: every problem, each with its YAML path.
#[derive(Debug)]
pub struct Invalid {
    /// The file that was read.
    pub file: PathBuf,
    /// What is wrong.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "config file {} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        write!(
            f,
            "see config.example.yaml or `dbkeep config init` for every key"
        )
    }
}

impl std::error::Error for Invalid {}

/// The JSON Schema of the config file (for editors and CI checks).
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(schema::RawConfig);
    schema.insert("title".into(), "dbkeep configuration".into());
    serde_json::to_value(schema).unwrap_or_default()
}

/// Finds the config file: the explicit one, else `./dbkeep.yaml`, the user
/// config dir's `dbkeep/config.yaml`, then `/etc/dbkeep/config.yaml`.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            return Err(Failure::Config(format!(
                "config file {} does not exist; create it with `dbkeep config init {}`",
                path.display(),
                path.display()
            ))
            .into());
        }
        return Ok(path.to_path_buf());
    }
    let candidates = search_path();
    for c in &candidates {
        if !c.is_file() {
            continue;
        }
        // `./dbkeep.yaml` is whatever the current folder holds: only one
        // that this user owns and nobody else can change is used.
        if c.as_os_str() == LOCAL_NAME
            && let Some(why) = untrusted_file(c)
        {
            tracing::warn!(file = %c.display(), problem = why, "skipping a config file; pass `-c FILE` to use it");
            continue;
        }
        return Ok(c.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(Failure::Config(format!(
        "no config file found (looked for {}); pass `-c FILE`, set DBKEEP_CONFIG, or create one with `dbkeep config init`",
        looked.join(", ")
    ))
    .into())
}

/// Why a file found by searching is not to be trusted, if it is not.
fn untrusted_file(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        Some("it is owned by another user")
    } else if meta.mode() & 0o022 != 0 {
        Some("other users can write it")
    } else {
        None
    }
}

/// The places searched for a config file, in order.
pub fn search_path() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from(LOCAL_NAME)];
    if let Some(dir) = dirs::config_dir() {
        paths.push(dir.join("dbkeep").join("config.yaml"));
    }
    paths.push(PathBuf::from(SYSTEM_PATH));
    paths
}

/// Reads, layers and validates the config at `path`.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))
        .map_err(|e| Failure::Config(format!("{e:#}")))?;
    load_str(&text, path)
}

/// Validates config text; `path` is only used in messages.
pub fn load_str(text: &str, path: &Path) -> anyhow::Result<Config> {
    let mut figment = Figment::new();
    if !text.trim().is_empty() {
        figment = figment.merge(yaml::Yaml::string(text));
    }
    // Not config keys: dbkeep's own settings, and what hooks are given.
    let not_keys = [
        "config",
        "log",
        "log_format",
        "job",
        "age_passphrase",
        "progress_interval",
        "status",
        "backup_id",
        "size",
        "duration",
        "error",
        // The fault injection of debug builds (`crate::util::debug_panic`).
        "debug_panic",
    ];
    figment = figment.merge(Env::prefixed("DBKEEP_").split("__").ignore(&not_keys));
    let value: figment::value::Value = figment.extract().map_err(|e| Invalid {
        file: path.to_path_buf(),
        problems: vec![Problem::new(
            ".",
            crate::util::secret::redact(&e.to_string()),
        )],
    })?;
    let json = serde_json::to_value(&value).context("config values are not representable")?;
    validate::validate(json).map_err(|problems| {
        Invalid {
            file: path.to_path_buf(),
            problems,
        }
        .into()
    })
}
