//! Email over SMTP (lettre): STARTTLS, implicit TLS, or plain for a local relay.

use std::time::Duration;

use anyhow::{Context, Result};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Event, Notifier, NotifyOn, clean};
use crate::util::problem::{Problem, Problems};
use crate::util::secret::{Secret, secret_from};

/// `type: email`: mail over SMTP.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// When to send: `[failure]` (default), `[success, failure]` or `[always]`.
    #[serde(default = "super::on_failure")]
    pub on: Vec<NotifyOn>,
    /// SMTP server host.
    pub smtp_host: String,
    /// SMTP port (default 587 for starttls, 465 for implicit, 25 for none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    /// `starttls` (default), `implicit` or `none` (only to a relay on this
    /// host when a password is set).
    #[serde(default = "starttls")]
    pub tls: SmtpTls,
    /// CA certificate file (PEM) to verify the SMTP server with, in place of
    /// the public roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// SMTP user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SMTP password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// File whose first line is the SMTP password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The From address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject template; `{job}`, `{status}`, `{host}` and `{id}` are filled in.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Seconds each attempt may take (default 10).
    #[serde(default = "super::default_timeout")]
    pub timeout: u64,
}

/// How SMTP is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS (a local relay only).
    None,
}

fn starttls() -> SmtpTls {
    SmtpTls::Starttls
}

fn default_subject() -> String {
    "[dbkeep] {job}: backup {status} on {host}".to_string()
}

impl EmailConfig {
    /// Addresses that parse, and no password sent in the clear.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        let n = self;
        let loopback = n.smtp_host == "localhost"
            || n.smtp_host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let password = n.password.is_some() || n.password_file.is_some();
        if n.tls == SmtpTls::None && password && !loopback {
            problems.push(Problem::new(
                format!("{at}.tls"),
                "`tls: none` would send the SMTP password in the clear; use `starttls` or `implicit`, \
                 or `none` only with a relay on this host (localhost, 127.0.0.1)",
            ));
        }
        if n.tls == SmtpTls::None && n.tls_ca_file.is_some() {
            problems.push(Problem::new(
                format!("{at}.tls_ca_file"),
                "`tls_ca_file` needs `tls: starttls` or `tls: implicit`",
            ));
        }
        if n.to.is_empty() {
            problems.push(Problem::new(
                format!("{at}.to"),
                "an `email` notifier needs at least one address in `to`",
            ));
        }
        for (key, addr) in std::iter::once(("from", &n.from)).chain(n.to.iter().map(|t| ("to", t)))
        {
            if addr.parse::<Mailbox>().is_err() {
                problems.push(Problem::new(
                    format!("{at}.{key}"),
                    format!("`{addr}` is not an email address"),
                ));
            }
        }
        problems.not_both(
            at,
            "password",
            n.password.is_some(),
            n.password_file.is_some(),
        );
    }
}

/// Mail to a list of recipients.
pub struct Email {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
}

impl Email {
    /// From its config; reads `password_file`.
    pub fn new(config: &EmailConfig, timeout: Duration) -> Result<Email> {
        let host = config.smtp_host.as_str();
        let mut builder = match config.tls {
            SmtpTls::Starttls => {
                SmtpTransport::starttls_relay(host)?.port(config.smtp_port.unwrap_or(587))
            }
            SmtpTls::Implicit => SmtpTransport::relay(host)?.port(config.smtp_port.unwrap_or(465)),
            SmtpTls::None => {
                SmtpTransport::builder_dangerous(host).port(config.smtp_port.unwrap_or(25))
            }
        };
        if let Some(ca) = &config.tls_ca_file {
            use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
            let pem = std::fs::read(ca)
                .with_context(|| format!("cannot read `tls_ca_file` {}", ca.display()))?;
            let cert = Certificate::from_pem(&pem).with_context(|| {
                format!("`tls_ca_file` {} holds no usable certificate", ca.display())
            })?;
            let params = TlsParameters::builder(host.to_string())
                .add_root_certificate(cert)
                .build_rustls()
                .context("cannot set up TLS for SMTP")?;
            builder = builder.tls(match config.tls {
                SmtpTls::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if let (Some(user), Some(pw)) = (
            &config.username,
            secret_from(&config.password, &config.password_file, "password")?,
        ) {
            builder = builder.credentials(Credentials::new(user.clone(), pw.expose().to_string()));
        }
        let from = config.from.as_str();
        Ok(Email {
            transport: builder.timeout(Some(timeout)).build(),
            from: from
                .parse()
                .with_context(|| format!("`from` {from} is not an email address"))?,
            to: config
                .to
                .iter()
                .map(|t| {
                    t.parse()
                        .with_context(|| format!("`to` {t} is not an email address"))
                })
                .collect::<Result<_>>()?,
            subject: config.subject.clone(),
        })
    }
}

/// Fills `{job}`, `{status}`, `{host}` and `{id}` in a subject template.
pub fn subject(template: &str, event: &Event) -> String {
    let status = match event.status {
        super::Status::Success => "succeeded",
        super::Status::Failure => "FAILED",
    };
    template
        .replace("{job}", &event.job)
        .replace("{status}", status)
        .replace("{host}", &event.host)
        .replace("{id}", event.backup_id.as_deref().unwrap_or("-"))
}

impl Notifier for Email {
    fn send(&self, event: &Event) -> Result<()> {
        let mut body = event.headline();
        body.push_str("\n\n");
        for line in event.details() {
            body.push_str(&line);
            body.push('\n');
        }
        body.push_str(&format!(
            "\nstarted: {}\nfinished: {}\ndbkeep {}\n",
            crate::util::rfc3339(event.started_at),
            crate::util::rfc3339(event.finished_at),
            event.dbkeep_version
        ));
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(clean(&subject(&self.subject, event)));
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message.header(ContentType::TEXT_PLAIN).body(clean(&body))?;
        self.transport
            .send(&message)
            .map_err(|e| anyhow::anyhow!("smtp: {}", clean(&e.to_string())))?;
        Ok(())
    }
}
