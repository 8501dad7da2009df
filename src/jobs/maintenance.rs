//! Queue upkeep that every replica runs: the rescuer (expired leases) and the cleaner
//! (retention). Both are idempotent statements with `SKIP LOCKED`, so no leader is needed.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::store;

/// How long webhook messages and their delivery log are kept.
pub const WEBHOOK_LOG_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);

#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    pub every: Duration,
    pub backoff: Backoff,
    pub keep_succeeded: Duration,
    pub keep_failed: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(30),
            backoff: Backoff::REFRESH,
            keep_succeeded: Duration::from_secs(24 * 3600),
            keep_failed: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// One round: rescue every expired lease, then clean and prune in batches. Returns (rescued,
/// cleaned).
pub async fn run_once(pool: &PgPool, config: &MaintenanceConfig) -> Result<(u64, u64), sqlx::Error> {
    let (base, cap) = (config.backoff.base, config.backoff.cap);
    let rescued = in_batches(500, || async move {
        let mut conn = pool.acquire().await?;
        store::rescue_expired(&mut conn, base, cap, 500).await
    })
    .await?;
    let cleaned = in_batches(1000, || store::clean(pool, config.keep_succeeded, config.keep_failed, 1000)).await?;
    let mut pruned = crate::idempotency::store::prune(&mut *pool.acquire().await?, 1000).await?;
    // Incident detection looks back minutes and success rates a day; a week is plenty.
    let outcomes_before = chrono::Utc::now() - chrono::TimeDelta::days(7);
    pruned += in_batches(1000, || crate::incident::store::prune_outcomes(pool, outcomes_before, 1000)).await?;
    // A delivery's retries end within two days; its log is kept a month for support questions.
    let messages_before = chrono::Utc::now() - WEBHOOK_LOG_RETENTION;
    pruned += in_batches(1000, || crate::webhook::store::prune_messages(pool, messages_before, 1000)).await?;
    // A killed worker never removes its row; it goes a day after its lease ran out, so an
    // operator looking at the table after an outage still finds which replicas were there.
    pruned += store::prune_workers(pool, Duration::from_secs(24 * 3600)).await?;
    // Deliveries ignore a previous signing secret once its grace period is over; this forgets it.
    pruned += in_batches(1000, || crate::webhook::store::clear_expired_previous_secrets(pool, 1000)).await?;
    if rescued > 0 || cleaned > 0 || pruned > 0 {
        tracing::info!(rescued, cleaned, pruned, "queue maintenance");
    }
    Ok((rescued, cleaned))
}

/// Repeats `step` (one short statement over at most `batch` rows) until a round handles fewer,
/// so no statement holds many locks or runs long; returns the rows handled.
async fn in_batches<F, Fut>(batch: u64, mut step: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let done = step().await?;
        total += done;
        if done < batch {
            return Ok(total);
        }
    }
}

/// Runs maintenance every `config.every` until `shutdown`.
pub async fn run(
    pool: PgPool,
    config: MaintenanceConfig,
    observer: std::sync::Arc<dyn super::worker::PoolObserver>,
    shutdown: CancellationToken,
) {
    loop {
        match run_once(&pool, &config).await {
            Ok((rescued, _)) => observer.rescued(rescued),
            Err(error) => tracing::warn!(%error, "queue maintenance failed; retrying next round"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.every) => {}
        }
    }
}
