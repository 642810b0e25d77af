//! SSH tunnels: a local forward through a bastion, opened by the system
//! `ssh` client for one run and closed on every way out.
//!
//! The system client is used rather than an SSH library: it honours
//! `~/.ssh/config` (ProxyJump, ports, identities), the agent and hardware
//! keys the way the operator's own `ssh` does, and it is the audited code
//! that already guards the bastion. It runs in its own process group like
//! every tool, so a signal stops it with the rest.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::util::problem::Problems;
use crate::util::process::ChildReader;

/// The `ssh:` block of a network source: the server is reached through a
/// local forward over SSH. The host key is always checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshConfig {
    /// The SSH server (bastion) to go through; `~/.ssh/config` applies to it.
    pub host: String,
    /// Its port (default: 22, or what `~/.ssh/config` says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The login on the SSH server (default: `~/.ssh/config`, or this user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
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
}

impl SshConfig {
    /// Names that reach ssh's command line must not read as options.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        let at = format!("{at}.ssh");
        crate::util::ssh::check_names(&at, &self.host, self.user.as_deref(), problems);
    }

    /// `ssh=user@host:port` of a URL.
    pub fn parse(text: &str) -> Result<SshConfig> {
        let (user, rest) = match text.rsplit_once('@') {
            Some((u, r)) => (Some(u.to_string()), r),
            None => (None, text),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                Some(
                    p.parse()
                        .with_context(|| format!("`ssh={text}`: `{p}` is not a port"))?,
                ),
            ),
            None => (rest.to_string(), None),
        };
        Ok(SshConfig {
            host,
            port,
            user,
            ..SshConfig::default()
        })
    }

    /// `user@host:port`, for messages.
    pub fn describe(&self) -> String {
        self.login().describe()
    }

    /// The login these settings describe.
    pub fn login(&self) -> crate::util::ssh::Login<'_> {
        crate::util::ssh::Login {
            host: &self.host,
            port: self.port,
            user: self.user.as_deref(),
            key_file: self.key_file.as_deref(),
            known_hosts: self.known_hosts.as_deref(),
            accept_new_host_key: self.accept_new_host_key,
            password_file: None,
        }
    }
}

/// An open local forward; dropping it stops `ssh`.
pub struct Tunnel {
    /// The local end, on 127.0.0.1.
    pub port: u16,
    child: Option<ChildReader>,
}

impl Tunnel {
    /// Forwards a free local port to `host:port` as the SSH server sees it,
    /// and waits until the forward answers.
    pub fn open(ssh: &SshConfig, host: &str, port: u16) -> Result<Tunnel> {
        let local = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .context("cannot find a free local port for the SSH tunnel")?
            .port();
        let forward = if host.contains(':') {
            format!("127.0.0.1:{local}:[{host}]:{port}")
        } else {
            format!("127.0.0.1:{local}:{host}:{port}")
        };
        let tool =
            ssh.login()
                .command(&["-N", "-o", "ExitOnForwardFailure=yes", "-L", &forward])?;
        let mut child = tool.spawn_reader()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, local));
        loop {
            if child.has_exited() {
                let why = match child.finish() {
                    Err(e) => format!("{e:#}"),
                    Ok(_) => "ssh ended at once".to_string(),
                };
                anyhow::bail!(
                    "cannot open the SSH tunnel through {} to {host}:{port}: {why}",
                    ssh.describe()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                tracing::info!(through = %ssh.describe(), to = %format!("{host}:{port}"), local, "SSH tunnel open");
                return Ok(Tunnel {
                    port: local,
                    child: Some(child),
                });
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "the SSH tunnel through {} to {host}:{port} did not open within 30 s",
                    ssh.describe()
                );
            }
            crate::util::signal::check()?;
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        // Dropping the child stops its process group.
        self.child.take();
    }
}
