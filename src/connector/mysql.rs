//! MariaDB and MySQL: `mariadb-dump`/`mysqldump` out, the `mariadb`/`mysql` client in.
//!
//! Each database is dumped on its own, without `CREATE DATABASE`/`USE`, so it
//! can be restored under another name. The password reaches the tools in a
//! 0600 `--defaults-extra-file`, never on the command line.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::DumpCheck;
use super::DumpFormat;
use super::Engine;
use super::binlog_name_ok;
use super::mysql_binlog::{BinlogPosition, Both, PositionCheck};
use super::postgres::ToolSink;
use super::source::{Databases, ServerConfig, TlsConfig, TlsMode};
use super::{
    Connector, DatabaseSize, DumpItem, DumpSource, EndMarker, RestoreOptions, RestoreSink,
    ServerInfo, Survey, TableSize, TargetState, TlsInUse,
};
use crate::util::process::{Tool, find_tool};
use crate::util::secret::Secret;

/// The last line mariadb-dump and mysqldump write.
const DUMP_END: &str = "-- Dump completed";

/// Schemas that `databases: all` skips.
const SYSTEM_SCHEMAS: [&str; 4] = ["information_schema", "performance_schema", "mysql", "sys"];

/// Finds client-side commands (`\\!`, `system`, `source`, ...) at the start of
/// a line of a dump: mariadb-dump and mysqldump never write one there. The
/// restore runs the client with `--sandbox` anyway; this lets `verify` call
/// such a backup what it is.
#[derive(Default)]
pub struct ClientCommandCheck {
    line: u64,
    start: Vec<u8>,
    done_with_line: bool,
    error: Option<String>,
}

impl ClientCommandCheck {
    fn judge(&mut self) {
        let text = String::from_utf8_lossy(&self.start).to_ascii_lowercase();
        let word = text.trim_start();
        let command = word.starts_with('\\')
            || ["system ", "source ", "system\t", "source\t"]
                .iter()
                .any(|c| word.starts_with(c));
        if command && self.error.is_none() {
            let shown: String = crate::util::printable(word).chars().take(40).collect();
            self.error = Some(format!(
                "line {} of the dump holds a client-side command (`{shown}`), which mariadb-dump never writes: \
                 the backup was altered",
                self.line + 1
            ));
        }
    }
}

impl DumpCheck for ClientCommandCheck {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                if !self.done_with_line {
                    self.judge();
                }
                self.line += 1;
                self.start.clear();
                self.done_with_line = false;
            } else if !self.done_with_line {
                self.start.push(b);
                if self.start.len() >= 16 {
                    self.judge();
                    self.done_with_line = true;
                }
            }
        }
    }

    fn finish(&mut self) -> std::result::Result<(), String> {
        if !self.done_with_line && !self.start.is_empty() {
            self.judge();
        }
        self.error.take().map_or(Ok(()), Err)
    }
}

/// The check a dump must pass: it ends with the tool's end line.
pub fn dump_end_check(tool: &'static str) -> Box<dyn DumpCheck> {
    Box::new(EndMarker::new(tool, DUMP_END, 512))
}

/// A MariaDB or MySQL server.
pub struct Mysql {
    engine: Engine,
    source: ServerConfig,
    password: Option<Secret>,
    /// The restore client's flag that turns off its client-side commands.
    no_commands: Option<&'static str>,
    /// `binlog: true`: the binlog position of the last dump.
    position: Arc<Mutex<Option<BinlogPosition>>>,
}

/// Quotes a string literal as a hex literal, which reads the same under
/// every `sql_mode` (`NO_BACKSLASH_ESCAPES` included).
fn literal(s: &str) -> String {
    if s.is_empty() {
        "''".to_string()
    } else {
        format!("convert(X'{}' using utf8mb4)", hex::encode(s.as_bytes()))
    }
}

/// Quotes an identifier.
fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Escapes a value for a double-quoted option-file value.
fn option_value(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The client flags for `tls`. The MariaDB tools take `--ssl` and verify
/// the server only with `--ssl-verify-server-cert`; the MySQL tools take
/// `--ssl-mode`.
fn tls_flags(mariadb_client: bool, tls: &TlsConfig) -> Vec<String> {
    let mut args: Vec<String> = if mariadb_client {
        match tls.mode {
            TlsMode::Disable => vec!["--skip-ssl".into()],
            TlsMode::Prefer => Vec::new(),
            TlsMode::Require => vec!["--ssl".into()],
            TlsMode::VerifyCa | TlsMode::VerifyFull => {
                vec!["--ssl".into(), "--ssl-verify-server-cert".into()]
            }
        }
    } else {
        let mode = match tls.mode {
            TlsMode::Disable => "DISABLED",
            TlsMode::Prefer => "PREFERRED",
            TlsMode::Require => "REQUIRED",
            TlsMode::VerifyCa => "VERIFY_CA",
            TlsMode::VerifyFull => "VERIFY_IDENTITY",
        };
        vec![format!("--ssl-mode={mode}")]
    };
    for (flag, file) in [
        ("--ssl-ca", &tls.ca_file),
        ("--ssl-cert", &tls.cert_file),
        ("--ssl-key", &tls.key_file),
    ] {
        if let Some(file) = file {
            args.push(format!("{flag}={}", file.display()));
        }
    }
    args
}

/// The binlog side of a MariaDB/MySQL server: list, rotate, read raw, and
/// replay through the sandboxed client.
impl Mysql {
    /// The binary logs the server holds, oldest first, with their sizes.
    pub fn binlogs(&self) -> Result<Vec<(String, u64)>> {
        let rows = self.query("SHOW BINARY LOGS").map_err(|e| {
            anyhow::anyhow!(
                "{e:#}; `binlog: true` needs the server to keep binary logs: start it with `log_bin` (and \
                 `binlog_format=ROW`), and give the user the BINLOG MONITOR (REPLICATION CLIENT) privilege"
            )
        })?;
        let mut out = Vec::new();
        for row in rows {
            let mut cols = row.split('\t');
            let (Some(name), Some(size)) = (cols.next(), cols.next()) else {
                continue;
            };
            if !binlog_name_ok(name) {
                anyhow::bail!(
                    "the server at {} names a binlog `{}`, which is not a binlog file name",
                    self.source.describe(self.engine),
                    crate::util::printable(name)
                );
            }
            out.push((name.to_string(), size.trim().parse().unwrap_or(0)));
        }
        if out.is_empty() {
            anyhow::bail!(
                "the server at {} keeps no binary logs: start it with `log_bin` (and `binlog_format=ROW`)",
                self.source.describe(self.engine)
            );
        }
        Ok(out)
    }

    /// Closes the current binlog and starts a new one (`FLUSH BINARY LOGS`).
    pub fn rotate(&self) -> Result<()> {
        self.query("FLUSH BINARY LOGS").map(|_| ())
    }

    fn binlog_tool(&self) -> Result<std::path::PathBuf> {
        let names = match self.engine {
            Engine::Mysql => ["mysqlbinlog", "mariadb-binlog"],
            _ => ["mariadb-binlog", "mysqlbinlog"],
        };
        find_tool(&names, self.source.bin_dir.as_deref())
    }

    /// Reads the closed binlog `name` from the server over the replication
    /// protocol, raw, into the folder `dir`; returns the file.
    pub fn fetch_binlog(&self, name: &str, dir: &std::path::Path) -> Result<std::path::PathBuf> {
        let prefix = format!("{}/", dir.display());
        self.tool_at(&self.binlog_tool()?)?
            .args(["--read-from-remote-server", "--raw"])
            .arg(format!("--result-file={prefix}"))
            .arg("--")
            .arg(name)
            .output()
            .with_context(|| {
                format!(
                    "cannot read binlog {name} from {}",
                    self.source.describe(self.engine)
                )
            })?;
        let file = dir.join(name);
        anyhow::ensure!(file.is_file(), "the binlog tool wrote no {name}");
        Ok(file)
    }

    /// Replays one archived binlog file (its bytes in `data`) into the
    /// server through the sandboxed client: from `start` (the dump's
    /// position, for its file), up to `stop` (whole seconds, UTC), only
    /// `database`'s events, renamed to `into`.
    ///
    /// Without `apply`, the file is only decoded and checked: it must decode
    /// to its end and hold no client-side command.
    #[allow(clippy::too_many_arguments)]
    pub fn replay_binlog(
        &mut self,
        data: &[u8],
        start: Option<u64>,
        stop: Option<chrono::DateTime<chrono::Utc>>,
        database: &str,
        into: &str,
        apply: bool,
    ) -> Result<()> {
        let flag = self.client_commands_off()?;
        let mut decoder = Tool::new(&self.binlog_tool()?).env("TZ", "UTC");
        if let Some(p) = start {
            decoder = decoder.arg(format!("--start-position={p}"));
        }
        if let Some(t) = stop {
            decoder = decoder.arg(format!("--stop-datetime={}", t.format("%Y-%m-%d %H:%M:%S")));
        }
        if into != database {
            decoder = decoder.arg(format!("--rewrite-db={database}->{into}"));
        }
        // The filter reads the names as the binlog has them, before the rewrite.
        decoder = decoder.arg(format!("--database={database}")).arg("-");
        let (mut child, mut stdin, mut stdout) = decoder.spawn_duplex()?;
        let mut client = if apply {
            Some(
                self.tool(false)?
                    .arg(flag)
                    .arg("--binary-mode")
                    .spawn_writer()?,
            )
        } else {
            None
        };
        let owned = data.to_vec();
        let feeder = std::thread::spawn(move || {
            let r = std::io::Write::write_all(&mut stdin, &owned);
            drop(stdin);
            r
        });
        let mut check = ClientCommandCheck::default();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = std::io::Read::read(&mut stdout, &mut buf)
                .context("cannot read the decoded binlog")?;
            if n == 0 {
                break;
            }
            check.update(&buf[..n]);
            if let Some(c) = &mut client {
                std::io::Write::write_all(c, &buf[..n])
                    .context("cannot replay the binlog into the client")?;
            }
        }
        let fed = feeder
            .join()
            .map_err(|_| anyhow::anyhow!("the binlog feeder stopped"))?;
        child.finish()?;
        fed.context("cannot hand the binlog to its decoder")?;
        check
            .finish()
            .map_err(|why| anyhow::anyhow!("refusing to replay the binlog: {why}"))?;
        if let Some(c) = client {
            c.finish()?;
        }
        Ok(())
    }
}

impl Mysql {
    /// A connector for `source`.
    pub fn new(engine: Engine, source: ServerConfig) -> Result<Mysql> {
        let password = source.password()?;
        Ok(Mysql {
            engine,
            source,
            password,
            no_commands: None,
            position: Arc::new(Mutex::new(None)),
        })
    }

    fn names(&self, dump: bool) -> [&'static str; 2] {
        match (self.engine, dump) {
            (Engine::Mysql, true) => ["mysqldump", "mariadb-dump"],
            (Engine::Mysql, false) => ["mysql", "mariadb"],
            (_, true) => ["mariadb-dump", "mysqldump"],
            (_, false) => ["mariadb", "mysql"],
        }
    }

    fn tool_path(&self, dump: bool) -> Result<PathBuf> {
        find_tool(&self.names(dump), self.source.bin_dir.as_deref())
    }

    fn tool(&self, dump: bool) -> Result<Tool> {
        self.tool_at(&self.tool_path(dump)?)
    }

    /// `path` (a client tool) with the connection: password, host, port,
    /// user and TLS.
    fn tool_at(&self, path: &std::path::Path) -> Result<Tool> {
        let dump = !path
            .file_name()
            .is_some_and(|n| n == "mariadb" || n == "mysql");
        let mut t = Tool::new(path);
        // The password travels in an option file on an unnamed pipe, which
        // must be the first argument.
        match &self.password {
            Some(password) => {
                let content = format!("[client]\npassword={}\n", option_value(password.expose()));
                let (tool, path) = t.secret_fd(content.as_bytes())?;
                t = tool.arg(format!("--defaults-extra-file={path}"));
            }
            None => t = t.inherit("MYSQL_PWD"),
        }
        if let Some(h) = &self.source.host {
            t = t.arg(format!("--host={h}"));
        }
        if let Some(p) = self.source.port {
            t = t.arg(format!("--port={p}"));
        }
        if let Some(u) = &self.source.user {
            t = t.arg(format!("--user={u}"));
        }
        if !dump {
            t = t.arg("--connect-timeout=15");
        }
        if let Some(tls) = &self.source.tls {
            t = t.args(self.tls_args(tls, path)?);
        }
        Ok(t)
    }

    /// The client flags for `tls` ([`tls_flags`]); which kind of client
    /// `tool` is, its `--version` says.
    fn tls_args(&self, tls: &TlsConfig, tool: &std::path::Path) -> Result<Vec<String>> {
        let version = Tool::new(tool)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot ask `{}` for its version", tool.display()))?;
        Ok(tls_flags(version.contains("MariaDB"), tls))
    }

    /// The flag that stops the restore client from running client-side
    /// commands (`\\!`, `system`, `source`) found in a dump: MariaDB's
    /// `--sandbox`, MySQL's `--commands=OFF`. A client with neither cannot
    /// restore safely, so the restore is refused.
    fn client_commands_off(&mut self) -> Result<&'static str> {
        let path = self.tool_path(false)?;
        let help = Tool::new(&path)
            .arg("--help")
            .output()
            .with_context(|| format!("cannot ask `{}` which options it has", path.display()))?;
        let flag = if help.contains("--sandbox") {
            "--sandbox"
        } else if help.contains("--commands") {
            "--commands=OFF"
        } else {
            anyhow::bail!(
                "`{}` can run client-side commands from a dump and has no option to turn them off; \
                 restoring through it would let a backup run commands on this host. Install a client \
                 with `--sandbox` (MariaDB 10.5.25, 10.6.18, 10.11.8, 11.0.6 or newer) or `--commands` \
                 (MySQL 8.0.43, 8.4.6 or newer) and point `bin_dir` at it",
                path.display()
            );
        };
        self.no_commands = Some(flag);
        Ok(flag)
    }

    /// `--ignore-table`, `--ignore-table-data` and `--no-data` for one
    /// database's dump (a table named without its database is in `db`).
    fn excluded(&self, db: &str) -> Vec<String> {
        let s = &self.source;
        let qualified = |t: &String| {
            if t.contains('.') {
                t.clone()
            } else {
                format!("{db}.{t}")
            }
        };
        let mut args: Vec<String> = s
            .exclude_tables
            .iter()
            .map(|t| format!("--ignore-table={}", qualified(t)))
            .collect();
        args.extend(
            s.exclude_table_data
                .iter()
                .map(|t| format!("--ignore-table-data={}", qualified(t))),
        );
        if s.schema_only {
            args.push("--no-data".to_string());
        }
        args
    }

    /// `--init-command` that bounds the session's lock waits.
    fn lock_wait(&self) -> Option<String> {
        self.source.lock_wait_timeout().map(|t| {
            format!(
                "--init-command=SET SESSION lock_wait_timeout={}",
                t.as_secs().max(1)
            )
        })
    }

    /// Runs one statement and returns its rows (tab-separated columns).
    fn query(&self, sql: &str) -> Result<Vec<String>> {
        self.query_with(self.tool(false)?, sql)
    }

    /// A statement for sizes, which gives up after a moment behind a
    /// metadata lock: sizes are for people, and must not keep a backup or
    /// `inspect` waiting.
    fn size_query(&self, sql: &str) -> Result<Vec<String>> {
        let tool = self
            .tool(false)?
            .arg("--init-command=SET SESSION lock_wait_timeout=2");
        self.query_with(tool, sql)
    }

    fn query_with(&self, tool: Tool, sql: &str) -> Result<Vec<String>> {
        let out = tool
            .args(["--batch", "--skip-column-names", "--raw", "--execute"])
            .arg(sql)
            .output()
            .with_context(|| {
                format!(
                    "cannot query {} at {}",
                    self.engine,
                    self.source.describe(self.engine)
                )
            })?;
        Ok(out.lines().map(str::to_string).collect())
    }
}

impl Connector for Mysql {
    fn preflight(&self) -> Vec<anyhow::Error> {
        [true, false]
            .into_iter()
            .filter_map(|dump| find_tool(&self.names(dump), self.source.bin_dir.as_deref()).err())
            .collect()
    }

    fn probe(&mut self) -> Result<ServerInfo> {
        let tool = self.tool_path(true)?;
        let tool_version = Tool::new(&tool)
            .arg("--version")
            .output()?
            .trim()
            .to_string();
        let version = self
            .query("select version()")?
            .into_iter()
            .next()
            .unwrap_or_default();
        let name = tool
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(ServerInfo {
            server_version: Some(version),
            tool: name,
            tool_version: Some(tool_version),
        })
    }

    fn plan(&mut self) -> Result<Vec<DumpItem>> {
        let names: Vec<String> = match self.source.databases() {
            Databases::List(list) => list.clone(),
            Databases::All => self
                .query("show databases")?
                .into_iter()
                .filter(|n| !SYSTEM_SCHEMAS.contains(&n.as_str()))
                .filter(|n| !self.source.exclude_databases.contains(n))
                .collect(),
        };
        Ok(DumpItem::each(names, DumpFormat::MysqlSql))
    }

    fn dump(&mut self, item: &DumpItem) -> Result<(Box<dyn DumpSource>, Box<dyn DumpCheck>)> {
        let db = item.database_name()?;
        let tool = self.tool(true)?;
        let name = if tool.name().starts_with("mariadb") {
            "mariadb-dump"
        } else {
            "mysqldump"
        };
        let mut tool = tool.args([
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--default-character-set=utf8mb4",
        ]);
        if self.source.binlog {
            // The snapshot's binlog position, as comments.
            tool = tool.arg("--master-data=2");
            if name == "mariadb-dump" {
                tool = tool.arg("--gtid");
            }
        }
        let child = tool
            .args(self.excluded(db))
            .args(&self.source.dump_args)
            .arg("--")
            .arg(db)
            .spawn_reader()?;
        if !self.source.binlog {
            return Ok((Box::new(child), dump_end_check(name)));
        }
        *self.position.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let check = Both(
            dump_end_check(name),
            Box::new(PositionCheck::new(self.position.clone())),
        );
        Ok((Box::new(child), Box::new(check)))
    }

    fn binlog_position(&mut self, item: &DumpItem) -> Result<Option<BinlogPosition>> {
        if !self.source.binlog {
            return Ok(None);
        }
        let found = self
            .position
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match found {
            Some(p) => Ok(Some(p)),
            None => anyhow::bail!(
                "the dump of `{}` holds no binlog position, which `binlog: true` needs: the server at {} must \
                 run with `log_bin`, and the user needs the RELOAD and BINLOG MONITOR (REPLICATION CLIENT) privileges",
                crate::util::printable(item.database.as_deref().unwrap_or("")),
                self.source.describe(self.engine)
            ),
        }
    }

    fn probe_restore(&mut self, _dumped_with: Option<&str>) -> Result<()> {
        self.client_commands_off()?;
        self.query("select 1")?;
        Ok(())
    }

    fn inspect(&mut self, database: &str) -> Result<TargetState> {
        let exists = self.query(&format!(
            "select schema_name from information_schema.schemata where schema_name = {}",
            literal(database)
        ))?;
        if exists.is_empty() {
            return Ok(TargetState::Missing);
        }
        let rows = self.query(&format!(
            "select table_name from information_schema.tables where table_schema = {0} \
             union all select concat(routine_name, '()') from information_schema.routines where routine_schema = {0} \
             union all select concat('event ', event_name) from information_schema.events where event_schema = {0} \
             order by 1",
            literal(database)
        ))?;
        Ok(TargetState::from_objects(&rows))
    }

    fn restore(
        &mut self,
        artifact: &DumpItem,
        database: &str,
        _opts: RestoreOptions,
    ) -> Result<Box<dyn RestoreSink>> {
        artifact.expect(DumpFormat::MysqlSql)?;
        let no_commands = match self.no_commands {
            Some(flag) => flag,
            None => self.client_commands_off()?,
        };
        let mut tool = self.tool(false)?;
        if let Some(set) = self.lock_wait() {
            tool = tool.arg(set);
        }
        let child = tool
            .args([no_commands, "--batch", "--default-character-set=utf8mb4"])
            .arg(format!("--database={database}"))
            .args(&self.source.restore_args)
            .spawn_writer()?;
        Ok(Box::new(ToolSink { child }))
    }

    fn create(&mut self, database: &str) -> Result<bool> {
        match self.query(&format!("create database {}", ident(database))) {
            Ok(_) => Ok(true),
            // ER_DB_CREATE_EXISTS
            Err(e) if format!("{e:#}").contains("1007") => Ok(false),
            Err(e) => Err(e.context(format!("cannot create database `{database}`"))),
        }
    }

    fn estimate(&mut self, item: &DumpItem) -> Result<Option<u64>> {
        let Some(db) = &item.database else {
            return Ok(None);
        };
        if self.source.schema_only {
            return Ok(None);
        }
        // Data without indexes: what the dump's INSERTs hold.
        let rows = self.size_query(&format!(
            "select coalesce(sum(data_length), 0) from information_schema.tables \
             where table_schema = {} and table_type = 'BASE TABLE'",
            literal(db)
        ))?;
        Ok(rows.first().and_then(|r| r.trim().parse().ok()))
    }

    fn survey(&mut self, plan: &[DumpItem]) -> Result<Survey> {
        let tool = self.tool_path(true)?;
        let tool_version = Tool::new(&tool).arg("--version").output()?;
        let mut survey = Survey {
            server_version: self.query("select version()")?.into_iter().next(),
            client: Some(format!("{} ({})", tool.display(), tool_version.trim())),
            ..Survey::default()
        };
        let status =
            self.query("show session status where variable_name in ('Ssl_version', 'Ssl_cipher')")?;
        let value = |name: &str| {
            status
                .iter()
                .filter_map(|r| r.split_once('\t'))
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let (version, cipher) = (value("Ssl_version"), value("Ssl_cipher"));
        survey.tls = Some(TlsInUse {
            in_use: cipher.is_some(),
            detail: cipher.map(|c| {
                format!("{} {c}", version.unwrap_or_default())
                    .trim()
                    .to_string()
            }),
        });
        let names: Vec<&str> = plan.iter().filter_map(|i| i.database.as_deref()).collect();
        if names.is_empty() {
            return Ok(survey);
        }
        let list = names
            .iter()
            .map(|n| literal(n))
            .collect::<Vec<_>>()
            .join(", ");
        let sizes = self.size_query(&format!(
            "select table_schema, coalesce(sum(data_length + index_length), 0) from information_schema.tables \
             where table_schema in ({list}) group by table_schema"
        ))?;
        survey.databases = names
            .iter()
            .map(|db| DatabaseSize {
                name: db.to_string(),
                bytes: Some(
                    sizes
                        .iter()
                        .filter_map(|r| Survey::row(r, '\t'))
                        .find(|(name, _)| name == db)
                        .map_or(0, |(_, n)| n),
                ),
                keys: None,
            })
            .collect();
        let tables = self.size_query(&format!(
            "select table_schema, table_name, data_length + index_length from information_schema.tables \
             where table_schema in ({list}) and table_type = 'BASE TABLE' order by 3 desc, 2 limit 10"
        ))?;
        survey.largest_tables = tables
            .iter()
            .filter_map(|r| {
                let (rest, bytes) = Survey::row(r, '\t')?;
                let (database, table) = rest.split_once('\t')?;
                Some(TableSize {
                    database: database.to_string(),
                    table: table.to_string(),
                    bytes,
                })
            })
            .collect();
        Ok(survey)
    }

    fn drop_created(&mut self, database: &str) -> Result<()> {
        self.query(&format!("drop database if exists {}", ident(database)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_commands_in_a_dump_are_found() {
        let check = |text: &str| {
            let mut c = ClientCommandCheck::default();
            for chunk in text.as_bytes().chunks(5) {
                c.update(chunk);
            }
            c.finish()
        };
        assert!(check("-- x\nINSERT INTO t VALUES ('a\\\\b');\n-- Dump completed\n").is_ok());
        for bad in [
            "x;\n\\! id\n",
            "x;\n  SYSTEM id\n",
            "source /etc/x.sql",
            "\\. /tmp/x\n",
        ] {
            assert!(
                check(bad).unwrap_err().contains("client-side command"),
                "{bad}"
            );
        }
    }

    #[test]
    fn option_file_values_are_escaped() {
        assert_eq!(option_value(r#"p@ss$word"x\y"#), r#""p@ss$word\"x\\y""#);
        assert_eq!(literal("a'b\\"), "convert(X'6127625c' using utf8mb4)");
        assert_eq!(ident("a`b"), "`a``b`");
    }

    #[test]
    fn tls_modes_map_to_each_clients_flags() {
        let flags = |mariadb, mode| {
            tls_flags(
                mariadb,
                &TlsConfig {
                    mode,
                    ..TlsConfig::default()
                },
            )
        };
        for (mode, mariadb, mysql) in [
            (TlsMode::Disable, &["--skip-ssl"][..], "--ssl-mode=DISABLED"),
            (TlsMode::Prefer, &[][..], "--ssl-mode=PREFERRED"),
            (TlsMode::Require, &["--ssl"][..], "--ssl-mode=REQUIRED"),
            (
                TlsMode::VerifyCa,
                &["--ssl", "--ssl-verify-server-cert"][..],
                "--ssl-mode=VERIFY_CA",
            ),
            (
                TlsMode::VerifyFull,
                &["--ssl", "--ssl-verify-server-cert"][..],
                "--ssl-mode=VERIFY_IDENTITY",
            ),
        ] {
            assert_eq!(flags(true, mode), mariadb, "MariaDB, {}", mode.as_str());
            assert_eq!(flags(false, mode), [mysql], "MySQL, {}", mode.as_str());
        }
    }

    #[test]
    fn tls_files_follow_the_mode_flags() {
        let tls = TlsConfig {
            mode: TlsMode::VerifyFull,
            ca_file: Some(PathBuf::from("/etc/db/ca.pem")),
            cert_file: Some(PathBuf::from("/etc/db/client.pem")),
            key_file: Some(PathBuf::from("/etc/db/client.key")),
            // PostgreSQL's alone: no flag.
            crl_file: Some(PathBuf::from("/etc/db/crl.pem")),
        };
        let files = [
            "--ssl-ca=/etc/db/ca.pem",
            "--ssl-cert=/etc/db/client.pem",
            "--ssl-key=/etc/db/client.key",
        ];
        assert_eq!(
            tls_flags(true, &tls),
            [&["--ssl", "--ssl-verify-server-cert"][..], &files].concat()
        );
        assert_eq!(
            tls_flags(false, &tls),
            [&["--ssl-mode=VERIFY_IDENTITY"][..], &files].concat()
        );
        // Only the files given.
        let ca_only = TlsConfig {
            mode: TlsMode::Require,
            ca_file: Some(PathBuf::from("/etc/db/ca.pem")),
            ..TlsConfig::default()
        };
        assert_eq!(
            tls_flags(true, &ca_only),
            ["--ssl", "--ssl-ca=/etc/db/ca.pem"]
        );
        assert_eq!(
            tls_flags(false, &ca_only),
            ["--ssl-mode=REQUIRED", "--ssl-ca=/etc/db/ca.pem"]
        );
    }
}
