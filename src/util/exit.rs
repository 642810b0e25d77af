//! The exit-code table, and the error kinds that map onto it.
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
//! The code is decided once, by `cli::exit_code`, from the error returned by
//! the command.

use std::fmt;

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

/// An error that carries its own exit code. Anything else exits with [`FAILED`].
#[derive(Debug)]
pub struct Exit {
    /// The process exit code.
    pub code: u8,
    /// What to print, if anything (already printed when `None`).
    pub message: Option<String>,
}

impl Exit {
    /// An exit with a code and a message.
    pub fn new(code: u8, message: impl Into<String>) -> Exit {
        Exit {
            code,
            message: Some(message.into()),
        }
    }

    /// An exit whose reasons were already reported.
    pub fn silent(code: u8) -> Exit {
        Exit {
            code,
            message: None,
        }
    }

    /// The run was interrupted by a signal.
    pub fn interrupted() -> Exit {
        Exit::new(
            INTERRUPTED,
            "interrupted: the child was stopped and partial objects were removed",
        )
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}
