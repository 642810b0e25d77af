//! Slack: a message to an incoming-webhook URL.

use std::time::Duration;

use anyhow::Result;

use super::{Event, Notifier, NotifyOn, Status, check_response, clean, http};
use crate::util::problem::Problems;
use crate::util::secret::Secret;

super::http_notifier! {
    "slack",
    /// `type: slack`: a message to a Slack incoming webhook.
    pub struct SlackConfig {
        /// When to send: `[failure]` (default), `[success, failure]` or `[always]`.
        #[serde(default = "super::on_failure")]
        pub on: Vec<NotifyOn>,
    }
}

impl SlackConfig {
    /// A URL, given once.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        self.check_url(at, problems);
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
        let url = config.url()?;
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
