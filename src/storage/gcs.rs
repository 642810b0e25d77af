//! Google Cloud Storage.

use anyhow::Result;

use crate::config::StorageSettings;

/// A GCS bucket.
pub struct Gcs;

impl Gcs {
    /// Not written yet.
    pub fn new(name: &str, _s: &StorageSettings) -> Result<Gcs> {
        anyhow::bail!("storage `{name}`: gcs is not available yet")
    }
}

impl super::Storage for Gcs {
    fn name(&self) -> &str {
        ""
    }
    fn location(&self) -> String {
        String::new()
    }
    fn create(&self, _k: &str) -> Result<Box<dyn super::ObjectWriter>> {
        unreachable!()
    }
    fn open(&self, _k: &str) -> Result<Box<dyn std::io::Read + Send>> {
        unreachable!()
    }
    fn list(&self, _p: &str) -> Result<Vec<String>> {
        unreachable!()
    }
    fn delete(&self, _k: &str) -> Result<()> {
        unreachable!()
    }
}
