//! A job queue in PostgreSQL: enqueue inside the caller's transaction, batch claims with
//! `FOR UPDATE SKIP LOCKED`, leases with heartbeats, every state change fenced by the attempt
//! number, retries with capped backoff, snoozes that spend no attempt, a rescuer and a cleaner.
//! `jobs` knows nothing of HTTP nor of any job's domain: a kind's owner registers its handler
//! and its backoff, and asks for its own statements over the table (refresh, for one).
//!
//! Guarantees: a job exists iff its enqueuing transaction committed; it runs at least once; at
//! most one job per `unique_key` is pending and at most one is running; a stale attempt never
//! changes a job's state.

pub mod backoff;
pub mod fault;
pub mod maintenance;
pub mod pace;
pub mod slot;
pub mod store;
pub mod worker;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::telemetry::trace::{self, TraceContext};

/// The channel workers listen on; a notification is a hint, the table is the truth.
pub const AVAILABLE_CHANNEL: &str = "job_available";

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub args: serde_json::Value,
    pub unique_key: Option<String>,
    pub priority: i16,
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    pub connection_id: Option<Uuid>,
    pub trigger: &'static str,
}

/// The job a request ended up with: a new one, or the pending one it merged into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: i64,
    pub coalesced: bool,
}

/// Enqueues in the caller's transaction: the job exists iff that transaction commits. A second
/// enqueue with the `unique_key` of a pending job merges into it: the earlier start and the
/// higher priority win.
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> Result<Enqueued, sqlx::Error> {
    // The request (or job) asking carries on in the job: its trace id follows.
    let enqueued = store::insert_or_coalesce(&mut *conn, job, trace::current()).await?;
    store::notify_available(&mut *conn, job.kind).await?;
    Ok(enqueued)
}

/// A claimed job, as a handler sees it.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub job_id: i64,
    pub kind: String,
    pub args: serde_json::Value,
    pub attempt: i32,
    pub max_attempts: i32,
    /// The trace of the request or job that enqueued it; the job runs in it.
    pub trace: Option<TraceContext>,
    /// Its place among the pool's slots, which a handler waiting on shared work gives back.
    pub slot: slot::Slot,
}

/// What a handler decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(serde_json::Value),
    /// Succeeded and already recorded: the handler marked the job succeeded, fenced by its
    /// attempt ([`store::complete_many`]), in the transaction that stored its work, so one commit
    /// holds both. The pool records nothing more.
    Completed(serde_json::Value),
    /// Try again after the backoff (or `after`, when the failure said when).
    Retry {
        error: String,
        after: Option<Duration>,
        result: Option<serde_json::Value>,
    },
    /// Never retry: someone must act first.
    Fail {
        error: String,
        result: Option<serde_json::Value>,
    },
    /// Not now (rate limit, maintenance window): run again after `after` without spending an attempt.
    Snooze {
        after: Duration,
        reason: String,
    },
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Available,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [Self::Available, Self::Running, Self::Succeeded, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}
