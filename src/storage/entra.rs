//! Signing in to Azure Storage with Microsoft Entra ID.
//!
//! The credentials are Microsoft's own, from `azure_identity`: it reads the
//! token files, talks to Entra ID, the managed identity endpoints and the
//! Azure CLI, and caches what they give. This module only chooses which one
//! applies, asks it for a token for Azure Storage, and keeps the token until
//! five minutes before it expires.
//!
//! The choice, in order (the first that applies wins; `credential:` names
//! one outright):
//! 1. a service principal's secret: `client_secret` (or `_file`), else
//!    `AZURE_CLIENT_SECRET`, with the tenant and client ids;
//! 2. a service principal's certificate: `AZURE_CLIENT_CERTIFICATE_PATH`
//!    (builds with the `azure-certificate` feature);
//! 3. workload identity (AKS): `federated_token_file`, else
//!    `AZURE_FEDERATED_TOKEN_FILE`, with the tenant and client ids;
//! 4. managed identity through `IDENTITY_ENDPOINT` (App Service, Container
//!    Apps, Functions);
//! 5. otherwise managed identity through the VM's metadata service, then
//!    the Azure CLI's login, tried in turn at the first request.
//!
//! Tokens never reach a message: each one is registered with the redactor
//! as it arrives.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_core::time::OffsetDateTime;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use super::config::{AzureConfig, AzureCredential};
use crate::util::secret::Secret;

/// The scope of a token for Azure Storage, in every cloud.
const SCOPE: &str = "https://storage.azure.com/.default";
/// A token this close to its expiry is replaced before it is used.
const MARGIN: Duration = Duration::from_secs(300);
/// How long the VM metadata service may take when it is only being tried.
const PROBE: Duration = Duration::from_secs(5);

/// One way of getting tokens, with what it is called in messages.
struct Source {
    what: &'static str,
    credential: Arc<dyn TokenCredential>,
    /// Only tried: a failure moves on to the next source.
    probe: bool,
}

/// Entra ID tokens for one storage.
pub(super) struct Entra {
    storage: String,
    sources: Vec<Source>,
    /// The source that gave a token, once one has.
    chosen: Mutex<Option<usize>>,
    cached: Mutex<Option<(Secret, OffsetDateTime)>>,
}

/// A setting from the config, its `_file` variant, or the environment.
fn value(
    name: &str,
    inline: Option<&str>,
    file: Option<&PathBuf>,
    key: &str,
    var: &str,
) -> Result<Option<String>> {
    if let Some(v) = inline {
        return Ok(Some(v.trim().to_string()));
    }
    if let Some(path) = file {
        let text = crate::util::read_capped(
            std::fs::File::open(path).with_context(|| {
                format!(
                    "storage `{name}`: cannot read `{key}_file` {}",
                    path.display()
                )
            })?,
            1 << 16,
        )
        .map_err(|e| anyhow::anyhow!("storage `{name}`: `{key}_file` {}: {e}", path.display()))?;
        return Ok(Some(String::from_utf8_lossy(&text).trim().to_string()));
    }
    Ok(std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty()))
}

fn set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// An `azure_identity` error and its causes, cleaned of anything secret.
fn error_text(e: &azure_core::Error) -> String {
    super::http::with_causes(e)
}

impl Entra {
    /// The sign-in `s` and the environment ask for (see the module's text).
    pub(super) fn new(name: &str, s: &AzureConfig) -> Result<Entra> {
        let mut options = ClientOptions::default();
        if let Some(host) = &s.authority_host {
            let mut cloud = CustomConfiguration::default();
            cloud.authority_host = host.trim_end_matches('/').to_string();
            options.cloud = Some(Arc::new(CloudConfiguration::Custom(cloud)));
        }
        let tenant = value(
            name,
            s.tenant_id.as_deref(),
            None,
            "tenant_id",
            "AZURE_TENANT_ID",
        )?;
        let client = value(
            name,
            s.client_id.as_deref(),
            None,
            "client_id",
            "AZURE_CLIENT_ID",
        )?;
        let secret = value(
            name,
            s.client_secret.as_ref().map(Secret::expose),
            s.client_secret_file.as_ref(),
            "client_secret",
            "AZURE_CLIENT_SECRET",
        )?;
        if let Some(secret) = &secret {
            crate::util::secret::register(secret);
        }
        let token_file = s
            .federated_token_file
            .clone()
            .or_else(|| std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from))
            .filter(|p| !p.as_os_str().is_empty());
        let kind = match s.credential.unwrap_or_default() {
            AzureCredential::Auto if secret.is_some() => AzureCredential::ClientSecret,
            AzureCredential::Auto if set("AZURE_CLIENT_CERTIFICATE_PATH") => {
                AzureCredential::ClientCertificate
            }
            AzureCredential::Auto if token_file.is_some() => AzureCredential::WorkloadIdentity,
            other => other,
        };
        let needs = |what: &str, v: &Option<String>, key: &str, var: &str| -> Result<String> {
            v.clone().with_context(|| {
                format!("storage `{name}`: {what} needs `{key}` in the storage or {var}")
            })
        };
        let built = |what: &str, e: azure_core::Error| {
            anyhow::anyhow!("storage `{name}`: cannot set up {what}: {}", error_text(&e))
        };
        let one = |what: &'static str, credential: Arc<dyn TokenCredential>| Source {
            what,
            credential,
            probe: false,
        };
        let mut sources = Vec::new();
        match kind {
            AzureCredential::ClientSecret => {
                let what = "the service principal's client secret";
                let secret = needs(what, &secret, "client_secret", "AZURE_CLIENT_SECRET")?;
                let tenant = needs(what, &tenant, "tenant_id", "AZURE_TENANT_ID")?;
                let client = needs(what, &client, "client_id", "AZURE_CLIENT_ID")?;
                let credential = ClientSecretCredential::new(
                    &tenant,
                    client,
                    secret.into(),
                    Some(ClientSecretCredentialOptions {
                        client_options: options,
                    }),
                )
                .map_err(|e| built(what, e))?;
                sources.push(one(what, credential));
            }
            AzureCredential::ClientCertificate => {
                let what = "the service principal's certificate";
                let tenant = needs(what, &tenant, "tenant_id", "AZURE_TENANT_ID")?;
                let client = needs(what, &client, "client_id", "AZURE_CLIENT_ID")?;
                sources.push(one(what, certificate(name, tenant, client, options)?));
            }
            AzureCredential::WorkloadIdentity => {
                let what = "workload identity";
                let tenant = needs(what, &tenant, "tenant_id", "AZURE_TENANT_ID")?;
                let client = needs(what, &client, "client_id", "AZURE_CLIENT_ID")?;
                let path = token_file.with_context(|| {
                    format!(
                        "storage `{name}`: workload identity needs `federated_token_file` in the storage or AZURE_FEDERATED_TOKEN_FILE"
                    )
                })?;
                let credential =
                    WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                        credential_options: ClientAssertionCredentialOptions {
                            client_options: options,
                        },
                        client_id: Some(client),
                        tenant_id: Some(tenant),
                        token_file_path: Some(path),
                    }))
                    .map_err(|e| built(what, e))?;
                sources.push(one(what, credential));
            }
            AzureCredential::ManagedIdentity => {
                sources.push(one(
                    "the managed identity",
                    managed(name, s, options.clone())?,
                ));
            }
            AzureCredential::AzureCli => {
                sources.push(one("the Azure CLI's login", cli(name, tenant)?));
            }
            AzureCredential::Auto if set("IDENTITY_ENDPOINT") => {
                sources.push(one(
                    "the managed identity (IDENTITY_ENDPOINT)",
                    managed(name, s, options.clone())?,
                ));
            }
            AzureCredential::Auto => {
                sources.push(Source {
                    what: "the VM's managed identity",
                    credential: managed(name, s, options.clone())?,
                    probe: true,
                });
                sources.push(one("the Azure CLI's login", cli(name, tenant)?));
            }
        }
        Ok(Entra {
            storage: name.to_string(),
            sources,
            chosen: Mutex::new(None),
            cached: Mutex::new(None),
        })
    }

    /// What signs in, for messages.
    pub(super) fn what(&self) -> &'static str {
        let chosen = *self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        match chosen {
            Some(i) => self.sources[i].what,
            None if self.sources.len() == 1 => self.sources[0].what,
            None => "Entra ID",
        }
    }

    /// A token for Azure Storage, from the cache while it is fresh.
    pub(super) fn token(&self) -> Result<Secret> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, expires)) = cached.as_ref()
            && *expires - MARGIN > OffsetDateTime::now_utc()
        {
            return Ok(token.clone());
        }
        let chosen = *self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        let order: Vec<usize> = match chosen {
            Some(i) => vec![i],
            None => (0..self.sources.len()).collect(),
        };
        let mut failures = Vec::new();
        for i in order {
            let source = &self.sources[i];
            let asked = source.credential.get_token(&[SCOPE], None);
            let answer = if source.probe {
                super::runtime::block_on(async { tokio::time::timeout(PROBE, asked).await.ok() })
            } else {
                Some(super::runtime::block_on(asked))
            };
            match answer {
                Some(Ok(token)) => {
                    let secret = Secret::new(token.token.secret());
                    *cached = Some((secret.clone(), token.expires_on));
                    *self.chosen.lock().unwrap_or_else(|e| e.into_inner()) = Some(i);
                    tracing::debug!(storage = %self.storage, "signed in with {}", source.what);
                    return Ok(secret);
                }
                Some(Err(e)) => failures.push(format!("{}: {}", source.what, error_text(&e))),
                None => failures.push(format!(
                    "{}: no answer within {} s",
                    source.what,
                    PROBE.as_secs()
                )),
            }
        }
        let hint = if chosen.is_none() && self.sources.len() > 1 {
            "; give `account_key`, `sas_token` or `connection_string`, or set `credential` and what it needs (see `dbkeep config schema`)"
        } else {
            ""
        };
        anyhow::bail!(
            "storage `{}`: cannot get an Entra ID token: {}{hint}",
            self.storage,
            failures.join("; ")
        )
    }
}

/// Managed identity: system-assigned, or the user-assigned one `client_id`
/// names.
fn managed(
    name: &str,
    s: &AzureConfig,
    options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>> {
    let user_assigned_id = s.client_id.clone().map(UserAssignedId::ClientId);
    let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id,
        client_options: options,
    }))
    .map_err(|e| {
        anyhow::anyhow!(
            "storage `{name}`: cannot set up the managed identity: {}",
            error_text(&e)
        )
    })?;
    Ok(credential)
}

/// The Azure CLI's login (`az account get-access-token`).
fn cli(name: &str, tenant: Option<String>) -> Result<Arc<dyn TokenCredential>> {
    let credential = AzureCliCredential::new(Some(AzureCliCredentialOptions {
        tenant_id: tenant,
        ..Default::default()
    }))
    .map_err(|e| {
        anyhow::anyhow!(
            "storage `{name}`: cannot set up the Azure CLI sign-in: {}",
            error_text(&e)
        )
    })?;
    Ok(credential)
}

/// A service principal's PKCS#12 certificate (`AZURE_CLIENT_CERTIFICATE_PATH`,
/// with `AZURE_CLIENT_CERTIFICATE_PASSWORD`).
#[cfg(feature = "azure-certificate")]
fn certificate(
    name: &str,
    tenant: String,
    client: String,
    options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>> {
    use azure_identity::{ClientCertificateCredential, ClientCertificateCredentialOptions};
    let path = std::env::var_os("AZURE_CLIENT_CERTIFICATE_PATH")
        .map(PathBuf::from)
        .with_context(|| {
            format!("storage `{name}`: certificate sign-in needs AZURE_CLIENT_CERTIFICATE_PATH")
        })?;
    let bytes = crate::util::read_capped(
        std::fs::File::open(&path)
            .with_context(|| format!("storage `{name}`: cannot read {}", path.display()))?,
        1 << 20,
    )
    .map_err(|e| anyhow::anyhow!("storage `{name}`: {}: {e}", path.display()))?;
    let password = std::env::var("AZURE_CLIENT_CERTIFICATE_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| {
            crate::util::secret::register(&p);
            p.into()
        });
    let credential = ClientCertificateCredential::new(
        tenant,
        client,
        bytes.into(),
        Some(ClientCertificateCredentialOptions {
            client_options: options,
            password,
            ..Default::default()
        }),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "storage `{name}`: cannot use the certificate {}: {}",
            path.display(),
            error_text(&e)
        )
    })?;
    Ok(credential)
}

#[cfg(not(feature = "azure-certificate"))]
fn certificate(
    name: &str,
    _tenant: String,
    _client: String,
    _options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>> {
    anyhow::bail!(
        "storage `{name}`: AZURE_CLIENT_CERTIFICATE_PATH asks for certificate sign-in, which this build of dbkeep lacks (it needs OpenSSL): build with `--features azure-certificate`, or use a client secret, workload identity or a managed identity"
    )
}
