//! The dbkeep binary: parse flags, set up logging and signals, run, exit.

use std::process::ExitCode;

use clap::Parser;
use dbkeep::cli;
use dbkeep::util::{exit, secret, signal};

fn main() -> ExitCode {
    // No core dumps: the process holds database passwords, cloud keys and
    // the age passphrase in memory.
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) has no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    init_logging(cli.verbose, cli.quiet, cli.log_format);
    // One TLS provider for every client in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(e) = signal::install() {
        eprintln!("warning: cannot install signal handlers: {e}");
    }
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = cli::exit_code(&err);
            if let Some(text) = cli::error_text(&err) {
                eprintln!("error: {}", secret::redact(&text));
            }
            ExitCode::from(code)
        }
    }
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
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        cli::LogFormat::Json => builder.json().flatten_event(true).init(),
        cli::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
