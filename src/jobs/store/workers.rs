//! The `worker` registry: what each worker pool reports of itself, for `/v1/queue` and for
//! telling live pools from gone ones.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// What a worker pool says of itself on every report.
#[derive(Debug, Clone)]
pub struct WorkerReport<'a> {
    /// host/pid, as the pool writes in `locked_by`.
    pub id: &'a str,
    pub kinds: &'a [String],
    pub concurrency: i32,
    pub running: i32,
    /// Presumed gone unless it reports again within this.
    pub lease: Duration,
}

/// A live worker pool (a `serve` or `feedwatch worker` process).
// Live: it reported within its lease.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = WorkerView)]
pub struct LiveWorker {
    /// `host/pid`, as in the jobs it holds.
    #[schema(example = "feedwatch-7d9f/41")]
    pub id: String,
    /// The job kinds it runs.
    pub kinds: Vec<String>,
    /// Jobs it runs at once.
    pub concurrency: i32,
    /// Jobs it was running at its last report.
    pub running: i32,
    pub started_at: DateTime<Utc>,
    /// Its last report; pools report every third of their lease.
    pub last_seen_at: DateTime<Utc>,
}

/// Records that a pool is alive (inserting it on its first report).
pub async fn report_worker(executor: impl PgExecutor<'_>, report: &WorkerReport<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into worker (id, kinds, concurrency, running, started_at, last_seen_at, expires_at)
           values ($1, $2, $3, $4, now(), now(), now() + make_interval(secs => $5))
           on conflict (id) do update set kinds = excluded.kinds, concurrency = excluded.concurrency,
               running = excluded.running, last_seen_at = now(), expires_at = excluded.expires_at"#,
        report.id,
        report.kinds,
        report.concurrency,
        report.running,
        report.lease.as_secs_f64(),
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// A pool that stops cleanly removes itself at once instead of expiring.
pub async fn forget_worker(executor: impl PgExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from worker where id = $1", id).execute(executor).await?;
    Ok(())
}

pub async fn live_workers(executor: impl PgExecutor<'_>) -> Result<Vec<LiveWorker>, sqlx::Error> {
    sqlx::query_as!(
        LiveWorker,
        r#"select id, kinds, concurrency, running, started_at, last_seen_at from worker
           where expires_at > now() order by id"#
    )
    .fetch_all(executor)
    .await
}

/// Drops the rows of workers presumed gone for longer than `after` (killed, not stopped).
pub async fn prune_workers(executor: impl PgExecutor<'_>, after: Duration) -> Result<u64, sqlx::Error> {
    let outcome =
        sqlx::query!("delete from worker where expires_at < now() - make_interval(secs => $1)", after.as_secs_f64())
            .execute(executor)
            .await?;
    Ok(outcome.rows_affected())
}
