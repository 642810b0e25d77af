//! What a job backs up: the `source:` of a job, one struct per `type`, and
//! the rules every server source shares (logins, database lists).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Engine;
pub use super::mongodb::MongoConfig;
pub use super::redis::RedisConfig;
pub use super::sqlite::SqliteConfig;
use crate::util::problem::{Problems, variant};
use crate::util::secret::Secret;

/// The database a job backs up. Its `type` decides which keys apply.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
// One per job: its size does not matter, and boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum SourceConfig {
    /// PostgreSQL, through pg_dump / pg_restore / psql.
    Postgres(ServerConfig),
    /// MySQL, through mysqldump / mysql (or the MariaDB tools).
    Mysql(ServerConfig),
    /// MariaDB, through mariadb-dump / mariadb (or the MySQL tools).
    Mariadb(ServerConfig),
    /// SQLite, through its online backup API.
    Sqlite(SqliteConfig),
    /// MongoDB, through mongodump / mongorestore.
    Mongodb(MongoConfig),
    /// Redis, through its protocol (SCAN, DUMP, RESTORE).
    Redis(RedisConfig),
}

/// The `type`s of a source, for the config validation.
pub const TYPES: &[crate::util::problem::Variant] = &[
    variant!("postgres", ServerConfig),
    variant!("mysql", ServerConfig),
    variant!("mariadb", ServerConfig),
    variant!("sqlite", SqliteConfig),
    variant!("mongodb", MongoConfig),
    variant!("redis", RedisConfig),
];

impl SourceConfig {
    /// Whether this is a MariaDB/MySQL source with `binlog: true`.
    pub fn has_binlog(&self) -> bool {
        matches!(self, SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) if s.binlog)
    }

    /// Whether this is a PostgreSQL source with `method: physical`.
    pub fn is_physical(&self) -> bool {
        matches!(self, SourceConfig::Postgres(s) if s.method == Method::Physical)
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        match self {
            SourceConfig::Postgres(_) => Engine::Postgres,
            SourceConfig::Mysql(_) => Engine::Mysql,
            SourceConfig::Mariadb(_) => Engine::Mariadb,
            SourceConfig::Sqlite(_) => Engine::Sqlite,
            SourceConfig::Mongodb(_) => Engine::Mongodb,
            SourceConfig::Redis(_) => Engine::Redis,
        }
    }

    /// The databases of a server source (`None` for a SQLite file).
    pub fn databases(&self) -> Option<&Databases> {
        match self {
            SourceConfig::Postgres(s) | SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) => {
                Some(s.databases())
            }
            SourceConfig::Sqlite(_) => None,
            SourceConfig::Mongodb(s) => Some(s.databases()),
            SourceConfig::Redis(s) => Some(s.databases()),
        }
    }

    /// The folder of the client tools, for engines that use them.
    pub fn bin_dir(&self) -> Option<PathBuf> {
        match self {
            SourceConfig::Postgres(s) | SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) => {
                s.bin_dir.clone()
            }
            SourceConfig::Mongodb(s) => s.bin_dir.clone(),
            SourceConfig::Sqlite(_) | SourceConfig::Redis(_) => None,
        }
    }

    /// Which server a source reaches, for limits on jobs per server:
    /// `engine://host:port` (through the SSH server, when tunnelled);
    /// `None` for a SQLite file.
    pub fn server(&self) -> Option<String> {
        let (host, port, ssh) = match self {
            SourceConfig::Postgres(s) | SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) => {
                (&s.host, s.port, &s.ssh)
            }
            SourceConfig::Mongodb(s) if s.uri.is_some() || s.uri_file.is_some() => {
                return Some(format!(
                    "mongodb uri {}",
                    s.uri_file
                        .as_ref()
                        .map(|f| f.display().to_string())
                        .unwrap_or_default()
                ));
            }
            SourceConfig::Mongodb(s) => (&s.host, s.port, &s.ssh),
            SourceConfig::Redis(s) => (&s.host, s.port, &s.ssh),
            SourceConfig::Sqlite(_) => return None,
        };
        let via = ssh
            .as_ref()
            .map(|s| format!(" via {}", s.describe()))
            .unwrap_or_default();
        Some(format!(
            "{}://{}:{}{via}",
            self.engine(),
            host.as_deref().unwrap_or("localhost"),
            port.unwrap_or(self.engine().default_port())
        ))
    }

    /// Where the source is, for messages: no password, no connection string.
    pub fn describe(&self) -> String {
        let (at, ssh) = match self {
            SourceConfig::Postgres(s) | SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) => {
                (s.describe(self.engine()), &s.ssh)
            }
            SourceConfig::Sqlite(s) => return s.path.display().to_string(),
            SourceConfig::Mongodb(s) => (s.describe(), &s.ssh),
            SourceConfig::Redis(s) => (
                describe(Engine::Redis, s.user.as_deref(), s.host.as_deref(), s.port),
                &s.ssh,
            ),
        };
        match ssh {
            Some(ssh) => format!("{at} via ssh {}", ssh.describe()),
            None => at,
        }
    }

    /// The SSH tunnel a source asks for: its settings, and the server's
    /// host and port as the SSH server sees them.
    pub fn tunnel(&self) -> Option<(&super::tunnel::SshConfig, String, u16)> {
        let (ssh, host, port) = match self {
            SourceConfig::Postgres(s) | SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) => {
                (s.ssh.as_ref()?, &s.host, s.port)
            }
            SourceConfig::Mongodb(s) => (s.ssh.as_ref()?, &s.host, s.port),
            SourceConfig::Redis(s) => (s.ssh.as_ref()?, &s.host, s.port),
            SourceConfig::Sqlite(_) => return None,
        };
        let host = host.clone().unwrap_or_else(|| "127.0.0.1".to_string());
        Some((ssh, host, port.unwrap_or(self.engine().default_port())))
    }

    /// This source reached at `127.0.0.1:port` instead (the local end of a tunnel).
    pub fn through(&self, port: u16) -> SourceConfig {
        let mut local = self.clone();
        let set = |host: &mut Option<String>, p: &mut Option<u16>| {
            *host = Some("127.0.0.1".to_string());
            *p = Some(port);
        };
        match &mut local {
            SourceConfig::Postgres(s) | SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) => {
                set(&mut s.host, &mut s.port);
                s.ssh = None;
            }
            SourceConfig::Mongodb(s) => {
                set(&mut s.host, &mut s.port);
                s.ssh = None;
            }
            SourceConfig::Redis(s) => {
                set(&mut s.host, &mut s.port);
                s.ssh = None;
            }
            SourceConfig::Sqlite(_) => {}
        }
        local
    }

    /// Checks the rules that span keys, and folds `database` into `databases`.
    pub fn validate(&mut self, at: &str, problems: &mut Problems) {
        let engine = self.engine();
        match self {
            SourceConfig::Postgres(s) | SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) => {
                s.validate(at, engine, problems)
            }
            SourceConfig::Sqlite(_) => {}
            SourceConfig::Mongodb(s) => s.validate(at, problems),
            SourceConfig::Redis(s) => s.validate(at, problems),
        }
    }
}

/// Declares a server source: the keys every server engine shares (its
/// login and which databases to dump), then the engine's own, with the
/// accessors of the shared ones.
macro_rules! server_source {
    ($(#[$meta:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Server host name or address; default: the engine's (PGHOST or
            /// the socket for the tools, localhost, 127.0.0.1 for Redis).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub host: Option<String>,
            /// Server port; default: the engine's (5432, 3306, 27017, 6379).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub port: Option<u16>,
            /// User name; default: the engine's (PGUSER or the login name for
            /// the tools, `default` for Redis).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub user: Option<String>,
            /// Password. Prefer `password_file`; never passed on a command line.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub password: Option<$crate::util::secret::Secret>,
            /// File whose first line is the password.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub password_file: Option<std::path::PathBuf>,
            /// One database to back up (redis: a db number).
            #[serde(skip_serializing)]
            pub database: Option<$crate::connector::source::DbName>,
            /// Several databases, or `all`: every non-template (PostgreSQL),
            /// non-system (MySQL, MariaDB, MongoDB) or non-empty (Redis)
            /// database. MongoDB and Redis default to `all`.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub databases: Option<$crate::connector::source::Databases>,
            /// TLS to the server: `mode`, the CA to verify it with, and a
            /// client certificate (without it, the engine's own default).
            #[serde(
                default,
                deserialize_with = "crate::connector::source::tls_block",
                skip_serializing_if = "Option::is_none"
            )]
            pub tls: Option<$crate::connector::source::TlsConfig>,
            /// With `databases: all`: databases to leave out.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub exclude_databases: Vec<String>,
            /// Reach the server through an SSH tunnel: `host` and `port` above
            /// are then as the SSH server sees them (default 127.0.0.1).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub ssh: Option<$crate::connector::tunnel::SshConfig>,
            $($own)*
        }

        impl $name {
            /// The databases (all when none are named: validation makes
            /// sure the engines that need names have them).
            pub fn databases(&self) -> &$crate::connector::source::Databases {
                self.databases
                    .as_ref()
                    .unwrap_or(&$crate::connector::source::Databases::All)
            }

            /// The password, read from `password_file` when that is how it is given.
            pub fn password(&self) -> anyhow::Result<Option<$crate::util::secret::Secret>> {
                $crate::connector::source::password(&self.password, &self.password_file)
            }

            /// Checks the shared keys: one password, usable database names
            /// (`whole_server`: none named means all), folded into `databases`.
            fn check_shared(
                &mut self,
                at: &str,
                engine: $crate::connector::Engine,
                whole_server: bool,
                problems: &mut $crate::util::problem::Problems,
            ) {
                if let Some(tls) = &self.tls {
                    tls.validate(at, engine, problems);
                }
                if let Some(ssh) = &self.ssh {
                    ssh.validate(at, problems);
                }
                if !self.exclude_databases.is_empty()
                    && (self.database.is_some()
                        || matches!(
                            self.databases,
                            Some($crate::connector::source::Databases::List(_))
                        ))
                {
                    problems.add(
                        format!("{at}.exclude_databases"),
                        "`exclude_databases` goes with `databases: all`; leave the databases out of the list instead",
                    );
                }
                problems.not_both(
                    at,
                    "password",
                    self.password.is_some(),
                    self.password_file.is_some(),
                );
                self.databases = $crate::connector::source::databases(
                    at,
                    self.database.take(),
                    self.databases.take(),
                    whole_server,
                    problems,
                );
            }
        }
    };
}
pub(super) use server_source;

server_source! {
    /// `type: postgres`, `mysql` or `mariadb`: a server reached through its
    /// client tools.
    pub struct ServerConfig {
        /// Folder holding the client tools (pg_dump, mariadb-dump, ...); default: PATH.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub bin_dir: Option<PathBuf>,
        /// How long a dump or a restore may wait for a table lock before it
        /// fails, rather than hang while the job's lock is held (default `5m`;
        /// `0s` waits forever). mariadb-dump and mysqldump cannot set it, so for
        /// MariaDB and MySQL it bounds restores only.
        #[serde(serialize_with = "effective_wait")]
        pub lock_wait_timeout: Option<Wait>,
        /// Tables to leave out whole: pg_dump `--exclude-table` patterns
        /// (`schema.table`, `*` allowed); for MySQL/MariaDB `table` or `db.table`
        /// (`--ignore-table`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub exclude_tables: Vec<String>,
        /// Tables whose definition is kept but whose rows are left out
        /// (pg_dump `--exclude-table-data`, mariadb-dump `--ignore-table-data`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub exclude_table_data: Vec<String>,
        /// Dump definitions only, no rows.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub schema_only: bool,
        /// Extra arguments for the dump tool (long options only, e.g.
        /// `--exclude-schema=audit`); none may name a file, a password or the connection.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub dump_args: Vec<String>,
        /// Extra arguments for the restore tool, with the same rules.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub restore_args: Vec<String>,
        /// PostgreSQL: `logical` (pg_dump, the default) or `physical`: base
        /// backups of the whole cluster with `pg_basebackup`, which with the
        /// job's WAL archive (`dbkeep wal push` as `archive_command`) restore
        /// to any point in time.
        #[serde(default, skip_serializing_if = "Method::is_logical")]
        pub method: Method,
        /// `physical`: how long a base backup waits for the WAL it needs to
        /// reach the archive before it fails (default `2m`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub wal_wait: Option<Wait>,
        /// MariaDB/MySQL: record each dump's binlog position
        /// (`--master-data=2`), so that `dbkeep binlog pull` archives and a
        /// restore replays the binary logs to a point in time. The server
        /// needs `log_bin`; the user RELOAD and BINLOG MONITOR (REPLICATION
        /// CLIENT) privileges, and REPLICATION SLAVE for `binlog pull`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub binlog: bool,
    }
}

/// How a PostgreSQL source is backed up (`method:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// `pg_dump` of each database.
    #[default]
    Logical,
    /// `pg_basebackup` of the cluster, for point-in-time recovery.
    Physical,
}

impl Method {
    fn is_logical(&self) -> bool {
        *self == Method::Logical
    }
}

/// How long a base backup waits for its WAL by default.
pub const WAL_WAIT: Duration = Duration::from_secs(120);

/// Why an extra tool argument is refused, if it is: only long options, and
/// none that names a file or folder, carries a secret, or changes where the
/// tool connects or writes.
pub fn refused_arg(arg: &str) -> Option<&'static str> {
    let Some(name) = arg.strip_prefix("--") else {
        return Some("only long options (`--name` or `--name=value`) are accepted");
    };
    let name = name
        .split('=')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Some("not an option name");
    }
    // Whole words of the option's name: `--result-file`, `--username`,
    // `--defaults-extra-file`, `--sslmode`; `--tab` is mysqldump's output folder.
    const NOT: [&str; 18] = [
        "file", "dir", "output", "result", "format", "pass", "pwd", "secret", "key", "host",
        "port", "user", "socket", "dbname", "defaults", "ssl", "tls", "plugin",
    ];
    if name
        .split('-')
        .any(|word| word == "tab" || NOT.iter().any(|n| word.contains(n)))
    {
        return Some("dbkeep sets where the tool connects and writes, and passes secrets itself");
    }
    None
}

impl ServerConfig {
    /// A source of these databases, the rest left to the tools' defaults.
    pub fn new(databases: Databases) -> ServerConfig {
        ServerConfig {
            databases: Some(databases),
            ..ServerConfig::default()
        }
    }

    /// The longest wait for a table lock (`None`: forever).
    pub fn lock_wait_timeout(&self) -> Option<Duration> {
        let wait = self.lock_wait_timeout.map_or(LOCK_WAIT_TIMEOUT, |w| w.0);
        (!wait.is_zero()).then_some(wait)
    }

    /// A short description for messages: `postgres://user@host:port`.
    pub fn describe(&self, engine: Engine) -> String {
        describe(
            engine,
            self.user.as_deref(),
            self.host.as_deref(),
            self.port,
        )
    }

    fn validate(&mut self, at: &str, engine: Engine, problems: &mut Problems) {
        if self.method == Method::Physical {
            if engine != Engine::Postgres {
                problems.add(
                    format!("{at}.method"),
                    "`physical` is for PostgreSQL sources; MariaDB and MySQL use `binlog` archiving",
                );
            }
            let logical_only = [
                ("exclude_tables", !self.exclude_tables.is_empty()),
                ("exclude_table_data", !self.exclude_table_data.is_empty()),
                ("exclude_databases", !self.exclude_databases.is_empty()),
                ("schema_only", self.schema_only),
                ("dump_args", !self.dump_args.is_empty()),
                ("restore_args", !self.restore_args.is_empty()),
                (
                    "databases",
                    matches!(self.databases, Some(Databases::List(_))),
                ),
            ];
            for (key, set) in logical_only {
                if set {
                    problems.add(
                        format!("{at}.{key}"),
                        "a `physical` backup copies the whole cluster: this key applies to `logical` backups only",
                    );
                }
            }
        } else if self.binlog && !matches!(engine, Engine::Mysql | Engine::Mariadb) {
            problems.add(
                format!("{at}.binlog"),
                "`binlog` is for MariaDB and MySQL sources; PostgreSQL uses `method: physical`",
            );
        } else if self.wal_wait.is_some() {
            problems.add(
                format!("{at}.wal_wait"),
                "`wal_wait` applies to `method: physical` only",
            );
        }
        self.check_shared(at, engine, false, problems);
        for (key, args) in [
            ("dump_args", &self.dump_args),
            ("restore_args", &self.restore_args),
        ] {
            for (i, arg) in args.iter().enumerate() {
                if let Some(why) = refused_arg(arg) {
                    problems.add(
                        format!("{at}.{key}[{i}]"),
                        format!("`{arg}` is refused: {why}"),
                    );
                }
            }
        }
        for (key, list) in [
            ("exclude_tables", &self.exclude_tables),
            ("exclude_table_data", &self.exclude_table_data),
            ("exclude_databases", &self.exclude_databases),
        ] {
            for (i, name) in list.iter().enumerate() {
                if name.is_empty() || name.starts_with('-') || name.contains('\0') {
                    problems.add(
                        format!("{at}.{key}[{i}]"),
                        format!("`{name}` is not a usable name"),
                    );
                }
            }
        }
    }
}

/// `config show` prints the wait that applies, the default included.
fn effective_wait<S: Serializer>(wait: &Option<Wait>, s: S) -> Result<S::Ok, S::Error> {
    crate::util::duration::serialize(&wait.map_or(LOCK_WAIT_TIMEOUT, |w| w.0), s)
}

/// How a connection is secured, as libpq names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, else plain (PostgreSQL, MySQL/MariaDB only).
    Prefer,
    /// TLS, without checking who the server is.
    Require,
    /// TLS with a server certificate signed by a trusted CA.
    VerifyCa,
    /// TLS with a trusted certificate whose name is the host's (the default).
    #[default]
    VerifyFull,
}

impl TlsMode {
    /// The name as written in the config (libpq's `sslmode` values).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate chain is checked.
    pub fn verifies(self) -> bool {
        matches!(self, TlsMode::VerifyCa | TlsMode::VerifyFull)
    }
}

/// The `tls:` block of a network source: the same shape for every engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full` (the default).
    #[serde(default)]
    pub mode: TlsMode,
    /// CA certificate file (PEM) to verify the server with; default: the system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for servers that authenticate clients by
    /// certificate. MongoDB: a file holding the certificate and its key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// PostgreSQL: a certificate revocation list (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_file: Option<PathBuf>,
}

impl TlsConfig {
    /// The rules every engine shares, and which modes and keys `engine` has.
    pub(super) fn validate(&self, at: &str, engine: Engine, problems: &mut Problems) {
        let at = format!("{at}.tls");
        if self.cert_file.is_some() != self.key_file.is_some() && engine != Engine::Mongodb {
            problems.add(
                format!("{at}.cert_file"),
                "give both `cert_file` and `key_file`, or neither",
            );
        }
        if engine == Engine::Mongodb && self.key_file.is_some() {
            problems.add(
                format!("{at}.key_file"),
                "MongoDB's tools read the client key from `cert_file`, which must hold the certificate and its key",
            );
        }
        if self.crl_file.is_some() && engine != Engine::Postgres {
            problems.add(
                format!("{at}.crl_file"),
                format!("`crl_file` does not apply to `type: {engine}`"),
            );
        }
        if self.mode == TlsMode::Prefer && matches!(engine, Engine::Mongodb | Engine::Redis) {
            problems.add(
                format!("{at}.mode"),
                format!("{engine} cannot fall back to a plain connection: use `disable`, `require`, `verify-ca` or `verify-full`"),
            );
        }
        if self.mode == TlsMode::Disable && (self.ca_file.is_some() || self.cert_file.is_some()) {
            problems.add(
                format!("{at}.mode"),
                "`mode: disable` uses no certificates; remove them or pick another mode",
            );
        }
    }
}

/// Reads a `tls:` block; the old `tls: true` gets a message naming the new shape.
pub fn tls_block<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TlsConfig>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<TlsConfig>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a `tls:` block, e.g. `{ mode: verify-full, ca_file: /etc/ssl/db-ca.pem }`")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<TlsConfig>, E> {
            Err(E::custom(format!(
                "`tls: {v}` is now a block: write `tls: {{ mode: {} }}` (with `ca_file: PATH` for a private CA; `tls_ca_file` moved to `tls.ca_file`)",
                if v { "verify-full" } else { "disable" }
            )))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<TlsConfig>, E> {
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Option<TlsConfig>, A::Error> {
            TlsConfig::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(V)
}

/// Keys that moved, with where they went, for messages.
pub const MOVED: &[(&str, &str)] = &[("tls_ca_file", "tls.ca_file")];

/// The default `lock_wait_timeout`.
pub const LOCK_WAIT_TIMEOUT: Duration = Duration::from_secs(300);

/// A duration written as text (`90s`, `5m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Wait, D::Error> {
        let text = String::deserialize(d)?;
        crate::util::duration::parse(&text)
            .map(Wait)
            .map_err(de::Error::custom)
    }
}

impl Serialize for Wait {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::util::duration::serialize(&self.0, s)
    }
}

impl JsonSchema for Wait {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "description": "A duration: `90s`, `15m`, `1h30m`.", "type": "string" })
    }
}

/// A password given inline or as the first line of a file (kept whole:
/// spaces at its end are part of it).
pub fn password(inline: &Option<Secret>, file: &Option<PathBuf>) -> anyhow::Result<Option<Secret>> {
    if let Some(p) = inline {
        return Ok(Some(p.clone()));
    }
    let Some(file) = file else {
        return Ok(None);
    };
    let text = anyhow::Context::with_context(std::fs::read_to_string(file), || {
        format!(
            "cannot read `password_file` {}: check the path and its permissions",
            file.display()
        )
    })?;
    Ok(Some(Secret::new(text.lines().next().unwrap_or(""))))
}

/// `engine://user@host:port`, for messages.
pub fn describe(
    engine: Engine,
    user: Option<&str>,
    host: Option<&str>,
    port: Option<u16>,
) -> String {
    let mut s = format!("{engine}://");
    if let Some(u) = user {
        s.push_str(u);
        s.push('@');
    }
    s.push_str(host.unwrap_or("(default host)"));
    if let Some(p) = port {
        s.push_str(&format!(":{p}"));
    }
    s
}

/// The databases a server source names: `database` or `databases`, not
/// both, each name usable as a dump tool argument and given once. With
/// neither, a whole server when `whole_server` (MongoDB, Redis), else a problem.
pub(super) fn databases(
    at: &str,
    database: Option<DbName>,
    databases: Option<Databases>,
    whole_server: bool,
    problems: &mut Problems,
) -> Option<Databases> {
    let single = database.is_some();
    let list = match (database, databases) {
        (Some(_), Some(_)) => {
            problems.add(
                format!("{at}.databases"),
                "give `database` or `databases`, not both",
            );
            return None;
        }
        (Some(db), None) => Databases::List(vec![db.0]),
        (None, Some(Databases::List(list))) if list.is_empty() => {
            problems.add(format!("{at}.databases"), "the list of databases is empty");
            return None;
        }
        (None, Some(d)) => d,
        (None, None) if whole_server => Databases::All,
        (None, None) => {
            problems.add(
                format!("{at}.database"),
                "missing required key: set `database: NAME` or `databases: [a, b]` or `databases: all`",
            );
            return None;
        }
    };
    if let Databases::List(names) = &list {
        let mut seen = std::collections::BTreeSet::new();
        for (i, db) in names.iter().enumerate() {
            let at_db = if single {
                format!("{at}.database")
            } else {
                format!("{at}.databases[{i}]")
            };
            if db.is_empty() || db.contains('/') || db.contains('\0') {
                problems.add(
                    at_db.clone(),
                    format!("`{db}` is not a usable database name"),
                );
            } else if db.starts_with('-') {
                problems.add(
                    at_db.clone(),
                    format!(
                        "database name `{db}` starts with `-`, which dump tools could read as an option; rename the database"
                    ),
                );
            }
            if !seen.insert(db.clone()) {
                problems.add(at_db, format!("database `{db}` is listed twice"));
            }
        }
    }
    Some(list)
}

/// Which databases of a server to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Databases {
    /// Every database (PostgreSQL: non-template; MySQL: non-system).
    All,
    /// These databases.
    List(Vec<String>),
}

impl Serialize for Databases {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Databases::All => s.serialize_str("all"),
            Databases::List(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Databases {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Databases, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Databases;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of database names, or `all`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Databases, E> {
                if v == "all" {
                    Ok(Databases::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Databases, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<DbName>()? {
                    names.push(name.0);
                }
                Ok(Databases::List(names))
            }
        }
        d.deserialize_any(V)
    }
}

/// A database name; a number is accepted too (Redis db numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbName(pub String);

impl<'de> Deserialize<'de> for DbName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DbName, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DbName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a database name or number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DbName, E> {
                Ok(DbName(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DbName, E> {
                Ok(DbName(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DbName, E> {
                Ok(DbName(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Databases {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Databases".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A list of database names (numbers for redis), or `all`.",
            "oneOf": [
                { "const": "all" },
                { "type": "array", "items": { "type": ["string", "integer"] } }
            ]
        })
    }
}

impl JsonSchema for DbName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DbName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "description": "A database name (a number for redis).", "type": ["string", "integer"] })
    }
}
