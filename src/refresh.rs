//! The refresh use case: asking for a refresh (`enqueue`, in the caller's transaction), the job
//! that carries it out (`job`), the scheduler that asks on a connection's behalf (`schedule`),
//! and refresh's own statements over the queue's table (`store`). The queue underneath (`jobs`)
//! knows none of this.

pub mod job;
pub mod schedule;
pub mod store;

use std::time::Duration;

use chrono::TimeDelta;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::jobs::backoff::Backoff;
use crate::jobs::{self, Enqueued, NewJob};

pub use job::{RefreshHandler, Refresher};

pub const KIND: &str = "refresh";
/// How a failed refresh is retried: 15 s doubling to 15 min; with 8 attempts about half an hour
/// of retrying (the design notes' 5 s base gives only ten minutes).
pub const BACKOFF: Backoff = Backoff { base: Duration::from_secs(15), cap: Duration::from_secs(15 * 60) };
/// How far back a refresh asks when the connection never succeeded.
pub(crate) const FIRST_HISTORY: TimeDelta = TimeDelta::days(90);
/// Sandbox institutions are seeded as `sandbox-<the sandbox's slug>`.
pub const SANDBOX_SLUG_PREFIX: &str = "sandbox-";
/// Re-read this much before the last success, to see corrections and removals.
pub(crate) const OVERLAP: TimeDelta = TimeDelta::days(14);

/// Why a refresh was asked for; shown in its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Created,
    Manual,
    Credentials,
    Scheduled,
    Bulk,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Manual => "manual",
            Self::Credentials => "credentials",
            Self::Scheduled => "scheduled",
            Self::Bulk => "bulk",
        }
    }

    /// People waiting on a refresh go before the background schedule.
    fn priority(self) -> i16 {
        match self {
            Self::Scheduled | Self::Bulk => 0,
            _ => 10,
        }
    }
}

/// Enqueues (or merges into) the refresh of a connection, in the caller's transaction.
pub async fn enqueue(conn: &mut PgConnection, connection_id: Uuid, trigger: Trigger) -> Result<Enqueued, sqlx::Error> {
    let job = NewJob {
        kind: KIND,
        args: serde_json::json!({ "connection_id": connection_id }),
        unique_key: Some(format!("refresh:{connection_id}")),
        priority: trigger.priority(),
        run_at: None,
        max_attempts: 8,
        connection_id: Some(connection_id),
        trigger: trigger.as_str(),
    };
    jobs::enqueue(conn, &job).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_attempts_retry_for_about_half_an_hour() {
        let total: Duration = (1..8).map(|attempt| BACKOFF.delay(attempt, 1.0)).sum();
        assert!(total >= Duration::from_secs(20 * 60) && total <= Duration::from_secs(40 * 60), "{total:?}");
    }
}
