//! The connector seam: how each engine is dumped and restored.
//!
//! A connector is built from a [`Source`] (for a backup) or a restore target,
//! and chosen by one `match` in [`connect`]. Server engines stream from their
//! dump tool's stdout; SQLite copies the live file with the online backup API.

mod marker;
pub mod mongo_archive;
mod mongodb;
mod mysql;
pub mod mysql_binlog;
pub mod pg_archive;
pub mod pg_physical;
pub mod pg_wal;

pub use mysql_binlog::binlog_name_ok;
mod postgres;
mod redis;
pub mod resp;
pub mod source;
mod sqlite;
pub mod tunnel;
pub mod url;

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Result;

pub use marker::{EndMarker, NoCheck};

use serde::{Deserialize, Serialize};

pub use source::{Databases, DbName, ServerConfig, SourceConfig};

/// Database engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
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
    /// The server's usual port (0 for SQLite, which has none).
    pub fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql | Engine::Mariadb => 3306,
            Engine::Mongodb => 27017,
            Engine::Redis => 6379,
            Engine::Sqlite => 0,
        }
    }

    /// Whether a connector of this engine can restore a backup of `from`
    /// (MySQL and MariaDB read each other's dumps).
    pub fn restores(self, from: Engine) -> bool {
        let mysql = |e| matches!(e, Engine::Mysql | Engine::Mariadb);
        self == from || (mysql(self) && mysql(from))
    }

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

/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// One database.
    Database,
    /// Server-wide objects: PostgreSQL roles and tablespaces.
    Globals,
    /// A whole PostgreSQL cluster: a base backup for point-in-time recovery.
    Cluster,
}

/// The format of the dump inside an artifact (before compression).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DumpFormat {
    /// `pg_dump -Fc` custom archive.
    PgCustom,
    /// SQL script for psql (`pg_dumpall --globals-only`).
    PgSql,
    /// SQL script from mariadb-dump / mysqldump.
    MysqlSql,
    /// A SQLite database file.
    SqliteDb,
    /// `mongodump --archive` output.
    MongoArchive,
    /// dbkeep's Redis key stream (see `connector::redis`).
    RedisKeys,
    /// `pg_basebackup -Ft` tar of a data directory.
    PgTar,
}

impl DumpFormat {
    /// The file-name extension before the compression suffix.
    pub fn extension(self) -> &'static str {
        match self {
            DumpFormat::PgCustom => "pgdump",
            DumpFormat::PgSql | DumpFormat::MysqlSql => "sql",
            DumpFormat::SqliteDb => "sqlite",
            DumpFormat::MongoArchive => "archive",
            DumpFormat::RedisKeys => "redis",
            DumpFormat::PgTar => "tar",
        }
    }
}

/// Something that looks at every raw byte of a dump and decides at the end
/// whether it is complete.
pub trait DumpCheck {
    /// Sees the next bytes.
    fn update(&mut self, bytes: &[u8]);
    /// Err(reason) when the dump is not complete.
    fn finish(&mut self) -> std::result::Result<(), String>;
}

/// What a probe learned about the server and the tools.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// The server's version string.
    pub server_version: Option<String>,
    /// The dump tool's name.
    pub tool: String,
    /// The dump tool's version line.
    pub tool_version: Option<String>,
}

/// What `dbkeep inspect` learned about a source. Nothing is written to
/// get it: only the server's catalog and statistics are read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Survey {
    /// The server's version string.
    pub server_version: Option<String>,
    /// The dump tool dbkeep would use, with its path and version.
    pub client: Option<String>,
    /// Whether dbkeep's connection uses TLS; `None` where there is no network.
    pub tls: Option<TlsInUse>,
    /// The databases a backup would hold, with their sizes on the server.
    pub databases: Vec<DatabaseSize>,
    /// The ten largest tables (collections, keys) of those databases.
    pub largest_tables: Vec<TableSize>,
    /// SQLite's `integrity_check`: `ok`, or what it found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
    /// What could not be learned, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Whether a connection is encrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsInUse {
    /// TLS is in use.
    pub in_use: bool,
    /// The protocol and cipher, where the server says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One database and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseSize {
    /// Its name.
    pub name: String,
    /// Bytes on the server (`pg_database_size`, data and index lengths, the
    /// file's size), where the engine tells.
    pub bytes: Option<u64>,
    /// Keys, for Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
}

/// One table and its size with its indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSize {
    /// The database it is in.
    pub database: String,
    /// `schema.table`, or the table's name.
    pub table: String,
    /// Bytes on the server.
    pub bytes: u64,
}

impl Survey {
    /// `name SEP number` of a query's row (the name may hold `SEP`).
    pub fn row(row: &str, sep: char) -> Option<(&str, u64)> {
        let (name, n) = row.rsplit_once(sep)?;
        Some((name, n.trim().parse::<f64>().ok()? as u64))
    }

    /// Keeps the ten largest of `tables`, largest first.
    pub fn keep_largest(tables: &mut Vec<TableSize>) {
        tables.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.table.cmp(&b.table)));
        tables.truncate(10);
    }
}

/// One object a backup will hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpItem {
    /// Database or globals.
    pub kind: ArtifactKind,
    /// The database, for database items.
    pub database: Option<String>,
    /// The format the tool writes.
    pub format: DumpFormat,
}

impl DumpItem {
    /// Refuses an artifact of another format than the one a connector restores.
    pub fn expect(&self, format: DumpFormat) -> Result<()> {
        if self.format != format {
            anyhow::bail!(
                "a {:?} restore cannot take a {:?} artifact",
                format,
                self.format
            );
        }
        Ok(())
    }

    /// One item for each database of `names`, all dumped in `format`.
    pub fn each(names: Vec<String>, format: DumpFormat) -> Vec<DumpItem> {
        names
            .into_iter()
            .map(|n| DumpItem::database(n, format))
            .collect()
    }

    /// One database, dumped in `format`.
    pub fn database(name: impl Into<String>, format: DumpFormat) -> DumpItem {
        DumpItem {
            kind: ArtifactKind::Database,
            database: Some(name.into()),
            format,
        }
    }

    /// The database a database item names.
    pub fn database_name(&self) -> Result<&str> {
        self.database
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("a {:?} dump needs a database", self.format))
    }

    /// The artifact's file name before the compression suffix.
    pub fn base_name(&self) -> String {
        match (&self.kind, &self.database) {
            (ArtifactKind::Globals, _) => format!("globals.{}", self.format.extension()),
            (ArtifactKind::Cluster, _) => format!("cluster.{}", self.format.extension()),
            (_, Some(db)) => format!("{}.{}", file_safe(db), self.format.extension()),
            (_, None) => format!("database.{}", self.format.extension()),
        }
    }
}

/// Refuses a plan whose database names a tool could read as an option.
///
/// Names reach the tools after `--` or as `--flag=NAME` anyway; refusing them
/// here keeps a tenant's `--all-databases` database from even looking like one.
pub fn check_plan(items: &[DumpItem]) -> Result<()> {
    for db in items.iter().filter_map(|i| i.database.as_deref()) {
        if db.starts_with('-') {
            anyhow::bail!(
                "refusing to back up database `{}`: its name starts with `-`, which dump tools could read as an option; \
                 rename it, or list the databases to back up instead of `databases: all`",
                crate::util::printable(db)
            );
        }
    }
    Ok(())
}

/// A database name made safe as a file name (names stay readable; odd bytes
/// become `_` followed by their hex, and so does a leading `-`).
fn file_safe(name: &str) -> String {
    let mut out = String::new();
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || (b == b'-' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    if out.is_empty() { "_".to_string() } else { out }
}

/// A running dump: read it, then `finish` to learn whether it succeeded.
pub trait DumpSource: Read + Send {
    /// Waits for the dump to end; Err when it did not succeed. On success
    /// returns the tail of the tool's stderr (empty when there is none).
    fn finish(self: Box<Self>) -> Result<String>;
}

impl DumpSource for crate::util::process::ChildReader {
    fn finish(self: Box<Self>) -> Result<String> {
        crate::util::process::ChildReader::finish(*self)
    }
}

/// Where restored bytes go.
pub trait RestoreSink: Write {
    /// The stream is complete and verified: let the tool finish and commit.
    fn finish(self: Box<Self>) -> Result<()>;
    /// The stream is bad: stop without committing anything.
    fn abort(self: Box<Self>);
}

/// How a restore treats its target.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Restore into a non-empty target (replacing the objects the backup holds).
    pub force: bool,
    /// PostgreSQL: do not restore object owners.
    pub no_owner: bool,
}

/// What a restore target holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// It does not exist; the restore creates it.
    Missing,
    /// It exists and holds nothing.
    Empty,
    /// It holds something; the text says what.
    NonEmpty(String),
}

impl TargetState {
    /// Empty, or non-empty with a short list of what is there.
    pub fn from_objects(objects: &[String]) -> TargetState {
        if objects.is_empty() {
            return TargetState::Empty;
        }
        let shown: Vec<&str> = objects.iter().take(5).map(String::as_str).collect();
        let more = if objects.len() > 5 {
            format!(" and {} more", objects.len() - 5)
        } else {
            String::new()
        };
        TargetState::NonEmpty(format!(
            "{} objects ({}{more})",
            objects.len(),
            shown.join(", ")
        ))
    }
}

/// An engine's dump and restore operations.
pub trait Connector {
    /// What can be checked without the server (for `config validate`): the
    /// tools that backups and restores need are there.
    fn preflight(&self) -> Vec<anyhow::Error> {
        Vec::new()
    }

    /// Checks tools, reachability and versions before anything is written.
    fn probe(&mut self) -> Result<ServerInfo>;

    /// The objects to dump, with `all` resolved against the server.
    fn plan(&mut self) -> Result<Vec<DumpItem>>;

    /// Starts dumping one item, with the check its stream must pass.
    fn dump(&mut self, item: &DumpItem) -> Result<(Box<dyn DumpSource>, Box<dyn DumpCheck>)>;

    /// Checks that the restore tools exist and can read `artifact`'s format.
    fn probe_restore(&mut self, manifest_tool_version: Option<&str>) -> Result<()>;

    /// What the target of a database restore holds now.
    fn inspect(&mut self, database: &str) -> Result<TargetState>;

    /// Starts restoring one artifact into `database` (created when missing).
    fn restore(
        &mut self,
        artifact: &DumpItem,
        database: &str,
        opts: RestoreOptions,
    ) -> Result<Box<dyn RestoreSink>>;

    /// Creates `database` for a restore, without checking first whether it
    /// exists: true when this call created it, false when it was there
    /// already (then the caller looks at what it holds). Engines whose
    /// restore creates the target by writing to it return false.
    fn create(&mut self, database: &str) -> Result<bool> {
        let _ = database;
        Ok(false)
    }

    /// Removes a database that this restore created, after a failure.
    fn drop_created(&mut self, database: &str) -> Result<()>;

    /// How many bytes of the end of a stream to hold back until the checksum
    /// matched: enough that the tool cannot complete without them.
    fn hold_back(&self) -> usize {
        1 << 20
    }

    /// About how many bytes `item`'s dump will be, from the server's own
    /// statistics, for progress; `None` when the engine cannot tell. Call
    /// after [`Connector::probe`].
    fn estimate(&mut self, item: &DumpItem) -> Result<Option<u64>> {
        let _ = item;
        Ok(None)
    }

    /// What `dbkeep inspect` shows about the server and the databases of
    /// `plan`. Call after [`Connector::probe`].
    fn survey(&mut self, plan: &[DumpItem]) -> Result<Survey>;

    /// After a base backup (`method: physical`) was dumped and checked: the
    /// WAL it needs and the cluster it is of. `None` for dumps.
    fn base_backup(&mut self) -> Result<Option<pg_physical::BaseBackup>> {
        Ok(None)
    }

    /// After `item` was dumped with `binlog: true`: where the dump stands in
    /// the server's binary log. `None` without `binlog`.
    fn binlog_position(
        &mut self,
        _item: &DumpItem,
    ) -> Result<Option<mysql_binlog::BinlogPosition>> {
        Ok(None)
    }
}

/// The binlog side of a MariaDB/MySQL server.
pub type BinlogServer = mysql::Mysql;

/// The server of a `binlog: true` source, for `binlog pull` and replay.
pub fn binlog_server(source: &SourceConfig) -> Result<BinlogServer> {
    match source {
        SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) if s.binlog => {
            if s.ssh.is_some() {
                anyhow::bail!(
                    "binlog archiving does not go through an SSH tunnel yet: run `dbkeep binlog pull` where the server is reachable"
                );
            }
            mysql::Mysql::new(source.engine(), s.clone())
        }
        _ => anyhow::bail!("the source has no `binlog: true` (MariaDB or MySQL)"),
    }
}

/// A MariaDB/MySQL server to replay binlogs into (any such source).
pub fn binlog_target(source: &SourceConfig) -> Result<BinlogServer> {
    match source {
        SourceConfig::Mysql(s) | SourceConfig::Mariadb(s) if s.ssh.is_none() => {
            mysql::Mysql::new(source.engine(), s.clone())
        }
        SourceConfig::Mysql(_) | SourceConfig::Mariadb(_) => anyhow::bail!(
            "a binlog replay does not go through an SSH tunnel yet: restore where the server is reachable"
        ),
        _ => anyhow::bail!("binlogs replay into MariaDB or MySQL only"),
    }
}

/// Builds the connector for a source, through its SSH tunnel when it has one.
pub fn connect(source: &SourceConfig, temp_dir: Option<PathBuf>) -> Result<Box<dyn Connector>> {
    if let Some((ssh, host, port)) = source.tunnel() {
        let tunnel = tunnel::Tunnel::open(ssh, &host, port)?;
        let inner = build(&source.through(tunnel.port), temp_dir)?;
        return Ok(Box::new(Tunneled {
            inner,
            _tunnel: tunnel,
        }));
    }
    build(source, temp_dir)
}

/// A connector whose server is reached through a tunnel, open as long as it is.
struct Tunneled {
    inner: Box<dyn Connector>,
    _tunnel: tunnel::Tunnel,
}

impl Connector for Tunneled {
    fn preflight(&self) -> Vec<anyhow::Error> {
        self.inner.preflight()
    }
    fn probe(&mut self) -> Result<ServerInfo> {
        self.inner.probe()
    }
    fn plan(&mut self) -> Result<Vec<DumpItem>> {
        self.inner.plan()
    }
    fn dump(&mut self, item: &DumpItem) -> Result<(Box<dyn DumpSource>, Box<dyn DumpCheck>)> {
        self.inner.dump(item)
    }
    fn probe_restore(&mut self, dumped_with: Option<&str>) -> Result<()> {
        self.inner.probe_restore(dumped_with)
    }
    fn inspect(&mut self, database: &str) -> Result<TargetState> {
        self.inner.inspect(database)
    }
    fn restore(
        &mut self,
        item: &DumpItem,
        database: &str,
        opts: RestoreOptions,
    ) -> Result<Box<dyn RestoreSink>> {
        self.inner.restore(item, database, opts)
    }
    fn create(&mut self, database: &str) -> Result<bool> {
        self.inner.create(database)
    }
    fn drop_created(&mut self, database: &str) -> Result<()> {
        self.inner.drop_created(database)
    }
    fn hold_back(&self) -> usize {
        self.inner.hold_back()
    }
    fn estimate(&mut self, item: &DumpItem) -> Result<Option<u64>> {
        self.inner.estimate(item)
    }
    fn survey(&mut self, plan: &[DumpItem]) -> Result<Survey> {
        self.inner.survey(plan)
    }
    fn base_backup(&mut self) -> Result<Option<pg_physical::BaseBackup>> {
        self.inner.base_backup()
    }
    fn binlog_position(&mut self, item: &DumpItem) -> Result<Option<mysql_binlog::BinlogPosition>> {
        self.inner.binlog_position(item)
    }
}

fn build(source: &SourceConfig, temp_dir: Option<PathBuf>) -> Result<Box<dyn Connector>> {
    Ok(match source {
        SourceConfig::Postgres(s) => Box::new(postgres::Postgres::new(s.clone())?),
        SourceConfig::Mysql(s) => Box::new(mysql::Mysql::new(Engine::Mysql, s.clone())?),
        SourceConfig::Mariadb(s) => Box::new(mysql::Mysql::new(Engine::Mariadb, s.clone())?),
        SourceConfig::Sqlite(s) => Box::new(sqlite::Sqlite::new(s.path.clone(), temp_dir)),
        SourceConfig::Mongodb(s) => Box::new(mongodb::Mongodb::new(s.clone())?),
        SourceConfig::Redis(s) => Box::new(redis::Redis::new(s.clone())?),
    })
}

/// The dump format an engine writes for each kind of artifact; `None` for a
/// kind the engine never writes. Restore and verify refuse any other pairing,
/// so a crafted manifest cannot, say, replay a "database" through psql.
pub fn expected_format(engine: Engine, kind: ArtifactKind) -> Option<DumpFormat> {
    match (engine, kind) {
        (Engine::Postgres, ArtifactKind::Database) => Some(DumpFormat::PgCustom),
        (Engine::Postgres, ArtifactKind::Globals) => Some(DumpFormat::PgSql),
        (Engine::Mysql | Engine::Mariadb, ArtifactKind::Database) => Some(DumpFormat::MysqlSql),
        (Engine::Sqlite, ArtifactKind::Database) => Some(DumpFormat::SqliteDb),
        (Engine::Mongodb, ArtifactKind::Database) => Some(DumpFormat::MongoArchive),
        (Engine::Redis, ArtifactKind::Database) => Some(DumpFormat::RedisKeys),
        (Engine::Postgres, ArtifactKind::Cluster) => Some(DumpFormat::PgTar),
        (_, ArtifactKind::Globals | ArtifactKind::Cluster) => None,
    }
}

/// A check that must pass on the whole decompressed artifact *before* a
/// restore sends any of it to a tool (the psql script check).
pub fn restore_precheck(format: DumpFormat) -> Option<Box<dyn DumpCheck>> {
    match format {
        DumpFormat::PgSql => Some(Box::new(postgres::ScriptCheck::default())),
        _ => None,
    }
}

/// A check `verify` runs on top of the format's own: the restore pre-check,
/// or for MariaDB/MySQL dumps the client-command check (their restores are
/// sandboxed, so only `verify` needs it).
pub fn verify_precheck(format: DumpFormat) -> Option<Box<dyn DumpCheck>> {
    match format {
        DumpFormat::MysqlSql => Some(Box::new(mysql::ClientCommandCheck::default())),
        other => restore_precheck(other),
    }
}

/// The structural check a decompressed stream of `format` must pass (the
/// one its dump was checked with), for `verify`; `None` for SQLite, whose
/// check needs the whole file (`sqlite_integrity`).
/// for formats whose connector owns one.
pub fn content_check(format: DumpFormat) -> Option<(Box<dyn DumpCheck>, &'static str)> {
    match format {
        DumpFormat::RedisKeys => Some((redis::stream_check(), "redis key stream structure")),
        DumpFormat::MongoArchive => Some((mongodb::stream_check(), "mongodump archive structure")),
        DumpFormat::PgCustom => Some((postgres::archive_check(), "pg_dump archive structure")),
        DumpFormat::PgSql => Some((postgres::script_end_check(), "pg_dumpall end line")),
        DumpFormat::MysqlSql => Some((mysql::dump_end_check("mariadb-dump"), "dump end line")),
        DumpFormat::SqliteDb => None,
        DumpFormat::PgTar => Some((pg_physical::base_check().0, "base backup tar structure")),
    }
}

/// `pg_restore --list`, reading a PostgreSQL archive whole during `verify`,
/// from `bin_dir` or the newest client that reads what `dumped_with` wrote.
pub fn archive_lister(
    bin_dir: Option<&std::path::Path>,
    dumped_with: Option<&str>,
) -> Result<crate::util::process::ChildWriter> {
    postgres::archive_lister(bin_dir, dumped_with)
}

/// Runs `PRAGMA integrity_check` on the SQLite file at `path`.
pub fn sqlite_integrity(path: &std::path::Path) -> Result<()> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    sqlite::integrity_check(&conn, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_are_file_safe() {
        let item = |db: &str| DumpItem {
            kind: ArtifactKind::Database,
            database: Some(db.to_string()),
            format: DumpFormat::PgCustom,
        };
        assert_eq!(item("app").base_name(), "app.pgdump");
        assert_eq!(item("a/b c").base_name(), "a_2fb_20c.pgdump");
        assert_eq!(item("..").base_name(), "_2e_2e.pgdump");
        assert_eq!(item("--all").base_name(), "_2d-all.pgdump");
    }
}
