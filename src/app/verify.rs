//! `verify`: re-read stored objects and prove they restore-able without a database.
//!
//! Each object is read whole: its size and sha256 must match the manifest, it
//! must decompress to its end (a truncated zstd or gzip stream fails here) to
//! the recorded raw size, and the dump inside must be complete: a PostgreSQL
//! custom archive is parsed to its last data block and listed by
//! `pg_restore --list`, SQL scripts must end with their tool's end line, and
//! a SQLite file must pass `PRAGMA integrity_check`. Where the storage
//! retains an object (S3 Object Lock), the result says until when.

use std::io::{self, Write};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::catalog::manifest::{Artifact, DumpFormat, Entry, join_key};
use crate::connector::DumpCheck;
use crate::connector::sqlite_integrity;
use crate::pipeline::crypt::Keys;
use crate::pipeline::{self, Expected};
use crate::storage::Storage;
use crate::util::process::ChildWriter;

/// The result for one object.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// The object's key.
    pub key: String,
    /// Stored bytes read.
    pub stored_size: u64,
    /// Bytes after decompression.
    pub raw_size: u64,
    /// What was checked beyond size and sha256.
    pub checks: Vec<String>,
    /// Until when the storage retains the object (S3 Object Lock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Where verify finds its tools and puts its temp files (the job's
/// `bin_dir` and `temp_dir`; PATH and the system temp folder when unset).
#[derive(Debug, Clone, Default)]
pub struct Tools {
    /// The folder of pg_restore.
    pub bin_dir: Option<std::path::PathBuf>,
    /// The folder for the SQLite copy.
    pub temp_dir: Option<std::path::PathBuf>,
}

/// Verifies every object of a backup. An encrypted backup without keys is
/// checked for size and sha256 only (the sha256 covers the encrypted bytes).
pub fn run(
    entry: &Entry,
    storage: &dyn Storage,
    keys: &Keys,
    tools: &Tools,
) -> Result<Vec<Checked>> {
    let m = &entry.manifest;
    m.check_artifacts()?;
    let mut out = Vec::new();
    for a in &m.artifacts {
        let key = join_key(&[&entry.dir, &a.name]);
        if m.encryption.is_some() && keys.is_empty() {
            let mut reader = storage
                .open(&key)
                .with_context(|| format!("cannot read {key}"))?;
            let expected = Expected {
                size: a.stored_size,
                sha256: a.sha256.clone(),
                raw_size: a.raw_size,
            };
            pipeline::check_object(&mut reader, &key, &expected)?;
            let retained_until = retained_until(storage, &key)?;
            out.push(Checked {
                key,
                stored_size: a.stored_size,
                raw_size: a.raw_size,
                checks: vec![
                    "size".into(),
                    "sha256".into(),
                    "content not checked: encrypted, and no identity given".into(),
                ],
                retained_until,
            });
            continue;
        }
        let mut reader = storage
            .open(&key)
            .with_context(|| format!("cannot read {key}"))?;
        let mut sink = Sink::new(a, entry.manifest.dump_tool_version.as_deref(), tools)?;
        let expected = Expected {
            size: a.stored_size,
            sha256: a.sha256.clone(),
            raw_size: a.raw_size,
        };
        let raw = pipeline::unpack(
            &mut reader,
            &key,
            m.compression,
            m.encryption.is_some().then_some(keys),
            &expected,
            &mut sink,
            0,
        )?;
        let mut checks = vec![
            "size".to_string(),
            "sha256".to_string(),
            format!("{} stream", m.compression.as_str()),
        ];
        checks.extend(
            sink.finish()
                .with_context(|| format!("{key} holds an incomplete or damaged dump"))?,
        );
        out.push(Checked {
            retained_until: retained_until(storage, &key)?,
            key,
            stored_size: a.stored_size,
            raw_size: raw,
            checks,
        });
    }
    Ok(out)
}

/// Until when `storage` retains `key`.
fn retained_until(
    storage: &dyn Storage,
    key: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    storage
        .retained_until(key)
        .with_context(|| format!("cannot read the retention of {key}"))
}

/// Receives the decompressed dump and checks its content.
struct Sink {
    check: Option<Box<dyn DumpCheck>>,
    check_name: &'static str,
    /// A check the restore runs first (the psql script check).
    precheck: Option<Box<dyn DumpCheck>>,
    lister: Option<ChildWriter>,
    listed: bool,
    sqlite: Option<tempfile::NamedTempFile>,
}

impl Sink {
    fn new(a: &Artifact, dumped_with: Option<&str>, tools: &Tools) -> Result<Sink> {
        let mut sink = Sink {
            check: None,
            check_name: "",
            precheck: crate::connector::verify_precheck(a.format),
            lister: None,
            listed: false,
            sqlite: None,
        };
        // The format's own content check, from its engine.
        if let Some((check, name)) = crate::connector::content_check(a.format) {
            sink.check = Some(check);
            sink.check_name = name;
        }
        match a.format {
            DumpFormat::PgCustom => {
                match crate::connector::archive_lister(tools.bin_dir.as_deref(), dumped_with) {
                    Ok(lister) => sink.lister = Some(lister),
                    Err(e) => tracing::warn!(error = %e, "skipping `pg_restore --list`"),
                }
            }
            DumpFormat::SqliteDb => {
                let mut b = tempfile::Builder::new();
                b.prefix(".dbkeep-verify-");
                sink.sqlite = Some(match &tools.temp_dir {
                    Some(dir) => b.tempfile_in(dir),
                    None => b.tempfile(),
                }?);
            }
            _ => {}
        }
        Ok(sink)
    }

    fn finish(self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        if let Some(mut check) = self.precheck {
            check.finish().map_err(|e| anyhow::anyhow!(e))?;
            done.push("no client-side commands".to_string());
        }
        if let Some(mut check) = self.check {
            check.finish().map_err(|e| anyhow::anyhow!(e))?;
            done.push(self.check_name.to_string());
        }
        if let Some(lister) = self.lister {
            lister
                .finish()
                .context("`pg_restore --list` cannot read the archive")?;
            done.push("pg_restore --list".to_string());
        } else if self.listed {
            done.push("pg_restore --list".to_string());
        }
        if let Some(file) = self.sqlite {
            file.as_file().sync_all()?;
            sqlite_integrity(file.path())?;
            done.push("sqlite integrity_check".to_string());
        }
        Ok(done)
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(c) = &mut self.check {
            c.update(buf);
        }
        if let Some(c) = &mut self.precheck {
            c.update(buf);
        }
        if let Some(l) = &mut self.lister
            && let Err(e) = l.write_all(buf)
        {
            // pg_restore --list may stop reading once it has the TOC.
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(e);
            }
            let lister = self.lister.take();
            if let Some(l) = lister
                && let Err(e) = l.finish()
            {
                return Err(io::Error::other(format!(
                    "`pg_restore --list` cannot read the archive: {e:#}"
                )));
            }
            self.listed = true;
        }
        if let Some(f) = &mut self.sqlite {
            f.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
