//! Health-check pings (the healthchecks.io convention): `URL/start` when a
//! job starts, `URL` on success, `URL/fail` on failure. If backups stop
//! running at all, the monitor notices the missing pings.

use std::time::Duration;

use anyhow::{Context, Result};

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Event, Notifier, Status, check_response, clean, http};
use crate::util::problem::Problems;
use crate::util::secret::{Secret, secret_from};

/// `type: healthcheck`: pings on start, success and failure (it reports
/// every outcome, so it has no `on`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckConfig {
    /// The check's ping URL (a secret: it identifies the check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// File whose first line is the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// Seconds each attempt may take (default 10).
    #[serde(default = "super::default_timeout")]
    pub timeout: u64,
}

impl HealthcheckConfig {
    /// A URL, given once.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        super::check_url(at, "healthcheck", &self.url, &self.url_file, problems);
    }
}

/// A ping URL.
pub struct Healthcheck {
    url: Secret,
    client: reqwest::blocking::Client,
}

impl Healthcheck {
    /// From its config; reads `url_file`.
    pub fn new(config: &HealthcheckConfig, timeout: Duration) -> Result<Healthcheck> {
        let url = secret_from(&config.url, &config.url_file, "url")?
            .context("a healthcheck notifier needs `url`")?;
        Ok(Healthcheck {
            url,
            client: http(timeout)?,
        })
    }

    fn at(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.url.expose().trim_end_matches('/'))
    }
}

impl Notifier for Healthcheck {
    fn start(&self, _job: &str) -> Result<()> {
        check_response(
            "healthcheck",
            self.client.post(self.at("/start")).body("").send(),
        )
    }

    fn send(&self, event: &Event) -> Result<()> {
        let (url, body) = match event.status {
            Status::Success => (self.at(""), event.details().join("\n")),
            Status::Failure => (self.at("/fail"), event.details().join("\n")),
        };
        check_response(
            "healthcheck",
            self.client.post(url).body(clean(&body)).send(),
        )
    }
}
