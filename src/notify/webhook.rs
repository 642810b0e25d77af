//! Webhook: the event as JSON, with an optional bearer token and an
//! HMAC-SHA256 signature of the exact body in `X-Dbkeep-Signature: sha256=<hex>`.

use std::time::Duration;

use anyhow::Result;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use std::path::PathBuf;

use super::{Event, Notifier, NotifyOn, check_response, clean, http};
use crate::util::problem::Problems;
use crate::util::secret::{Secret, secret_from};

super::http_notifier! {
    "webhook",
    /// `type: webhook`: the event as a JSON POST.
    pub struct WebhookConfig {
        /// When to send: `[failure]` (default), `[success, failure]` or `[always]`.
        #[serde(default = "super::on_failure")]
        pub on: Vec<NotifyOn>,
        /// Sent as `Authorization: Bearer ...`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub bearer_token: Option<Secret>,
        /// File holding the bearer token.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub bearer_token_file: Option<PathBuf>,
        /// Key for the `X-Dbkeep-Signature: sha256=<hex HMAC of the body>` header.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub hmac_secret: Option<Secret>,
        /// File holding the HMAC key.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub hmac_secret_file: Option<PathBuf>,
    }
}

impl WebhookConfig {
    /// A URL, and each secret given once.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        self.check_url(at, problems);
        let w = self;
        problems.not_both(
            at,
            "bearer_token",
            w.bearer_token.is_some(),
            w.bearer_token_file.is_some(),
        );
        problems.not_both(
            at,
            "hmac_secret",
            w.hmac_secret.is_some(),
            w.hmac_secret_file.is_some(),
        );
    }
}

/// A JSON POST.
pub struct Webhook {
    url: Secret,
    bearer: Option<Secret>,
    hmac: Option<Secret>,
    client: reqwest::blocking::Client,
}

impl Webhook {
    /// From its config; reads the `_file` secrets.
    pub fn new(config: &WebhookConfig, timeout: Duration) -> Result<Webhook> {
        Ok(Webhook {
            url: config.url()?,
            bearer: secret_from(
                &config.bearer_token,
                &config.bearer_token_file,
                "bearer_token",
            )?,
            hmac: secret_from(&config.hmac_secret, &config.hmac_secret_file, "hmac_secret")?,
            client: http(timeout)?,
        })
    }
}

/// `sha256=<hex>` of the body under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Notifier for Webhook {
    fn send(&self, event: &Event) -> Result<()> {
        let mut event = event.clone();
        event.error = event.error.as_deref().map(clean);
        let body = serde_json::to_vec(&event)?;
        let mut request = self
            .client
            .post(self.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token.expose());
        }
        if let Some(key) = &self.hmac {
            request = request.header(
                "X-Dbkeep-Signature",
                signature(key.expose().as_bytes(), &body),
            );
        }
        check_response("webhook", request.body(body).send())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
