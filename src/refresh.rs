//! The refresh use case: asking for a refresh (`enqueue`, in the caller's transaction), the job
//! that carries it out (`job`) with the reader and the writer that let refreshes starting or
//! finishing together share their statements (`reader`, `writer`), the scheduler that asks on a
//! connection's behalf (`schedule`), and refresh's own statements over the queue's table
//! (`store`). The queue underneath (`jobs`) knows none of this.

pub mod bulkhead;
pub mod job;
pub mod reader;
pub mod retry;
pub mod schedule;
pub mod store;
pub mod writer;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::connection::lifecycle;
use crate::incident::Incident;
use crate::jobs::{self, Enqueued, NewJob};

pub use job::{RefreshHandler, Refresher};
pub use reader::Reader;
pub use retry::BACKOFF;
pub use writer::Writer;

pub const KIND: &str = "refresh";

/// How far back a refresh asks when the connection never succeeded.
const FIRST_HISTORY: TimeDelta = TimeDelta::days(90);
/// Sandbox institutions are seeded as `sandbox-<the sandbox's slug>`.
pub const SANDBOX_SLUG_PREFIX: &str = "sandbox-";
/// Re-read this much before the last success, to see corrections and removals.
const OVERLAP: TimeDelta = TimeDelta::days(14);

/// Where a refresh's window starts: the overlap before the last success, or the first history
/// when there was none, at midnight (UTC) of that day. Whole days let a repeat refresh recognise
/// the days it re-reads as they were and leave them alone (`feed::store::apply_statements`); a
/// window starting mid-day would make its first day differ every time.
pub fn window_start(last_success: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let start = last_success.map_or(now - FIRST_HISTORY, |last| last - OVERLAP);
    start.date_naive().and_time(NaiveTime::MIN).and_utc()
}

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

/// An incident was resolved (detected recovery or a person): connections waiting it out need
/// not wait any longer, so their pending refreshes run now, and subscribers hear of it.
pub async fn incident_resolved(conn: &mut PgConnection, incident: &Incident) -> Result<(), sqlx::Error> {
    let advanced = store::run_now_for_institution(&mut *conn, incident.institution.id).await?;
    tracing::info!(incident = %incident.id, institution = %incident.institution.id, advanced, "incident resolved");
    lifecycle::incident_resolved(conn, incident).await
}
