//! Leaf helpers that every layer uses and that import nothing else from
//! dbkeep: secrets and redaction, durations, signals, child processes, the
//! exit-code table, and small text, size, time and host helpers.

pub mod chan;
pub mod duration;
pub mod exit;
pub mod problem;
pub mod process;
pub mod screen;
pub mod secret;
pub mod signal;
pub mod ssh;
pub mod tar;

/// `text` with control characters escaped (`\n`, `\x1b`, `\u{85}`), for
/// printing values read from outside (manifest fields, database names)
/// without letting them move the cursor, recolour a terminal or forge lines.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes for people: `12.3 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

/// Formats a time the way manifests and `list` show it.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The most of an HTTP error body that dbkeep reads.
pub const ERROR_BODY_MAX: usize = 8 << 10;
/// The most of one listing page or metadata answer that dbkeep reads.
pub const PAGE_MAX: usize = 16 << 20;
/// The most of a small object (manifest, lock) that dbkeep reads.
pub const SMALL_OBJECT_MAX: usize = 64 << 20;

/// Reads `r` to its end, but at most `max` bytes: more is an error, so an
/// endless or oversized answer from outside cannot exhaust memory.
pub fn read_capped(r: impl std::io::Read, max: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut r.take(max as u64 + 1), &mut out)?;
    if out.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the answer is larger than the {max} bytes dbkeep reads"),
        ));
    }
    Ok(out)
}

/// The start of an error body, as text: at most [`ERROR_BODY_MAX`] bytes are
/// read, and the rest is left unread.
pub fn error_text(r: impl std::io::Read) -> String {
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut r.take(ERROR_BODY_MAX as u64), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Fault injection for tests of the panic paths, in debug builds only:
/// panics when `DBKEEP_DEBUG_PANIC` names `point`. Release builds ignore it.
pub fn debug_panic(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("DBKEEP_DEBUG_PANIC").is_ok_and(|p| p == point) {
        panic!("DBKEEP_DEBUG_PANIC={point}");
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn reads_are_capped() {
        assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), b"abc");
        assert!(read_capped(&b"abcd"[..], 3).is_err());
        assert_eq!(error_text(&vec![b'x'; 100_000][..]).len(), ERROR_BODY_MAX);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("app"), "app");
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\ny"), "x\\ny");
        assert_eq!(printable("ünï"), "ünï");
    }
}
