//! How a pool stops: claims in flight are awaited, buffered jobs go back at once, running jobs
//! get the grace period, and whatever is still held is handed back without spending an attempt,
//! each statement bounded so that a stop never waits on a database that is gone.

use chrono::Utc;
use tokio::task::JoinSet;

use super::{Local, SHUTDOWN_STATEMENT_LIMIT, WorkerPool};
use crate::jobs::store;

impl WorkerPool {
    /// Shutdown: the claims in flight are awaited (their jobs are leased already) and every buffered
    /// job goes back at once, unspent, so other replicas can take it; then running jobs get the
    /// grace period.
    pub(super) async fn stop(&self, mut local: Local) {
        let claims = async {
            while let Some(claimed) = local.claiming.join_next_with_id().await {
                self.take_claim(&mut local, claimed);
            }
        };
        if tokio::time::timeout(SHUTDOWN_STATEMENT_LIMIT, claims).await.is_err() {
            // The database is not answering; whatever these claims leased, the rescuer frees.
            local.claiming.abort_all();
            tracing::warn!("claims in flight did not finish at shutdown; the rescuer frees what they took");
        }
        let buffered: Vec<i64> = local.buffer.drain(..).map(|job| job.job_id).collect();
        self.hand_back(&buffered, "buffered").await;
        self.drain(local.running).await;
    }

    /// Lets in-flight jobs finish within the grace period, then hands the rest back at once.
    async fn drain(&self, mut tasks: JoinSet<()>) {
        let grace = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { return },
                () = &mut grace => break,
            }
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let unfinished: Vec<i64> = self.lock_held().keys().copied().collect();
        self.hand_back(&unfinished, "unfinished").await;
    }

    /// Puts held jobs back without spending an attempt; the fence skips any this pool lost.
    async fn hand_back(&self, ids: &[i64], what: &str) {
        let jobs: Vec<(i64, i32)> = {
            let mut held = self.lock_held();
            ids.iter().filter_map(|id| held.remove(id).map(|job| (*id, job.attempt))).collect()
        };
        if jobs.is_empty() {
            return;
        }
        let handing_back = store::requeue_unspent_many(&self.pool, &jobs, Utc::now());
        match tokio::time::timeout(SHUTDOWN_STATEMENT_LIMIT, handing_back).await {
            Ok(Ok(count)) => tracing::info!(count, what, "handed back at shutdown"),
            Ok(Err(error)) => tracing::warn!(%error, count = jobs.len(), what, "could not hand back; the rescuer will"),
            Err(_) => tracing::warn!(count = jobs.len(), what, "handing back timed out; the rescuer will"),
        }
    }
}
