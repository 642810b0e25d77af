//! Notifiers: tell people (and monitors) how a job went.
//!
//! Each configured notifier reports the outcomes its `on:` asks for.
//! Delivery is tried three times with a growing pause. A notification that
//! still fails is logged as a warning and counted in the metrics: it never
//! turns a good backup into a failed one, and it does not change the exit
//! code. Every text that leaves dbkeep here passes through [`clean`], so
//! passwords and credentials inside URLs are not sent anywhere.

mod email;
mod healthcheck;
pub mod metrics;
mod slack;
mod webhook;

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

pub use email::{EmailConfig, SmtpTls};
pub use healthcheck::HealthcheckConfig;
pub use slack::SlackConfig;
pub use webhook::WebhookConfig;

use crate::util::problem::{Problems, variant};
use crate::util::secret::Secret;

/// A notifier: where to report a job's outcome. Its `type` decides which
/// keys apply.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NotifierConfig {
    /// A Slack incoming webhook.
    Slack(SlackConfig),
    /// Mail over SMTP.
    Email(EmailConfig),
    /// A JSON POST.
    Webhook(WebhookConfig),
    /// healthchecks.io-style pings: `/start`, success, `/fail`.
    Healthcheck(HealthcheckConfig),
}

/// The `type`s of a notifier, for the config validation.
pub const TYPES: &[crate::util::problem::Variant] = &[
    variant!("slack", SlackConfig),
    variant!("email", EmailConfig),
    variant!("webhook", WebhookConfig),
    variant!("healthcheck", HealthcheckConfig),
];

impl NotifierConfig {
    /// The outcomes it reports.
    pub fn on(&self) -> Vec<NotifyOn> {
        match self {
            NotifierConfig::Slack(c) => c.on.clone(),
            NotifierConfig::Email(c) => c.on.clone(),
            NotifierConfig::Webhook(c) => c.on.clone(),
            NotifierConfig::Healthcheck(_) => vec![NotifyOn::Always],
        }
    }

    /// Seconds each attempt may take.
    pub fn timeout(&self) -> u64 {
        match self {
            NotifierConfig::Slack(c) => c.timeout,
            NotifierConfig::Email(c) => c.timeout,
            NotifierConfig::Webhook(c) => c.timeout,
            NotifierConfig::Healthcheck(c) => c.timeout,
        }
    }

    /// Checks the rules that span keys.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        match self {
            NotifierConfig::Slack(c) => c.validate(at, problems),
            NotifierConfig::Email(c) => c.validate(at, problems),
            NotifierConfig::Webhook(c) => c.validate(at, problems),
            NotifierConfig::Healthcheck(c) => c.validate(at, problems),
        }
        if self.timeout() == 0 {
            problems.add(
                format!("{at}.timeout"),
                "a timeout of 0 seconds cannot succeed",
            );
        }
    }

    fn build(&self) -> Result<Box<dyn Notifier>> {
        let timeout = Duration::from_secs(self.timeout());
        Ok(match self {
            NotifierConfig::Slack(c) => Box::new(slack::Slack::new(c, timeout)?),
            NotifierConfig::Email(c) => Box::new(email::Email::new(c, timeout)?),
            NotifierConfig::Webhook(c) => Box::new(webhook::Webhook::new(c, timeout)?),
            NotifierConfig::Healthcheck(c) => Box::new(healthcheck::Healthcheck::new(c, timeout)?),
        })
    }
}

/// Which outcomes a notifier reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    /// Successful backups.
    Success,
    /// Failed backups.
    Failure,
    /// Both.
    Always,
}

/// Declares the config of a notifier that sends to a URL: its own keys,
/// then `url`, `url_file` and `timeout`, with the URL's reader and check.
macro_rules! http_notifier {
    ($kind:literal, $(#[$meta:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($own)*
            /// The URL to send to (a secret: it often holds a token).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub url: Option<$crate::util::secret::Secret>,
            /// File whose first line is the URL.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub url_file: Option<std::path::PathBuf>,
            /// Seconds each attempt may take (default 10).
            #[serde(default = "super::default_timeout")]
            pub timeout: u64,
        }

        impl $name {
            /// The URL, read from `url_file` when that is how it is given.
            pub fn url(&self) -> anyhow::Result<$crate::util::secret::Secret> {
                anyhow::Context::context(
                    $crate::util::secret::secret_from(&self.url, &self.url_file, "url")?,
                    concat!("a ", $kind, " notifier needs `url`"),
                )
            }

            fn check_url(&self, at: &str, problems: &mut $crate::util::problem::Problems) {
                super::check_url(at, $kind, &self.url, &self.url_file, problems);
            }
        }
    };
}
pub(crate) use http_notifier;

fn on_failure() -> Vec<NotifyOn> {
    vec![NotifyOn::Failure]
}

fn default_timeout() -> u64 {
    10
}

/// The URL of an HTTP notifier: given once, inline or in a file, and http(s).
fn check_url(
    at: &str,
    kind: &str,
    url: &Option<Secret>,
    url_file: &Option<PathBuf>,
    problems: &mut Problems,
) {
    if url.is_none() && url_file.is_none() {
        problems.add(
            format!("{at}.url"),
            format!("a `{kind}` notifier needs `url` or `url_file`"),
        );
    }
    problems.not_both(at, "url", url.is_some(), url_file.is_some());
    if let Some(url) = url
        && !crate::util::problem::is_http_url(url.expose())
    {
        problems.add(
            format!("{at}.url"),
            "the URL must start with http:// or https://",
        );
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The backup is stored and its manifest written.
    Success,
    /// Nothing was stored.
    Failure,
}

impl Status {
    /// `success` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
        }
    }
}

/// What a notification reports: the webhook's JSON body, field for field.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Always `backup` (or `test` from `dbkeep notify test`).
    pub event: &'static str,
    /// The job.
    pub job: String,
    /// The outcome.
    pub status: Status,
    /// The backup id, on success.
    pub backup_id: Option<String>,
    /// When the job started (UTC).
    pub started_at: DateTime<Utc>,
    /// When it ended (UTC).
    pub finished_at: DateTime<Utc>,
    /// Wall time in seconds.
    pub duration_seconds: f64,
    /// Bytes stored.
    pub stored_size: u64,
    /// Bytes the dump tools produced.
    pub raw_size: u64,
    /// The storages written to.
    pub storages: Vec<String>,
    /// The databases backed up.
    pub databases: Vec<String>,
    /// The error (its last lines), on failure; secrets removed.
    pub error: Option<String>,
    /// The host that ran the job.
    pub host: String,
    /// The dbkeep version.
    pub dbkeep_version: &'static str,
}

impl Event {
    /// A one-line summary for people.
    pub fn headline(&self) -> String {
        match self.status {
            Status::Success => format!("dbkeep backup `{}` succeeded on {}", self.job, self.host),
            Status::Failure => format!("dbkeep backup `{}` FAILED on {}", self.job, self.host),
        }
    }

    /// The details, one per line.
    pub fn details(&self) -> Vec<String> {
        let mut lines = vec![format!("duration: {:.1} s", self.duration_seconds)];
        if self.status == Status::Success {
            lines.push(format!(
                "size: {} stored ({} raw)",
                crate::util::human_size(self.stored_size),
                crate::util::human_size(self.raw_size)
            ));
        }
        if !self.storages.is_empty() {
            lines.push(format!("storages: {}", self.storages.join(", ")));
        }
        if !self.databases.is_empty() {
            lines.push(format!("databases: {}", self.databases.join(", ")));
        }
        if let Some(id) = &self.backup_id {
            lines.push(format!("backup id: {id}"));
        }
        if let Some(e) = &self.error {
            lines.push(format!("error: {e}"));
        }
        lines
    }
}

pub use crate::util::secret::{clean, tail};

/// One way of sending.
pub trait Notifier {
    /// Sends the outcome of a job.
    fn send(&self, event: &Event) -> Result<()>;

    /// Says a job has started (health-check monitors only).
    fn start(&self, _job: &str) -> Result<()> {
        Ok(())
    }
}

/// A blocking HTTP client with a timeout.
fn http(timeout: Duration) -> Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("dbkeep/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Checks an HTTP response; the URL is never named (it often holds a token).
fn check_response(name: &str, result: reqwest::Result<reqwest::blocking::Response>) -> Result<()> {
    let response =
        result.map_err(|e| anyhow::anyhow!("{}", clean(&e.without_url().to_string())))?;
    let status = response.status();
    if !status.is_success() {
        let body = crate::util::error_text(response);
        let body: String = body.chars().take(200).collect();
        anyhow::bail!("{name} answered HTTP {status}: {}", clean(body.trim()));
    }
    Ok(())
}

/// The notifiers of one job.
pub struct Notifiers {
    list: Vec<(String, Vec<NotifyOn>, Box<dyn Notifier>)>,
    attempts: u32,
    pause: Duration,
}

impl Notifiers {
    /// No notifiers.
    pub fn none() -> Notifiers {
        Notifiers {
            list: Vec::new(),
            attempts: 3,
            pause: Duration::from_secs(1),
        }
    }

    /// Builds the named notifiers. One that cannot be built (an unreadable
    /// secret file) is logged and left out: it must not stop the backup.
    pub fn for_names(config: &BTreeMap<String, NotifierConfig>, names: &[String]) -> Notifiers {
        let mut out = Notifiers::none();
        for name in names {
            let Some(nc) = config.get(name) else {
                continue;
            };
            match nc.build() {
                Ok(n) => out.list.push((name.clone(), nc.on(), n)),
                Err(e) => {
                    tracing::warn!(notifier = name, error = %clean(&format!("{e:#}")), "notifier unusable")
                }
            }
        }
        out
    }

    /// Builds notifiers for `dbkeep notify test`; errors are returned.
    pub fn for_test(
        config: &BTreeMap<String, NotifierConfig>,
        names: &[String],
    ) -> Result<Notifiers> {
        let mut out = Notifiers::none();
        for name in names {
            let nc = config
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("no notifier `{name}` in the config"))?;
            let n = nc
                .build()
                .map_err(|e| anyhow::anyhow!("notifier `{name}`: {e:#}"))?;
            out.list.push((name.clone(), vec![NotifyOn::Always], n));
        }
        Ok(out)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Pings monitors that the job started. Failures are warnings.
    pub fn started(&self, job: &str) {
        for (name, _, n) in &self.list {
            if let Err(e) = n.start(job) {
                tracing::warn!(notifier = name, error = %clean(&format!("{e:#}")), "start ping failed");
            }
        }
    }

    /// Sends the outcome to every notifier that wants it; returns the names
    /// of those that failed after every attempt.
    pub fn finished(&self, event: &Event) -> Vec<String> {
        let mut failed = Vec::new();
        for (name, on, n) in &self.list {
            let wanted = on.iter().any(|o| match o {
                NotifyOn::Always => true,
                NotifyOn::Success => event.status == Status::Success,
                NotifyOn::Failure => event.status == Status::Failure,
            });
            if !wanted {
                continue;
            }
            let mut last = None;
            for attempt in 1..=self.attempts {
                match n.send(event) {
                    Ok(()) => {
                        tracing::info!(
                            notifier = name,
                            status = event.status.as_str(),
                            "notification sent"
                        );
                        last = None;
                        break;
                    }
                    Err(e) => {
                        let msg = clean(&format!("{e:#}"));
                        tracing::debug!(notifier = name, attempt, error = %msg, "notification attempt failed");
                        last = Some(msg);
                        if attempt < self.attempts {
                            std::thread::sleep(self.pause * attempt);
                        }
                    }
                }
            }
            if let Some(msg) = last {
                tracing::warn!(
                    notifier = name,
                    attempts = self.attempts,
                    error = %msg,
                    "notification failed; the backup result is unchanged"
                );
                failed.push(name.clone());
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_url_passwords_and_secrets() {
        crate::util::secret::register("pg-secret-xyz");
        assert_eq!(
            clean("connect postgres://bob:hunter2@db:5432/app failed; PGPASSWORD=pg-secret-xyz"),
            "connect postgres://bob:**REDACTED**@db:5432/app failed; PGPASSWORD=**REDACTED**"
        );
        assert_eq!(
            clean("see https://example.com/a:b@c"),
            "see https://example.com/a:b@c"
        );
        assert_eq!(
            clean("redis://user@host:6379/0"),
            "redis://user@host:6379/0"
        );
    }
}
