//! Hooks: commands run around a job, as argv lists without a shell.
//!
//! Order: global `before`, job `before`, the backup, then job and global
//! `after` (on success) or `on_failure`, then job and global `finally`. A
//! failing `before` hook fails the job and nothing is dumped; a failing
//! later hook is logged as a warning. Hooks see `DBKEEP_JOB`,
//! `DBKEEP_STATUS` (`running`, `success`, `failure`), `DBKEEP_BACKUP_ID`,
//! `DBKEEP_SIZE` (bytes stored), `DBKEEP_DURATION` (seconds) and
//! `DBKEEP_ERROR`. Their output goes to dbkeep's stderr.
//!
//! Hooks do not inherit dbkeep's environment, which may hold database
//! passwords, cloud keys and the age passphrase: they get [`ALLOWED_ENV`],
//! the job variables above, the names listed in `pass_env`, and `env`.

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::{HookArg, Hooks};
use crate::util::signal;

/// Seconds a hook may run when the config does not say.
pub const DEFAULT_TIMEOUT: u64 = 300;

/// The variables of dbkeep's environment that every hook inherits (`LC_*` too).
pub const ALLOWED_ENV: [&str; 8] = [
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "TMPDIR",
];

fn inherited(name: &str, hooks: &Hooks) -> bool {
    ALLOWED_ENV.contains(&name)
        || name.starts_with("LC_")
        || hooks.pass_env.iter().any(|p| p == name)
}

/// What hooks are told about the job.
#[derive(Debug, Clone, Default)]
pub struct HookEnv {
    /// The job.
    pub job: String,
    /// `running`, `success` or `failure`.
    pub status: String,
    /// The backup id, once there is one.
    pub backup_id: String,
    /// Bytes stored.
    pub size: u64,
    /// Seconds so far.
    pub duration: f64,
    /// The error, on failure (secrets removed).
    pub error: String,
}

/// Which list of a [`Hooks`] to run.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Before the dump.
    Before,
    /// After a successful backup.
    After,
    /// After a failed one.
    OnFailure,
    /// Last.
    Finally,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Before => "before",
            Stage::After => "after",
            Stage::OnFailure => "on_failure",
            Stage::Finally => "finally",
        }
    }

    fn list(self, hooks: &Hooks) -> &[Vec<HookArg>] {
        match self {
            Stage::Before => &hooks.before,
            Stage::After => &hooks.after,
            Stage::OnFailure => &hooks.on_failure,
            Stage::Finally => &hooks.finally,
        }
    }
}

/// Runs one stage's commands in order; stops at the first failure and returns it.
pub fn run(stage: Stage, hooks: &Hooks, env: &HookEnv) -> Result<()> {
    let timeout = Duration::from_secs(hooks.timeout.unwrap_or(DEFAULT_TIMEOUT));
    for argv in stage.list(hooks) {
        run_one(stage, argv, hooks, env, timeout)?;
    }
    Ok(())
}

/// Runs a stage and logs (rather than returns) a failure.
pub fn run_logged(stage: Stage, hooks: &Hooks, env: &HookEnv) {
    if let Err(e) = run(stage, hooks, env) {
        tracing::warn!(stage = stage.name(), error = %crate::util::secret::clean(&format!("{e:#}")), "hook failed");
    }
}

fn run_one(
    stage: Stage,
    argv: &[HookArg],
    hooks: &Hooks,
    env: &HookEnv,
    timeout: Duration,
) -> Result<()> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let shown: Vec<&str> = argv.iter().map(HookArg::shown).collect();
    let shown = format!("{} hook `{}`", stage.name(), shown.join(" "));
    let (program, args) = (program.value(), args.iter().map(HookArg::value));
    let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
    let stdout = std::io::stderr().as_fd().try_clone_to_owned()?;
    // Its own process group, so a signal stops it with whatever it started.
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for (k, v) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| inherited(k, hooks)) {
            cmd.env(k, v);
        }
    }
    for (k, v) in &hooks.env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .process_group(0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .env("DBKEEP_JOB", &env.job)
        .env("DBKEEP_STATUS", &env.status)
        .env("DBKEEP_BACKUP_ID", &env.backup_id)
        .env("DBKEEP_SIZE", env.size.to_string())
        .env("DBKEEP_DURATION", format!("{:.3}", env.duration))
        .env("DBKEEP_ERROR", &env.error)
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    signal::track(child.id());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if signal::cancelled() {
            signal::kill_group(child.id(), libc::SIGTERM);
            let _ = child.wait();
            signal::untrack(child.id());
            return Err(
                anyhow::Error::new(signal::Interrupted).context(format!("{shown} was stopped"))
            );
        }
        if started.elapsed() > timeout {
            signal::kill_group(child.id(), libc::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            signal::untrack(child.id());
            anyhow::bail!(
                "{shown} did not finish within {} s and was stopped",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    signal::untrack(child.id());
    if !status.success() {
        anyhow::bail!("{shown} {}", crate::util::process::describe_status(status));
    }
    Ok(())
}
