//! Restoring a backup: verify every object first, then inspect every target,
//! then stream.
//!
//! The guarantee that a corrupt or truncated backup never changes the target
//! comes from order: each object's size and sha256 are checked against the
//! manifest by reading it whole *before* any database is created or any byte
//! reaches a restore tool. The streaming pass checks the checksum again and
//! holds back the end of the stream until it matches, and PostgreSQL restores
//! run in one transaction, so a change between the passes rolls back too.

use anyhow::{Context, Result};

use crate::catalog::manifest::{Artifact, ArtifactKind, Entry, join_key};
use crate::connector::{Connector, RestoreOptions, TargetState};
use crate::pipeline::crypt::Keys;
use crate::pipeline::{self, Expected};
use crate::storage::Storage;
use crate::util::printable;

/// What to restore, and where.
pub struct Plan<'a> {
    /// The backup.
    pub entry: &'a Entry,
    /// The storage it is read from.
    pub storage: &'a dyn Storage,
    /// Only this database of the backup.
    pub database: Option<String>,
    /// Restore the selected database under this name.
    pub to_database: Option<String>,
    /// Skip the globals artifact.
    pub no_globals: bool,
    /// Target handling.
    pub options: RestoreOptions,
    /// Keys for an encrypted backup (may be empty).
    pub keys: &'a Keys,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// (artifact, database it went to).
    pub items: Vec<(String, String)>,
}

fn expected(a: &Artifact) -> Expected {
    Expected {
        size: a.stored_size,
        sha256: a.sha256.clone(),
        raw_size: a.raw_size,
    }
}

/// Feeds a restore pre-check from `unpack`.
struct CheckSink<'a>(&'a mut dyn crate::connector::DumpCheck);

impl std::io::Write for CheckSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Restores `plan` through `conn`.
pub fn run(plan: &Plan<'_>, conn: &mut dyn Connector) -> Result<Restored> {
    let m = &plan.entry.manifest;
    m.check_artifacts()?;
    if m.artifacts.iter().any(|a| a.kind == ArtifactKind::Cluster) {
        anyhow::bail!(
            "backup {} is a physical base backup of a PostgreSQL cluster: restore it into a data directory with              `dbkeep restore {} --data-dir DIR` (and `--to-time`, `--to-lsn` or `--to-xid` for a point in time)",
            printable(&m.id),
            printable(&m.job)
        );
    }
    let mut chosen: Vec<&Artifact> = m
        .artifacts
        .iter()
        .filter(|a| match (&plan.database, a.kind) {
            (Some(db), ArtifactKind::Database) => a.database.as_deref() == Some(db.as_str()),
            (Some(_), ArtifactKind::Globals) => false,
            (None, ArtifactKind::Globals) => !plan.no_globals,
            (None, ArtifactKind::Database) => true,
            (_, ArtifactKind::Cluster) => false,
        })
        .collect();
    if let Some(db) = &plan.database
        && chosen.is_empty()
    {
        anyhow::bail!(
            "backup {} holds no database `{db}` (it holds: {})",
            m.id,
            m.databases.join(", ")
        );
    }
    let databases = chosen
        .iter()
        .filter(|a| a.kind == ArtifactKind::Database)
        .count();
    if plan.to_database.is_some() && databases != 1 {
        anyhow::bail!(
            "backup {} holds {databases} databases; choose one with `--database NAME` to restore it under another name",
            m.id
        );
    }
    // Globals (roles) first, so database objects find their owners.
    chosen.sort_by_key(|a| a.kind != ArtifactKind::Globals);

    // 1. Every object must match its manifest, and decrypt, before anything is touched.
    if let Some(enc) = &m.encryption
        && plan.keys.is_empty()
    {
        let to = if enc.passphrase {
            "a passphrase".to_string()
        } else {
            enc.recipients.join(", ")
        };
        anyhow::bail!(
            "backup {} is encrypted with age (to {to}): pass `--identity FILE`, set `identity_file` under the job's \
             `encryption.age`, or give the passphrase with `--passphrase-file` or {}",
            m.id,
            crate::pipeline::crypt::PASSPHRASE_ENV
        );
    }
    for a in &chosen {
        let key = join_key(&[&plan.entry.dir, &a.name]);
        tracing::info!(
            key,
            size = a.stored_size,
            "verifying checksum before restore"
        );
        let mut reader = plan
            .storage
            .open(&key)
            .with_context(|| format!("cannot read {key}"))?;
        if let Some(mut check) = crate::connector::restore_precheck(a.format) {
            // The whole content must pass before any of it reaches the tool.
            let keys = m.encryption.is_some().then_some(plan.keys);
            let mut sink = CheckSink(&mut *check);
            pipeline::unpack(
                &mut reader,
                &key,
                m.compression,
                keys,
                &expected(a),
                &mut sink,
                0,
            )?;
            check
                .finish()
                .map_err(|why| anyhow::anyhow!("refusing to restore {key}: {why}"))?;
            continue;
        }
        pipeline::check_object(&mut reader, &key, &expected(a))?;
        if m.encryption.is_some() {
            let reader = plan
                .storage
                .open(&key)
                .with_context(|| format!("cannot read {key}"))?;
            plan.keys.open(reader, &key)?;
        }
    }

    // 2. Tools and targets.
    conn.probe_restore(m.dump_tool_version.as_deref())?;
    let target_of = |a: &Artifact| -> String {
        plan.to_database
            .clone()
            .or_else(|| a.database.clone())
            .unwrap_or_default()
    };
    // A first look at every target, so that nothing is restored when one of
    // them would be refused.
    if !plan.options.force {
        let mut refused = Vec::new();
        for a in chosen.iter().filter(|a| a.kind == ArtifactKind::Database) {
            let db = target_of(a);
            if let TargetState::NonEmpty(what) = conn.inspect(&db)? {
                refused.push(format!("`{}` holds {what}", printable(&db)));
            }
        }
        if !refused.is_empty() {
            anyhow::bail!("{}", refusal(&refused.join("; ")));
        }
    }

    // 3. Stream. Whether a database may be dropped after a failure is
    // decided by the connector's own create, right before its restore: a
    // database that appeared since the first look is not ours to drop.
    let mut restored = Vec::new();
    for a in &chosen {
        let key = join_key(&[&plan.entry.dir, &a.name]);
        let db = target_of(a);
        let created = if a.kind == ArtifactKind::Database {
            let created = conn.create(&db)?;
            if !created
                && !plan.options.force
                && let TargetState::NonEmpty(what) = conn.inspect(&db)?
            {
                anyhow::bail!("{}", refusal(&format!("`{}` holds {what}", printable(&db))));
            }
            created
        } else {
            false
        };
        tracing::info!(key, database = %printable(&db), created, "restoring");
        let result = restore_one(plan, conn, a, &key, &db);
        if let Err(e) = result {
            if created
                && a.kind == ArtifactKind::Database
                && let Err(drop_err) = conn.drop_created(&db)
            {
                tracing::warn!(database = db, error = %drop_err, "cannot remove the database this restore created");
            }
            return Err(e.context(format!("restore of {} into `{db}` failed", a.name)));
        }
        restored.push((a.name.clone(), db));
    }
    Ok(Restored { items: restored })
}

fn refusal(what: &str) -> String {
    format!(
        "refusing to restore into a non-empty target: {what}; restore into a new database with `--to-database NAME`, \
         or pass `--force` to restore over it"
    )
}

fn restore_one(
    plan: &Plan<'_>,
    conn: &mut dyn Connector,
    a: &Artifact,
    key: &str,
    db: &str,
) -> Result<()> {
    let m_keys = plan
        .entry
        .manifest
        .encryption
        .is_some()
        .then_some(plan.keys);
    let mut sink = conn.restore(&a.item(), db, plan.options)?;
    let mut reader = plan
        .storage
        .open(key)
        .with_context(|| format!("cannot read {key}"))?;
    let hold = conn.hold_back();
    match pipeline::unpack(
        &mut reader,
        key,
        plan.entry.manifest.compression,
        m_keys,
        &expected(a),
        &mut sink,
        hold,
    ) {
        Ok(_) => sink.finish(),
        Err(e) if e.downcast_ref::<pipeline::SinkError>().is_some() => {
            // The tool stopped reading: its own error says why.
            match sink.finish() {
                Err(tool) => Err(tool),
                Ok(()) => Err(e),
            }
        }
        Err(e) => {
            sink.abort();
            Err(e)
        }
    }
}
