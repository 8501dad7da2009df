//! Reads of the `job` table that change nothing: queue depth and age, and one job or a
//! connection's jobs as the API shows them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::workers::{LiveWorker, live_workers};
use crate::jobs::JobState;

/// Queue depth and age, for `/v1/queue` and metrics.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    pub by_state: Vec<(JobState, i64)>,
    pub due: i64,
    pub oldest_due_seconds: Option<f64>,
    pub workers: Vec<LiveWorker>,
}

pub async fn stats(conn: &mut PgConnection) -> Result<QueueStats, sqlx::Error> {
    let by_state = sqlx::query!(r#"select state, count(*) as "count!" from job group by state order by state"#)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| {
            let state = JobState::parse(&row.state)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown job state `{}`", row.state).into()))?;
            Ok((state, row.count))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let due = sqlx::query!(r#"select due as "due!", oldest_due_seconds as oldest from job_backlog"#)
        .fetch_one(&mut *conn)
        .await?;
    let workers = live_workers(&mut *conn).await?;
    Ok(QueueStats { by_state, due: due.due, oldest_due_seconds: due.oldest, workers })
}

/// A job as the API shows it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub job_id: i64,
    pub state: JobState,
    pub kind: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub errors: serde_json::Value,
    pub result: Option<serde_json::Value>,
    pub connection_id: Option<Uuid>,
    pub trigger: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A `job` row as read; its state becomes a [`JobState`] or a decode error.
struct JobRow {
    job_id: i64,
    state: String,
    kind: String,
    attempt: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    errors: serde_json::Value,
    result: Option<serde_json::Value>,
    connection_id: Option<Uuid>,
    trigger: String,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = sqlx::Error;

    fn try_from(row: JobRow) -> Result<Self, Self::Error> {
        let state = JobState::parse(&row.state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown job state `{}`", row.state).into()))?;
        Ok(Self {
            job_id: row.job_id,
            state,
            kind: row.kind,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
            run_at: row.run_at,
            errors: row.errors,
            result: row.result,
            connection_id: row.connection_id,
            trigger: row.trigger,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

pub async fn get(executor: impl PgExecutor<'_>, job_id: i64) -> Result<Option<JobRecord>, sqlx::Error> {
    sqlx::query_as!(
        JobRow,
        r#"select job_id, state, kind, attempt, max_attempts, run_at, errors, result, connection_id, trigger,
                  created_at, started_at, finished_at
           from job where job_id = $1"#,
        job_id
    )
    .fetch_optional(executor)
    .await?
    .map(JobRecord::try_from)
    .transpose()
}

/// A connection's jobs, newest first, before `before_id` when paging.
pub async fn for_connection(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<JobRecord>, sqlx::Error> {
    sqlx::query_as!(
        JobRow,
        r#"select job_id, state, kind, attempt, max_attempts, run_at, errors, result, connection_id, trigger,
                  created_at, started_at, finished_at
           from job where connection_id = $1 and ($2::bigint is null or job_id < $2)
           order by job_id desc limit $3"#,
        connection_id,
        before_id,
        limit,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(JobRecord::try_from)
    .collect()
}
