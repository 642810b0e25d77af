//! Health-check pings (the healthchecks.io convention): `URL/start` when a
//! job starts, `URL` on success, `URL/fail` on failure. If backups stop
//! running at all, the monitor notices the missing pings.

use std::time::Duration;

use anyhow::Result;

use super::{Event, Notifier, Status, check_response, clean, http};
use crate::util::problem::Problems;
use crate::util::secret::Secret;

super::http_notifier! {
    "healthcheck",
    /// `type: healthcheck`: pings on start, success and failure (it reports
    /// every outcome, so it has no `on`).
    pub struct HealthcheckConfig {}
}

impl HealthcheckConfig {
    /// A URL, given once.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        self.check_url(at, problems);
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
        let url = config.url()?;
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
