//! Retry delays: capped exponential backoff with equal jitter.

use std::time::Duration;

/// A backoff policy: `min(cap, base · 2^(attempt-1))`, then half of it fixed and half random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// Refreshes: 15 s doubling to 15 min; with 8 attempts about half an hour of retrying
    /// (the design notes' 5 s base gives only ten minutes).
    pub const REFRESH: Backoff = Backoff { base: Duration::from_secs(15), cap: Duration::from_secs(15 * 60) };

    /// The delay before the retry that follows `attempt` (1-based). `unit` in [0, 1) picks the
    /// jitter; callers pass a random number, tests pass fixed ones.
    pub fn delay(&self, attempt: i32, unit: f64) -> Duration {
        let exponent = u32::try_from(attempt.max(1) - 1).unwrap_or(0).min(30);
        let ceiling = self.base.saturating_mul(2u32.saturating_pow(exponent)).min(self.cap);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stop_at_the_cap() {
        let policy = Backoff::REFRESH;
        assert_eq!(policy.delay(1, 1.0), Duration::from_secs(15));
        assert_eq!(policy.delay(2, 1.0), Duration::from_secs(30));
        assert_eq!(policy.delay(4, 1.0), Duration::from_secs(120));
        assert_eq!(policy.delay(9, 1.0), Duration::from_secs(900));
        assert_eq!(policy.delay(1000, 1.0), Duration::from_secs(900));
    }

    #[test]
    fn jitter_stays_within_the_upper_half() {
        let policy = Backoff::REFRESH;
        for attempt in 1..12 {
            let full = policy.delay(attempt, 1.0);
            assert_eq!(policy.delay(attempt, 0.0), full / 2);
            let middle = policy.delay(attempt, 0.5);
            assert!(middle >= full / 2 && middle <= full);
        }
        assert_eq!(policy.delay(0, 1.0), Duration::from_secs(15), "attempt 0 is treated as the first");
        assert_eq!(policy.delay(-3, 2.0), Duration::from_secs(15), "out-of-range inputs are clamped");
    }

    #[test]
    fn eight_attempts_retry_for_about_half_an_hour() {
        let total: Duration = (1..8).map(|attempt| Backoff::REFRESH.delay(attempt, 1.0)).sum();
        assert!(total >= Duration::from_secs(20 * 60) && total <= Duration::from_secs(40 * 60), "{total:?}");
    }
}
