//! Amazon S3.

use anyhow::Result;

use crate::config::StorageSettings;

/// An S3 bucket.
pub struct S3;

impl S3 {
    /// Not written yet.
    pub fn new(name: &str, _s: &StorageSettings) -> Result<S3> {
        anyhow::bail!("storage `{name}`: s3 is not available yet")
    }
}

impl super::Storage for S3 {
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
