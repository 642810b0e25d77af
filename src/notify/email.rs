//! Email over SMTP (lettre): STARTTLS, implicit TLS, or plain for a local relay.

use std::time::Duration;

use anyhow::{Context, Result};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use super::{Event, Notifier, clean};
use crate::config::{NotifierConfig, SmtpTls, secret_from};

/// Mail to a list of recipients.
pub struct Email {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
}

impl Email {
    /// From its config; reads `password_file`.
    pub fn new(config: &NotifierConfig, timeout: Duration) -> Result<Email> {
        let host = config
            .smtp_host
            .as_deref()
            .context("an email notifier needs `smtp_host`")?;
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
        let from = config
            .from
            .as_deref()
            .context("an email notifier needs `from`")?;
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
