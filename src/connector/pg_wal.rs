//! PostgreSQL's WAL as files: the names the server archives, positions
//! (LSNs), segment arithmetic, and the cluster identity in a segment's first
//! page.

use anyhow::{Context, Result};

use crate::util::printable;

/// What PostgreSQL archives, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A WAL segment.
    Segment,
    /// The partial last segment of a timeline that ended (after a promotion).
    Partial,
    /// A timeline history file.
    History,
    /// A backup history file.
    Backup,
}

fn hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// The kind of a WAL file name, or `None` for anything PostgreSQL never archives.
pub fn kind(name: &str) -> Option<Kind> {
    if hex(name, 24) {
        return Some(Kind::Segment);
    }
    if let Some(seg) = name.strip_suffix(".partial") {
        return hex(seg, 24).then_some(Kind::Partial);
    }
    if let Some(tli) = name.strip_suffix(".history") {
        return hex(tli, 8).then_some(Kind::History);
    }
    if let Some(rest) = name.strip_suffix(".backup") {
        let (seg, offset) = rest.split_once('.')?;
        return (hex(seg, 24) && hex(offset, 8)).then_some(Kind::Backup);
    }
    None
}

/// Checks a name from PostgreSQL or the command line.
pub fn check_name(name: &str) -> Result<Kind> {
    kind(name).with_context(|| {
        format!(
            "`{}` is not a WAL file name PostgreSQL archives (a segment such as 000000010000000000000003, \
             a .partial segment, a .history or a .backup file)",
            printable(name)
        )
    })
}

/// A position in the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `X/Y`, as PostgreSQL writes it.
    pub fn parse(text: &str) -> Result<Lsn> {
        let (hi, lo) = text
            .trim()
            .split_once('/')
            .with_context(|| format!("`{}` is not an LSN such as 0/3000028", printable(text)))?;
        let hi = u32::from_str_radix(hi, 16);
        let lo = u32::from_str_radix(lo, 16);
        match (hi, lo) {
            (Ok(h), Ok(l)) => Ok(Lsn((u64::from(h) << 32) | u64::from(l))),
            _ => anyhow::bail!("`{}` is not an LSN such as 0/3000028", printable(text)),
        }
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// A segment's number on its timeline, for segments of `seg_size` bytes.
pub fn segment_of(lsn: Lsn, seg_size: u64) -> u64 {
    lsn.0 / seg_size.max(1)
}

/// The file name of segment `segno` of timeline `tli`.
pub fn segment_name(tli: u32, segno: u64, seg_size: u64) -> String {
    let per_id = 0x1_0000_0000u64 / seg_size.max(1);
    format!("{tli:08X}{:08X}{:08X}", segno / per_id, segno % per_id)
}

/// (timeline, segment number) of a segment name.
pub fn parse_segment(name: &str, seg_size: u64) -> Option<(u32, u64)> {
    if !hex(name, 24) {
        return None;
    }
    let tli = u32::from_str_radix(&name[..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..], 16).ok()?;
    let per_id = 0x1_0000_0000u64 / seg_size.max(1);
    (seg < per_id).then_some((tli, log * per_id + seg))
}

/// The system identifier in a segment's first page (its long header), if
/// the bytes look like one.
pub fn system_identifier(segment: &[u8]) -> Option<u64> {
    // XLogLongPageHeaderData: magic (2), info (2), timeline (4), page
    // address (8), remaining length (4), padding (4), then xlp_sysid (8).
    let info = u16::from_le_bytes(segment.get(2..4)?.try_into().ok()?);
    const XLP_LONG_HEADER: u16 = 0x0002;
    if info & XLP_LONG_HEADER == 0 {
        return None;
    }
    Some(u64::from_le_bytes(segment.get(24..32)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 16 << 20;

    #[test]
    fn names_are_what_postgres_archives_and_nothing_else() {
        assert_eq!(kind("000000010000000000000003"), Some(Kind::Segment));
        assert_eq!(
            kind("000000020000000100000003.partial"),
            Some(Kind::Partial)
        );
        assert_eq!(kind("00000002.history"), Some(Kind::History));
        assert_eq!(
            kind("000000010000000000000002.00000028.backup"),
            Some(Kind::Backup)
        );
        for bad in [
            "",
            "-rf",
            "../000000010000000000000003",
            "000000010000000000000003/x",
            "00000001000000000000000g",
            "0000000100000000000000031",
            "000000010000000000000003.json",
            "--config=x",
            "00000001.history.x",
        ] {
            assert_eq!(kind(bad), None, "{bad}");
        }
    }

    #[test]
    fn lsns_and_segment_names_agree_with_postgres() {
        let lsn = Lsn::parse("0/3000028").unwrap();
        assert_eq!(lsn.0, 0x300_0028);
        assert_eq!(lsn.to_string(), "0/3000028");
        assert_eq!(
            segment_name(1, segment_of(lsn, SEG), SEG),
            "000000010000000000000003"
        );
        let high = Lsn::parse("1/A0000000").unwrap();
        assert_eq!(
            segment_name(2, segment_of(high, SEG), SEG),
            "0000000200000001000000A0"
        );
        assert_eq!(
            parse_segment("0000000200000001000000A0", SEG),
            Some((2, segment_of(high, SEG)))
        );
        assert_eq!(parse_segment("000000010000000000000100", SEG), None);
        assert!(Lsn::parse("3000028").is_err());
        assert!(Lsn::parse("0/zz").is_err());
    }

    #[test]
    fn the_system_identifier_comes_from_a_long_page_header() {
        let mut page = vec![0u8; 64];
        page[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
        page[2..4].copy_from_slice(&0x0002u16.to_le_bytes());
        page[24..32].copy_from_slice(&7_312_345_678_901_234_567u64.to_le_bytes());
        assert_eq!(system_identifier(&page), Some(7_312_345_678_901_234_567));
        page[2..4].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(system_identifier(&page), None);
        assert_eq!(system_identifier(&page[..10]), None);
    }
}
