//! The config file as written: serde types with `deny_unknown_fields`.
//!
//! These "raw" types say what may be written; [`super::validate`] turns them
//! into the effective [`super::Config`]. Every field's `///` doc is its entry in
//! the config reference.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::Secret;

/// The whole config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Settings that every job inherits unless it sets its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Named storages that jobs write to.
    #[serde(default)]
    pub storages: BTreeMap<String, RawStorage>,
    /// Named backup jobs.
    #[serde(default)]
    pub jobs: BTreeMap<String, RawJob>,
}

/// Job settings inherited by every job.
#[derive(Debug, Default, Deserialize)]
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
}

/// Where backups are kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// Storage kind: `local`.
    #[serde(rename = "type")]
    pub kind: StorageKind,
    /// local: the folder that holds the backups (created when missing).
    pub path: Option<PathBuf>,
    /// A folder inside the storage under which every job's backups go.
    pub prefix: Option<String>,
}

/// One backup job: a source, the storages it goes to, and how it is packed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    /// The database to back up.
    pub source: RawSource,
    /// Storage name, or list of names; default: `defaults.storage`, or the only storage.
    pub storage: Option<Names>,
    /// Overrides `defaults.compression`.
    pub compression: Option<Compression>,
    /// Overrides `defaults.compression_level`.
    pub compression_level: Option<i32>,
    /// Overrides `defaults.compression_threads`.
    pub compression_threads: Option<u32>,
}

/// A database connection. Which fields apply depends on `type`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Engine: `postgres`, `mysql`, `mariadb`, `sqlite`, `mongodb` or `redis`.
    #[serde(rename = "type")]
    pub engine: Engine,
    /// Server host name or address; default: the tool's own (PGHOST, socket, ...).
    pub host: Option<String>,
    /// Server port; default: the tool's own (5432, 3306).
    pub port: Option<u16>,
    /// User name; default: the tool's own (PGUSER, the login name, ...).
    pub user: Option<String>,
    /// Password. Prefer `password_file`; never passed on a command line.
    pub password: Option<Secret>,
    /// File whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// One database to back up (redis: a db number).
    pub database: Option<DbName>,
    /// Several databases, or `all` (every non-template/non-system database).
    pub databases: Option<Databases>,
    /// sqlite: the database file.
    pub path: Option<PathBuf>,
    /// mongodb: a connection string (may hold the password; never put on a command line).
    pub uri: Option<Secret>,
    /// mongodb: file whose first line is the connection string.
    pub uri_file: Option<PathBuf>,
    /// mongodb: the database that holds the user's credentials.
    pub auth_source: Option<String>,
    /// mongodb: the replica set name.
    pub replica_set: Option<String>,
    /// mongodb, redis: connect with TLS.
    pub tls: Option<bool>,
    /// mongodb, redis: CA certificate file (PEM) to verify the server with.
    pub tls_ca_file: Option<PathBuf>,
    /// Folder holding the client tools (pg_dump, mariadb-dump, ...); default: PATH.
    pub bin_dir: Option<PathBuf>,
}

/// Database engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL, through pg_dump / pg_restore / psql.
    Postgres,
    /// MySQL, through mysqldump / mysql (or the MariaDB tools).
    Mysql,
    /// MariaDB, through mariadb-dump / mariadb (or the MySQL tools).
    Mariadb,
    /// SQLite, through its online backup API.
    Sqlite,
    /// MongoDB, through mongodump / mongorestore.
    Mongodb,
    /// Redis, through its protocol (SCAN, DUMP, RESTORE).
    Redis,
}

impl Engine {
    /// The name used in configs, URLs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Mariadb => "mariadb",
            Engine::Sqlite => "sqlite",
            Engine::Mongodb => "mongodb",
            Engine::Redis => "redis",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Storage kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A folder on a local or mounted file system.
    Local,
}

/// Compression of the stored dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd, multi-threaded (default).
    Zstd,
    /// gzip, for tools that only know gzip.
    Gzip,
    /// Store the dump as it is.
    None,
}

impl Compression {
    /// The file-name suffix, with its dot (empty for `none`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Zstd => ".zst",
            Compression::Gzip => ".gz",
            Compression::None => "",
        }
    }

    /// The name used in configs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }

    /// The default level.
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Zstd => 3,
            Compression::Gzip => 6,
            Compression::None => 0,
        }
    }

    /// The accepted levels.
    pub fn levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Compression::Zstd => 1..=19,
            Compression::Gzip => 1..=9,
            Compression::None => 0..=0,
        }
    }
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
