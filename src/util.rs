//! Small leaf helpers that import nothing else from dbkeep.

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
    fn control_characters_are_escaped() {
        assert_eq!(printable("app"), "app");
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\ny"), "x\\ny");
        assert_eq!(printable("ünï"), "ünï");
    }
}
