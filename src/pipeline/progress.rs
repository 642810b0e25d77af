//! Progress of a running job: bytes dumped, bytes stored, rate, elapsed,
//! and, where the server could say how big the dump will be, the percent
//! done and the time left, both marked as estimates.
//!
//! The pipeline only bumps counters; a reporter thread shows them: a bar on
//! a terminal, a log line every few seconds elsewhere (cron, systemd, CI),
//! or nothing with `--no-progress` or `--quiet`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::{duration, human_size, screen};

/// Log-line interval when stderr is not a terminal.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// What the pipeline counts.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes read from the dump tool.
    pub dumped: AtomicU64,
    /// Bytes written to storage.
    pub stored: AtomicU64,
    /// The dump size the server's statistics suggest (0: unknown).
    pub expected: AtomicU64,
    /// Whether anyone shows progress, so an estimate is worth asking for.
    pub shown: bool,
}

impl Counters {
    /// Counters for a job whose progress is shown in `mode`.
    pub fn for_mode(mode: Mode) -> Counters {
        Counters {
            shown: mode != Mode::Off,
            ..Counters::default()
        }
    }
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

/// How far along a dump is against its estimated size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Percent done, at most 99 while the dump runs (the estimate can be low).
    pub percent: u8,
    /// Time left at the rate so far, while the dump is below the estimate
    /// and has run long enough to have a rate.
    pub left: Option<Duration>,
}

impl Estimate {
    /// Where `dumped` bytes after `elapsed` stand against `expected`.
    pub fn of(dumped: u64, expected: u64, elapsed: Duration) -> Option<Estimate> {
        if expected == 0 {
            return None;
        }
        let percent = (dumped as f64 * 100.0 / expected as f64).min(99.0) as u8;
        let secs = elapsed.as_secs_f64();
        let left = (dumped > 0 && dumped < expected && secs >= 1.0).then(|| {
            let rate = dumped as f64 / secs;
            Duration::from_secs_f64(((expected - dumped) as f64 / rate).ceil())
        });
        Some(Estimate { percent, left })
    }

    /// `~42% (estimate), ETA ~1m10s`.
    pub fn describe(&self) -> String {
        match self.left {
            Some(left) => format!(
                "~{}% (estimate), ETA ~{}",
                self.percent,
                duration::format(left)
            ),
            None => format!("~{}% (estimate)", self.percent),
        }
    }
}

/// Shows a job's progress until dropped.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The numbers of one report.
struct Snapshot {
    dumped: u64,
    stored: u64,
    expected: u64,
    elapsed: Duration,
}

impl Snapshot {
    fn take(counters: &Counters, started: Instant) -> Snapshot {
        Snapshot {
            dumped: counters.dumped.load(Ordering::Relaxed),
            stored: counters.stored.load(Ordering::Relaxed),
            expected: counters.expected.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        }
    }

    fn rate(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            (self.dumped as f64 / secs) as u64
        } else {
            0
        };
        format!("{}/s", human_size(rate))
    }

    fn estimate(&self) -> Option<Estimate> {
        Estimate::of(self.dumped, self.expected, self.elapsed)
    }

    /// The bar's text, the estimate first (the end is cut to the terminal).
    fn message(&self) -> String {
        let mut text = String::new();
        if let Some(e) = self.estimate() {
            text.push_str(&format!("{} · ", e.describe()));
        }
        text.push_str(&format!("dumped {}", human_size(self.dumped)));
        if self.expected > 0 {
            text.push_str(&format!(" of ~{}", human_size(self.expected)));
        }
        text.push_str(&format!(
            " · stored {} · {} · {:.0}s",
            human_size(self.stored),
            self.rate(),
            self.elapsed.as_secs_f64()
        ));
        text
    }
}

fn log_line(job: &str, s: &Snapshot) {
    let (dumped, stored, rate) = (human_size(s.dumped), human_size(s.stored), s.rate());
    let elapsed = format!("{:.1}s", s.elapsed.as_secs_f64());
    match s.estimate() {
        Some(e) => {
            let estimated = format!("~{}", human_size(s.expected));
            let percent = format!("~{}%", e.percent);
            let eta = e.left.map(|l| format!("~{}", duration::format(l)));
            tracing::info!(
                job,
                dumped,
                stored,
                rate,
                elapsed,
                estimated,
                percent,
                eta,
                "progress (percent and ETA are estimates)"
            );
        }
        None => tracing::info!(job, dumped, stored, rate, elapsed, "progress"),
    }
}

fn bar_thread(job: String, counters: Arc<Counters>, stop: Arc<AtomicBool>) {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let spinner = indicatif::ProgressStyle::with_template("{spinner} {prefix}: {wide_msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let gauge = indicatif::ProgressStyle::with_template("{prefix}: [{bar:20}] {wide_msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(spinner);
    bar.set_prefix(job);
    screen::show(&bar);
    let started = Instant::now();
    let mut sized = false;
    while !stop.load(Ordering::Relaxed) {
        let s = Snapshot::take(&counters, started);
        if s.expected > 0 {
            if !sized {
                bar.set_style(gauge.clone());
                sized = true;
            }
            bar.set_length(s.expected);
            bar.set_position(s.dumped.min(s.expected / 100 * 99));
        }
        bar.set_message(s.message());
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    screen::hide();
    bar.finish_and_clear();
}

impl Reporter {
    /// Starts showing `counters` for `job`.
    pub fn start(job: &str, counters: Arc<Counters>, mode: Mode) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let job = job.to_string();
        let spawn = |f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(f)
                .ok()
        };
        let thread = match mode {
            Mode::Off => None,
            Mode::Log(every) => {
                let stop = stop.clone();
                spawn(Box::new(move || {
                    let started = Instant::now();
                    let mut next = started + every;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50).min(every));
                        if Instant::now() >= next {
                            next += every;
                            log_line(&job, &Snapshot::take(&counters, started));
                        }
                    }
                }))
            }
            Mode::Bar => {
                let stop = stop.clone();
                spawn(Box::new(move || bar_thread(job, counters, stop)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_say_percent_and_time_left_and_never_claim_done() {
        let secs = Duration::from_secs;
        assert_eq!(Estimate::of(10, 0, secs(5)), None);
        let half = Estimate::of(50, 100, secs(10)).unwrap();
        assert_eq!(half.percent, 50);
        assert_eq!(half.left, Some(secs(10)));
        assert_eq!(half.describe(), "~50% (estimate), ETA ~10s");
        // Past a low estimate: 99%, and no time left to promise.
        let past = Estimate::of(300, 100, secs(10)).unwrap();
        assert_eq!((past.percent, past.left), (99, None));
        // Too early for a rate.
        assert_eq!(
            Estimate::of(5, 100, Duration::from_millis(200))
                .unwrap()
                .left,
            None
        );
        assert_eq!(
            Estimate::of(0, 100, secs(3)).unwrap().describe(),
            "~0% (estimate)"
        );
    }
}
