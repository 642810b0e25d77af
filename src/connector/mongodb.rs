//! MongoDB: `mongodump --archive` out, `mongorestore --archive` in.

use anyhow::Result;

use super::{Connector, DumpItem, DumpSource, NoCheck, RestoreOptions, RestoreSink, ServerInfo, TargetState};
use crate::config::ServerSource;
use crate::manifest::Artifact;
use crate::pipeline::DumpCheck;

/// A MongoDB deployment.
pub struct Mongodb {
    _source: ServerSource,
}

impl Mongodb {
    /// A connector for `source`.
    pub fn new(source: ServerSource) -> Result<Mongodb> {
        Ok(Mongodb { _source: source })
    }
}

/// The check `verify` runs on a decompressed archive.
pub fn archive_check() -> Box<dyn DumpCheck> {
    Box::new(NoCheck)
}

impl Connector for Mongodb {
    fn probe(&mut self) -> Result<ServerInfo> {
        anyhow::bail!("mongodb is not supported yet")
    }
    fn plan(&mut self) -> Result<Vec<DumpItem>> {
        anyhow::bail!("mongodb is not supported yet")
    }
    fn dump(&mut self, _item: &DumpItem) -> Result<(Box<dyn DumpSource>, Box<dyn DumpCheck>)> {
        anyhow::bail!("mongodb is not supported yet")
    }
    fn probe_restore(&mut self, _dumped_with: Option<&str>) -> Result<()> {
        anyhow::bail!("mongodb is not supported yet")
    }
    fn inspect(&mut self, _database: &str) -> Result<TargetState> {
        anyhow::bail!("mongodb is not supported yet")
    }
    fn restore(&mut self, _a: &Artifact, _db: &str, _o: RestoreOptions) -> Result<Box<dyn RestoreSink>> {
        anyhow::bail!("mongodb is not supported yet")
    }
    fn drop_created(&mut self, _database: &str) -> Result<()> {
        Ok(())
    }
}
