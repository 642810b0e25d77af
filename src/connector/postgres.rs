//! PostgreSQL: `pg_dump -Fc -Z0` out, `pg_restore --single-transaction` in.
//!
//! The custom format keeps restores selective (`pg_restore -l/-L`), lets
//! `verify` list the archive, and restores in one transaction; `-Z0` leaves
//! compression to dbkeep's multi-threaded zstd. `databases: all` adds the
//! roles and tablespaces of `pg_dumpall --globals-only` as their own artifact.
//! Passwords reach the tools only through `PGPASSWORD`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::pg_physical::{BaseBackup, Label, Watched, base_check};
use super::source::Method;

use anyhow::{Context, Result};

use super::DumpCheck;
use super::Engine;
use super::pg_archive::PgArchiveCheck;
use super::source::{Databases, ServerConfig};
use super::{ArtifactKind, DumpFormat};
use super::{
    Connector, DatabaseSize, DumpItem, DumpSource, EndMarker, RestoreOptions, RestoreSink,
    ServerInfo, Survey, TableSize, TargetState, TlsInUse,
};
use crate::util::process::{ChildWriter, Tool, find_tool};
use crate::util::secret::Secret;

/// The end line of `pg_dumpall` output.
const DUMPALL_END: &str = "PostgreSQL database cluster dump complete";

/// A PostgreSQL server.
pub struct Postgres {
    source: ServerConfig,
    password: Option<Secret>,
    server_major: Option<u32>,
    /// The client folder chosen for the server's version (without `bin_dir`).
    chosen: Option<PathBuf>,
    /// `method: physical`: the cluster's system identifier and WAL segment
    /// size, and what the last base backup's stream said.
    physical: Option<(u64, u64, Arc<Mutex<Label>>)>,
}

/// Quotes a string as an SQL literal. The `E''` form reads the same whether
/// `standard_conforming_strings` is on or off.
pub fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Quotes an SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A libpq conninfo `dbname='...'` value, so no name is read as a URL or option.
fn conninfo(db: &str) -> String {
    format!("dbname='{}'", db.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `TOOL --version` of the client tool at `path`, asked once per process:
/// a backup needs the answer several times (choosing the client, the
/// manifest), and each run of the tool costs a process start.
fn tool_version(path: &Path) -> Result<String> {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, String>>> =
        std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if let Some(v) = seen.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(v.clone());
    }
    let version = Tool::new(path)
        .arg("--version")
        .output()?
        .trim()
        .to_string();
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, version.clone());
    Ok(version)
}

/// The PostgreSQL clients installed here, newest first, each with its major
/// version: the folder of the `pg_dump` on PATH, the Debian
/// (`/usr/lib/postgresql/N/bin`) and the RHEL (`/usr/pgsql-N/bin`) folders.
pub fn installed_clients() -> Vec<(PathBuf, u32)> {
    let mut found: Vec<(PathBuf, u32)> = Vec::new();
    // The PATH's client comes first, so that among clients of one version
    // the one the operator put first wins.
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(on_path) = find_tool(&["pg_dump"], None)
        && let Some(dir) = on_path.parent()
    {
        dirs.push(dir.to_path_buf());
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        dirs.extend(entries.flatten().map(|e| e.path().join("bin")));
    }
    if let Ok(entries) = std::fs::read_dir("/usr") {
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("pgsql-"))
                .map(|e| e.path().join("bin")),
        );
    }
    for dir in dirs {
        let Ok(pg_dump) = find_tool(&["pg_dump"], Some(&dir)) else {
            continue;
        };
        let same = found
            .iter()
            .any(|(d, _)| d.join("pg_dump").canonicalize().ok() == pg_dump.canonicalize().ok());
        if same {
            continue;
        }
        let version = tool_version(&pg_dump).unwrap_or_default();
        if let Some(major) = tool_major(&version) {
            found.push((dir, major));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.1));
    found
}

/// `pg_restore --list` from `bin_dir`, or from the newest installed client
/// that can read an archive of `dumped_with`'s version.
pub fn archive_lister(bin_dir: Option<&Path>, dumped_with: Option<&str>) -> Result<ChildWriter> {
    let chosen;
    let dir = match bin_dir {
        Some(dir) => Some(dir),
        None => {
            let need = dumped_with.and_then(tool_major).unwrap_or(0);
            chosen = pick_client(&installed_clients(), need).map(|(dir, _)| dir.clone());
            chosen.as_deref()
        }
    };
    let path = find_tool(&["pg_restore"], dir)?;
    Tool::new(&path).arg("--list").spawn_writer()
}

/// The newest client of `found` whose major version is at least `need`.
/// `found` is newest first, so among clients of one version the earlier wins.
pub fn pick_client(found: &[(PathBuf, u32)], need: u32) -> Option<&(PathBuf, u32)> {
    let newest = found.iter().map(|(_, major)| *major).max()?;
    found
        .iter()
        .find(|(_, major)| *major == newest && newest >= need)
}

/// `15 (/usr/lib/postgresql/15/bin), 13 (/usr/bin)` or `none`.
pub fn shown_clients(found: &[(PathBuf, u32)]) -> String {
    if found.is_empty() {
        return "none".to_string();
    }
    found
        .iter()
        .map(|(dir, major)| format!("{major} ({})", dir.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The major version in a tool's `--version` line ("pg_dump (PostgreSQL) 15.20 ...").
pub fn tool_major(version_line: &str) -> Option<u32> {
    version_line.split_whitespace().find_map(|w| {
        w.split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .filter(|m| *m >= 7)
    })
}

impl Postgres {
    /// A connector for `source`.
    pub fn new(source: ServerConfig) -> Result<Postgres> {
        let password = source.password()?;
        Ok(Postgres {
            source,
            password,
            server_major: None,
            chosen: None,
            physical: None,
        })
    }

    fn tool(&self, name: &str) -> Result<Tool> {
        let path = self.find(name)?;
        let mut t = Tool::new(&path).arg("--no-password");
        if let Some(h) = &self.source.host {
            t = t.arg("--host").arg(h);
        }
        if let Some(p) = self.source.port {
            t = t.arg("--port").arg(p.to_string());
        }
        if let Some(u) = &self.source.user {
            t = t.arg("--username").arg(u);
        }
        t = match &self.password {
            Some(p) => t.env("PGPASSWORD", p.expose()),
            None => t.inherit("PGPASSWORD"),
        };
        if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
            t = t.env("PGCONNECT_TIMEOUT", "15");
        }
        // TLS settings reach every tool through libpq's environment.
        if let Some(tls) = &self.source.tls {
            t = t.env("PGSSLMODE", tls.mode.as_str());
            for (var, file) in [
                ("PGSSLROOTCERT", &tls.ca_file),
                ("PGSSLCERT", &tls.cert_file),
                ("PGSSLKEY", &tls.key_file),
                ("PGSSLCRL", &tls.crl_file),
            ] {
                if let Some(file) = file {
                    t = t.env(var, file);
                }
            }
        }
        Ok(t.env("PGAPPNAME", "dbkeep"))
    }

    /// A restore tool whose statements give up waiting for a lock after
    /// `lock_wait_timeout` (`lock_timeout` through PGOPTIONS).
    fn restore_tool(&self, name: &str) -> Result<Tool> {
        let tool = self.tool(name)?;
        Ok(match self.source.lock_wait_timeout() {
            Some(t) => {
                let mut options = std::env::var("PGOPTIONS").unwrap_or_default();
                options.push_str(&format!(" -c lock_timeout={}s", t.as_secs().max(1)));
                tool.env("PGOPTIONS", options.trim_start())
            }
            None => tool,
        })
    }

    /// The database used for server-level queries.
    fn maintenance_db(&self) -> String {
        match self.source.databases() {
            Databases::List(list) if !list.is_empty() => list[0].clone(),
            _ => "postgres".to_string(),
        }
    }

    /// Runs one query and returns its rows (unaligned, NUL-separated).
    fn query(&self, db: &str, sql: &str) -> Result<Vec<String>> {
        self.query_with(self.tool("psql")?, db, sql)
    }

    /// A query for sizes, which gives up after a moment when a table it
    /// sizes is locked (an `ALTER TABLE`, a `LOCK TABLE`): sizes are for
    /// people, and must not keep a backup or `inspect` waiting.
    fn size_query(&self, db: &str, sql: &str) -> Result<Vec<String>> {
        let mut options = std::env::var("PGOPTIONS").unwrap_or_default();
        options.push_str(" -c lock_timeout=2s");
        let tool = self.tool("psql")?.env("PGOPTIONS", options.trim_start());
        self.query_with(tool, db, sql)
    }

    fn query_with(&self, tool: Tool, db: &str, sql: &str) -> Result<Vec<String>> {
        let out = tool
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "--record-separator-zero",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
            ])
            .arg(conninfo(db))
            .arg("-c")
            .arg(sql)
            .output()
            .with_context(|| {
                format!(
                    "cannot query PostgreSQL at {}",
                    self.source.describe(Engine::Postgres)
                )
            })?;
        Ok(out
            .split('\0')
            .map(|r| r.trim_matches('\n').to_string())
            .filter(|r| !r.is_empty())
            .collect())
    }

    /// A tool: from `bin_dir` when it is set; else from the client chosen
    /// for the server when it has it, else from PATH.
    fn find(&self, name: &str) -> Result<PathBuf> {
        if let Some(dir) = &self.source.bin_dir {
            return find_tool(&[name], Some(dir));
        }
        if let Some(found) = self
            .chosen
            .as_deref()
            .and_then(|dir| find_tool(&[name], Some(dir)).ok())
        {
            return Ok(found);
        }
        find_tool(&[name], None)
    }

    /// Without `bin_dir`, the newest installed client asks the server its
    /// version (any psql can; RHEL puts none on PATH).
    fn any_client(&mut self) {
        if self.source.bin_dir.is_none() && self.chosen.is_none() {
            self.chosen = installed_clients().into_iter().next().map(|(dir, _)| dir);
        }
    }

    /// Without `bin_dir`, picks the newest installed client whose major
    /// version is at least `need` (the server's, or the dump's).
    fn choose_client(&mut self, need: u32) -> Result<()> {
        if self.source.bin_dir.is_some() {
            return Ok(());
        }
        let found = installed_clients();
        match pick_client(&found, need) {
            Some((dir, major)) => {
                tracing::info!(client = %dir.display(), version = major, "using PostgreSQL client");
                self.chosen = Some(dir.clone());
                Ok(())
            }
            None => anyhow::bail!(
                "no PostgreSQL client of version {need} or newer is installed (found: {}); the server at {} needs one: \
                 install postgresql-client-{need} (Debian) or postgresql{need} (RHEL), or point `bin_dir` at one",
                shown_clients(&found),
                self.source.describe(Engine::Postgres)
            ),
        }
    }

    /// `method: physical`: pg_basebackup of the server's version, no extra
    /// tablespaces, and the cluster's identity.
    fn probe_physical(&mut self, major: u32, server_version: String) -> Result<ServerInfo> {
        let tool_version = self.version_of("pg_basebackup")?;
        self.check_client("pg_basebackup", &tool_version, major)?;
        let db = self.maintenance_db();
        let spaces = self.query(
            &db,
            "select spcname from pg_tablespace where spcname not in ('pg_default', 'pg_global') order by 1",
        )?;
        if !spaces.is_empty() {
            anyhow::bail!(
                "the cluster at {} has tablespaces outside its data directory ({}); dbkeep's base backups                  stream one tar of the data directory and do not carry them: move them into pg_default, or                  back this cluster up with `method: logical`",
                self.source.describe(Engine::Postgres),
                spaces
                    .iter()
                    .map(|s| crate::util::printable(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let rows = self.query(
            &db,
            "select (select system_identifier from pg_control_system()),              (select setting from pg_settings where name = 'wal_segment_size'),              current_setting('archive_mode')",
        )?;
        let row = rows
            .first()
            .context("PostgreSQL gave no cluster identity")?;
        let mut parts = row.split('|');
        let sysid: u64 = parts
            .next()
            .and_then(|p| p.trim().parse().ok())
            .context("PostgreSQL gave no system identifier")?;
        let seg: u64 = parts
            .next()
            .and_then(|p| p.trim().parse().ok())
            .filter(|s: &u64| s.is_power_of_two())
            .context("PostgreSQL gave no WAL segment size")?;
        let archiver = self.query(
            &db,
            "select coalesce(last_failed_wal, ''), coalesce(last_failed_time::text, '') from pg_stat_archiver \
             where last_failed_time is not null and (last_archived_time is null or last_failed_time > last_archived_time)",
        )?;
        if let Some(row) = archiver.first() {
            let (wal, at) = row.split_once('|').unwrap_or((row.as_str(), ""));
            anyhow::bail!(
                "the archive_command of the cluster at {} is failing (it last failed on {} at {}; see the server's \
                 log): a base backup would wait for it for ever; set it to `dbkeep -c CONFIG wal push JOB %p` and \
                 check that the server's user can read the config and write the storages",
                self.source.describe(Engine::Postgres),
                crate::util::printable(wal),
                crate::util::printable(at)
            );
        }
        if parts.next().map(str::trim) == Some("off") {
            anyhow::bail!(
                "the cluster at {} has `archive_mode = off`: a base backup is only restorable with its WAL; set                  `archive_mode = on` and `archive_command = 'dbkeep -c CONFIG wal push JOB %p'`, then restart it",
                self.source.describe(Engine::Postgres)
            );
        }
        self.physical = Some((sysid, seg, Arc::new(Mutex::new(Label::default()))));
        Ok(ServerInfo {
            server_version: Some(server_version),
            tool: "pg_basebackup".into(),
            tool_version: Some(tool_version),
        })
    }

    fn version_of(&self, tool: &str) -> Result<String> {
        tool_version(&self.find(tool)?)
    }

    fn server_major(&mut self, db: &str) -> Result<(u32, String)> {
        let rows = self.query(
            db,
            "select current_setting('server_version_num'), version()",
        )?;
        let row = rows.first().context("PostgreSQL returned no version")?;
        let (num, text) = row.split_once('|').unwrap_or((row.as_str(), ""));
        let num: u32 = num
            .trim()
            .parse()
            .with_context(|| format!("unexpected server_version_num `{num}`"))?;
        let major = if num >= 100_000 {
            num / 10_000
        } else {
            num / 100
        };
        self.server_major = Some(major);
        let version = text.split_whitespace().nth(1).unwrap_or(text).to_string();
        Ok((major, version))
    }

    fn check_client(&self, tool: &str, version: &str, server_major: u32) -> Result<()> {
        let Some(major) = tool_major(version) else {
            return Ok(());
        };
        if major < server_major {
            anyhow::bail!(
                "`{tool}` {major} cannot dump the PostgreSQL {server_major} server at {}: the client must be version {server_major} or newer; \
                 install it (Debian: `apt-get install postgresql-client-{server_major}`) and point `bin_dir` at it \
                 (e.g. /usr/lib/postgresql/{server_major}/bin)",
                self.source.describe(Engine::Postgres)
            );
        }
        Ok(())
    }
}

/// Refuses a psql script that holds a meta-command other than the
/// `\\restrict KEY` / `\\unrestrict KEY` lines current pg_dumpall writes.
///
/// psql runs a meta-command wherever a backslash stands outside a quoted
/// string, mid-line too (`select 1 \\! cmd`), and `\\!` runs a shell command
/// on the restoring host. Rather than re-implement psql's lexer, any line
/// that holds a backslash anywhere fails the check: pg_dumpall writes none
/// (role passwords are SCRAM or md5 hashes).
pub struct ScriptCheck {
    line: u64,
    /// The current line, kept while it starts with a backslash (capped).
    meta: Vec<u8>,
    at_start: bool,
    capturing: bool,
    error: Option<String>,
}

impl Default for ScriptCheck {
    fn default() -> ScriptCheck {
        ScriptCheck {
            line: 1,
            meta: Vec::new(),
            at_start: true,
            capturing: false,
            error: None,
        }
    }
}

impl ScriptCheck {
    fn refuse(&mut self, what: &str) {
        if self.error.is_none() {
            self.error = Some(format!(
                "line {} of the psql script holds a client-side command ({what}); a backup must not run commands \
                 on the restoring host, so dbkeep refuses it",
                self.line
            ));
        }
    }

    fn end_line(&mut self) {
        if self.capturing {
            let text = String::from_utf8_lossy(&self.meta).into_owned();
            let mut words = text.split_whitespace();
            let allowed = matches!(words.next(), Some("\\restrict" | "\\unrestrict"))
                && words
                    .next()
                    .is_some_and(|k| k.bytes().all(|b| b.is_ascii_alphanumeric()))
                && words.next().is_none();
            if !allowed {
                let shown: String = crate::util::printable(&text).chars().take(60).collect();
                self.refuse(&format!("`{shown}`"));
            }
        }
        self.line += 1;
        self.meta.clear();
        self.at_start = true;
        self.capturing = false;
    }
}

impl DumpCheck for ScriptCheck {
    fn update(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        for &b in bytes {
            match b {
                b'\n' => self.end_line(),
                b'\\' if self.at_start => {
                    self.capturing = true;
                    self.meta.push(b);
                }
                _ if self.capturing => {
                    if self.meta.len() < 256 {
                        self.meta.push(b);
                    } else {
                        self.refuse("an overlong meta-command line");
                    }
                }
                b'\\' => self.refuse("a backslash command inside a line"),
                _ => {}
            }
            self.at_start = b == b'\n';
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        if self.error.is_none() && !self.at_start {
            self.end_line();
        }
        self.error.take().map_or(Ok(()), Err)
    }
}

/// The check a custom archive must pass: every data block the table of
/// contents announces arrives whole.
pub fn archive_check() -> Box<dyn DumpCheck> {
    Box::new(ArchiveCheck(Some(PgArchiveCheck::new())))
}

/// The check a pg_dumpall script must pass: it ends with its end line.
pub fn script_end_check() -> Box<dyn DumpCheck> {
    Box::new(EndMarker::new("pg_dumpall", DUMPALL_END, 256))
}

/// Adapts the custom-archive parser to the pipeline's check.
struct ArchiveCheck(Option<PgArchiveCheck>);

impl DumpCheck for ArchiveCheck {
    fn update(&mut self, bytes: &[u8]) {
        if let Some(c) = &mut self.0 {
            c.update(bytes);
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        match self.0.take() {
            Some(c) if c.bytes_seen() == 0 => Err("pg_dump produced no output".to_string()),
            Some(c) => c
                .finish()
                .map(|_| ())
                .map_err(|e| format!("the pg_dump archive is incomplete: {e}")),
            None => Ok(()),
        }
    }
}

impl Connector for Postgres {
    fn preflight(&self) -> Vec<anyhow::Error> {
        let mut tools = vec!["pg_dump", "pg_restore", "psql"];
        if self.source.method == Method::Physical {
            tools = vec!["pg_basebackup", "psql"];
        } else if matches!(self.source.databases(), Databases::All) {
            tools.push("pg_dumpall");
        }
        tools
            .into_iter()
            .filter_map(|t| find_tool(&[t], self.source.bin_dir.as_deref()).err())
            .collect()
    }

    fn probe(&mut self) -> Result<ServerInfo> {
        self.any_client();
        let (major, server_version) = self.server_major(&self.maintenance_db())?;
        self.choose_client(major)?;
        if self.source.method == Method::Physical {
            return self.probe_physical(major, server_version);
        }
        let tool_version = self.version_of("pg_dump")?;
        self.check_client("pg_dump", &tool_version, major)?;
        if matches!(self.source.databases(), Databases::All) {
            let v = self.version_of("pg_dumpall")?;
            self.check_client("pg_dumpall", &v, major)?;
        }
        Ok(ServerInfo {
            server_version: Some(server_version),
            tool: "pg_dump".into(),
            tool_version: Some(tool_version),
        })
    }

    fn plan(&mut self) -> Result<Vec<DumpItem>> {
        if self.source.method == Method::Physical {
            return Ok(vec![DumpItem {
                kind: ArtifactKind::Cluster,
                database: None,
                format: DumpFormat::PgTar,
            }]);
        }
        let db = |name: &str| DumpItem::database(name, DumpFormat::PgCustom);
        match self.source.databases() {
            Databases::List(list) => Ok(list.iter().map(|n| db(n)).collect()),
            Databases::All => {
                let names = self.query(
                    "postgres",
                    "select datname from pg_database where not datistemplate and datallowconn order by datname",
                )?;
                let mut items = vec![DumpItem {
                    kind: ArtifactKind::Globals,
                    database: None,
                    format: DumpFormat::PgSql,
                }];
                items.extend(
                    names
                        .iter()
                        .filter(|n| !self.source.exclude_databases.contains(n))
                        .map(|n| db(n)),
                );
                Ok(items)
            }
        }
    }

    fn dump(&mut self, item: &DumpItem) -> Result<(Box<dyn DumpSource>, Box<dyn DumpCheck>)> {
        match (item.kind, &item.database) {
            (ArtifactKind::Cluster, _) => {
                let Some((_, _, found)) = &mut self.physical else {
                    anyhow::bail!("a base backup needs `method: physical` and a probe first");
                };
                let (check, label) = base_check();
                *found = label;
                // The WAL comes from the job's archive (`-X none`), so the
                // stream is the data directory alone, with its manifest.
                let child = self
                    .tool("pg_basebackup")?
                    .args([
                        "--pgdata=-",
                        "--format=tar",
                        "--wal-method=none",
                        "--checkpoint=fast",
                        "--manifest-checksums=CRC32C",
                        "--label=dbkeep",
                        "--no-password",
                    ])
                    .spawn_reader()?;
                let limit = self
                    .source
                    .wal_wait
                    .map_or(super::source::WAL_WAIT, |w| w.0);
                Ok((Box::new(Watched::new(child, limit)), check))
            }
            (ArtifactKind::Globals, _) => {
                let child = self
                    .tool("pg_dumpall")?
                    .args(["--globals-only", "--database"])
                    .arg(conninfo("postgres"))
                    .spawn_reader()?;
                Ok((Box::new(child), script_end_check()))
            }
            (ArtifactKind::Database, Some(db)) => {
                let mut tool = self.tool("pg_dump")?;
                if let Some(t) = self.source.lock_wait_timeout() {
                    tool = tool.arg(format!("--lock-wait-timeout={}s", t.as_secs().max(1)));
                }
                let s = &self.source;
                tool = tool
                    .args(
                        s.exclude_tables
                            .iter()
                            .map(|t| format!("--exclude-table={t}")),
                    )
                    .args(
                        s.exclude_table_data
                            .iter()
                            .map(|t| format!("--exclude-table-data={t}")),
                    )
                    .args(s.schema_only.then_some("--schema-only"))
                    .args(&s.dump_args);
                let child = tool
                    .args(["--format=custom", "--compress=0", "--dbname"])
                    .arg(conninfo(db))
                    .spawn_reader()?;
                Ok((Box::new(child), archive_check()))
            }
            (ArtifactKind::Database, None) => {
                anyhow::bail!("a PostgreSQL dump needs a database name")
            }
        }
    }

    fn probe_restore(&mut self, dumped_with: Option<&str>) -> Result<()> {
        self.any_client();
        let (server, _) = self.server_major("postgres")?;
        self.choose_client(server.max(dumped_with.and_then(tool_major).unwrap_or(0)))?;
        let version = self.version_of("pg_restore")?;
        self.find("psql")?;
        if let (Some(have), Some(need)) = (tool_major(&version), dumped_with.and_then(tool_major))
            && have < need
        {
            anyhow::bail!(
                "this backup was made by pg_dump {need}, and `pg_restore` {have} cannot read its archive: \
                 install postgresql-client-{need} or newer and point `bin_dir` at it"
            );
        }
        Ok(())
    }

    fn inspect(&mut self, database: &str) -> Result<TargetState> {
        let exists = self.query(
            "postgres",
            &format!(
                "select 1 from pg_database where datname = {}",
                literal(database)
            ),
        )?;
        if exists.is_empty() {
            return Ok(TargetState::Missing);
        }
        let rows = self.query(
            database,
            "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where c.relkind in ('r','v','m','S','f','p') and n.nspname not in ('pg_catalog','information_schema') \
             and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%' \
             union all select n.nspname || '.' || p.proname || '()' from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
             where n.nspname not in ('pg_catalog','information_schema') \
             and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e') \
             order by 1",
        )?;
        Ok(TargetState::from_objects(&rows))
    }

    fn restore(
        &mut self,
        artifact: &DumpItem,
        database: &str,
        opts: RestoreOptions,
    ) -> Result<Box<dyn RestoreSink>> {
        match artifact.format {
            DumpFormat::PgSql => {
                let child = self
                    .restore_tool("psql")?
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=0", "-d"])
                    .arg(conninfo("postgres"))
                    .args(["-f", "-"])
                    .spawn_writer()?;
                Ok(Box::new(GlobalsSink { child }))
            }
            DumpFormat::PgCustom => {
                let mut tool = self
                    .restore_tool("pg_restore")?
                    .args(["--single-transaction", "--exit-on-error", "--dbname"])
                    .arg(conninfo(database));
                if opts.force {
                    tool = tool.args(["--clean", "--if-exists"]);
                }
                if opts.no_owner {
                    tool = tool.arg("--no-owner");
                }
                tool = tool.args(&self.source.restore_args);
                Ok(Box::new(ToolSink {
                    child: tool.spawn_writer()?,
                }))
            }
            other => anyhow::bail!("a PostgreSQL target cannot restore a {other:?} artifact"),
        }
    }

    fn create(&mut self, database: &str) -> Result<bool> {
        match self.query(
            "postgres",
            &format!("create database {} template template0", ident(database)),
        ) {
            Ok(_) => Ok(true),
            Err(e) if format!("{e:#}").contains("already exists") => Ok(false),
            Err(e) => Err(e.context(format!("cannot create database `{database}`"))),
        }
    }

    fn estimate(&mut self, item: &DumpItem) -> Result<Option<u64>> {
        let (ArtifactKind::Database, Some(db)) = (item.kind, &item.database) else {
            return Ok(None);
        };
        if self.source.schema_only {
            return Ok(None);
        }
        // Table data without indexes: what a dump holds, where
        // `pg_database_size` counts the catalogs and indexes too.
        let rows = self.size_query(
            db,
            "select coalesce(sum(pg_table_size(c.oid)), 0) from pg_class c \
             join pg_namespace n on n.oid = c.relnamespace \
             where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema') \
             and n.nspname not like 'pg\\_toast%'",
        )?;
        Ok(rows.first().and_then(|r| r.trim().parse().ok()))
    }

    fn base_backup(&mut self) -> Result<Option<BaseBackup>> {
        let Some((sysid, seg, label)) = &self.physical else {
            return Ok(None);
        };
        let (sysid, seg) = (*sysid, *seg);
        let label = label.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let now = self.query(
            &self.maintenance_db(),
            "select extract(epoch from clock_timestamp())",
        )?;
        let stopped_at = now
            .first()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .and_then(|t| chrono::DateTime::from_timestamp_micros((t * 1e6) as i64))
            .context("PostgreSQL gave no time for the end of the base backup")?;
        label
            .base_backup(sysid, seg, stopped_at)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn survey(&mut self, plan: &[DumpItem]) -> Result<Survey> {
        let maintenance = self.maintenance_db();
        let (_, version) = self.server_major(&maintenance)?;
        let mut survey = Survey {
            server_version: Some(version),
            client: Some(format!(
                "{} ({})",
                self.find("pg_dump")?.display(),
                self.version_of("pg_dump")?
            )),
            ..Survey::default()
        };
        let ssl = self.query(
            &maintenance,
            "select ssl, coalesce(version, ''), coalesce(cipher, '') from pg_stat_ssl where pid = pg_backend_pid()",
        )?;
        survey.tls = ssl.first().map(|row| {
            let cols: Vec<&str> = row.split('|').collect();
            TlsInUse {
                in_use: cols.first() == Some(&"t"),
                detail: (cols.first() == Some(&"t"))
                    .then(|| cols[1..].join(" ").trim().to_string()),
            }
        });
        let sizes = self.query(
            &maintenance,
            "select datname, pg_database_size(datname) from pg_database where datallowconn and not datistemplate",
        )?;
        let mut tables = Vec::new();
        for db in plan.iter().filter_map(|i| i.database.as_deref()) {
            survey.databases.push(DatabaseSize {
                name: db.to_string(),
                bytes: sizes
                    .iter()
                    .filter_map(|r| Survey::row(r, '|'))
                    .find(|(name, _)| *name == db)
                    .map(|(_, n)| n),
                keys: None,
            });
            let rows = self.size_query(
                db,
                "select n.nspname || '.' || c.relname, pg_total_relation_size(c.oid) from pg_class c \
                 join pg_namespace n on n.oid = c.relnamespace \
                 where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema') \
                 and n.nspname not like 'pg\\_toast%' order by 2 desc limit 10",
            );
            match rows {
                Ok(rows) => tables.extend(rows.iter().filter_map(|r| Survey::row(r, '|')).map(
                    |(table, bytes)| TableSize {
                        database: db.to_string(),
                        table: table.to_string(),
                        bytes,
                    },
                )),
                Err(e) => survey
                    .notes
                    .push(format!("cannot list the tables of `{db}`: {e:#}")),
            }
        }
        Survey::keep_largest(&mut tables);
        survey.largest_tables = tables;
        Ok(survey)
    }

    fn drop_created(&mut self, database: &str) -> Result<()> {
        self.query(
            "postgres",
            &format!("drop database if exists {}", ident(database)),
        )?;
        Ok(())
    }
}

/// Streams into a restore tool.
pub struct ToolSink {
    /// The tool.
    pub child: ChildWriter,
}

impl Write for ToolSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.child.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.child.flush()
    }
}

impl RestoreSink for ToolSink {
    fn finish(self: Box<Self>) -> Result<()> {
        let warnings = self.child.finish()?;
        if !warnings.trim().is_empty() {
            tracing::warn!(output = %crate::util::secret::redact(warnings.trim()), "restore tool warnings");
        }
        Ok(())
    }
    fn abort(self: Box<Self>) {
        self.child.kill();
    }
}

/// Roles and tablespaces: objects that already exist are expected, and only
/// other errors are reported.
struct GlobalsSink {
    child: ChildWriter,
}

impl Write for GlobalsSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.child.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.child.flush()
    }
}

impl RestoreSink for GlobalsSink {
    fn finish(self: Box<Self>) -> Result<()> {
        let stderr = self.child.finish()?;
        let problems: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("ERROR:") && !l.contains("already exists"))
            .collect();
        if !problems.is_empty() {
            tracing::warn!(errors = %crate::util::secret::redact(&problems.join("; ")), "some roles or tablespaces were not restored");
        }
        Ok(())
    }
    fn abort(self: Box<Self>) {
        self.child.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_client_at_least_the_servers_version_is_chosen() {
        let found = vec![
            (PathBuf::from("/usr/lib/postgresql/17/bin"), 17),
            (PathBuf::from("/usr/lib/postgresql/15/bin"), 15),
            (PathBuf::from("/usr/bin"), 13),
        ];
        assert_eq!(pick_client(&found, 15).unwrap().1, 17);
        assert_eq!(pick_client(&found, 9).unwrap().1, 17);
        assert!(pick_client(&found, 18).is_none());
        assert_eq!(
            shown_clients(&found),
            "17 (/usr/lib/postgresql/17/bin), 15 (/usr/lib/postgresql/15/bin), 13 (/usr/bin)"
        );
        assert_eq!(shown_clients(&[]), "none");
    }

    #[test]
    fn quoting() {
        assert_eq!(literal("o'k"), "E'o\\'k'");
        assert_eq!(literal("a\\'; drop"), "E'a\\\\\\'; drop'");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(conninfo("x' host='evil"), "dbname='x\\' host=\\'evil'");
    }

    fn script(text: &str) -> Result<(), String> {
        let mut c = ScriptCheck::default();
        for chunk in text.as_bytes().chunks(3) {
            c.update(chunk);
        }
        c.finish()
    }

    #[test]
    fn psql_scripts_with_client_commands_are_refused() {
        let ok = "--\n\\restrict Abc123\nCREATE ROLE a;\n\n\\unrestrict Abc123\n";
        assert_eq!(script(ok), Ok(()));
        assert_eq!(script("CREATE ROLE a;\n\\unrestrict K"), Ok(()));
        for bad in [
            "CREATE ROLE a;\n\\! touch /tmp/x\n",
            "select 1 \\! touch /tmp/x\n",
            "\\restrict K\n\\unrestrict K\n\\copy t from program 'x'\n",
            "\\restrict K extra\n",
            "\\i /etc/passwd",
            " \\! id\n",
        ] {
            let e = script(bad).unwrap_err();
            assert!(e.contains("client-side command"), "{bad}: {e}");
        }
        assert!(
            script("a;\nb;\n\\! x\n")
                .unwrap_err()
                .starts_with("line 3 ")
        );
    }

    #[test]
    fn majors() {
        assert_eq!(
            tool_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(tool_major("pg_restore (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(tool_major("garbage"), None);
    }
}
