//! Where backups are kept: the `storages:` entries of the config, one
//! struct per `type`, with their own rules. `--to`/`--from` URLs build the
//! same structs and pass the same checks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::util::problem::{Problems, variant};
use crate::util::secret::Secret;

/// A storage. Its `type` decides which keys apply.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StorageConfig {
    /// A folder on a local or mounted file system.
    Local(LocalConfig),
    /// Amazon S3 or an S3-compatible service.
    S3(S3Config),
    /// Google Cloud Storage.
    Gcs(GcsConfig),
    /// Azure Blob Storage.
    Azure(AzureConfig),
    /// A folder on an SSH server, over SFTP.
    Sftp(SftpConfig),
}

/// The `type`s of a storage, for the config validation.
pub const TYPES: &[crate::util::problem::Variant] = &[
    variant!("local", LocalConfig),
    variant!("s3", S3Config),
    variant!("gcs", GcsConfig),
    variant!("azure", AzureConfig),
    variant!("sftp", SftpConfig),
];

/// Declares a storage's config: its own keys, then the keys every storage
/// has (`prefix`, `required`) and, for a `cloud` one, those of every cloud
/// (`endpoint`, `part_size_mib`).
macro_rules! storage_config {
    (cloud $(#[$meta:meta])* pub struct $name:ident { $($own:tt)* }) => {
        storage_config! {
            $(#[$meta])*
            pub struct $name {
                $($own)*
                /// A custom endpoint URL (S3-compatibles such as MinIO, R2 or
                /// Ceph; emulators; sovereign clouds).
                #[serde(skip_serializing_if = "Option::is_none")]
                pub endpoint: Option<String>,
                /// Part (S3), chunk (GCS) or block (Azure) size in MiB; default
                /// 16, grown as needed so that the service's part limit covers 5 TiB.
                #[serde(skip_serializing_if = "Option::is_none")]
                pub part_size_mib: Option<u64>,
            }
        }
    };
    ($(#[$meta:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($own)*
            /// A folder inside the storage under which every job's backups go.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub prefix: Option<String>,
            /// Whether a failed write here fails the backup (default true). With
            /// `false` the run is "partial" (exit 3) and the other storages keep it.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub required: Option<bool>,
        }
    };
}

storage_config! {
    /// `type: local`: a folder on a local or mounted file system.
    pub struct LocalConfig {
        /// The folder that holds the backups (created when missing).
        pub path: PathBuf,
    }
}

storage_config! {
    cloud
    /// `type: s3`: a bucket of Amazon S3 or of an S3-compatible service.
    pub struct S3Config {
        /// The bucket.
        pub bucket: String,
        /// The region (default: AWS_REGION / the profile / us-east-1).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub region: Option<String>,
        /// Path-style addressing (`endpoint/bucket/key`), for S3-compatibles.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub path_style: Option<bool>,
        /// Storage class of new objects (e.g. `STANDARD_IA`, `GLACIER_IR`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub storage_class: Option<String>,
        /// Server-side encryption: `AES256` or `aws:kms`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub sse: Option<String>,
        /// The KMS key for `sse: aws:kms`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub sse_kms_key_id: Option<String>,
        /// Access key id (default: the AWS credential chain).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub access_key_id: Option<String>,
        /// Secret access key.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub secret_access_key: Option<Secret>,
        /// File holding the secret access key.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub secret_access_key_file: Option<PathBuf>,
        /// Parts uploaded at once (default 4). Memory is part size × (parts in
        /// flight + 1).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub parallel_parts: Option<u32>,
        /// Which requests carry a checksum: `when_supported` (the default)
        /// or `when_required`, for S3-compatible services that refuse the
        /// SDK's CRC checksum headers.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub checksum: Option<S3Checksum>,
        /// S3 Object Lock retention for every backup object written
        /// (artifacts and manifests; never the job lock). The bucket must
        /// have Object Lock enabled.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub object_lock: Option<ObjectLock>,
    }
}

/// Retention for new backup objects (`object_lock:`): S3 Object Lock, an
/// Azure version-level immutability policy, a GCS object retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectLock {
    /// `governance` (S3 governance mode, an Azure or GCS `Unlocked`
    /// retention: who has the right permission can still shorten it or
    /// delete) or `compliance` (S3 compliance mode, an Azure or GCS
    /// `Locked` retention: nobody can, until the date).
    pub mode: ObjectLockMode,
    /// Days each object stays locked from when it is written (1 to 36500).
    pub days: u32,
}

/// The retention mode of `object_lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ObjectLockMode {
    /// Deletable before the date by whoever may bypass or shorten the
    /// retention (S3 `s3:BypassGovernanceRetention`, an Azure or GCS
    /// `Unlocked` policy).
    Governance,
    /// Deletable by nobody, the account's owner included, before the date
    /// (S3 compliance, an Azure or GCS `Locked` policy).
    Compliance,
}

impl ObjectLock {
    /// The retain-until date of an object written now.
    pub fn until(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::days(i64::from(self.days))
    }

    /// `Unlocked` or `Locked`, as Azure and GCS name the mode.
    pub fn azure_gcs_mode(&self) -> &'static str {
        match self.mode {
            ObjectLockMode::Governance => "Unlocked",
            ObjectLockMode::Compliance => "Locked",
        }
    }

    fn validate(lock: Option<&ObjectLock>, at: &str, problems: &mut Problems) {
        if let Some(lock) = lock
            && !(1..=36500).contains(&lock.days)
        {
            problems.add(
                format!("{at}.object_lock.days"),
                format!(
                    "{} days: use 1 to 36500, the whole days each object stays locked",
                    lock.days
                ),
            );
        }
    }
}

/// Which S3 requests carry a checksum (the SDK's
/// `request_checksum_calculation` and `response_checksum_validation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum S3Checksum {
    /// Every request that supports one: uploads send a CRC32, downloads
    /// ask for the stored checksum and check it.
    #[default]
    WhenSupported,
    /// Only the requests whose operation requires one.
    WhenRequired,
}

impl S3Checksum {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            S3Checksum::WhenSupported => "when_supported",
            S3Checksum::WhenRequired => "when_required",
        }
    }

    /// Parses the name as written in the config.
    pub fn parse(text: &str) -> Option<S3Checksum> {
        [S3Checksum::WhenSupported, S3Checksum::WhenRequired]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

storage_config! {
    cloud
    /// `type: gcs`: a Google Cloud Storage bucket. A resumable upload sends
    /// its chunks in order, so memory is chunk size × 2.
    pub struct GcsConfig {
        /// The bucket.
        pub bucket: String,
        /// Storage class of new objects (e.g. `NEARLINE`, `COLDLINE`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub storage_class: Option<String>,
        /// A Cloud KMS key name (`projects/P/locations/L/keyRings/R/cryptoKeys/K`)
        /// for new objects.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub sse_kms_key_id: Option<String>,
        /// A service-account JSON key file (default: Application Default Credentials).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub credentials_file: Option<PathBuf>,
        /// A retention on every backup object written (artifacts and
        /// manifests; never the job lock). The bucket must have object
        /// retention enabled.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub object_lock: Option<ObjectLock>,
    }
}

storage_config! {
    cloud
    /// `type: azure`: an Azure Blob Storage container.
    pub struct AzureConfig {
        /// The container.
        pub container: String,
        /// The storage account (default: AZURE_STORAGE_ACCOUNT).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub account: Option<String>,
        /// Access tier of new blobs: `Hot`, `Cool`, `Cold` or `Archive`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub access_tier: Option<String>,
        /// The DNS suffix of the cloud (default `core.windows.net`; e.g.
        /// `core.chinacloudapi.cn` or `core.usgovcloudapi.net` for sovereign clouds).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub endpoint_suffix: Option<String>,
        /// The account key (default: AZURE_STORAGE_KEY).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub account_key: Option<Secret>,
        /// File holding the account key.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub account_key_file: Option<PathBuf>,
        /// A SAS token (default: AZURE_STORAGE_SAS_TOKEN).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub sas_token: Option<Secret>,
        /// File holding the SAS token.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub sas_token_file: Option<PathBuf>,
        /// A connection string (default: AZURE_STORAGE_CONNECTION_STRING).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub connection_string: Option<Secret>,
        /// File holding the connection string.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub connection_string_file: Option<PathBuf>,
        /// Blocks uploaded at once (default 4). Memory is block size × (blocks
        /// in flight + 1).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub parallel_parts: Option<u32>,
        /// How to sign in with Microsoft Entra ID when no key, SAS token or
        /// connection string is given: `auto` (the default: a client secret,
        /// a certificate or workload identity when one is configured, else
        /// the managed identity, then the Azure CLI), `client_secret`,
        /// `client_certificate`, `workload_identity`, `managed_identity` or
        /// `azure_cli`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub credential: Option<AzureCredential>,
        /// The Entra ID tenant (directory) id (default: AZURE_TENANT_ID).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub tenant_id: Option<String>,
        /// The client (application) id of the service principal or workload
        /// identity, or of a user-assigned managed identity (default:
        /// AZURE_CLIENT_ID).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub client_id: Option<String>,
        /// A service principal's client secret (default: AZURE_CLIENT_SECRET).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub client_secret: Option<Secret>,
        /// File holding the client secret.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub client_secret_file: Option<PathBuf>,
        /// The service account token file of workload identity (default:
        /// AZURE_FEDERATED_TOKEN_FILE, which AKS sets).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub federated_token_file: Option<PathBuf>,
        /// Entra ID's sign-in host (default: AZURE_AUTHORITY_HOST, else
        /// `https://login.microsoftonline.com`; `https://login.microsoftonline.us`
        /// for Azure Government, `https://login.chinacloudapi.cn` for Azure China).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub authority_host: Option<String>,
        /// A version-level immutability policy on every backup blob written
        /// (artifacts and manifests; never the job lock). The container (or
        /// account) must have version-level immutability support.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub object_lock: Option<ObjectLock>,
    }
}

/// How an Azure storage signs in with Entra ID (`credential:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AzureCredential {
    /// The first that applies: client secret, certificate, workload
    /// identity, managed identity, Azure CLI.
    #[default]
    Auto,
    /// A service principal's secret (`client_secret`, AZURE_CLIENT_SECRET).
    ClientSecret,
    /// A service principal's PKCS#12 certificate (AZURE_CLIENT_CERTIFICATE_PATH).
    ClientCertificate,
    /// AKS workload identity: a federated service account token.
    WorkloadIdentity,
    /// The managed identity of the VM, App Service or Container App.
    ManagedIdentity,
    /// The login of the Azure CLI (`az login`).
    AzureCli,
}

storage_config! {
    /// `type: sftp`: a folder on an SSH server, reached through the system
    /// `ssh` client's SFTP subsystem. The host key is always checked.
    pub struct SftpConfig {
        /// The SSH server; `~/.ssh/config` applies to it.
        pub host: String,
        /// Its port (default: 22, or what `~/.ssh/config` says).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub port: Option<u16>,
        /// The login (default: `~/.ssh/config`, or this user).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub user: Option<String>,
        /// The folder on the server that holds the backups; a relative path is
        /// under the login's home. Created when missing.
        pub path: String,
        /// A private key to log in with (default: the agent and `~/.ssh`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub key_file: Option<PathBuf>,
        /// A known_hosts file holding the server's host key (default: `~/.ssh/known_hosts`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub known_hosts: Option<PathBuf>,
        /// Trust a host key seen for the first time and remember it (ssh's
        /// `accept-new`); a changed key is still refused. Default false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub accept_new_host_key: bool,
        /// A file whose first line is the login's password, for servers
        /// that take no key. It is handed to `ssh` through its askpass
        /// program, never through argv or the environment.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub password_file: Option<PathBuf>,
    }
}

impl SftpConfig {
    fn validate(&self, at: &str, problems: &mut Problems) {
        crate::util::ssh::check_names(at, &self.host, self.user.as_deref(), problems);
        if self.path.trim_matches('/').is_empty() && !self.path.starts_with('/') {
            problems.add(
                format!("{at}.path"),
                "name the folder that holds the backups",
            );
        }
        if self.path.split('/').any(|p| p == "..") {
            problems.add(format!("{at}.path"), "`path` may not contain `..`");
        }
    }

    /// The SSH login this storage uses.
    pub fn login(&self) -> crate::util::ssh::Login<'_> {
        crate::util::ssh::Login {
            host: &self.host,
            port: self.port,
            user: self.user.as_deref(),
            key_file: self.key_file.as_deref(),
            known_hosts: self.known_hosts.as_deref(),
            accept_new_host_key: self.accept_new_host_key,
            password_file: self.password_file.as_deref(),
        }
    }
}

impl StorageConfig {
    /// A local folder storage.
    pub fn local(path: PathBuf) -> StorageConfig {
        StorageConfig::Local(LocalConfig {
            path,
            ..LocalConfig::default()
        })
    }

    /// The `type` as written.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageConfig::Local(_) => "local",
            StorageConfig::S3(_) => "s3",
            StorageConfig::Gcs(_) => "gcs",
            StorageConfig::Azure(_) => "azure",
            StorageConfig::Sftp(_) => "sftp",
        }
    }

    /// The folder above every job's folder (`""` for none), without `/` at its ends.
    pub fn prefix(&self) -> &str {
        let prefix = match self {
            StorageConfig::Local(c) => &c.prefix,
            StorageConfig::S3(c) => &c.prefix,
            StorageConfig::Gcs(c) => &c.prefix,
            StorageConfig::Azure(c) => &c.prefix,
            StorageConfig::Sftp(c) => &c.prefix,
        };
        prefix.as_deref().unwrap_or("").trim_matches('/')
    }

    /// Whether a failure here fails the backup.
    pub fn required(&self) -> bool {
        let required = match self {
            StorageConfig::Local(c) => c.required,
            StorageConfig::S3(c) => c.required,
            StorageConfig::Gcs(c) => c.required,
            StorageConfig::Azure(c) => c.required,
            StorageConfig::Sftp(c) => c.required,
        };
        required.unwrap_or(true)
    }

    /// Checks the rules that span keys, and the values serde cannot.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        if self.prefix().split('/').any(|p| p == ".." || p == ".") {
            problems.add(
                format!("{at}.prefix"),
                "`prefix` may not contain `.` or `..` segments",
            );
        }
        match self {
            StorageConfig::Local(_) => {}
            StorageConfig::S3(c) => c.validate(at, problems),
            StorageConfig::Gcs(c) => {
                ObjectLock::validate(c.object_lock.as_ref(), at, problems);
                cloud(at, c.endpoint.as_deref(), c.part_size_mib, None, problems)
            }
            StorageConfig::Azure(c) => c.validate(at, problems),
            StorageConfig::Sftp(c) => c.validate(at, problems),
        }
    }
}

impl S3Config {
    fn validate(&self, at: &str, problems: &mut Problems) {
        cloud(
            at,
            self.endpoint.as_deref(),
            self.part_size_mib,
            self.parallel_parts,
            problems,
        );
        let secret = self.secret_access_key.is_some() || self.secret_access_key_file.is_some();
        problems.not_both(
            at,
            "secret_access_key",
            self.secret_access_key.is_some(),
            self.secret_access_key_file.is_some(),
        );
        if self.access_key_id.is_some() != secret {
            problems.add(
                format!("{at}.access_key_id"),
                "give both `access_key_id` and `secret_access_key` (or `_file`), or neither to use the AWS credential chain",
            );
        }
        ObjectLock::validate(self.object_lock.as_ref(), at, problems);
        if let Some(sse) = &self.sse
            && !["AES256", "aws:kms", "aws:kms:dsse"].contains(&sse.as_str())
        {
            problems.add(
                format!("{at}.sse"),
                format!("`{sse}`: use `AES256` or `aws:kms`"),
            );
        }
    }
}

impl AzureConfig {
    fn validate(&self, at: &str, problems: &mut Problems) {
        if let Some(suffix) = &self.endpoint_suffix
            && (suffix.is_empty()
                || suffix.contains(['/', ':', '@', ' '])
                || suffix.starts_with('.'))
        {
            problems.add(
                format!("{at}.endpoint_suffix"),
                format!("`{suffix}` is not a DNS suffix: write it like `core.chinacloudapi.cn`"),
            );
        }
        ObjectLock::validate(self.object_lock.as_ref(), at, problems);
        problems.not_both(
            at,
            "client_secret",
            self.client_secret.is_some(),
            self.client_secret_file.is_some(),
        );
        let shared = self.account_key.is_some()
            || self.account_key_file.is_some()
            || self.sas_token.is_some()
            || self.sas_token_file.is_some()
            || self.connection_string.is_some()
            || self.connection_string_file.is_some();
        if shared && self.credential.is_some() {
            problems.add(
                format!("{at}.credential"),
                "Entra ID sign-in and an account key, SAS token or connection string exclude each other: keep one",
            );
        }
        if let Some(host) = &self.authority_host
            && !(host.starts_with("https://") && url::Url::parse(host).is_ok())
        {
            problems.add(
                format!("{at}.authority_host"),
                format!(
                    "`{host}` is not an https URL: write it like `https://login.microsoftonline.us`"
                ),
            );
        }
        cloud(
            at,
            self.endpoint.as_deref(),
            self.part_size_mib,
            self.parallel_parts,
            problems,
        );
        let given = [
            ("account_key", &self.account_key, &self.account_key_file),
            ("sas_token", &self.sas_token, &self.sas_token_file),
            (
                "connection_string",
                &self.connection_string,
                &self.connection_string_file,
            ),
        ];
        for (key, inline, file) in given {
            problems.not_both(at, key, inline.is_some(), file.is_some());
        }
        if given
            .iter()
            .filter(|(_, inline, file)| inline.is_some() || file.is_some())
            .count()
            > 1
        {
            problems.add(
                format!("{at}.account_key"),
                "give one of `account_key`, `sas_token` or `connection_string`",
            );
        }
        if let Some(tier) = &self.access_tier
            && !["Hot", "Cool", "Cold", "Archive"].contains(&tier.as_str())
        {
            problems.add(
                format!("{at}.access_tier"),
                format!("`{tier}`: use `Hot`, `Cool`, `Cold` or `Archive`"),
            );
        }
    }
}

/// The keys every cloud storage shares: an http(s) endpoint, a part size
/// the service accepts, and a sane number of parts in flight.
fn cloud(
    at: &str,
    endpoint: Option<&str>,
    part_size_mib: Option<u64>,
    parallel_parts: Option<u32>,
    problems: &mut Problems,
) {
    problems.http_url(
        at,
        "endpoint",
        endpoint,
        &format!("`{}`", endpoint.unwrap_or_default()),
    );
    problems.in_range(
        &format!("{at}.part_size_mib"),
        part_size_mib,
        5..=5120,
        " MiB",
    );
    problems.in_range(&format!("{at}.parallel_parts"), parallel_parts, 1..=64, "");
}
