//! Retry delays: capped exponential backoff with equal jitter, one policy per job kind.

use std::collections::BTreeMap;
use std::time::Duration;

/// A backoff policy: `min(cap, base · 2^(attempt-1))`, then half of it fixed and half random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// For a job of a kind this replica has no registration for. The worker fails such a job
    /// outright ("no handler"), so only the rescuer applies this: a job whose worker died may be
    /// of a kind that only other replicas run (a rolling deploy adds one), and it should come
    /// back neither at once nor after hours. 15 s doubling to 15 min: the policy every kind had
    /// before kinds brought their own.
    pub const UNREGISTERED: Backoff = Backoff { base: Duration::from_secs(15), cap: Duration::from_secs(15 * 60) };

    /// The delay before the retry that follows `attempt` (1-based). `unit` in [0, 1) picks the
    /// jitter; callers pass a random number, tests pass fixed ones.
    pub fn delay(&self, attempt: i32, unit: f64) -> Duration {
        let exponent = u32::try_from(attempt.max(1) - 1).unwrap_or(0).min(30);
        let ceiling = self.base.saturating_mul(2u32.saturating_pow(exponent)).min(self.cap);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Each job kind's policy, as its owner registered it, and the one for every other kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoffs {
    by_kind: BTreeMap<String, Backoff>,
    otherwise: Backoff,
}

impl Default for Backoffs {
    /// No kind registered: every kind gets [`Backoff::UNREGISTERED`].
    fn default() -> Self {
        Self::uniform(Backoff::UNREGISTERED)
    }
}

impl Backoffs {
    /// One policy for every kind.
    pub fn uniform(backoff: Backoff) -> Self {
        Self { by_kind: BTreeMap::new(), otherwise: backoff }
    }

    pub fn with(mut self, kind: &str, backoff: Backoff) -> Self {
        self.by_kind.insert(kind.to_owned(), backoff);
        self
    }

    /// The policy of `kind`.
    pub fn of(&self, kind: &str) -> Backoff {
        self.by_kind.get(kind).copied().unwrap_or(self.otherwise)
    }

    /// The kinds with a policy of their own, with it.
    pub fn registered(&self) -> impl Iterator<Item = (&str, Backoff)> {
        self.by_kind.iter().map(|(kind, backoff)| (kind.as_str(), *backoff))
    }

    /// The policy of every kind not [`registered`](Self::registered).
    pub fn otherwise(&self) -> Backoff {
        self.otherwise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff { base: Duration::from_secs(15), cap: Duration::from_secs(15 * 60) };

    #[test]
    fn delays_double_and_stop_at_the_cap() {
        let policy = POLICY;
        assert_eq!(policy.delay(1, 1.0), Duration::from_secs(15));
        assert_eq!(policy.delay(2, 1.0), Duration::from_secs(30));
        assert_eq!(policy.delay(4, 1.0), Duration::from_secs(120));
        assert_eq!(policy.delay(9, 1.0), Duration::from_secs(900));
        assert_eq!(policy.delay(1000, 1.0), Duration::from_secs(900));
    }

    #[test]
    fn jitter_stays_within_the_upper_half() {
        let policy = POLICY;
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
    fn a_kind_gets_its_own_policy_and_any_other_kind_the_fallback() {
        let own = Backoff { base: Duration::from_secs(5), cap: Duration::from_secs(60) };
        let backoffs = Backoffs::default().with("mine", own);
        assert_eq!(backoffs.of("mine"), own);
        assert_eq!(backoffs.of("theirs"), Backoff::UNREGISTERED);
        assert_eq!(backoffs.registered().collect::<Vec<_>>(), [("mine", own)]);
    }
}
