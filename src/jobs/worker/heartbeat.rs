//! The pool's heartbeat: one batched lease extension for everything the pool holds, every third
//! of the lease, and (for a serving pool) the live-worker row.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{MIN_TICK, SHUTDOWN_STATEMENT_LIMIT, WorkerPool};
use crate::jobs::store;

/// Whether the heartbeat also records the pool as a live worker (`run` does; `run_until_idle`,
/// a test and backfill driver, does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Announce {
    Yes,
    No,
}

/// The pool's heartbeat task, every third of the lease.
pub(super) struct Heartbeat {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Heartbeat {
    pub(super) fn start(pool: &Arc<WorkerPool>, announce: Announce) -> Self {
        let stop = CancellationToken::new();
        let (pool, until) = (Arc::clone(pool), stop.clone());
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval((pool.config.lease / 3).max(MIN_TICK));
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            every.tick().await;
            if announce == Announce::Yes {
                pool.announce().await;
            }
            loop {
                tokio::select! {
                    () = until.cancelled() => break,
                    _ = every.tick() => pool.heartbeat().await,
                }
                if announce == Announce::Yes {
                    pool.announce().await;
                }
            }
            if announce == Announce::Yes {
                let forgetting = store::forget_worker(&pool.pool, &pool.config.worker_id);
                match tokio::time::timeout(SHUTDOWN_STATEMENT_LIMIT, forgetting).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "could not remove this worker's row; it expires after one lease");
                    }
                    Err(_) => tracing::warn!("removing this worker's row timed out; it expires after one lease"),
                }
            }
        });
        Self { stop, task }
    }

    pub(super) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
