//! Dump checks for tools that end their output with a known line.

use super::DumpCheck;

/// Passes when the last bytes of the stream contain `marker`.
///
/// mariadb-dump / mysqldump end with `-- Dump completed on ...`;
/// pg_dumpall ends with `-- PostgreSQL database cluster dump complete`.
pub struct EndMarker {
    marker: &'static str,
    tool: &'static str,
    tail: Vec<u8>,
    window: usize,
}

impl EndMarker {
    /// A check for `marker` within the last `window` bytes.
    pub fn new(tool: &'static str, marker: &'static str, window: usize) -> EndMarker {
        EndMarker {
            marker,
            tool,
            tail: Vec::with_capacity(2 * window),
            window,
        }
    }
}

impl DumpCheck for EndMarker {
    fn update(&mut self, bytes: &[u8]) {
        if bytes.len() >= self.window {
            self.tail.clear();
            self.tail
                .extend_from_slice(&bytes[bytes.len() - self.window..]);
        } else {
            self.tail.extend_from_slice(bytes);
            if self.tail.len() > 2 * self.window {
                let cut = self.tail.len() - self.window;
                self.tail.drain(..cut);
            }
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        let marker = self.marker.as_bytes();
        if self.tail.windows(marker.len()).any(|w| w == marker) {
            Ok(())
        } else {
            Err(format!(
                "the {} output ends without its end-of-dump line `{}`: the dump is incomplete",
                self.tool, self.marker
            ))
        }
    }
}

/// Checks nothing beyond the exit status (used where dbkeep made the copy itself).
pub struct NoCheck;

impl DumpCheck for NoCheck {
    fn update(&mut self, _: &[u8]) {}
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_marker_across_chunks() {
        let mut c = EndMarker::new("mariadb-dump", "-- Dump completed", 256);
        let text = format!(
            "{}\n-- Dump completed on 2026-11-22 10:00:00\n",
            "x".repeat(10_000)
        );
        for chunk in text.as_bytes().chunks(7) {
            c.update(chunk);
        }
        assert!(c.finish().is_ok());
        let mut c = EndMarker::new("mariadb-dump", "-- Dump completed", 256);
        c.update(&text.as_bytes()[..text.len() - 30]);
        assert!(c.finish().is_err());
    }
}
