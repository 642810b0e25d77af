//! Retries with exponential backoff and full jitter, for cloud requests; a
//! server's `Retry-After` is honoured.

use std::time::Duration;

/// The longest `Retry-After` waited for; a server asking for more gets this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts in all (the first one included).
    pub attempts: u32,
    /// Pause before the second attempt; doubled each time.
    pub base: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            attempts: 5,
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The pause after failed attempt `n` (1-based): a random time up to
    /// `base * 2^(n-1)`, capped at `max`.
    pub fn pause(&self, n: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.max);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mix = (u64::from(nanos) ^ u64::from(std::process::id()).rotate_left(17))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let fraction = (mix >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(fraction.max(0.1))
    }

    /// The wait after failed attempt `n`: the server's `Retry-After` when it
    /// gave one (at most [`RETRY_AFTER_MAX`]), else [`Backoff::pause`].
    pub fn wait(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(RETRY_AFTER_MAX),
            None => self.pause(n),
        }
    }
}

/// A failure worth another try.
#[derive(Debug, Clone)]
pub struct Transient {
    /// What went wrong, for messages.
    pub why: String,
    /// How long the server asked to wait (`Retry-After`).
    pub after: Option<Duration>,
}

impl Transient {
    /// A transient failure without a server's `Retry-After`.
    pub fn new(why: impl Into<String>) -> Transient {
        Transient {
            why: why.into(),
            after: None,
        }
    }
}

/// Why one attempt did not give a result.
#[derive(Debug)]
pub enum Failure<E> {
    /// Not worth another try.
    Fatal(E),
    /// Worth another try, after a pause.
    Transient(Transient),
    /// Some of the work got done: go on at once, with the attempts counted
    /// afresh.
    Progress,
}

/// Why [`retry`] stopped without a result.
#[derive(Debug)]
pub enum Stop<E> {
    /// An attempt failed for good.
    Fatal(E),
    /// Every attempt failed in a way worth another: the last reason.
    Exhausted {
        /// The last attempt's reason.
        why: String,
        /// Attempts made.
        attempts: u32,
    },
}

impl Stop<anyhow::Error> {
    /// The error, an exhausted retry as `what: why (after N attempts)`.
    pub fn into_error(self, what: &str) -> anyhow::Error {
        match self {
            Stop::Fatal(e) => e,
            Stop::Exhausted { why, attempts } => {
                anyhow::anyhow!("{what}: {why} (after {attempts} attempts)")
            }
        }
    }
}

/// Runs `attempt` (given its number, from 1) until it gives a result, fails
/// for good, or `backoff.attempts` in a row failed in a way worth another
/// try. Between those it waits [`Backoff::wait`]; `what` names the work in
/// logs.
pub fn retry<T, E>(
    backoff: &Backoff,
    what: &str,
    mut attempt: impl FnMut(u32) -> Result<T, Failure<E>>,
) -> Result<T, Stop<E>> {
    let mut n = 1;
    loop {
        match attempt(n) {
            Ok(v) => return Ok(v),
            Err(Failure::Fatal(e)) => return Err(Stop::Fatal(e)),
            Err(Failure::Progress) => n = 1,
            Err(Failure::Transient(t)) if n < backoff.attempts => {
                tracing::debug!(what, attempt = n, error = %t.why, "transient error, retrying");
                std::thread::sleep(backoff.wait(n, t.after));
                n += 1;
            }
            Err(Failure::Transient(t)) => {
                return Err(Stop::Exhausted {
                    why: t.why,
                    attempts: n,
                });
            }
        }
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(left.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_are_capped() {
        let b = Backoff {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for n in 1..10 {
            let p = b.pause(n);
            assert!(
                p <= Duration::from_millis(100) * (1 << (n - 1)).min(10),
                "{n}: {p:?}"
            );
            assert!(p <= Duration::from_secs(1));
        }
    }

    fn quick(attempts: u32) -> Backoff {
        Backoff {
            attempts,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        }
    }

    #[test]
    fn transient_failures_are_tried_again_up_to_the_limit() {
        let mut seen = Vec::new();
        let r: Result<(), Stop<String>> = retry(&quick(4), "t", |n| {
            seen.push(n);
            Err(Failure::Transient(Transient::new(format!("try {n}"))))
        });
        assert_eq!(seen, [1, 2, 3, 4]);
        match r {
            Err(Stop::Exhausted { why, attempts }) => {
                assert_eq!((why.as_str(), attempts), ("try 4", 4))
            }
            other => panic!("{other:?}"),
        }
        let e = Stop::<anyhow::Error>::Exhausted {
            why: "HTTP 500".into(),
            attempts: 5,
        };
        assert_eq!(
            e.into_error("`x`").to_string(),
            "`x`: HTTP 500 (after 5 attempts)"
        );
    }

    #[test]
    fn a_fatal_failure_stops_and_progress_counts_afresh() {
        let r: Result<(), Stop<&str>> = retry(&quick(2), "t", |_| Err(Failure::Fatal("no")));
        assert!(matches!(r, Err(Stop::Fatal("no"))));
        let mut calls = 0;
        let r: Result<u32, Stop<&str>> = retry(&quick(2), "t", |n| {
            calls += 1;
            match calls {
                1 => Err(Failure::Transient(Transient::new("x"))),
                2 => Err(Failure::Progress),
                3 => Err(Failure::Transient(Transient::new("x"))),
                _ => Ok(n),
            }
        });
        assert_eq!(r.unwrap(), 2);
    }

    #[test]
    fn retry_after_is_read_and_capped() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        let b = quick(3);
        assert_eq!(
            b.wait(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(b.wait(1, Some(Duration::from_secs(3600))), RETRY_AFTER_MAX);
        assert!(b.wait(1, None) <= Duration::from_millis(1));
    }
}
