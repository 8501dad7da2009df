//! How far a worker pool claims ahead of its free slots when its prefetch adapts: as many jobs as
//! its slots finish while two claims make their round trip, within a floor and a ceiling.
//!
//! A fixed prefetch suits one kind of job only. A quarter of the slots keeps refresh slots busy
//! (a refresh takes tens of milliseconds, a claim a few), but for jobs that take microseconds the
//! slots empty the buffer long before the next claim returns, and the pool waits on claims. Sized
//! from observed times, a buffered job waits about two claim round trips whatever its kind, which
//! is what bounds the cost of prefetching (its lease runs while it waits, and no other replica can
//! take it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The adaptive ceiling of the service's pools: what the queue benchmark's fastest fixed
/// configuration held (`256/1000/2`), and with a claim batch of 500, two claims' worth.
pub const PREFETCH_CEILING: usize = 1000;

/// Moving averages of how long a job's handler ran and how long a claim statement took.
#[derive(Debug, Default)]
pub struct Pace {
    handler_nanos: AtomicU64,
    claim_nanos: AtomicU64,
}

impl Pace {
    pub fn handled(&self, took: Duration) {
        record(&self.handler_nanos, took);
    }

    pub fn claimed(&self, took: Duration) {
        record(&self.claim_nanos, took);
    }

    /// Jobs to hold beyond the free slots: `floor` until both times are known.
    pub fn prefetch(&self, concurrency: usize, floor: usize, ceiling: usize) -> usize {
        let handler = self.handler_nanos.load(Ordering::Relaxed);
        let claim = self.claim_nanos.load(Ordering::Relaxed);
        ahead(concurrency, handler, claim).map_or(floor, |ahead| ahead.clamp(floor, ceiling.max(floor)))
    }
}

/// What `concurrency` slots finish in two claim round trips, when both times are known.
fn ahead(concurrency: usize, handler_nanos: u64, claim_nanos: u64) -> Option<usize> {
    if handler_nanos == 0 || claim_nanos == 0 {
        return None;
    }
    let jobs = (concurrency as u128 * 2 * u128::from(claim_nanos)).div_ceil(u128::from(handler_nanos));
    Some(usize::try_from(jobs).unwrap_or(usize::MAX))
}

/// An exponential moving average (weight 1/8 per sample); racing updates may lose a sample,
/// which only slows the average down.
fn record(average: &AtomicU64, took: Duration) {
    let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
    let old = average.load(Ordering::Relaxed);
    let new = if old == 0 { sample } else { old - old / 8 + sample / 8 };
    average.store(new.max(1), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_holds_until_both_times_are_known() {
        let pace = Pace::default();
        assert_eq!(pace.prefetch(16, 4, 1000), 4);
        pace.handled(Duration::from_micros(20));
        assert_eq!(pace.prefetch(16, 4, 1000), 4);
    }

    #[test]
    fn slow_jobs_keep_the_floor_and_fast_ones_reach_the_ceiling() {
        // A refresh: 80 ms against a 10 ms claim; 16 slots finish 4 jobs in two claims.
        let refreshes = Pace::default();
        refreshes.handled(Duration::from_millis(80));
        refreshes.claimed(Duration::from_millis(10));
        assert_eq!(refreshes.prefetch(16, 4, 1000), 4);
        // A no-op: 20 µs against the same claim.
        let noops = Pace::default();
        noops.handled(Duration::from_micros(20));
        noops.claimed(Duration::from_millis(10));
        assert_eq!(noops.prefetch(16, 4, 1000), 1000);
        // Between the two, the buffer is what the slots finish in two round trips.
        let middling = Pace::default();
        middling.handled(Duration::from_millis(2));
        middling.claimed(Duration::from_millis(10));
        assert_eq!(middling.prefetch(16, 4, 1000), 160);
    }

    #[test]
    fn a_ceiling_below_the_floor_means_a_fixed_prefetch() {
        let pace = Pace::default();
        pace.handled(Duration::from_micros(1));
        pace.claimed(Duration::from_millis(10));
        assert_eq!(pace.prefetch(16, 4, 0), 4);
    }

    #[test]
    fn the_average_follows_a_change_of_pace() {
        let pace = Pace::default();
        pace.claimed(Duration::from_millis(10));
        pace.handled(Duration::from_micros(20));
        assert_eq!(pace.prefetch(16, 4, 1000), 1000);
        for _ in 0..64 {
            pace.handled(Duration::from_millis(80));
        }
        // Within a rounding of the 4 that 80 ms jobs ask for.
        assert!(pace.prefetch(16, 4, 1000) <= 5, "{}", pace.prefetch(16, 4, 1000));
    }
}
