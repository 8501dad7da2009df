//! Queue upkeep that every replica runs: the rescuer (expired leases), the cleaner (finished
//! jobs past retention) and the worker registry's pruning. All are idempotent statements with
//! `SKIP LOCKED` or plain deletes, so no leader is needed. Other modules' tables are pruned by
//! the housekeeping task, not here: the queue knows no domain.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoffs;
use super::store;
use crate::database::in_batches;

#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    pub every: Duration,
    /// How the rescuer delays each kind's rescued jobs: the worker pool's registrations
    /// ([`WorkerPool::backoffs`](super::worker::WorkerPool::backoffs)).
    pub backoffs: Backoffs,
    pub keep_succeeded: Duration,
    pub keep_failed: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(30),
            backoffs: Backoffs::default(),
            keep_succeeded: Duration::from_secs(24 * 3600),
            keep_failed: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl MaintenanceConfig {
    /// The defaults, rescuing each kind with its registered backoff.
    pub fn with_backoffs(backoffs: Backoffs) -> Self {
        Self { backoffs, ..Self::default() }
    }
}

/// One round: rescue every expired lease, then clean and prune in batches. Returns (rescued,
/// cleaned).
pub async fn run_once(pool: &PgPool, config: &MaintenanceConfig) -> Result<(u64, u64), sqlx::Error> {
    let backoffs = &config.backoffs;
    let rescued = in_batches(500, || async move {
        let mut conn = pool.acquire().await?;
        store::rescue_expired(&mut conn, backoffs, 500).await
    })
    .await?;
    let cleaned = in_batches(1000, || store::clean(pool, config.keep_succeeded, config.keep_failed, 1000)).await?;
    // A killed worker never removes its row; it goes a day after its lease ran out, so an
    // operator looking at the table after an outage still finds which replicas were there.
    let pruned = store::prune_workers(pool, Duration::from_secs(24 * 3600)).await?;
    if rescued > 0 || cleaned > 0 || pruned > 0 {
        tracing::info!(rescued, cleaned, pruned, "queue maintenance");
    }
    Ok((rescued, cleaned))
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
