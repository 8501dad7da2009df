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

/// One round: rescue every expired lease, then clean in batches. Returns (rescued, cleaned).
pub async fn run_once(pool: &PgPool, config: &MaintenanceConfig) -> Result<(u64, u64), sqlx::Error> {
    let mut rescued = 0;
    let mut conn = pool.acquire().await?;
    loop {
        let batch = store::rescue_expired(&mut conn, config.backoff.base, config.backoff.cap, 500).await?;
        rescued += batch;
        if batch < 500 {
            break;
        }
    }
    let mut cleaned = 0;
    loop {
        let batch = store::clean(&mut *conn, config.keep_succeeded, config.keep_failed, 1000).await?;
        cleaned += batch;
        if batch < 1000 {
            break;
        }
    }
    let mut pruned = crate::idempotency::store::prune(&mut conn, 1000).await?;
    // Incident detection looks back minutes and success rates a day; a week is plenty.
    let outcomes_before = chrono::Utc::now() - chrono::TimeDelta::days(7);
    loop {
        let batch = crate::incident::store::prune_outcomes(&mut *conn, outcomes_before, 1000).await?;
        pruned += batch;
        if batch < 1000 {
            break;
        }
    }
    // A delivery's retries end within two days; its log is kept a month for support questions.
    let messages_before = chrono::Utc::now() - WEBHOOK_LOG_RETENTION;
    loop {
        let batch = crate::webhook::store::prune_messages(&mut *conn, messages_before, 1000).await?;
        pruned += batch;
        if batch < 1000 {
            break;
        }
    }
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
