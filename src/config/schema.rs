//! The config file as written: serde types with `deny_unknown_fields`.
//!
//! These "raw" types say what may be written; [`super::validate`] turns them
//! into the effective [`super::Config`]. Every field's `///` doc is its entry in
//! the config reference.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::manifest::SigningConfig;
use crate::catalog::retention::RetentionConfig;
use crate::connector::SourceConfig;
use crate::notify::NotifierConfig;
use crate::notify::metrics::MetricsConfig;
use crate::pipeline::codec::Compression;
use crate::pipeline::crypt::EncryptionConfig;
use crate::storage::StorageConfig;
use crate::util::secret::Secret;

/// The whole config file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Settings that every job inherits unless it sets its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Named storages that jobs write to.
    #[serde(default)]
    pub storages: BTreeMap<String, StorageConfig>,
    /// Named backup jobs.
    #[serde(default)]
    pub jobs: BTreeMap<String, RawJob>,
    /// Named notifiers that jobs refer to in `notify:`.
    #[serde(default)]
    pub notifiers: BTreeMap<String, NotifierConfig>,
    /// Commands run around every job (job hooks run inside these).
    #[serde(default)]
    pub hooks: RawHooks,
    /// Prometheus metrics written after each job.
    pub metrics: Option<MetricsConfig>,
    /// `dbkeep schedule run`: how many jobs at once, and how it stops.
    #[serde(default)]
    pub scheduler: RawScheduler,
    /// The per-job lock that keeps two runs of a job apart.
    #[serde(default)]
    pub lock: RawLock,
    /// Authenticate every manifest with HMAC-SHA256, so that whoever can
    /// write a storage cannot forge or alter a backup record unnoticed.
    pub signing: Option<SigningConfig>,
}

/// Settings of the `dbkeep schedule run` daemon.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScheduler {
    /// Jobs that may run at the same time (default 1). A job never overlaps itself.
    pub max_concurrent_jobs: Option<u32>,
    /// On SIGTERM, how long running jobs may take to finish before they are
    /// stopped (default `5m`). A duration: `90s`, `15m`, `1h`.
    pub shutdown_grace: Option<String>,
}

/// The job lock: an object `<prefix>/<job>/lock.json` in each of the job's storages.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLock {
    /// A lock not refreshed for this long belongs to a dead run and is taken
    /// over (default `15m`; a live run refreshes its lock every third of it).
    pub stale_after: Option<String>,
}

/// Commands run around a job. Each is an argv list, run without a shell
/// (write `[sh, -c, "..."]` for one).
#[derive(Debug, Default, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHooks {
    /// Before the dump; a failure fails the job and nothing is dumped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<Vec<HookArg>>,
    /// After a successful backup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Vec<HookArg>>,
    /// After a failed backup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<Vec<HookArg>>,
    /// Last, whatever happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<Vec<HookArg>>,
    /// Seconds a hook may run before it is stopped (default 300).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Names of variables of dbkeep's own environment to pass to these hooks.
    /// Hooks otherwise see only `PATH`, `HOME`, `USER`, `LOGNAME`, `SHELL`,
    /// `LANG`, `LC_*`, `TZ`, `TMPDIR` and the `DBKEEP_*` job variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_env: Vec<String>,
    /// Variables to set for these hooks (plain values, shown by `config show`:
    /// pass secrets with `pass_env` instead).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
}

/// One argument of a hook: a string, or `{ secret: VALUE }` for a value
/// that `config show`, logs and error messages never print.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HookArg {
    /// A plain argument.
    Plain(String),
    /// A secret argument.
    Secret {
        /// The value.
        secret: Secret,
    },
}

impl HookArg {
    /// The value handed to the hook.
    pub fn value(&self) -> &str {
        match self {
            HookArg::Plain(s) => s,
            HookArg::Secret { secret } => secret.expose(),
        }
    }

    /// The argument as messages show it.
    pub fn shown(&self) -> &str {
        match self {
            HookArg::Plain(s) => s,
            HookArg::Secret { .. } => crate::util::secret::REDACTED,
        }
    }
}

/// Job settings inherited by every job.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Storage name, or list of names, a job writes to.
    pub storage: Option<Names>,
    /// Compression of the dump: `zstd` (default), `gzip` or `none`.
    pub compression: Option<Compression>,
    /// Compression level: zstd 1..=19 (default 3), gzip 1..=9 (default 6).
    pub compression_level: Option<i32>,
    /// zstd worker threads; 0 picks one per core (at most 4).
    pub compression_threads: Option<u32>,
    /// Folder for the few temp files dbkeep needs (SQLite copies); default: the system's.
    pub temp_dir: Option<PathBuf>,
    /// Notifier names every job reports to (unless it sets `notify`).
    pub notify: Option<Names>,
    /// Encryption every job uses (unless it sets its own).
    pub encryption: Option<EncryptionConfig>,
    /// IANA time zone of schedules and retention buckets (default `UTC`).
    pub timezone: Option<String>,
    /// Retention every job uses (unless it sets its own).
    pub retention: Option<RetentionConfig>,
    /// Run a missed scheduled backup once when `schedule run` starts.
    pub catch_up: Option<bool>,
    /// The longest a job's backup may run (`2h`); past it the dump is stopped
    /// and the job fails, leaving nothing behind. Default: no limit.
    pub max_runtime: Option<String>,
    /// Jobs of one `dbkeep backup` run at the same time (default 1; `--jobs N`).
    pub concurrency: Option<u32>,
    /// Jobs against one server (host and port) at the same time, in
    /// `dbkeep backup` and `schedule run` (default: no limit).
    pub per_host: Option<u32>,
}

/// One backup job: a source, the storages it goes to, and how it is packed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    /// The database to back up.
    pub source: SourceConfig,
    /// Storage name, or list of names; default: `defaults.storage`, or the only storage.
    pub storage: Option<Names>,
    /// Overrides `defaults.compression`.
    pub compression: Option<Compression>,
    /// Overrides `defaults.compression_level`.
    pub compression_level: Option<i32>,
    /// Overrides `defaults.compression_threads`.
    pub compression_threads: Option<u32>,
    /// Notifier names this job reports to; overrides `defaults.notify`.
    pub notify: Option<Names>,
    /// Commands run around this job (inside the global `hooks`).
    #[serde(default)]
    pub hooks: RawHooks,
    /// Encrypts the stored objects; overrides `defaults.encryption`.
    pub encryption: Option<EncryptionConfig>,
    /// When `dbkeep schedule run` runs the job: a cron expression
    /// (`min hour day month weekday`, optional leading seconds; `@daily`, `@hourly`).
    pub schedule: Option<String>,
    /// When `dbkeep schedule run` archives the binlogs of a `binlog: true`
    /// source (`dbkeep binlog pull`), e.g. `* * * * *` for every minute.
    pub binlog_schedule: Option<String>,
    /// IANA time zone of `schedule` and of retention buckets; overrides `defaults.timezone`.
    pub timezone: Option<String>,
    /// With `schedule run`: if no backup exists since the last scheduled time
    /// (read from the storage's newest manifest), run once at start.
    pub catch_up: Option<bool>,
    /// Overrides `defaults.max_runtime`.
    pub max_runtime: Option<String>,
    /// Which backups to keep after a successful backup; overrides `defaults.retention`.
    pub retention: Option<RetentionConfig>,
}

/// One name or a list of names (`storage: local` or `storage: [local, offsite]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names(pub Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Names, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a storage name or a list of storage names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Names, E> {
                Ok(Names(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Names(names))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Names {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Names".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One name, or a list of names.",
            "oneOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }]
        })
    }
}
