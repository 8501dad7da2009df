//! The pool's heartbeat: one batched lease extension for everything the pool holds, every third
//! of the lease, and (for a serving pool) the live-worker row.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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

impl WorkerPool {
    /// Extends the lease of every job the pool holds, in one statement per chunk, and cancels
    /// the runs whose lease turned out to be lost.
    async fn heartbeat(&self) {
        const CHUNK: usize = 1000;
        let held: Vec<(i64, i32)> = self.lock_held().iter().map(|(id, job)| (*id, job.attempt)).collect();
        for chunk in held.chunks(CHUNK) {
            let kept: HashSet<i64> = match store::heartbeat_many(&self.pool, chunk, self.config.lease).await {
                Ok(kept) => kept.into_iter().collect(),
                Err(error) => {
                    tracing::warn!(%error, count = chunk.len(), "heartbeat failed; will retry");
                    continue;
                }
            };
            let mut missing: Vec<(i64, i32)> = chunk.iter().filter(|(id, _)| !kept.contains(id)).copied().collect();
            if !missing.is_empty() {
                // A handler that completes its job in its own commit may have done so just now.
                match store::succeeded_by(&self.pool, &missing).await {
                    Ok(finished) => missing.retain(|(id, _)| !finished.contains(id)),
                    Err(error) => {
                        tracing::warn!(%error, "checking jobs missing from the heartbeat failed; will retry");
                        continue;
                    }
                }
            }
            let held = self.lock_held();
            for job in missing.iter().filter_map(|(id, attempt)| held.get(id).filter(|job| job.attempt == *attempt)) {
                job.lost.cancel();
            }
        }
    }

    /// Records this pool as a live worker until one lease from now.
    async fn announce(&self) {
        let mut kinds: Vec<String> = self.kinds.keys().cloned().collect();
        kinds.sort();
        let report = store::WorkerReport {
            id: &self.config.worker_id,
            kinds: &kinds,
            concurrency: i32::try_from(self.config.concurrency).unwrap_or(i32::MAX),
            running: i32::try_from(self.running.load(Ordering::Relaxed)).unwrap_or(i32::MAX),
            lease: self.config.lease,
        };
        match store::report_worker(&self.pool, &report).await {
            Ok(()) => self.observer.announced(),
            Err(error) => tracing::warn!(%error, "could not record this worker as live; will retry"),
        }
    }
}
