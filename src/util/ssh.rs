//! The system `ssh` client, as dbkeep runs it for tunnels and SFTP storage.
//!
//! The host key is always checked (`StrictHostKeyChecking=yes`, or
//! `accept-new` only when asked for); nothing ever prompts. The operator's
//! `~/.ssh/config`, agent and keys apply as they do to their own `ssh`.
//!
//! A password comes from a file, never from argv or the environment: `ssh`
//! runs with `SSH_ASKPASS` set to dbkeep itself and the file's path in
//! [`ASKPASS_FILE`]; dbkeep, started that way, prints the file's first line
//! for a password prompt and refuses every other question ([`askpass`]).

use std::path::Path;

use anyhow::Result;

use super::process::{Tool, find_tool};

/// How to log in to one SSH server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Login<'a> {
    /// The server.
    pub host: &'a str,
    /// Its port (default: 22, or `~/.ssh/config`).
    pub port: Option<u16>,
    /// The login (default: `~/.ssh/config`, or this user).
    pub user: Option<&'a str>,
    /// A private key (default: the agent and `~/.ssh`).
    pub key_file: Option<&'a Path>,
    /// A known_hosts file (default: `~/.ssh/known_hosts`).
    pub known_hosts: Option<&'a Path>,
    /// Trust a host key seen for the first time.
    pub accept_new_host_key: bool,
    /// A file holding the login's password.
    pub password_file: Option<&'a Path>,
}

/// The variable that tells dbkeep, run as `SSH_ASKPASS`, where the password
/// is. It has no `DBKEEP_` prefix, so no config source ever reads it.
pub const ASKPASS_FILE: &str = "_DBKEEP_SSH_ASKPASS_FILE";

/// dbkeep as `ssh`'s askpass program: the first line of the password file
/// for a password prompt (`prompt`, ssh's only argument), nothing and a
/// failure for any other question (a key's passphrase, a host key).
pub fn askpass(file: &std::ffi::OsStr, prompt: &str) -> std::process::ExitCode {
    use std::io::Write;
    let lower = prompt.to_ascii_lowercase();
    if !lower.contains("password") || lower.contains("passphrase") {
        return std::process::ExitCode::FAILURE;
    }
    let Ok(f) = std::fs::File::open(file) else {
        return std::process::ExitCode::FAILURE;
    };
    let Ok(text) = super::read_capped(f, 4096) else {
        return std::process::ExitCode::FAILURE;
    };
    let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line)
        .and_then(|_| out.write_all(b"\n"))
        .is_err()
    {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

impl Login<'_> {
    /// `user@host:port`, for messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(u) = self.user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }

    /// `ssh` with this login's options and `extra` before the host; the
    /// caller adds what follows the host (a subsystem name) if anything.
    pub fn command(&self, extra: &[&str]) -> Result<Tool> {
        let mut tool = Tool::new(&find_tool(&["ssh"], None)?).arg("-T");
        tool = match self.password_file {
            // Nothing prompts on a terminal.
            None => tool.args(["-o", "BatchMode=yes"]),
            // The only question ssh may ask goes to the askpass program.
            Some(file) => tool
                .args(["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"])
                .env("SSH_ASKPASS", std::env::current_exe()?)
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env(ASKPASS_FILE, file),
        };
        tool = tool
            .args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=4",
            ])
            .args(["-o", "ConnectTimeout=15"])
            .arg("-o")
            .arg(if self.accept_new_host_key {
                "StrictHostKeyChecking=accept-new"
            } else {
                "StrictHostKeyChecking=yes"
            })
            .args(extra);
        if let Some(file) = self.known_hosts {
            tool = tool
                .arg("-o")
                .arg(format!("UserKnownHostsFile={}", file.display()));
        }
        if let Some(key) = self.key_file {
            tool = tool.arg("-i").arg(key).args(["-o", "IdentitiesOnly=yes"]);
        }
        if let Some(p) = self.port {
            tool = tool.arg("-p").arg(p.to_string());
        }
        if let Some(u) = self.user {
            tool = tool.arg("-l").arg(u);
        }
        Ok(tool.arg("--").arg(self.host))
    }
}

/// Refuses a host or user that could not reach ssh's command line as a
/// name: empty, a leading `-`, spaces, `@`.
pub fn check_names(
    at: &str,
    host: &str,
    user: Option<&str>,
    problems: &mut super::problem::Problems,
) {
    for (key, value) in [("host", Some(host)), ("user", user)] {
        if let Some(v) = value
            && (v.is_empty()
                || v.starts_with('-')
                || v.contains(char::is_whitespace)
                || v.contains('@'))
        {
            problems.add(
                format!("{at}.{key}"),
                format!("`{v}` is not a usable SSH {key}"),
            );
        }
    }
}
