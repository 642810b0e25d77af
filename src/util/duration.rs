//! Durations as people write them in configs and flags: `90s`, `15m`, `6h`,
//! `14d`, `8w`, `1y`, or several together (`1h30m`).

use std::time::Duration;

/// Units: seconds, minutes, hours, days, weeks, and years of 365 days.
const UNITS: [(&str, u64); 6] = [
    ("s", 1),
    ("m", 60),
    ("h", 3_600),
    ("d", 86_400),
    ("w", 604_800),
    ("y", 31_536_000),
];

/// Parses `text`; the error says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "`{text}` is not a duration: write a number and a unit, e.g. `90s`, `15m`, `6h`, `14d`, `8w`, `1y` or `1h30m`"
        )
    };
    let text_trimmed = text.trim();
    if text_trimmed.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = text_trimmed;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        let (_, scale) = UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(bad)?;
        total = number
            .checked_mul(*scale)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration in the largest units that divide it: `1h30m`, `14d`.
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, scale) in UNITS.iter().rev() {
        if *unit == "w" || *unit == "y" {
            continue;
        }
        if secs >= *scale {
            out.push_str(&format!("{}{unit}", secs / scale));
            secs %= scale;
        }
    }
    out
}

/// Serializes as [`format`] text.
pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// Serializes an optional duration as [`format`] text.
pub fn serialize_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format(*d)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("1y"), Ok(Duration::from_secs(365 * 86_400)));
        for bad in ["", "5", "m", "5x", "1.5h", "-3d", "h5"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["1h30m", "14d", "45s", "2d3h"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
