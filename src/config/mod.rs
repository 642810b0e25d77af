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

pub use schema::RawStorage as StorageSettings;
pub use schema::{
    Compression, Databases, Engine, HookArg, NotifierKind, NotifyOn, RawAge as AgeConfig,
    RawHooks as Hooks, RawMetrics as Metrics, RawSigning, SmtpTls, StorageKind,
};
pub use validate::{Problem, is_plain_name};

use crate::util::exit::Failure;
use crate::util::secret::Secret;

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
    pub signing: Option<RawSigning>,
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

/// Retention rules, validated (0 = rule unused).
#[derive(Debug, Clone, Serialize)]
pub struct Retention {
    /// The n newest.
    pub keep_last: u32,
    /// Newest per hour, n hours.
    pub keep_hourly: u32,
    /// Newest per day, n days.
    pub keep_daily: u32,
    /// Newest per ISO week, n weeks.
    pub keep_weekly: u32,
    /// Newest per month, n months.
    pub keep_monthly: u32,
    /// Newest per year, n years.
    pub keep_yearly: u32,
    /// Everything within this duration of the newest.
    #[serde(
        serialize_with = "crate::util::duration::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub keep_within: Option<std::time::Duration>,
    /// Grace period of folders without a manifest.
    #[serde(serialize_with = "crate::util::duration::serialize")]
    pub incomplete_after: std::time::Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            keep_last: 0,
            keep_hourly: 0,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
            keep_within: None,
            incomplete_after: crate::config::INCOMPLETE_AFTER,
        }
    }
}

impl Retention {
    /// Whether any keep rule is set (with none, everything is kept).
    pub fn has_rules(&self) -> bool {
        self.keep_last
            + self.keep_hourly
            + self.keep_daily
            + self.keep_weekly
            + self.keep_monthly
            + self.keep_yearly
            > 0
            || self.keep_within.is_some()
    }
}

/// A notifier, validated.
#[derive(Debug, Clone, Serialize)]
pub struct NotifierConfig {
    /// The kind.
    #[serde(rename = "type")]
    pub kind: NotifierKind,
    /// Which outcomes it reports.
    pub on: Vec<NotifyOn>,
    /// slack, webhook, healthcheck: URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// File holding the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// email: SMTP host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    /// email: SMTP port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    /// email: TLS mode.
    pub tls: SmtpTls,
    /// email: CA certificate to verify the server with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// email: user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// email: password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// email: password file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// email: From.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// email: recipients.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// email: subject template.
    pub subject: String,
    /// webhook: bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// webhook: bearer token file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// webhook: HMAC key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<Secret>,
    /// webhook: HMAC key file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret_file: Option<PathBuf>,
    /// Seconds per attempt.
    pub timeout: u64,
}

/// Reads a secret given inline or in a file (first line).
pub fn secret_from(
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
    key: &str,
) -> anyhow::Result<Option<Secret>> {
    if let Some(s) = inline {
        return Ok(Some(s.clone()));
    }
    let Some(file) = file else { return Ok(None) };
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "cannot read `{key}_file` {}: check the path and its permissions",
            file.display()
        )
    })?;
    Ok(Some(Secret::new(
        text.lines().next().unwrap_or("").trim_end(),
    )))
}

/// A storage, validated: the keys as written, with `prefix` normalized.
#[derive(Debug, Clone, Serialize)]
pub struct StorageConfig {
    /// The keys of its kind.
    #[serde(flatten)]
    pub settings: schema::RawStorage,
    /// Folder inside the storage above every job's folder ("" for none).
    #[serde(skip)]
    pub prefix: String,
}

impl StorageConfig {
    /// The storage kind.
    pub fn kind(&self) -> StorageKind {
        self.settings.kind
    }

    /// Whether a failure here fails the backup.
    pub fn required(&self) -> bool {
        self.settings.required.unwrap_or(true)
    }

    /// A local folder storage.
    pub fn local(path: PathBuf) -> StorageConfig {
        StorageConfig {
            settings: schema::RawStorage {
                kind: StorageKind::Local,
                path: Some(path),
                ..Default::default()
            },
            prefix: String::new(),
        }
    }
}

/// A job, validated, with inherited defaults applied.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The database to back up.
    pub source: Source,
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
    /// Time zone of the schedule and of retention buckets.
    #[serde(serialize_with = "serialize_tz")]
    pub timezone: chrono_tz::Tz,
    /// Run a missed scheduled backup at daemon start.
    pub catch_up: bool,
    /// Which backups to keep.
    pub retention: Retention,
    /// The manifest signing key (the config's top-level `signing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing: Option<RawSigning>,
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
    pub fn new(source: Source, storage: Vec<String>, compression: Compression) -> Job {
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
            timezone: chrono_tz::Tz::UTC,
            catch_up: false,
            retention: Retention::default(),
            signing: None,
        }
    }
}

/// What a job backs up.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
// One per job: its size does not matter, and boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    /// A database server reached through its client tools.
    Server(ServerSource),
    /// A SQLite file.
    Sqlite(SqliteSource),
}

impl Source {
    /// The engine.
    pub fn engine(&self) -> Engine {
        match self {
            Source::Server(s) => s.engine,
            Source::Sqlite(_) => Engine::Sqlite,
        }
    }
}

/// A PostgreSQL or MySQL/MariaDB server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSource {
    /// The engine.
    #[serde(rename = "type")]
    pub engine: Engine,
    /// Host; `None` leaves it to the tool (PGHOST, socket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port; `None` leaves it to the tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// User; `None` leaves it to the tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password given inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// File holding the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The databases.
    pub databases: Databases,
    /// Folder of the client tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<PathBuf>,
    /// mongodb: connection string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<Secret>,
    /// mongodb: file holding the connection string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_file: Option<PathBuf>,
    /// mongodb: authentication database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_source: Option<String>,
    /// mongodb: replica set name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_set: Option<String>,
    /// mongodb, redis: use TLS.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// mongodb, redis: CA file for TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// postgres, mysql, mariadb: the longest wait for a table lock (`None`: forever).
    #[serde(serialize_with = "crate::util::duration::serialize_opt")]
    pub lock_wait_timeout: Option<std::time::Duration>,
}

/// The default grace period for folders without a manifest.
pub const INCOMPLETE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The default `lock_wait_timeout`.
pub const LOCK_WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

impl ServerSource {
    /// The password, read from `password_file` when that is how it is given.
    pub fn password(&self) -> anyhow::Result<Option<Secret>> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        let Some(file) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file).with_context(|| {
            format!(
                "cannot read `password_file` {}: check the path and its permissions",
                file.display()
            )
        })?;
        let line = text.lines().next().unwrap_or("");
        Ok(Some(Secret::new(line)))
    }

    /// The connection string, read from `uri_file` when that is how it is given.
    pub fn uri(&self) -> anyhow::Result<Option<Secret>> {
        if let Some(u) = &self.uri {
            return Ok(Some(u.clone()));
        }
        let Some(file) = &self.uri_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file).with_context(|| {
            format!(
                "cannot read `uri_file` {}: check the path and its permissions",
                file.display()
            )
        })?;
        Ok(Some(Secret::new(text.lines().next().unwrap_or("").trim())))
    }

    /// A source with only connection fields set (the rest default).
    pub fn new(engine: Engine, databases: Databases) -> ServerSource {
        ServerSource {
            engine,
            host: None,
            port: None,
            user: None,
            password: None,
            password_file: None,
            databases,
            bin_dir: None,
            uri: None,
            uri_file: None,
            auth_source: None,
            replica_set: None,
            tls: false,
            tls_ca_file: None,
            lock_wait_timeout: Some(LOCK_WAIT_TIMEOUT),
        }
    }

    /// A short description for messages: `postgres://user@host:port`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}://", self.engine);
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(self.host.as_deref().unwrap_or("(default host)"));
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }
}

/// A SQLite database file.
#[derive(Debug, Clone, Serialize)]
pub struct SqliteSource {
    /// Always `sqlite`.
    #[serde(rename = "type")]
    pub engine: Engine,
    /// The database file.
    pub path: PathBuf,
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

/// Validates a storage given as a URL (`--to`, `--from`) by the rules of a
/// storage in the config; the message names the URL and the key.
pub fn validate_storage(text: &str, raw: &StorageSettings) -> anyhow::Result<StorageConfig> {
    let mut problems = Vec::new();
    match validate::check_storage(".", raw, &mut problems) {
        Some(c) if problems.is_empty() => Ok(c),
        _ => {
            let shown: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.path.trim_start_matches(['.']), p.message))
                .collect();
            anyhow::bail!(
                "storage `{}`: {}",
                crate::util::secret::redact(text),
                shown.join("; ")
            )
        }
    }
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
