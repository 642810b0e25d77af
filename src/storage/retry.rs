//! Retries with exponential backoff and full jitter, for cloud requests.

use std::time::Duration;

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
}
