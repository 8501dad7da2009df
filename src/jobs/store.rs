//! The queue's statements: claims, leases, outcomes and upkeep of the `job` table, and the
//! `worker` registry. Readers that join `job` for their own purpose (a connection's next retry,
//! refresh's incident rule, the health summary's backlog) keep those statements in their own
//! stores.
//!
//! A job going back to `available` (retry, snooze, release, rescue) while a newer job of the
//! same key is already pending is `cancelled` instead: the pending one does the same work, and
//! the partial unique index allows only one of them.
//!
//! Every statement here must keep a sane plan when PostgreSQL switches the prepared statement
//! to a generic plan (after five runs), because the queue's statistics are always wrong: the
//! last analyze usually saw almost no `running` rows. Hence three habits:
//! - fences test `lease_expires_at is not null`, which the `running_iff_leased` check makes the
//!   same as `state = 'running'`. Spelled `state = 'running'`, the condition matches the
//!   predicate of `job_lease_idx`, and a generic plan, believing that index empty, scans every
//!   running row instead of probing the primary key;
//! - batches bind their ids as one array (`job_id = any($1)`, a primary key probe) and their
//!   per-job values as a JSON object keyed by id, looked up per row, rather than joining an
//!   `unnest`: a generic plan estimates 10 rows for any `unnest` and picks a nested loop that
//!   rescans it for every row, quadratic in the batch;
//! - a statement that updates what a `limit $n` CTE selected takes the ids as an array
//!   (`= any(array(select …))`), since a generic plan guesses the limit at 10% of the table and
//!   hash-joins a sequential scan of all of it.

mod reads;
mod workers;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::backoff::Backoffs;
use super::{AVAILABLE_CHANNEL, ClaimedJob, Enqueued, NewJob};
use crate::telemetry::trace::TraceContext;
pub use reads::{JobRecord, QueueStats, for_connection, get, stats};
pub use workers::{LiveWorker, WorkerReport, forget_worker, live_workers, prune_workers, report_worker};

/// Errors kept on a job row; older ones fall off.
const MAX_ERRORS: i32 = 20;

/// A job merged into a pending one keeps the pending one's trace: that is the run that happens.
pub async fn insert_or_coalesce(
    executor: impl PgExecutor<'_>,
    job: &NewJob,
    trace: Option<TraceContext>,
) -> Result<Enqueued, sqlx::Error> {
    let row = sqlx::query!(
        r#"insert into job (kind, args, unique_key, priority, run_at, max_attempts, connection_id, trigger, traceparent)
           values ($1, $2, $3, $4, coalesce($5, now()), $6, $7, $8, $9)
           on conflict (unique_key) where unique_key is not null and state = 'available'
           do update set run_at = least(job.run_at, excluded.run_at),
                         priority = greatest(job.priority, excluded.priority),
                         updated_at = now()
           returning job_id, (xmax <> 0) as "coalesced!""#,
        job.kind,
        job.args,
        job.unique_key,
        job.priority,
        job.run_at,
        job.max_attempts,
        job.connection_id,
        job.trigger,
        trace.map(|context| context.header()),
    )
    .fetch_one(executor)
    .await?;
    Ok(Enqueued { job_id: row.job_id, coalesced: row.coalesced })
}

/// Delivered on commit: wakes idle workers at once instead of at their next poll.
pub async fn notify_available(executor: impl PgExecutor<'_>, kind: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_notify($1, $2)", AVAILABLE_CHANNEL, kind).execute(executor).await?;
    Ok(())
}

/// A connection of its own that hears [`notify_available`]: how an idle worker wakes at once.
#[derive(Debug)]
pub struct AvailableJobs(PgListener);

impl AvailableJobs {
    pub async fn listen(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(AVAILABLE_CHANNEL).await?;
        Ok(Self(listener))
    }

    /// Waits for the next notification. After an error the listener reconnects on its next use,
    /// and notifications sent meanwhile are lost: the caller's poll must cover the gap.
    pub async fn notified(&mut self) -> Result<(), sqlx::Error> {
        self.0.try_recv().await.map(drop)
    }
}

/// Claims up to `limit` due jobs in one short statement, in claim order; never two of one key at
/// once.
pub async fn claim(
    executor: impl PgExecutor<'_>,
    limit: i64,
    lease: Duration,
    worker: &str,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"with next as (
               select j.job_id from job j
               where j.state = 'available' and j.run_at <= now()
                 and (j.unique_key is null
                      or not exists (select 1 from job r where r.state = 'running' and r.unique_key = j.unique_key))
               order by j.priority desc, j.run_at, j.job_id
               limit $1
               for update skip locked
           ),
           claimed as (
               update job set state = 'running', attempt = job.attempt + 1,
                              lease_expires_at = now() + make_interval(secs => $2), locked_by = $3,
                              started_at = now(), updated_at = now()
               where job.job_id = any(array(select job_id from next))
               returning job.job_id, job.kind, job.args, job.attempt, job.max_attempts, job.priority, job.run_at,
                         job.traceparent
           )
           select job_id as "job_id!", kind as "kind!", args as "args!", attempt as "attempt!",
                  max_attempts as "max_attempts!", traceparent
           from claimed order by priority desc, run_at, job_id"#,
        limit,
        lease.as_secs_f64(),
        worker,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ClaimedJob {
            job_id: row.job_id,
            kind: row.kind,
            args: row.args,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
            // Only `insert_or_coalesce` writes the column, from a parsed context; were it ever
            // unreadable, the job runs in a new trace rather than not at all.
            trace: row.traceparent.as_deref().and_then(TraceContext::parse),
            slot: super::slot::Slot::default(),
        })
        .collect())
}

/// `{"<job id>": value}`: how a batch passes one value per job (see the module comment).
fn by_id<T: Into<serde_json::Value>>(pairs: impl IntoIterator<Item = (i64, T)>) -> serde_json::Value {
    serde_json::Value::Object(pairs.into_iter().map(|(id, value)| (id.to_string(), value.into())).collect())
}

/// Extends the leases of many jobs in one statement; returns the ids whose attempt still held
/// (the others' leases are lost: a rescuer or another worker took them over).
pub async fn heartbeat_many(
    executor: impl PgExecutor<'_>,
    held: &[(i64, i32)],
    lease: Duration,
) -> Result<Vec<i64>, sqlx::Error> {
    let ids: Vec<i64> = held.iter().map(|(id, _)| *id).collect();
    let attempts = by_id(held.iter().copied());
    // The rows are locked in id order first, the order a group commit's fence
    // ([`hold_many_if_current_locking`]) takes them: an update alone locks in scan order, and
    // deadlocked with a writer that held some of these rows.
    sqlx::query_scalar!(
        r#"update job set lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
           where job_id = any(array(
                   select job_id from job
                   where job_id = any($1) and lease_expires_at is not null
                     and attempt = ($2::jsonb ->> job_id::text)::int
                   order by job_id for update))
             and lease_expires_at is not null and attempt = ($2::jsonb ->> job_id::text)::int
           returning job_id"#,
        &ids,
        attempts,
        lease.as_secs_f64(),
    )
    .fetch_all(executor)
    .await
}

/// Of these `(job, attempt)` pairs, the jobs that attempt itself marked succeeded: a heartbeat
/// that no longer finds them running has not lost them (a handler completes its job in its own
/// commit, [`super::Outcome::Completed`], before the pool hears of it).
pub async fn succeeded_by(executor: impl PgExecutor<'_>, held: &[(i64, i32)]) -> Result<Vec<i64>, sqlx::Error> {
    let ids: Vec<i64> = held.iter().map(|(id, _)| *id).collect();
    let attempts = by_id(held.iter().copied());
    sqlx::query_scalar!(
        r#"select job_id from job
           where job_id = any($1) and state = 'succeeded' and attempt = ($2::jsonb ->> job_id::text)::int"#,
        &ids,
        attempts,
    )
    .fetch_all(executor)
    .await
}

/// Marks many jobs succeeded in one statement; returns the ids whose attempt still held.
pub async fn complete_many(
    executor: impl PgExecutor<'_>,
    ids: &[i64],
    attempts: &[i32],
    results: &[serde_json::Value],
) -> Result<Vec<i64>, sqlx::Error> {
    let fenced = by_id(
        ids.iter()
            .zip(attempts.iter().zip(results))
            .map(|(id, (attempt, result))| (*id, serde_json::json!([attempt, result]))),
    );
    sqlx::query_scalar!(
        r#"update job set state = 'succeeded', finished_at = now(), lease_expires_at = null,
                          result = $2::jsonb -> job_id::text -> 1, updated_at = now()
           where job_id = any($1) and lease_expires_at is not null
             and attempt = ($2::jsonb -> job_id::text ->> 0)::int
           returning job_id"#,
        ids,
        fenced,
    )
    .fetch_all(executor)
    .await
}

/// Schedules a retry at `run_at`, or fails the job when its attempts are spent.
pub async fn retry(
    executor: impl PgExecutor<'_>,
    job_id: i64,
    attempt: i32,
    run_at: DateTime<Utc>,
    error: &serde_json::Value,
    result: Option<&serde_json::Value>,
) -> Result<bool, sqlx::Error> {
    end_attempt(executor, (job_id, attempt), Some(run_at), error, result).await
}

/// Fails a job for good.
pub async fn fail(
    executor: impl PgExecutor<'_>,
    job_id: i64,
    attempt: i32,
    error: &serde_json::Value,
    result: Option<&serde_json::Value>,
) -> Result<bool, sqlx::Error> {
    end_attempt(executor, (job_id, attempt), None, error, result).await
}

/// Ends a failed attempt: with a retry time the job runs again then (unless its attempts are
/// spent or a newer copy is waiting); without one it fails for good and keeps its lock history.
async fn end_attempt(
    executor: impl PgExecutor<'_>,
    (job_id, attempt): (i64, i32),
    retry_at: Option<DateTime<Utc>>,
    error: &serde_json::Value,
    result: Option<&serde_json::Value>,
) -> Result<bool, sqlx::Error> {
    let outcome = sqlx::query!(
        r#"update job set
               state = case
                   when $3::timestamptz is null or job.attempt >= job.max_attempts then 'failed'
                   when exists (select 1 from job o where o.unique_key = job.unique_key and o.state = 'available') then 'cancelled'
                   else 'available' end,
               finished_at = case
                   when $3::timestamptz is null or job.attempt >= job.max_attempts
                     or exists (select 1 from job o where o.unique_key = job.unique_key and o.state = 'available') then now()
                   end,
               run_at = coalesce($3, run_at), lease_expires_at = null,
               locked_by = case when $3::timestamptz is null then locked_by end,
               errors = case when jsonb_array_length(errors) >= $6 then (errors - 0) || $4 else errors || $4 end,
               result = coalesce($5, result), updated_at = now()
           where job_id = $1 and attempt = $2 and lease_expires_at is not null"#,
        job_id,
        attempt,
        retry_at,
        error,
        result,
        MAX_ERRORS,
    )
    .execute(executor)
    .await?;
    Ok(outcome.rows_affected() == 1)
}

/// Puts a job back without spending its attempt: a snooze (`run_at` later) or a release at
/// shutdown (`run_at` now).
pub async fn requeue_unspent(
    executor: impl PgExecutor<'_>,
    job_id: i64,
    attempt: i32,
    run_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    Ok(requeue_unspent_many(executor, &[(job_id, attempt)], run_at).await? == 1)
}

/// Puts many jobs back without spending their attempts, in one statement: what a pool held but
/// did not finish when it stopped. Returns how many went back.
pub async fn requeue_unspent_many(
    executor: impl PgExecutor<'_>,
    held: &[(i64, i32)],
    run_at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let ids: Vec<i64> = held.iter().map(|(id, _)| *id).collect();
    let attempts = by_id(held.iter().copied());
    let outcome = sqlx::query!(
        r#"update job set
               state = case when exists (select 1 from job o where o.unique_key = job.unique_key and o.state = 'available')
                            then 'cancelled' else 'available' end,
               finished_at = case when exists (select 1 from job o where o.unique_key = job.unique_key and o.state = 'available')
                                  then now() end,
               attempt = attempt - 1, run_at = $3, lease_expires_at = null, locked_by = null, updated_at = now()
           where job_id = any($1) and lease_expires_at is not null and attempt = ($2::jsonb ->> job_id::text)::int"#,
        &ids,
        attempts,
        run_at,
    )
    .execute(executor)
    .await?;
    Ok(outcome.rows_affected())
}

/// Returns jobs whose lease expired (their worker died) to the queue after their kind's backoff,
/// or fails them when their attempts are spent, so a job that kills its worker cannot loop
/// forever. Idempotent and safe on every replica. Returns how many were rescued.
///
/// The registered kinds' policies go as parallel arrays looked up by `array_position` per row
/// (a handful of kinds, so no `unnest` to misplan); any other kind takes `otherwise`.
pub async fn rescue_expired(conn: &mut PgConnection, backoffs: &Backoffs, batch: i64) -> Result<u64, sqlx::Error> {
    let (mut kinds, mut bases, mut caps) = (Vec::new(), Vec::new(), Vec::new());
    for (kind, backoff) in backoffs.registered() {
        kinds.push(kind.to_owned());
        bases.push(backoff.base.as_secs_f64());
        caps.push(backoff.cap.as_secs_f64());
    }
    let otherwise = backoffs.otherwise();
    let error = serde_json::json!({ "at": Utc::now(), "error": "lease expired: the worker was lost" });
    let outcome = sqlx::query!(
        r#"with expired as (
               select job_id from job where state = 'running' and lease_expires_at < now()
               order by lease_expires_at limit $4 for update skip locked
           )
           update job set
               state = case
                   when job.attempt >= job.max_attempts then 'failed'
                   when exists (select 1 from job o where o.unique_key = job.unique_key and o.state = 'available') then 'cancelled'
                   else 'available' end,
               finished_at = case
                   when job.attempt >= job.max_attempts
                     or exists (select 1 from job o where o.unique_key = job.unique_key and o.state = 'available') then now()
                   end,
               run_at = now() + make_interval(secs =>
                   least(coalesce(($8::float8[])[array_position($6::text[], job.kind)], $2),
                         coalesce(($7::float8[])[array_position($6::text[], job.kind)], $1)
                           * power(2, least(job.attempt, 30) - 1))
                   * (0.5 + random() / 2)),
               lease_expires_at = null, locked_by = null,
               errors = case when jsonb_array_length(errors) >= $5 then (errors - 0) || $3 else errors || $3 end,
               updated_at = now()
           where job.job_id = any(array(select job_id from expired))"#,
        otherwise.base.as_secs_f64(),
        otherwise.cap.as_secs_f64(),
        error,
        batch,
        MAX_ERRORS,
        &kinds,
        &bases,
        &caps,
    )
    .execute(&mut *conn)
    .await?;
    Ok(outcome.rows_affected())
}

/// Deletes finished jobs past their retention, a batch per statement; returns how many went.
pub async fn clean(
    executor: impl PgExecutor<'_>,
    succeeded_for: Duration,
    failed_for: Duration,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let outcome = sqlx::query!(
        r#"delete from job where job_id in (
               select job_id from job
               where finished_at is not null
                 and ((state = 'succeeded' and finished_at < now() - make_interval(secs => $1))
                      or (state in ('failed', 'cancelled') and finished_at < now() - make_interval(secs => $2)))
               limit $3)"#,
        succeeded_for.as_secs_f64(),
        failed_for.as_secs_f64(),
        batch,
    )
    .execute(executor)
    .await?;
    Ok(outcome.rows_affected())
}

/// Whether `attempt` is still the running attempt of the job; locks the row for the rest of the
/// transaction, so a handler's writes and a rescue cannot interleave (fencing).
pub async fn hold_if_current(conn: &mut PgConnection, job_id: i64, attempt: i32) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        r#"select true as "held!" from job where job_id = $1 and attempt = $2 and lease_expires_at is not null
           for update"#,
        job_id,
        attempt
    )
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Locks every job of `connection_id`, in id order: the row lock a running job's fence
/// ([`hold_if_current_locking`]) holds while it writes. A writer that deletes the connection takes
/// these first and the handler's own lock second, the fence's order, so the two cannot deadlock
/// (deleting the connection sets its jobs' `connection_id` to null, which waits on them anyway).
pub async fn lock_jobs_of_connection(conn: &mut PgConnection, connection_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("select job_id from job where connection_id = $1 order by job_id for update")
        .bind(connection_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`hold_if_current`], and when the attempt is current also the caller's transaction-scoped
/// advisory lock `(name, seed)` (as `pg_advisory_xact_lock(hashtextextended(name, seed))`), in
/// one statement: a handler that serialises its writes on a lock of its own pays one round
/// trip for the fence and the lock. The lock is taken after the job row is locked, as the two
/// statements would, and not at all when the attempt is stale.
pub async fn hold_if_current_locking(
    conn: &mut PgConnection,
    job_id: i64,
    attempt: i32,
    lock: (&str, i64),
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        r#"select true as "held!" from (
               select job_id from job where job_id = $1 and attempt = $2 and lease_expires_at is not null for update
           ) held
           cross join lateral (select pg_advisory_xact_lock(hashtextextended($3, $4)) where held.job_id is not null) locked"#,
        job_id,
        attempt,
        lock.0,
        lock.1,
    )
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// [`hold_if_current_locking`] for many jobs in one statement, each with its own lock `(name,
/// seed)`: the fence of a transaction that stores several jobs' work (group commit). The job
/// rows are locked in id order (the order a multi-row heartbeat meets them, so the two cannot
/// deadlock), each job's lock right after its row; a stale attempt takes neither. Returns the
/// `(job id, attempt)` pairs that are current; a job named twice is fenced for its last attempt.
pub async fn hold_many_if_current_locking(
    conn: &mut PgConnection,
    held: &[(i64, i32, (&str, i64))],
) -> Result<Vec<(i64, i32)>, sqlx::Error> {
    let ids: Vec<i64> = held.iter().map(|(id, _, _)| *id).collect();
    let fences = by_id(held.iter().map(|(id, attempt, (name, seed))| (*id, serde_json::json!([attempt, name, seed]))));
    let rows = sqlx::query!(
        r#"select held.job_id as "job_id!", held.attempt as "attempt!" from (
               select job_id, attempt from job
               where job_id = any($1) and lease_expires_at is not null
                 and attempt = ($2::jsonb -> job_id::text ->> 0)::int
               order by job_id for update
           ) held
           cross join lateral (
               select pg_advisory_xact_lock(hashtextextended($2::jsonb -> held.job_id::text ->> 1,
                                                             ($2::jsonb -> held.job_id::text ->> 2)::bigint))
           ) locked"#,
        &ids,
        fences,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|row| (row.job_id, row.attempt)).collect())
}
