//! Slack: a message to an incoming-webhook URL.

use std::time::Duration;

use anyhow::{Context, Result};

use super::{Event, Notifier, Status, check_response, clean, http};
use crate::config::{NotifierConfig, secret_from};
use crate::util::secret::Secret;

/// A Slack incoming webhook.
pub struct Slack {
    url: Secret,
    client: reqwest::blocking::Client,
}

impl Slack {
    /// From its config; reads `url_file`.
    pub fn new(config: &NotifierConfig, timeout: Duration) -> Result<Slack> {
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
