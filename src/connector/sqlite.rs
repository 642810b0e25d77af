//! SQLite: a consistent copy of a live database through the online backup
//! API, checked with `PRAGMA integrity_check` before it is stored.
//!
//! The copy is the one temp file the format needs. A restore writes a temp
//! file beside the target, checks its integrity, and renames it into place,
//! so the target is either the old file or the complete new one.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DumpCheck;
use super::DumpFormat;
use super::{
    Connector, DumpItem, DumpSource, RestoreOptions, RestoreSink, ServerInfo, TargetState,
};
use super::{DatabaseSize, Survey, TableSize};

/// `type: sqlite`: a database file, copied with SQLite's online backup API.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file.
    pub path: PathBuf,
}

/// The first 16 bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// A SQLite database file.
pub struct Sqlite {
    path: PathBuf,
    temp_dir: Option<PathBuf>,
}

impl Sqlite {
    /// A connector for the file at `path`.
    pub fn new(path: PathBuf, temp_dir: Option<PathBuf>) -> Sqlite {
        Sqlite { path, temp_dir }
    }
}

/// Runs `PRAGMA integrity_check`; Err with its findings unless it says `ok`.
pub fn integrity_check(conn: &Connection, what: &Path) -> Result<()> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if rows == ["ok"] {
        return Ok(());
    }
    let shown: Vec<&str> = rows.iter().take(5).map(String::as_str).collect();
    anyhow::bail!(
        "integrity check of {} failed: {}",
        what.display(),
        shown.join("; ")
    )
}

/// Copies the live database at `src` into `dst` with the online backup API.
fn online_copy(src: &Path, dst: &Path) -> Result<()> {
    let source = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open SQLite database {}", src.display()))?;
    source.busy_timeout(Duration::from_secs(30))?;
    let mut dest =
        Connection::open(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut dest)?;
        // One step copies every page under one read transaction, so writers
        // in WAL mode carry on and the copy is one committed state.
        loop {
            crate::util::signal::check()?;
            match backup
                .step(-1)
                .with_context(|| format!("cannot copy SQLite database {}", src.display()))?
            {
                rusqlite::backup::StepResult::Done => break,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    // A self-contained file: no -wal needed to open it.
    dest.pragma_update(None, "journal_mode", "DELETE")?;
    integrity_check(&dest, src)?;
    dest.close().map_err(|(_, e)| e)?;
    Ok(())
}

/// The copy, streamed from its temp file, which is removed afterwards.
struct CopyReader {
    file: File,
    _temp: tempfile::TempPath,
}

impl Read for CopyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl DumpSource for CopyReader {
    fn finish(self: Box<Self>) -> Result<String> {
        Ok(String::new())
    }
}

/// The stream must be a SQLite file: the magic header, whole pages.
struct HeaderCheck {
    head: Vec<u8>,
    size: u64,
}

impl DumpCheck for HeaderCheck {
    fn update(&mut self, bytes: &[u8]) {
        if self.head.len() < 100 {
            let need = (100 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..need]);
        }
        self.size += bytes.len() as u64;
    }

    fn finish(&mut self) -> Result<(), String> {
        if self.size == 0 {
            return Err("the SQLite copy is empty".into());
        }
        if self.head.len() < 100 || &self.head[..16] != MAGIC {
            return Err("the SQLite copy does not start with the SQLite header".into());
        }
        let page = u32::from(u16::from_be_bytes([self.head[16], self.head[17]]));
        let page = if page == 1 { 65536 } else { u64::from(page) };
        if page == 0 || !self.size.is_multiple_of(page) {
            return Err(format!(
                "the SQLite copy is {} bytes, not a whole number of {page}-byte pages",
                self.size
            ));
        }
        Ok(())
    }
}

fn temp_in(dir: &Path, prefix: &str) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))
}

impl Connector for Sqlite {
    fn preflight(&self) -> Vec<anyhow::Error> {
        if self.path.is_file() {
            Vec::new()
        } else {
            vec![anyhow::anyhow!("{} does not exist", self.path.display())]
        }
    }

    fn probe(&mut self) -> Result<ServerInfo> {
        if !self.path.is_file() {
            anyhow::bail!(
                "SQLite database {} does not exist; check `path`",
                self.path.display()
            );
        }
        Ok(ServerInfo {
            server_version: Some(rusqlite::version().to_string()),
            tool: "sqlite-online-backup".into(),
            tool_version: Some(format!("SQLite {}", rusqlite::version())),
        })
    }

    fn plan(&mut self) -> Result<Vec<DumpItem>> {
        let name = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "database".into());
        Ok(vec![DumpItem::database(name, DumpFormat::SqliteDb)])
    }

    fn dump(&mut self, _item: &DumpItem) -> Result<(Box<dyn DumpSource>, Box<dyn DumpCheck>)> {
        let dir = self.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let temp = temp_in(&dir, ".dbkeep-sqlite-")?.into_temp_path();
        online_copy(&self.path, &temp)?;
        let file = File::open(&temp)
            .with_context(|| format!("cannot open the copy {}", temp.display()))?;
        Ok((
            Box::new(CopyReader { file, _temp: temp }),
            Box::new(HeaderCheck {
                head: Vec::new(),
                size: 0,
            }),
        ))
    }

    fn probe_restore(&mut self, _dumped_with: Option<&str>) -> Result<()> {
        let dir = parent(&self.path);
        if !dir.is_dir() {
            anyhow::bail!(
                "cannot restore to {}: folder {} does not exist",
                self.path.display(),
                dir.display()
            );
        }
        Ok(())
    }

    fn inspect(&mut self, _database: &str) -> Result<TargetState> {
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TargetState::Missing),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        if meta.len() == 0 {
            return Ok(TargetState::Empty);
        }
        let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY);
        let names: rusqlite::Result<Vec<String>> = conn.and_then(|c| {
            let mut stmt = c.prepare(
                "select name from sqlite_schema where name not like 'sqlite_%' order by name",
            )?;
            stmt.query_map([], |r| r.get(0))?.collect()
        });
        match names {
            Ok(n) => Ok(TargetState::from_objects(&n)),
            Err(e) => Ok(TargetState::NonEmpty(format!(
                "a file that is not a readable SQLite database ({e})"
            ))),
        }
    }

    fn restore(
        &mut self,
        artifact: &DumpItem,
        _database: &str,
        opts: RestoreOptions,
    ) -> Result<Box<dyn RestoreSink>> {
        artifact.expect(DumpFormat::SqliteDb)?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = temp_in(parent(&self.path), &format!(".{name}.dbkeep-restore-"))?;
        Ok(Box::new(SqliteSink {
            temp,
            target: self.path.clone(),
            force: opts.force,
        }))
    }

    fn estimate(&mut self, _item: &DumpItem) -> Result<Option<u64>> {
        // The copy is the file, page for page.
        Ok(fs::metadata(&self.path).ok().map(|m| m.len()))
    }

    fn survey(&mut self, plan: &[DumpItem]) -> Result<Survey> {
        let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        let pages = |pragma: &str| -> Result<u64> {
            conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .with_context(|| format!("cannot read {}", self.path.display()))
        };
        let bytes = pages("page_count")? * pages("page_size")?;
        let tables: rusqlite::Result<Vec<(String, i64)>> = conn
            .prepare(
                "select coalesce(s.tbl_name, d.name), sum(d.pgsize) from dbstat d \
                 left join sqlite_schema s on s.name = d.name \
                 where d.name not like 'sqlite\\_%' escape '\\' group by 1 order by 2 desc, 1 limit 10",
            )
            .and_then(|mut stmt| stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect());
        let database = plan
            .first()
            .and_then(|i| i.database.clone())
            .unwrap_or_default();
        let mut survey = Survey {
            server_version: Some(format!("SQLite {}", rusqlite::version())),
            client: Some("built in (SQLite online backup API)".into()),
            databases: vec![DatabaseSize {
                name: database.clone(),
                bytes: Some(bytes),
                keys: None,
            }],
            integrity: Some(match integrity_check(&conn, &self.path) {
                Ok(()) => "ok".into(),
                Err(e) => format!("{e:#}"),
            }),
            ..Survey::default()
        };
        match tables {
            Ok(rows) => {
                survey.largest_tables = rows
                    .into_iter()
                    .map(|(table, bytes)| TableSize {
                        database: database.clone(),
                        table,
                        bytes: u64::try_from(bytes).unwrap_or(0),
                    })
                    .collect();
            }
            Err(e) => survey.notes.push(format!("cannot size the tables: {e}")),
        }
        Ok(survey)
    }

    fn drop_created(&mut self, _database: &str) -> Result<()> {
        Ok(())
    }

    fn hold_back(&self) -> usize {
        0
    }
}

/// The ids of other processes that hold `path` open (read from /proc).
fn holders(path: &Path) -> Vec<u32> {
    let Ok(want) = fs::canonicalize(path) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t == want))
        {
            found.push(pid);
        }
    }
    found
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Restores into a temp file beside the target, then renames it into place.
struct SqliteSink {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
    force: bool,
}

impl Write for SqliteSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

impl RestoreSink for SqliteSink {
    fn finish(self: Box<Self>) -> Result<()> {
        let SqliteSink {
            temp,
            target,
            force,
        } = *self;
        temp.as_file().sync_all()?;
        {
            let conn = Connection::open_with_flags(temp.path(), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            integrity_check(&conn, temp.path())?;
        }
        if force && target.exists() {
            // Fold the old file's WAL into it, so no stale -wal is applied to the new file.
            let open_by = holders(&target);
            if !open_by.is_empty() {
                tracing::warn!(
                    file = %target.display(),
                    pids = ?open_by,
                    "the database is in use: programs that hold it open keep using the old file; restart them"
                );
            }
            if let Ok(old) = Connection::open(&target) {
                let _ = old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
        }
        // The restored file keeps the old one's mode and owner.
        if let Ok(meta) = fs::metadata(&target) {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            fs::set_permissions(
                temp.path(),
                fs::Permissions::from_mode(meta.mode() & 0o7777),
            )
            .with_context(|| {
                format!(
                    "cannot give the restored file the mode of {}",
                    target.display()
                )
            })?;
            if let Err(e) =
                std::os::unix::fs::chown(temp.path(), Some(meta.uid()), Some(meta.gid()))
            {
                tracing::warn!(file = %target.display(), error = %e, "cannot give the restored file the old file's owner");
            }
        }
        temp.persist(&target)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot rename into {}", target.display()))?;
        for suffix in ["-wal", "-shm"] {
            let mut side = target.clone().into_os_string();
            side.push(suffix);
            let _ = fs::remove_file(side);
        }
        File::open(parent(&target)).and_then(|d| d.sync_all())?;
        Ok(())
    }

    fn abort(self: Box<Self>) {
        // Dropping the temp file removes it.
    }
}
