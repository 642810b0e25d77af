//! The dbkeep binary: parse flags, set up logging and signals, run, exit.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use dbkeep::cli;
use dbkeep::util::exit::{Failure, Reported};
use dbkeep::util::{secret, signal};

fn main() -> ExitCode {
    // No core dumps: the process holds database passwords, cloud keys and
    // the age passphrase in memory.
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) has no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    // Started by `ssh` as its askpass program for an SFTP password.
    if let Some(file) = std::env::var_os(dbkeep::util::ssh::ASKPASS_FILE) {
        let args: Vec<String> = std::env::args().collect();
        if args.len() == 2 {
            return dbkeep::util::ssh::askpass(&file, &args[1]);
        }
    }
    let result = match cli::Cli::try_parse() {
        Ok(cli) => run(cli),
        // `--help` and `--version` arrive here too, and are no error.
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                Err(Failure::Reported(Reported::Usage).into())
            } else {
                Ok(())
            }
        }
    };
    ExitCode::from(cli::exit_code(&result))
}

/// Runs the command and prints its error, if any.
fn run(cli: cli::Cli) -> Result<()> {
    init_logging(cli.verbose, cli.quiet, cli.log_format);
    // One TLS provider for every client in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A second signal exits at once, with the code the mapping gives an interruption.
    let interrupted = cli::exit_code(&Err(Failure::Interrupted.into()));
    if let Err(e) = signal::install(interrupted) {
        eprintln!("warning: cannot install signal handlers: {e}");
    }
    let result = cli::run(cli);
    if let Err(err) = &result
        && let Some(text) = cli::error_text(err)
    {
        eprintln!("error: {}", secret::redact(&text));
    }
    result
}

fn init_logging(verbose: u8, quiet: bool, format: cli::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = std::env::var("DBKEEP_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("dbkeep={default},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(dbkeep::util::screen::Stderr)
        .with_target(false);
    match format {
        cli::LogFormat::Json => builder.json().flatten_event(true).init(),
        cli::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
