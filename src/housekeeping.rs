//! Retention for the modules' own tables: each module owns its `prune` (what it keeps and for
//! how long); this task only calls them, on every replica, on the queue maintenance's interval.
//!
//! A module of its own rather than a loop in `app.rs`: `app.rs` wires values and holds no rules,
//! and "which tables are pruned" is a list a newcomer should find in one place. Not in `jobs`:
//! the queue knows no domain. Every prune is idempotent and batched, so no leader is needed.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{idempotency, incident, session, webhook};

/// One round: every module's prune. Returns the rows that went.
pub async fn run_once(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut pruned = idempotency::prune(pool).await?;
    pruned += incident::prune(pool).await?;
    pruned += webhook::prune(pool).await?;
    pruned += session::prune(pool).await?;
    if pruned > 0 {
        tracing::info!(pruned, "housekeeping");
    }
    Ok(pruned)
}

/// Runs a round every `every` until `shutdown`.
pub async fn run(pool: PgPool, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(error) = run_once(&pool).await {
            tracing::warn!(%error, "housekeeping failed; retrying next round");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
