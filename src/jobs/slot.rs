//! A running job's place among its pool's slots (`PoolConfig::concurrency`). A handler that has
//! handed its work to something shared with other jobs (a group commit) and now only waits for
//! the verdict gives its place back, so the pool starts the next job while it waits. The job
//! stays held all the same: the heartbeat keeps its lease and its outcome is recorded as any
//! other's when the handler returns, so nothing is acknowledged before the shared work commits.
//! What bounds the jobs waiting so is the shared work's owner: a handler gives its place back
//! only once that owner has room for its work (`refresh::writer::WAITING`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A job's place; cloned with the job. Inert for a job no pool's slots count (`run_until_idle`).
#[derive(Debug, Clone, Default)]
pub struct Slot(Option<Arc<Place>>);

#[derive(Debug)]
struct Place {
    given_back_at: OnceLock<Instant>,
    slots: Arc<Slots>,
}

/// A pool's count of the places given back by jobs still running, and the wake-up for its loop.
#[derive(Debug, Default)]
pub(super) struct Slots {
    given_back: AtomicUsize,
    freed: Notify,
}

impl Slot {
    /// Gives the place back; only the first call counts.
    pub fn give_back(&self) {
        let Some(place) = &self.0 else { return };
        if place.given_back_at.set(Instant::now()).is_ok() {
            place.slots.given_back.fetch_add(1, Ordering::AcqRel);
            place.slots.freed.notify_one();
        }
    }

    /// How long the job held its place, from `started`: until it gave it back, or until now.
    pub(super) fn held_since(&self, started: Instant) -> Duration {
        let given_back = self.0.as_ref().and_then(|place| place.given_back_at.get().copied());
        given_back.unwrap_or_else(Instant::now).saturating_duration_since(started)
    }
}

impl Slots {
    /// A place for a job about to start, released (if given back) when the guard drops: when the
    /// job's task ends, however it ends.
    pub(super) fn take(self: &Arc<Self>) -> (Slot, Taken) {
        let slot = Slot(Some(Arc::new(Place { given_back_at: OnceLock::new(), slots: Arc::clone(self) })));
        (slot.clone(), Taken(slot))
    }

    /// Of `running` jobs, how many hold a place.
    pub(super) fn occupied(&self, running: usize) -> usize {
        running.saturating_sub(self.given_back.load(Ordering::Acquire))
    }

    /// Resolves when a running job gives its place back.
    pub(super) async fn freed(&self) {
        self.freed.notified().await;
    }
}

/// Held by a job's task; forgets the place it gave back when the task ends.
#[derive(Debug)]
pub(super) struct Taken(Slot);

impl Drop for Taken {
    fn drop(&mut self) {
        let Some(place) = &self.0.0 else { return };
        if place.given_back_at.get().is_some() {
            place.slots.given_back.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_given_back_frees_a_slot_until_its_job_ends() {
        let slots = Arc::new(Slots::default());
        let (first, first_running) = slots.take();
        let (_second, second_running) = slots.take();
        assert_eq!(slots.occupied(2), 2);
        first.give_back();
        first.give_back();
        assert_eq!(slots.occupied(2), 1, "given back once, counted once");
        drop(first_running);
        // The ended job's task is still in the pool's count until reaped: it is counted as
        // holding a place meanwhile, never as two free ones.
        assert_eq!(slots.occupied(2), 2);
        assert_eq!(slots.occupied(1), 1);
        drop(second_running);
        assert_eq!(slots.occupied(0), 0);
    }

    #[test]
    fn a_slot_is_held_until_given_back_and_an_inert_one_until_now() {
        let Some(started) = Instant::now().checked_sub(Duration::from_secs(60)) else { return };
        let slots = Arc::new(Slots::default());
        let (slot, _running) = slots.take();
        slot.give_back();
        let held = slot.held_since(started);
        std::thread::yield_now();
        assert_eq!(slot.held_since(started), held, "the time stops at the give-back");
        let inert = Slot::default();
        inert.give_back();
        assert!(inert.held_since(started) >= Duration::from_secs(60), "an inert slot counts to now");
        assert_eq!(slots.occupied(1), 0);
    }

    #[tokio::test]
    async fn giving_a_place_back_wakes_the_pool() {
        let slots = Arc::new(Slots::default());
        let (slot, _running) = slots.take();
        slot.give_back();
        tokio::time::timeout(Duration::from_secs(5), slots.freed()).await.expect("woken");
    }
}
