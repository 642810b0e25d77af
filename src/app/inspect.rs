//! `dbkeep inspect`: what a backup of a source would hold, read from the
//! server without writing anything and without a storage.

use anyhow::Result;
use serde::Serialize;

use crate::connector::{self, ArtifactKind, Engine, SourceConfig, Survey};

/// What `dbkeep inspect` prints.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// The engine.
    pub engine: Engine,
    /// Where the server is (no password), or the SQLite file.
    pub source: String,
    /// What the server said.
    #[serde(flatten)]
    pub survey: Survey,
    /// Whether a backup would also hold the server's roles and tablespaces.
    pub globals: bool,
    /// About how many bytes the dumps would be before compression, from the
    /// server's statistics; `None` when the engine does not tell.
    pub estimated_dump_bytes: Option<u64>,
}

/// Reads what a backup of `source` would hold. The connection is the one a
/// backup would open (its TLS, its tunnel, its client).
pub fn inspect(source: &SourceConfig) -> Result<Inspection> {
    let mut conn = connector::connect(source, None)?;
    conn.probe()?;
    let plan = conn.plan()?;
    let mut survey = conn.survey(&plan)?;
    let mut estimate: Option<u64> = None;
    for item in plan.iter().filter(|i| i.kind == ArtifactKind::Database) {
        match conn.estimate(item) {
            Ok(Some(n)) => *estimate.get_or_insert(0) += n,
            Ok(None) => {}
            Err(e) => survey.notes.push(format!(
                "cannot estimate the dump of `{}`: {e:#}",
                item.database.as_deref().unwrap_or_default()
            )),
        }
    }
    Ok(Inspection {
        engine: source.engine(),
        source: source.describe(),
        survey,
        globals: plan.iter().any(|i| i.kind == ArtifactKind::Globals),
        estimated_dump_bytes: estimate,
    })
}
