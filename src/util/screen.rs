//! The terminal's stderr, shared by log lines and a progress bar.
//!
//! While a bar is on screen, each log line is written with the bar taken
//! off first and drawn again below it, so no frame of the bar is left
//! behind above the logs and no line lands in the middle of the bar.

use std::io::{self, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;

/// The bar on screen, if any.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Puts `bar` on screen: log lines go above it from now on.
pub fn show(bar: &ProgressBar) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = Some(bar.clone());
    }
}

/// Takes the bar off: log lines go straight to stderr again.
pub fn hide() {
    if let Ok(mut slot) = BAR.lock() {
        *slot = None;
    }
}

/// Writes `bytes` to `out`, with `bar` (when there is one) cleared for the
/// time of the write and drawn again after it.
pub fn write_above(bar: Option<&ProgressBar>, out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    match bar {
        Some(bar) => bar.suspend(|| out.write_all(bytes).and_then(|()| out.flush())),
        None => out.write_all(bytes).and_then(|()| out.flush()),
    }
}

/// The log writer: each event is written whole, above the bar.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

/// One log event, written when dropped.
#[derive(Debug, Default)]
pub struct Event(Vec<u8>);

impl Write for Event {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let bar = BAR.lock().ok().and_then(|b| b.clone());
        let _ = write_above(bar.as_ref(), &mut io::stderr().lock(), &self.0);
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Event;

    fn make_writer(&'a self) -> Event {
        Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::{InMemoryTerm, ProgressDrawTarget, TermLike};

    /// A terminal's stderr, as the terminal shows it.
    struct Terminal(InMemoryTerm);

    impl Write for Terminal {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let text = String::from_utf8_lossy(buf);
            for line in text.split_inclusive('\n') {
                match line.strip_suffix('\n') {
                    Some(l) => self.0.write_line(l)?,
                    None => self.0.write_str(line)?,
                }
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    fn screen(through_bar: bool) -> String {
        let term = InMemoryTerm::new(10, 60);
        let bar = ProgressBar::with_draw_target(
            None,
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        bar.set_prefix("app");
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg}").unwrap(),
        );
        bar.set_message("dumped 0 B");
        bar.tick();
        let mut out = Terminal(term.clone());
        for line in ["INFO backup started", "INFO dump size estimated"] {
            let bytes = format!("{line}\n");
            if through_bar {
                write_above(Some(&bar), &mut out, bytes.as_bytes()).unwrap();
            } else {
                out.write_all(bytes.as_bytes()).unwrap();
            }
        }
        bar.set_message("dumped 5 MiB");
        bar.tick();
        term.contents()
    }

    #[test]
    fn log_lines_go_above_the_bar_and_leave_no_frame_behind() {
        let shown = screen(true);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "INFO backup started", "{shown}");
        assert_eq!(lines[1], "INFO dump size estimated", "{shown}");
        assert!(lines[2].ends_with("app: dumped 5 MiB"), "{shown}");
        assert_eq!(shown.matches("app:").count(), 1, "{shown}");
        // Written past the bar, the first frame stays on screen.
        let raw = screen(false);
        assert!(
            raw.contains("dumped 0 B"),
            "the check itself sees a stale frame: {raw}"
        );
    }
}
