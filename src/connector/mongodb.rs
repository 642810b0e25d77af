//! MongoDB: `mongodump --archive` out, `mongorestore --archive` in.
//!
//! Every connection detail, the password included, reaches the tools as a
//! `uri:` in a 0600 `--config` file; nothing secret is on the command line.
//! Each database is dumped to its own archive, so it can be restored under
//! another name with `--nsFrom`/`--nsTo`. There is no `mongo` shell in the
//! loop: what a server or database holds is read from the prelude of a
//! `mongodump --archive` run, which is stopped as soon as the prelude is in.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DumpCheck;
use super::DumpFormat;
use super::Engine;
use super::mongo_archive::{ArchiveCheck, Prelude};
use super::postgres::ToolSink;
use super::source::{Databases, TlsMode, describe};
use super::{
    Connector, DatabaseSize, DumpItem, DumpSource, RestoreOptions, RestoreSink, ServerInfo, Survey,
    TargetState, TlsInUse,
};
use crate::util::problem::Problems;
use crate::util::process::{Tool, find_tool};
use crate::util::secret::{Secret, secret_from};

super::source::server_source! {
    /// `type: mongodb`: a server or replica set, through mongodump and mongorestore.
    pub struct MongoConfig {
        /// A connection string (may hold the password; never put on a command line).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub uri: Option<Secret>,
        /// File whose first line is the connection string.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub uri_file: Option<PathBuf>,
        /// The database that holds the user's credentials.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub auth_source: Option<String>,
        /// The replica set name.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub replica_set: Option<String>,
        /// Folder holding mongodump and mongorestore; default: PATH.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub bin_dir: Option<PathBuf>,
    }
}

impl MongoConfig {
    /// The connection string, read from `uri_file` when that is how it is given.
    pub fn uri(&self) -> Result<Option<Secret>> {
        Ok(secret_from(&self.uri, &self.uri_file, "uri")?.map(|u| Secret::new(u.expose().trim())))
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        describe(
            Engine::Mongodb,
            self.user.as_deref(),
            self.host.as_deref(),
            self.port,
        )
    }

    pub(super) fn validate(&mut self, at: &str, problems: &mut Problems) {
        problems.not_both(at, "uri", self.uri.is_some(), self.uri_file.is_some());
        let has_uri = self.uri.is_some() || self.uri_file.is_some();
        if has_uri
            && (self.host.is_some()
                || self.port.is_some()
                || self.user.is_some()
                || self.password.is_some()
                || self.password_file.is_some())
        {
            problems.add(
                format!("{at}.uri"),
                "give either `uri` or `host`/`port`/`user`/`password`, not both",
            );
        }
        self.check_shared(at, Engine::Mongodb, true, problems);
        if has_uri && self.ssh.is_some() {
            problems.add(
                format!("{at}.ssh"),
                "an SSH tunnel needs `host`/`port`, not `uri` (the tunnel replaces the address)",
            );
        }
    }
}

/// Databases that `databases: all` leaves out: users and roles (`admin`),
/// the replication state (`local`) and sharding metadata (`config`).
const SYSTEM_DATABASES: [&str; 3] = ["admin", "local", "config"];

/// A MongoDB server.
pub struct Mongodb {
    source: MongoConfig,
    /// The tools' `--config` file: the connection string, handed to each
    /// tool on an unnamed pipe.
    config: Secret,
    /// The prelude of the whole server, once read.
    server: Option<Prelude>,
}

/// Percent-encodes a user name or password for a connection string.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The connection string dbkeep hands to the tools: the user's `uri` with its
/// database path moved into `authSource` (so `--db` never conflicts with it),
/// or one built from the fields; `auth_source`, `replica_set` and the TLS
/// options are added when the string does not set them.
fn connection_string(source: &MongoConfig, uri: Option<&str>) -> Result<String> {
    let (base, mut params) = match uri {
        Some(uri) => {
            let (scheme, rest) = uri
                .split_once("://")
                .context("the MongoDB `uri` must start with mongodb:// or mongodb+srv://")?;
            let (hosts, path) = match rest.find(['/', '?']) {
                Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i + 1..]),
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let (db, query) = path.split_once('?').unwrap_or((path, ""));
            let mut params: Vec<(String, String)> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            if !db.is_empty() && !has(&params, "authSource") {
                params.push(("authSource".to_string(), db.to_string()));
            }
            (format!("{scheme}://{hosts}/"), params)
        }
        None => {
            let mut s = String::from("mongodb://");
            if let Some(user) = &source.user {
                s.push_str(&encode(user));
                if let Some(password) = source.password()? {
                    s.push(':');
                    s.push_str(&encode(password.expose()));
                }
                s.push('@');
            }
            s.push_str(source.host.as_deref().unwrap_or("localhost"));
            s.push_str(&format!(":{}/", source.port.unwrap_or(27017)));
            (s, Vec::new())
        }
    };
    let mut add = |k: &str, v: String| {
        if !has(&params, k) {
            params.push((k.to_string(), v));
        }
    };
    if let Some(a) = &source.auth_source {
        add("authSource", encode(a));
    }
    if let Some(r) = &source.replica_set {
        add("replicaSet", encode(r));
    }
    if let Some(t) = &source.tls {
        add("tls", (t.mode != TlsMode::Disable).to_string());
        match t.mode {
            TlsMode::Require => add("tlsInsecure", "true".to_string()),
            TlsMode::VerifyCa => add("tlsAllowInvalidHostnames", "true".to_string()),
            _ => {}
        }
        if let Some(ca) = &t.ca_file {
            add("tlsCAFile", encode(&ca.to_string_lossy()));
        }
        if let Some(cert) = &t.cert_file {
            add("tlsCertificateKeyFile", encode(&cert.to_string_lossy()));
        }
    }
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(if query.is_empty() {
        base
    } else {
        format!("{base}?{}", query.join("&"))
    })
}

fn has(params: &[(String, String)], key: &str) -> bool {
    params.iter().any(|(k, _)| k.eq_ignore_ascii_case(key))
}

impl Mongodb {
    /// A connector for `source`; writes the 0600 config file for the tools.
    pub fn new(source: MongoConfig) -> Result<Mongodb> {
        let uri = source.uri()?;
        let uri = Secret::new(connection_string(
            &source,
            uri.as_ref().map(Secret::expose),
        )?);
        let mut map = std::collections::BTreeMap::new();
        map.insert("uri", uri.expose());
        let config = Secret::new(serde_yaml_ng::to_string(&map)?);
        Ok(Mongodb {
            source,
            config,
            server: None,
        })
    }

    /// Where the server is, for messages (the connection string is secret).
    fn where_(&self) -> String {
        match (&self.source.uri, &self.source.uri_file) {
            (Some(_), _) => "the configured `uri`".to_string(),
            (None, Some(f)) => format!("the `uri_file` {}", f.display()),
            _ => self.source.describe(),
        }
    }

    /// A tool reading its connection from `--config=/dev/fd/N`: nothing
    /// secret is on its command line or on disk.
    fn tool(&self, name: &str) -> Result<Tool> {
        let path = find_tool(&[name], self.source.bin_dir.as_deref())?;
        let (tool, config) = Tool::new(&path).secret_fd(self.config.expose().as_bytes())?;
        Ok(tool.arg(format!("--config={config}")))
    }

    /// Reads the prelude of `mongodump --archive` (of one database, or the
    /// whole server) and stops the dump there.
    fn prelude(&self, db: Option<&str>) -> Result<Prelude> {
        let mut tool = self.tool("mongodump")?.arg("--archive");
        if let Some(db) = db {
            tool = tool.arg(format!("--db={db}"));
        }
        let mut child = tool.spawn_reader()?;
        let mut check = ArchiveCheck::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = child.read(&mut buf).context("cannot read from mongodump")?;
            if n == 0 {
                break;
            }
            check.update(&buf[..n]);
            if let Some(p) = check.prelude() {
                return Ok(p.clone());
            }
            if let Some(e) = check.error() {
                anyhow::bail!("mongodump wrote something that is not an archive: {e}");
            }
        }
        child.finish().with_context(|| {
            format!(
                "cannot reach MongoDB at {}",
                crate::util::secret::redact(&self.where_())
            )
        })?;
        anyhow::bail!("mongodump ended without writing an archive")
    }

    fn server(&mut self) -> Result<&Prelude> {
        if self.server.is_none() {
            self.server = Some(self.prelude(None)?);
        }
        Ok(self.server.as_ref().expect("just read"))
    }
}

impl Connector for Mongodb {
    fn preflight(&self) -> Vec<anyhow::Error> {
        ["mongodump", "mongorestore"]
            .into_iter()
            .filter_map(|t| find_tool(&[t], self.source.bin_dir.as_deref()).err())
            .collect()
    }

    fn probe(&mut self) -> Result<ServerInfo> {
        let tool = find_tool(&["mongodump"], self.source.bin_dir.as_deref())?;
        let tool_version = Tool::new(&tool)
            .arg("--version")
            .output()?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let prelude = match self.source.databases() {
            Databases::List(list) => self.prelude(list.first().map(String::as_str))?,
            Databases::All => self.server()?.clone(),
        };
        Ok(ServerInfo {
            server_version: prelude.server_version,
            tool: "mongodump".to_string(),
            tool_version: Some(tool_version),
        })
    }

    fn plan(&mut self) -> Result<Vec<DumpItem>> {
        let excluded = self.source.exclude_databases.clone();
        let names: Vec<String> = match self.source.databases() {
            Databases::List(list) => list.clone(),
            Databases::All => self
                .server()?
                .collections
                .iter()
                .map(|c| c.db.clone())
                .filter(|db| !SYSTEM_DATABASES.contains(&db.as_str()))
                .filter(|db| !excluded.contains(db))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        if names.is_empty() {
            anyhow::bail!(
                "MongoDB at {} holds no databases besides admin, local and config: there is nothing to back up",
                self.where_()
            );
        }
        Ok(DumpItem::each(names, DumpFormat::MongoArchive))
    }

    fn dump(&mut self, item: &DumpItem) -> Result<(Box<dyn DumpSource>, Box<dyn DumpCheck>)> {
        let db = item.database_name()?;
        let child = self
            .tool("mongodump")?
            .arg("--archive")
            .arg(format!("--db={db}"))
            .spawn_reader()?;
        Ok((Box::new(child), Box::new(ArchiveCheck::for_database(db))))
    }

    fn probe_restore(&mut self, _dumped_with: Option<&str>) -> Result<()> {
        find_tool(&["mongorestore"], self.source.bin_dir.as_deref())?;
        Ok(())
    }

    fn inspect(&mut self, database: &str) -> Result<TargetState> {
        // MongoDB has no empty databases: one without collections is missing,
        // and the restore creates it by writing to it.
        let prelude = self.prelude(Some(database))?;
        let names: Vec<String> = prelude
            .collections
            .iter()
            .filter(|c| c.db == database)
            .map(|c| c.collection.clone())
            .collect();
        Ok(TargetState::from_objects(&names))
    }

    fn restore(
        &mut self,
        artifact: &DumpItem,
        database: &str,
        opts: RestoreOptions,
    ) -> Result<Box<dyn RestoreSink>> {
        artifact.expect(DumpFormat::MongoArchive)?;
        let from = artifact
            .database
            .as_deref()
            .context("the artifact names no database")?;
        let mut tool = self
            .tool("mongorestore")?
            .args(["--archive", "--stopOnError"]);
        if opts.force {
            tool = tool.arg("--drop");
        }
        tool = tool.arg(format!("--nsInclude={from}.*"));
        if from != database {
            tool = tool
                .arg(format!("--nsFrom={from}.*"))
                .arg(format!("--nsTo={database}.*"));
        }
        let child = tool.spawn_writer()?;
        Ok(Box::new(ToolSink { child }))
    }

    fn drop_created(&mut self, database: &str) -> Result<()> {
        // `inspect` never reports a missing database, so this is not reached;
        // mongorestore has no way to drop a whole database.
        tracing::warn!(
            database,
            "a failed MongoDB restore can leave the collections it restored so far"
        );
        Ok(())
    }

    fn survey(&mut self, plan: &[DumpItem]) -> Result<Survey> {
        let tool = find_tool(&["mongodump"], self.source.bin_dir.as_deref())?;
        let version = Tool::new(&tool).arg("--version").output()?;
        let client = format!(
            "{} ({})",
            tool.display(),
            version.lines().next().unwrap_or_default().trim()
        );
        let server = self.server()?.clone();
        let mut survey = Survey {
            server_version: server.server_version.clone(),
            client: Some(client),
            tls: Some(TlsInUse {
                in_use: self.config.expose().contains("tls=true")
                    || self.config.expose().contains("ssl=true")
                    || self.config.expose().contains("mongodb+srv://"),
                detail: None,
            }),
            ..Survey::default()
        };
        for db in plan.iter().filter_map(|i| i.database.as_deref()) {
            survey.databases.push(DatabaseSize {
                name: db.to_string(),
                bytes: None,
                keys: None,
            });
            let n = server.collections.iter().filter(|c| c.db == db).count();
            survey.notes.push(format!("`{db}` holds {n} collections"));
        }
        survey
            .notes
            .push("sizes need a MongoDB shell: dbkeep reads only what mongodump reports".into());
        Ok(survey)
    }
}

/// The structural check `verify` runs on a decompressed archive.
pub fn stream_check() -> Box<dyn DumpCheck> {
    Box::new(ArchiveCheck::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::source::TlsConfig;

    fn source() -> MongoConfig {
        MongoConfig::default()
    }

    #[test]
    fn connection_strings_are_built_and_encoded() {
        let mut s = source();
        s.host = Some("db1".into());
        s.user = Some("app user".into());
        s.password = Some(Secret::new("p@ss:w/rd%"));
        s.auth_source = Some("admin".into());
        s.replica_set = Some("rs0".into());
        s.tls = Some(TlsConfig::default());
        assert_eq!(
            connection_string(&s, None).unwrap(),
            "mongodb://app%20user:p%40ss%3Aw%2Frd%25@db1:27017/?authSource=admin&replicaSet=rs0&tls=true"
        );
        assert_eq!(
            connection_string(&source(), None).unwrap(),
            "mongodb://localhost:27017/"
        );
    }

    #[test]
    fn a_uri_database_becomes_the_auth_source() {
        let s = source();
        assert_eq!(
            connection_string(&s, Some("mongodb://u:p@h1,h2/app?replicaSet=rs0")).unwrap(),
            "mongodb://u:p@h1,h2/?replicaSet=rs0&authSource=app"
        );
        assert_eq!(
            connection_string(
                &s,
                Some("mongodb+srv://u:p@c.example.net/app?authSource=admin")
            )
            .unwrap(),
            "mongodb+srv://u:p@c.example.net/?authSource=admin"
        );
        assert_eq!(
            connection_string(&s, Some("mongodb://h:27018")).unwrap(),
            "mongodb://h:27018/"
        );
        assert!(connection_string(&s, Some("h:27018")).is_err());
    }
}
