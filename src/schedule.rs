//! When jobs run: cron expressions in a job's time zone, and their
//! translation into systemd `OnCalendar=` and crontab lines.
//!
//! # Expressions
//!
//! The cron crate's syntax: `min hour day-of-month month day-of-week`, with an
//! optional leading seconds field and trailing year field, or `@hourly`,
//! `@daily`, `@weekly`, `@monthly`, `@yearly`. Day-of-month and day-of-week
//! must both match. Days of the week are written as names (`Mon-Fri`):
//! numbers are refused, because crontab counts Monday as 1 and the cron crate
//! counts Sunday as 1.
//!
//! # Daylight saving time
//!
//! Expressions match the wall clock of the job's time zone, and each wall
//! clock time fires at most once:
//! - a time that does not exist (the hour skipped in spring) fires once, at
//!   the moment the clock jumps (02:30 in Europe/Berlin fires at 03:00 CEST);
//! - a time that happens twice (the hour repeated in autumn) fires only the
//!   first time.
//!
//! So a daily job never runs twice and never misses a day.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use cron::TimeUnitSpec;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Cron {
    text: String,
    schedule: cron::Schedule,
}

impl Cron {
    /// Parses a cron expression; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let trimmed = text.trim();
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let full = if trimmed.starts_with('@') {
            trimmed.to_string()
        } else {
            match fields.len() {
                5 => format!("0 {trimmed}"),
                6 | 7 => trimmed.to_string(),
                n => {
                    return Err(format!(
                        "`{text}` has {n} fields: write `min hour day month weekday` (e.g. `0 3 * * *`), optionally with a leading seconds field, or @hourly/@daily/@weekly/@monthly/@yearly"
                    ));
                }
            }
        };
        if !trimmed.starts_with('@') {
            let weekday = full.split_whitespace().nth(5).unwrap_or("*");
            let numeric = weekday
                .split(',')
                .any(|part| part.split('/').next().is_some_and(has_digit));
            if numeric {
                return Err(format!(
                    "`{text}`: write days of the week as names (`Mon-Fri`, `Sun`), not numbers: crontab counts Monday as 1, the cron crate Sunday"
                ));
            }
        }
        let schedule = cron::Schedule::from_str(&full)
            .map_err(|e| format!("`{text}` is not a valid cron expression: {e}"))?;
        if schedule.after(&Utc::now()).next().is_none() {
            return Err(format!("`{text}` never fires again"));
        }
        Ok(Cron {
            text: trimmed.to_string(),
            schedule,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `t`, by the rules in the module docs.
    pub fn next_after(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut wall = t.with_timezone(&tz).naive_local();
        // A wall clock time maps to an instant before `t` only around a DST
        // change, so a handful of steps always suffices.
        for _ in 0..10_000 {
            let candidate = self.schedule.after(&wall.and_utc()).next()?.naive_utc();
            let instant = instant_of(tz, candidate)?;
            if instant > t {
                return Some(instant);
            }
            wall = candidate;
        }
        None
    }

    /// The next `count` fire times after `t`.
    pub fn upcoming(&self, tz: Tz, t: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count);
        let mut at = t;
        while out.len() < count {
            match self.next_after(tz, at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// The systemd `OnCalendar=` form, in `tz`.
    pub fn on_calendar(&self, tz: Tz) -> String {
        let s = &self.schedule;
        let weekdays = if s.days_of_week().count() == 7 {
            String::new()
        } else {
            // The cron crate counts Sunday as 1; list Monday first.
            let days: Vec<u32> = s
                .days_of_week()
                .iter()
                .map(|d| if d == 1 { 7 } else { d - 1 })
                .collect::<std::collections::BTreeSet<u32>>()
                .into_iter()
                .collect();
            const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            format!(
                "{} ",
                compress(&days, 1, 7, |d| NAMES[d as usize - 1].to_string())
            )
        };
        let num = |width: usize| move |v: u32| format!("{v:0width$}");
        format!(
            "{weekdays}{}-{}-{} {}:{}:{} {}",
            field(s.years(), 1970, 2100, num(4)),
            field(s.months(), 1, 12, num(2)),
            field(s.days_of_month(), 1, 31, num(2)),
            field(s.hours(), 0, 23, num(2)),
            field(s.minutes(), 0, 59, num(2)),
            field(s.seconds(), 0, 59, num(2)),
            tz.name()
        )
    }

    /// The five crontab fields, or why the schedule cannot be one.
    pub fn crontab(&self) -> Result<String, String> {
        let s = &self.schedule;
        if s.seconds().count() != 1 || !s.seconds().includes(0) {
            return Err(format!(
                "`{}` fires on seconds other than :00, which crontab cannot express",
                self.text
            ));
        }
        if s.years().count() != 2100 - 1970 + 1 {
            return Err(format!(
                "`{}` names years, which crontab cannot express",
                self.text
            ));
        }
        let dom_all = s.days_of_month().count() == 31;
        let dow_all = s.days_of_week().count() == 7;
        if !dom_all && !dow_all {
            return Err(format!(
                "`{}` restricts both the day of the month and the weekday; crontab would run on either, dbkeep on both",
                self.text
            ));
        }
        let plain = |v: u32| v.to_string();
        let weekdays: Vec<u32> = s.days_of_week().iter().map(|d| d - 1).collect();
        Ok(format!(
            "{} {} {} {} {}",
            cron_field(s.minutes(), 0, 59),
            cron_field(s.hours(), 0, 23),
            cron_field(s.days_of_month(), 1, 31),
            cron_field(s.months(), 1, 12),
            if dow_all {
                "*".to_string()
            } else {
                compress_with(&weekdays, 0, 6, plain, "-")
            }
        ))
    }
}

fn has_digit(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_digit())
}

/// The instant a wall clock time stands for: the earlier of two, or the end
/// of a DST gap for a time that does not exist.
fn instant_of(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            let minute = wall.with_second(0)?.with_nanosecond(0)?;
            (1..=24 * 60).find_map(|k| {
                match tz.from_local_datetime(&(minute + Duration::minutes(k))) {
                    LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
                    LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
                    LocalResult::None => None,
                }
            })
        }
    }
}

fn field(spec: &impl TimeUnitSpec, min: u32, max: u32, fmt: impl Fn(u32) -> String) -> String {
    let values: Vec<u32> = spec.iter().collect();
    compress(&values, min, max, fmt)
}

fn cron_field(spec: &impl TimeUnitSpec, min: u32, max: u32) -> String {
    let values: Vec<u32> = spec.iter().collect();
    compress_with(&values, min, max, |v| v.to_string(), "-")
}

/// `*` for every value, else a list with runs of three or more as `a..b`.
fn compress(values: &[u32], min: u32, max: u32, fmt: impl Fn(u32) -> String) -> String {
    compress_with(values, min, max, fmt, "..")
}

fn compress_with(
    values: &[u32],
    min: u32,
    max: u32,
    fmt: impl Fn(u32) -> String,
    range: &str,
) -> String {
    if values.len() as u32 == max - min + 1 {
        return "*".to_string();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}{range}{}", fmt(values[i]), fmt(values[j])));
        } else {
            for v in &values[i..=j] {
                parts.push(fmt(*v));
            }
        }
        i = j + 1;
    }
    parts.join(",")
}

/// Parses an IANA time zone name.
pub fn parse_tz(text: &str) -> Result<Tz, String> {
    text.parse::<Tz>().map_err(|_| {
        format!("`{text}` is not an IANA time zone name: write e.g. `UTC`, `Europe/Berlin` or `America/New_York`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin() -> Tz {
        parse_tz("Europe/Berlin").unwrap()
    }

    #[test]
    fn five_fields_and_shorthands() {
        let c = Cron::parse("30 3 * * *").unwrap();
        assert_eq!(
            c.next_after(Tz::UTC, utc("2026-11-22T10:00:00Z")),
            Some(utc("2026-11-23T03:30:00Z"))
        );
        let c = Cron::parse("@hourly").unwrap();
        assert_eq!(
            c.next_after(Tz::UTC, utc("2026-11-22T10:00:00Z")),
            Some(utc("2026-11-22T11:00:00Z"))
        );
        let c = Cron::parse("15 0 3 * * Mon-Fri").unwrap();
        // 2026-11-22 is a Sunday.
        assert_eq!(
            c.next_after(Tz::UTC, utc("2026-11-22T10:00:00Z")),
            Some(utc("2026-11-23T03:00:15Z"))
        );
    }

    #[test]
    fn refuses_bad_expressions() {
        for bad in [
            "",
            "* * *",
            "0 3 * * 1-5",
            "61 * * * *",
            "0 3 * * Mon 7 8 9",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
        assert!(Cron::parse("0 3 * * 1").unwrap_err().contains("names"));
    }

    #[test]
    fn in_a_time_zone() {
        let c = Cron::parse("0 3 * * *").unwrap();
        // Berlin is UTC+1 in winter.
        assert_eq!(
            c.next_after(berlin(), utc("2026-11-22T10:00:00Z")),
            Some(utc("2026-11-23T02:00:00Z"))
        );
    }

    #[test]
    fn spring_gap_fires_once_when_the_clock_jumps() {
        // 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST.
        let c = Cron::parse("30 2 * * *").unwrap();
        let runs = c.upcoming(berlin(), utc("2026-03-27T12:00:00Z"), 4);
        assert_eq!(
            runs,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST, the end of the gap
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
                utc("2026-03-31T00:30:00Z"),
            ]
        );
        // Every quarter hour in the gap fires once, at 03:00.
        let c = Cron::parse("*/15 * * * *").unwrap();
        let runs = c.upcoming(berlin(), utc("2026-03-29T00:40:00Z"), 4);
        assert_eq!(
            runs,
            vec![
                utc("2026-03-29T00:45:00Z"), // 01:45 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST
                utc("2026-03-29T01:15:00Z"),
                utc("2026-03-29T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn autumn_overlap_fires_once() {
        // 2026-10-25: Berlin goes back from 03:00 CEST to 02:00 CET.
        let c = Cron::parse("30 2 * * *").unwrap();
        let runs = c.upcoming(berlin(), utc("2026-10-24T12:00:00Z"), 2);
        assert_eq!(
            runs,
            vec![
                utc("2026-10-25T00:30:00Z"), // the first 02:30 (CEST)
                utc("2026-10-26T01:30:00Z"), // next day, 02:30 CET
            ]
        );
        // Started during the repeated hour, after the first 02:30: no rerun.
        assert_eq!(
            c.next_after(berlin(), utc("2026-10-25T01:10:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn systemd_calendar() {
        let cases = [
            ("0 3 * * *", "*-*-* 03:00:00 UTC"),
            ("*/15 * * * *", "*-*-* *:00,15,30,45:00 UTC"),
            ("30 2 * * Mon-Fri", "Mon..Fri *-*-* 02:30:00 UTC"),
            ("0 4 1 * *", "*-*-01 04:00:00 UTC"),
            ("0 0 6 * * Sat,Sun", "Sat,Sun *-*-* 06:00:00 UTC"),
            ("@daily", "*-*-* 00:00:00 UTC"),
            ("@weekly", "Sun *-*-* 00:00:00 UTC"),
            ("0 0 1-3,7 1 *", "*-01-01..03,07 00:00:00 UTC"),
        ];
        for (expr, want) in cases {
            assert_eq!(
                Cron::parse(expr).unwrap().on_calendar(Tz::UTC),
                want,
                "{expr}"
            );
        }
        assert_eq!(
            Cron::parse("0 3 * * *").unwrap().on_calendar(berlin()),
            "*-*-* 03:00:00 Europe/Berlin"
        );
    }

    #[test]
    fn crontab_lines() {
        let line = |e: &str| Cron::parse(e).unwrap().crontab();
        assert_eq!(line("0 3 * * *").unwrap(), "0 3 * * *");
        assert_eq!(line("*/20 1-5 * * *").unwrap(), "0,20,40 1-5 * * *");
        assert_eq!(line("0 3 * * Mon-Fri").unwrap(), "0 3 * * 1-5");
        assert_eq!(line("0 3 * * Sun,Sat").unwrap(), "0 3 * * 0,6");
        assert!(line("30 0 3 * * *").unwrap_err().contains("seconds"));
        assert!(line("0 3 1 * Mon").unwrap_err().contains("both"));
    }
}
