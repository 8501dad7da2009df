//! Failed-authentication throttling per client address: a token bucket of failures. Each failed
//! attempt spends a token; tokens come back one per `refill`; an address with none left is
//! refused before its key is even looked at, until the next token is due. A key-guessing client
//! gets `burst` guesses at once and then one per `refill`, while a caller that mistypes a key now
//! and then never notices.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many failures an address may make at once, and how fast it earns another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failed attempts allowed in a burst; 0 turns throttling off.
    pub burst: u32,
    /// Time that gives one failed attempt back.
    pub refill: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self { burst: 20, refill: Duration::from_secs(3) }
    }
}

/// Addresses tracked at most; beyond it, addresses whose buckets are full again are forgotten.
const CAPACITY: usize = 100_000;

#[derive(Debug)]
pub struct FailureThrottle {
    settings: ThrottleSettings,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    /// How many addresses have buckets, readable without the lock: every authenticated request
    /// asks, and almost always no address has failed, so most requests never take the lock.
    tracked: AtomicUsize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed, as of `at`.
    tokens: f64,
    at: Instant,
}

impl FailureThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self { settings, buckets: Mutex::new(HashMap::new()), tracked: AtomicUsize::new(0) }
    }

    /// `Err(wait)` when `address` has no failures left: how long until it has one again.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        self.check_at(address, Instant::now())
    }

    /// Records a failed attempt of `address`.
    pub fn failed(&self, address: IpAddr) {
        self.failed_at(address, Instant::now());
    }

    fn check_at(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.settings.burst == 0 || self.tracked.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(bucket) = buckets.get(&address) else { return Ok(()) };
        let tokens = self.tokens(*bucket, now);
        if tokens >= 1.0 {
            return Ok(());
        }
        Err(self.settings.refill.mul_f64(1.0 - tokens))
    }

    fn failed_at(&self, address: IpAddr, now: Instant) {
        if self.settings.burst == 0 {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= CAPACITY && !buckets.contains_key(&address) {
            let full = f64::from(self.settings.burst);
            buckets.retain(|_, bucket| self.tokens(*bucket, now) < full);
            if buckets.len() >= CAPACITY {
                // Only a flood from that many addresses gets here; forgetting is better than
                // growing without bound.
                buckets.clear();
            }
        }
        let fresh = Bucket { tokens: f64::from(self.settings.burst), at: now };
        let bucket = buckets.entry(address).or_insert(fresh);
        let tokens = self.tokens(*bucket, now);
        *bucket = Bucket { tokens: (tokens - 1.0).max(0.0), at: now };
        self.tracked.store(buckets.len(), Ordering::Release);
    }

    fn tokens(&self, bucket: Bucket, now: Instant) -> f64 {
        let earned =
            now.saturating_duration_since(bucket.at).as_secs_f64() / self.settings.refill.as_secs_f64().max(1e-3);
        (bucket.tokens + earned).min(f64::from(self.settings.burst))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn throttle(burst: u32) -> FailureThrottle {
        FailureThrottle::new(ThrottleSettings { burst, refill: Duration::from_secs(10) })
    }

    #[test]
    fn a_burst_of_failures_is_allowed_then_refused_until_a_token_is_earned() {
        let throttle = throttle(3);
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(throttle.check_at(address, start).is_ok());
            throttle.failed_at(address, start);
        }
        let wait = throttle.check_at(address, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        let later = start + Duration::from_secs(4);
        assert_eq!(throttle.check_at(address, later).unwrap_err(), Duration::from_secs(6));
        assert!(throttle.check_at(address, start + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn addresses_are_throttled_apart() {
        let throttle = throttle(1);
        let guesser: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "2001:db8::1".parse().unwrap();
        let now = Instant::now();
        throttle.failed_at(guesser, now);
        assert!(throttle.check_at(guesser, now).is_err());
        assert!(throttle.check_at(other, now).is_ok());
    }

    #[test]
    fn a_burst_of_zero_turns_throttling_off() {
        let throttle = throttle(0);
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..100 {
            throttle.failed_at(address, now);
        }
        assert!(throttle.check_at(address, now).is_ok());
    }
}
