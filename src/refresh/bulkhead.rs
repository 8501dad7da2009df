//! Bulkheads: at most so many refreshes of one institution ask its bank at once in this process,
//! so a bank that stalls holds a bounded share of the worker slots and every other bank keeps its
//! schedule. A place is held from before the bank is asked until it has answered: storing the
//! answer waits on our database, not the bank, and gives the slot back too (`jobs::slot`). A
//! refresh that finds its institution full is put back for a few seconds (no attempt spent,
//! nothing recorded on the connection): the slot goes to another bank's job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Per-institution limits on refreshes running at once.
#[derive(Debug)]
pub struct Bulkheads {
    per_institution: usize,
    institutions: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

/// How long a refresh that found its institution full waits before it is claimed again: long
/// enough that waiting jobs do not churn the queue, short next to any refresh schedule; spread
/// so the waiting jobs of one bank do not come back together.
pub fn wait_when_full() -> Duration {
    Duration::from_millis(rand::random_range(2_000..5_000))
}

impl Bulkheads {
    /// `per_institution` refreshes of one institution at once (at least one).
    pub fn new(per_institution: usize) -> Self {
        Self { per_institution: per_institution.max(1), institutions: Mutex::default() }
    }

    /// A place for one refresh of `institution`, held until dropped; `None` when all are taken.
    pub fn try_enter(&self, institution: Uuid) -> Option<OwnedSemaphorePermit> {
        let mut institutions = self.institutions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Institutions nobody is refreshing go, so the map holds only the busy ones; taking the
        // place under the same lock keeps one semaphore per institution.
        institutions.retain(|_, semaphore| semaphore.available_permits() < self.per_institution);
        let semaphore =
            institutions.entry(institution).or_insert_with(|| Arc::new(Semaphore::new(self.per_institution)));
        Arc::clone(semaphore).try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_institution_cannot_take_more_than_its_places_and_others_are_unaffected() {
        let bulkheads = Bulkheads::new(2);
        let (stalling, healthy) = (Uuid::new_v4(), Uuid::new_v4());
        let first = bulkheads.try_enter(stalling);
        let second = bulkheads.try_enter(stalling);
        assert!(first.is_some() && second.is_some());
        assert!(bulkheads.try_enter(stalling).is_none(), "a third refresh of the same bank waits");
        assert!(bulkheads.try_enter(healthy).is_some(), "another bank is not held up");
        drop(first);
        assert!(bulkheads.try_enter(stalling).is_some(), "a place that frees is taken again");
    }

    #[test]
    fn waits_are_spread_over_a_few_seconds() {
        for _ in 0..100 {
            let wait = wait_when_full();
            assert!((Duration::from_secs(2)..Duration::from_secs(5)).contains(&wait));
        }
    }
}
