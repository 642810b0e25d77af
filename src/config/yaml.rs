//! A figment [`Format`] for YAML through the maintained `serde_yaml_ng` fork.

use figment::providers::Format;
use serde::de::DeserializeOwned;

/// YAML, parsed by `serde_yaml_ng`.
pub struct Yaml;

impl Format for Yaml {
    type Error = serde_yaml_ng::Error;
    const NAME: &'static str = "YAML";

    fn from_str<T: DeserializeOwned>(string: &str) -> Result<T, Self::Error> {
        serde_yaml_ng::from_str(string)
    }
}
