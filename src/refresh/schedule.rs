//! Scheduled refreshes: every replica runs this loop; `take_due` hands each due connection to
//! exactly one of them and moves its next refresh in the same transaction as the enqueue, so no
//! refresh is doubled or lost.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{self as refresh, Trigger};
use crate::connection::lifecycle::{self, transition};
use crate::connection::store as connection_store;

const BATCH: i64 = 500;

/// Enqueues the refreshes that are due now; returns how many.
pub async fn enqueue_due(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut tx = crate::database::begin(pool).await?;
        let due = connection_store::take_due(&mut *tx, Utc::now(), BATCH, &transition::scheduled_states()).await?;
        for id in &due {
            refresh::enqueue(&mut tx, *id, Trigger::Scheduled).await?;
        }
        tx.commit().await?;
        total += due.len();
        if (due.len() as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Marks connections stale that had no success for `stale_after` and degrades those that still
/// looked fine (the lifecycle's staleness transition); returns how many changed state.
pub async fn degrade_stale(pool: &PgPool, stale_after: Duration) -> Result<usize, sqlx::Error> {
    let limit = chrono::TimeDelta::from_std(stale_after).unwrap_or(chrono::TimeDelta::MAX);
    let mut tx = crate::database::begin(pool).await?;
    let changed = lifecycle::went_stale(&mut tx, Utc::now(), limit).await?;
    tx.commit().await?;
    Ok(changed)
}

pub async fn run(pool: PgPool, every: Duration, stale_after: Duration, shutdown: CancellationToken) {
    loop {
        match enqueue_due(&pool).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "scheduled refreshes enqueued"),
            Err(error) => tracing::warn!(%error, "scheduling refreshes failed; retrying next round"),
        }
        match degrade_stale(&pool, stale_after).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "stale connections degraded"),
            Err(error) => tracing::warn!(%error, "checking staleness failed; retrying next round"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
