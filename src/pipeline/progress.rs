//! Progress of a running job: bytes dumped, bytes stored, rate, elapsed.
//!
//! The pipeline only bumps two counters; a reporter thread shows them: a
//! bar on a terminal, a log line every few seconds elsewhere (cron, systemd,
//! CI), or nothing with `--no-progress` or `--quiet`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::human_size;

/// Log-line interval when stderr is not a terminal.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// What the pipeline counts.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes read from the dump tool.
    pub dumped: AtomicU64,
    /// Bytes written to storage.
    pub stored: AtomicU64,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Not at all.
    Off,
    /// A log line every so often.
    Log(Duration),
    /// A live bar on stderr.
    Bar,
}

impl Mode {
    /// The mode for this process: off when asked, a bar on a terminal, else
    /// log lines (every `DBKEEP_PROGRESS_INTERVAL` seconds, default 10).
    pub fn detect(disabled: bool) -> Mode {
        if disabled {
            return Mode::Off;
        }
        if std::io::stderr().is_terminal() {
            return Mode::Bar;
        }
        let interval = std::env::var("DBKEEP_PROGRESS_INTERVAL")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_INTERVAL);
        Mode::Log(interval)
    }
}

/// Shows a job's progress until dropped.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn line(counters: &Counters, started: Instant) -> (String, String, String, String) {
    let dumped = counters.dumped.load(Ordering::Relaxed);
    let stored = counters.stored.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 {
        (dumped as f64 / secs) as u64
    } else {
        0
    };
    (
        human_size(dumped),
        human_size(stored),
        format!("{}/s", human_size(rate)),
        format!("{secs:.1}s"),
    )
}

impl Reporter {
    /// Starts showing `counters` for `job`.
    pub fn start(job: &str, counters: Arc<Counters>, mode: Mode) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = match mode {
            Mode::Off => None,
            Mode::Log(every) => {
                let (stop, job) = (stop.clone(), job.to_string());
                std::thread::Builder::new()
                    .name("progress".into())
                    .spawn(move || {
                        let started = Instant::now();
                        let mut next = started + every;
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(50).min(every));
                            if Instant::now() >= next {
                                next += every;
                                let (dumped, stored, rate, elapsed) = line(&counters, started);
                                tracing::info!(job, dumped, stored, rate, elapsed, "progress");
                            }
                        }
                    })
                    .ok()
            }
            Mode::Bar => {
                let (stop, job) = (stop.clone(), job.to_string());
                std::thread::Builder::new()
                    .name("progress".into())
                    .spawn(move || {
                        let bar = indicatif::ProgressBar::new_spinner();
                        bar.set_style(
                            indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(job);
                        let started = Instant::now();
                        while !stop.load(Ordering::Relaxed) {
                            let (dumped, stored, rate, elapsed) = line(&counters, started);
                            bar.set_message(format!(
                                "dumped {dumped}, stored {stored}, {rate}, {elapsed}"
                            ));
                            bar.tick();
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        bar.finish_and_clear();
                    })
                    .ok()
            }
        };
        Reporter { stop, thread }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
