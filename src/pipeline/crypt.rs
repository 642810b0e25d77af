//! age encryption of stored objects, after compression.
//!
//! Objects are ordinary age files: `age -d -i key.txt < object | zstd -d`
//! gives back the dump. The manifest records the recipients' public keys,
//! and its sha256 covers the encrypted bytes, so `verify` can check a
//! backup's integrity without the private key.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::util::problem::{Problem, Problems};
use crate::util::secret::Secret;

/// The environment variable that can hold the passphrase for restore and verify.
pub const PASSPHRASE_ENV: &str = "DBKEEP_AGE_PASSPHRASE";

/// Encryption of stored objects.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// age (age-encryption.org): X25519 recipients or a passphrase.
    pub age: AgeConfig,
}

/// age encryption, after compression. Stored objects decrypt with the stock
/// `age` tool: `age -d -i key.txt < object | zstd -d`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgeConfig {
    /// Public keys (`age1...`) that can decrypt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// A file of public keys, one per line (`#` comments allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients_file: Option<PathBuf>,
    /// Encrypt with a passphrase (first line of this file) instead of keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// For restore and verify: an age identity file (the private keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
}

impl AgeConfig {
    /// Keys or a passphrase, not both, and keys that parse.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        let age = self;
        let keyed = !age.recipients.is_empty() || age.recipients_file.is_some();
        if keyed && age.passphrase_file.is_some() {
            problems.push(Problem::new(
                at,
                "give `recipients`/`recipients_file` or `passphrase_file`, not both (age encrypts to keys or to a passphrase)",
            ));
        }
        if !keyed && age.passphrase_file.is_none() {
            problems.push(Problem::new(
                format!("{at}.recipients"),
                "missing required key: give `recipients`, `recipients_file` or `passphrase_file`",
            ));
        }
        for (i, r) in age.recipients.iter().enumerate() {
            if r.parse::<age::x25519::Recipient>().is_err() {
                problems.push(Problem::new(
                    format!("{at}.recipients[{i}]"),
                    format!(
                        "`{r}` is not an age public key (age1...); `age-keygen -y KEYFILE` prints one"
                    ),
                ));
            }
        }
    }
}

/// How a backup's objects are encrypted, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// Always `age`.
    pub scheme: String,
    /// Public keys of the recipients (empty for a passphrase).
    pub recipients: Vec<String>,
    /// Encrypted to a passphrase (scrypt) instead of keys.
    #[serde(default)]
    pub passphrase: bool,
}

/// What backups are encrypted to.
pub struct Sealing {
    recipients: Vec<Box<dyn age::Recipient + Send + Sync>>,
    public: Vec<String>,
    passphrase: Option<Secret>,
}

fn first_line(path: &Path, key: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read `{key}` {}: check the path and its permissions",
            path.display()
        )
    })?;
    let line = text.lines().next().unwrap_or("").trim_end();
    if line.is_empty() {
        anyhow::bail!("`{key}` {} is empty", path.display());
    }
    Ok(Secret::new(line))
}

impl Sealing {
    /// Reads the recipients (or the passphrase) a job encrypts to.
    pub fn from_config(config: &AgeConfig) -> Result<Sealing> {
        if let Some(file) = &config.passphrase_file {
            return Ok(Sealing {
                recipients: Vec::new(),
                public: Vec::new(),
                passphrase: Some(first_line(file, "passphrase_file")?),
            });
        }
        let mut public: Vec<String> = config.recipients.clone();
        if let Some(file) = &config.recipients_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read `recipients_file` {}", file.display()))?;
            public.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        if public.is_empty() {
            anyhow::bail!(
                "age encryption has no recipients: set `recipients` or `recipients_file`"
            );
        }
        let mut recipients: Vec<Box<dyn age::Recipient + Send + Sync>> = Vec::new();
        for key in &public {
            let r: age::x25519::Recipient = key
                .parse()
                .map_err(|e| anyhow::anyhow!("`{key}` is not an age public key: {e}"))?;
            recipients.push(Box::new(r));
        }
        Ok(Sealing {
            recipients,
            public,
            passphrase: None,
        })
    }

    /// The manifest's record of it.
    pub fn describe(&self) -> Encryption {
        Encryption {
            scheme: "age".into(),
            recipients: self.public.clone(),
            passphrase: self.passphrase.is_some(),
        }
    }

    fn encryptor(&self) -> Result<age::Encryptor> {
        if let Some(p) = &self.passphrase {
            return Ok(age::Encryptor::with_user_passphrase(SecretString::from(
                p.expose().to_string(),
            )));
        }
        age::Encryptor::with_recipients(
            self.recipients
                .iter()
                .map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| anyhow::anyhow!("cannot set up age encryption: {e}"))
    }
}

/// A writer that encrypts, or passes bytes through.
pub enum Sealed<W: Write> {
    /// No encryption.
    Plain(W),
    /// age.
    Age(age::stream::StreamWriter<W>),
}

impl<W: Write> Sealed<W> {
    /// Wraps `out`.
    pub fn new(sealing: Option<&Sealing>, out: W) -> Result<Sealed<W>> {
        Ok(match sealing {
            None => Sealed::Plain(out),
            Some(s) => Sealed::Age(s.encryptor()?.wrap_output(out)?),
        })
    }

    /// Writes the last chunk and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Sealed::Plain(w) => Ok(w),
            Sealed::Age(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for Sealed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sealed::Plain(w) => w.write(buf),
            Sealed::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sealed::Plain(w) => w.flush(),
            Sealed::Age(w) => w.flush(),
        }
    }
}

/// Private keys (or a passphrase) for reading encrypted backups.
#[derive(Default)]
pub struct Keys {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    described: Vec<String>,
}

impl Keys {
    /// Loads identity files and, when given, a passphrase.
    pub fn load(identity_files: &[PathBuf], passphrase: Option<Secret>) -> Result<Keys> {
        let mut keys = Keys::default();
        for file in identity_files {
            let identities = age::IdentityFile::from_file(file.display().to_string())
                .with_context(|| format!("cannot read identity file {}", file.display()))?
                .into_identities()
                .map_err(|e| {
                    anyhow::anyhow!("identity file {} is not usable: {e}", file.display())
                })?;
            if identities.is_empty() {
                anyhow::bail!("identity file {} holds no age identity", file.display());
            }
            keys.identities.extend(identities);
            keys.described.push(file.display().to_string());
        }
        if let Some(p) = passphrase {
            keys.identities
                .push(Box::new(age::scrypt::Identity::new(SecretString::from(
                    p.expose().to_string(),
                ))));
            keys.described.push("the passphrase".into());
        }
        Ok(keys)
    }

    /// The passphrase from a file, else from [`PASSPHRASE_ENV`].
    pub fn passphrase(file: Option<&Path>) -> Result<Option<Secret>> {
        if let Some(f) = file {
            return first_line(f, "passphrase file").map(Some);
        }
        Ok(std::env::var(PASSPHRASE_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret::new))
    }

    /// Whether there is nothing to decrypt with.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Starts decrypting `reader`; fails at once when no key fits.
    pub fn open<R: Read>(&self, reader: R, what: &str) -> Result<age::stream::StreamReader<R>> {
        let decryptor = age::Decryptor::new(reader)
            .map_err(|e| anyhow::anyhow!("{what} is not a readable age file: {e}"))?;
        decryptor
            .decrypt(
                self.identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot decrypt {what} with {}: {e}",
                    self.described.join(", ")
                )
            })
    }
}
