//! Secrets: a newtype that never prints itself, and a process-wide redactor.
//!
//! Every secret that dbkeep loads is registered here, and every message that
//! leaves the process (errors, logs, stdout) passes through [`redact`], so a
//! password that a tool echoes back in its stderr is still not shown.

use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret prints as.
pub const REDACTED: &str = "**REDACTED**";

/// A string that must never appear in argv, logs, errors or notifications.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value and registers it for redaction.
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    /// The plain value, for handing to a child's environment or a 0600 file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Registers a value so that [`redact`] hides it. Values shorter than four
/// characters are not registered: hiding them would garble ordinary text.
pub fn register(value: &str) {
    if value.chars().count() < 4 {
        return;
    }
    let mut secrets = registry().lock().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first, so a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Replaces every registered secret (and its percent-encoded form) in `text`.
pub fn redact(text: &str) -> String {
    let secrets = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if encoded != *secret && out.contains(encoded.as_str()) {
            out = out.replace(encoded.as_str(), REDACTED);
        }
    }
    out
}

/// Removes secrets from text that leaves the process: every registered
/// secret, and the password part of any `scheme://user:password@` URL.
pub fn clean(text: &str) -> String {
    let text = redact(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":**REDACTED**");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The last lines of an error, short enough for a chat message.
pub fn tail(error: &str) -> String {
    let cleaned = clean(error);
    if cleaned.len() <= 1500 {
        return cleaned;
    }
    let mut start = cleaned.len() - 1500;
    while !cleaned.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &cleaned[start..])
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A secret. Prefer the `_file` key next to it, which reads the first line of a file.",
            "type": "string"
        })
    }
}

/// Reads a secret given inline or in a file (first line).
pub fn secret_from(
    inline: &Option<Secret>,
    file: &Option<std::path::PathBuf>,
    key: &str,
) -> anyhow::Result<Option<Secret>> {
    if let Some(s) = inline {
        return Ok(Some(s.clone()));
    }
    let Some(file) = file else { return Ok(None) };
    let text = anyhow::Context::with_context(std::fs::read_to_string(file), || {
        format!(
            "cannot read `{key}_file` {}: check the path and its permissions",
            file.display()
        )
    })?;
    Ok(Some(Secret::new(
        text.lines().next().unwrap_or("").trim_end(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2-xyz");
        assert_eq!(format!("{s} {s:?}"), "**REDACTED** **REDACTED**");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"**REDACTED**\"");
        assert_eq!(s.expose(), "hunter2-xyz");
    }

    #[test]
    fn redact_hides_registered_values_and_their_encoding() {
        register("p@ss$word\"x-redact-test");
        let text = "error: p@ss$word\"x-redact-test and p%40ss%24word%22x-redact-test";
        assert_eq!(redact(text), "error: **REDACTED** and **REDACTED**");
    }
}
