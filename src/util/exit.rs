//! The exit-code table, and the causes of failure that map onto it.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | every job succeeded |
//! | 1    | failed: nothing was stored, or a restore or verify failed |
//! | 2    | usage: bad flags or arguments |
//! | 3    | partial: some jobs succeeded and at least one failed |
//! | 75   | the job is locked by another run (EX_TEMPFAIL) |
//! | 78   | configuration invalid (EX_CONFIG) |
//! | 130  | interrupted by SIGINT or SIGTERM; partial objects were removed |
//!
//! Code that fails for one of these reasons returns a [`Failure`] naming the
//! cause, never a number. Commands return `Result<()>`, and the code is
//! decided once, by `cli::exit_code`, from that result: the first [`Failure`],
//! `config::Invalid` or [`Interrupted`](super::signal::Interrupted) in the
//! error's chain picks it; any other error exits with [`FAILED`], or with
//! [`INTERRUPTED`] once a signal has arrived.

/// Every job succeeded.
pub const OK: u8 = 0;
/// The run failed.
pub const FAILED: u8 = 1;
/// Bad flags or arguments.
pub const USAGE: u8 = 2;
/// Some jobs succeeded and at least one failed.
pub const PARTIAL: u8 = 3;
/// The job's lock is held by another run.
pub const LOCKED: u8 = 75;
/// The configuration is invalid.
pub const CONFIG: u8 = 78;
/// Interrupted by a signal.
pub const INTERRUPTED: u8 = 130;

/// The exit-code table as shown at the end of `--help`.
pub const TABLE: &str = "\
Exit codes:
  0    success
  1    failure (nothing stored, or restore/verify failed)
  2    usage error
  3    partial: some jobs failed, others succeeded
  75   locked: another run of the job holds its lock
  78   configuration invalid
  130  interrupted (SIGINT/SIGTERM); partial objects removed";

/// Why a run failed, as far as the user is concerned. Its message is what
/// `main` prints; `cli::exit_code` turns it into the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad flags or arguments: an unknown job, a `--to` or `--target` URL
    /// that does not parse, a flag that does not fit the others.
    #[error("{0}")]
    Usage(String),
    /// The configuration cannot be used: no file, an unreadable one, or one
    /// that lacks what the command needs.
    #[error("{0}")]
    Config(String),
    /// Another run holds the job's lock.
    #[error(
        "job `{job}` is locked in storage `{storage}` by {holder}{}. If that run is gone, the lock is taken over once it is older than `lock.stale_after`",
        wait_advice(*.waited)
    )]
    Locked {
        /// The job.
        job: String,
        /// The storage whose lock is held.
        storage: String,
        /// Who holds it.
        holder: String,
        /// Whether `--wait-lock` was given (and ran out).
        waited: bool,
    },
    /// A signal stopped the work; the child was stopped and partial objects
    /// were removed.
    #[error("interrupted: the child was stopped and partial objects were removed")]
    Interrupted,
    /// `schedule run` stopped before its running jobs finished.
    #[error("stopped: running jobs were interrupted and their partial objects removed")]
    Stopped,
    /// `config validate`: the file is valid, but what it points at is not
    /// usable (missing tools, unreadable password files, storages that
    /// cannot be written).
    #[error("{}", environment_text(.0))]
    Environment(Vec<String>),
    /// Some jobs failed (each reported as it failed) and others succeeded.
    #[error("some jobs failed and others succeeded")]
    Partial,
    /// A failure whose reasons were already printed.
    #[error("{0}")]
    Reported(Reported),
}

/// What a run that already printed its reasons ended as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reported {
    /// Every job failed, or a test message could not be sent.
    #[error("failed (reported above)")]
    Failed,
    /// The command line was refused (clap printed why).
    #[error("usage error (reported above)")]
    Usage,
    /// Every job was locked by another run.
    #[error("locked by another run (reported above)")]
    Locked,
    /// A signal stopped the run.
    #[error("interrupted (reported above)")]
    Interrupted,
}

impl Failure {
    /// Whether the reasons were already printed, so that nothing is left to
    /// print but the exit code to give.
    pub fn is_reported(&self) -> bool {
        matches!(self, Failure::Partial | Failure::Reported(_))
    }
}

fn wait_advice(waited: bool) -> &'static str {
    if waited {
        " and `--wait-lock` ran out"
    } else {
        "; add `--wait-lock 30m` to wait for it"
    }
}

fn environment_text(problems: &[String]) -> String {
    let mut text = format!(
        "environment: {} problem{}:\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        text.push_str(&format!("  - {p}\n"));
    }
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_message_says_how_to_wait_or_that_waiting_ran_out() {
        let locked = |waited| Failure::Locked {
            job: "app".into(),
            storage: "local".into(),
            holder: "backup on host1 (pid 7)".into(),
            waited,
        };
        assert_eq!(
            locked(false).to_string(),
            "job `app` is locked in storage `local` by backup on host1 (pid 7); add `--wait-lock 30m` \
             to wait for it. If that run is gone, the lock is taken over once it is older than `lock.stale_after`"
        );
        assert_eq!(
            locked(true).to_string(),
            "job `app` is locked in storage `local` by backup on host1 (pid 7) and `--wait-lock` ran out. \
             If that run is gone, the lock is taken over once it is older than `lock.stale_after`"
        );
    }

    #[test]
    fn environment_problems_are_listed_one_a_line() {
        assert_eq!(
            Failure::Environment(vec!["jobs.app.source: pg_dump not found".into()]).to_string(),
            "environment: 1 problem:\n  - jobs.app.source: pg_dump not found"
        );
        assert_eq!(
            Failure::Environment(vec!["a".into(), "b ".into()]).to_string(),
            "environment: 2 problems:\n  - a\n  - b"
        );
    }

    #[test]
    fn only_partial_and_reported_failures_are_already_reported() {
        assert!(Failure::Partial.is_reported());
        assert!(Failure::Reported(Reported::Locked).is_reported());
        assert!(!Failure::Usage("x".into()).is_reported());
        assert!(!Failure::Interrupted.is_reported());
    }
}
