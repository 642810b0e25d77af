//! Slack: a message to an incoming-webhook URL.

use std::time::Duration;

use anyhow::{Context, Result};

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Event, Notifier, NotifyOn, Status, check_response, clean, http};
use crate::util::problem::Problems;
use crate::util::secret::{Secret, secret_from};

/// `type: slack`: a message to a Slack incoming webhook.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// When to send: `[failure]` (default), `[success, failure]` or `[always]`.
    #[serde(default = "super::on_failure")]
    pub on: Vec<NotifyOn>,
    /// The incoming-webhook URL (a secret: it holds a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// File whose first line is the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// Seconds each attempt may take (default 10).
    #[serde(default = "super::default_timeout")]
    pub timeout: u64,
}

impl SlackConfig {
    /// A URL, given once.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        super::check_url(at, "slack", &self.url, &self.url_file, problems);
    }
}

/// A Slack incoming webhook.
pub struct Slack {
    url: Secret,
    client: reqwest::blocking::Client,
}

impl Slack {
    /// From its config; reads `url_file`.
    pub fn new(config: &SlackConfig, timeout: Duration) -> Result<Slack> {
        let url = secret_from(&config.url, &config.url_file, "url")?
            .context("a slack notifier needs `url`")?;
        Ok(Slack {
            url,
            client: http(timeout)?,
        })
    }
}

/// The message text (Slack mrkdwn).
pub fn text(event: &Event) -> String {
    let mark = if event.status == Status::Success {
        ":white_check_mark:"
    } else {
        ":x:"
    };
    let mut lines = vec![format!("{mark} *{}*", event.headline())];
    lines.extend(
        event
            .details()
            .into_iter()
            .map(|l| match l.strip_prefix("error: ") {
                Some(e) => format!("error:\n```{e}```"),
                None => l,
            }),
    );
    clean(&lines.join("\n"))
}

impl Notifier for Slack {
    fn send(&self, event: &Event) -> Result<()> {
        let body = serde_json::json!({ "text": text(event) });
        check_response(
            "slack",
            self.client.post(self.url.expose()).json(&body).send(),
        )
    }
}
