//! Successes recorded in batches (group commit), fenced by each job's attempt.

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Completion, SHUTDOWN_STATEMENT_LIMIT};
use crate::jobs::store;

/// Marks successes in batches, at most `in_flight` statements at once: while they wait for their
/// commits, the successes that arrive pile up in the channel and the next statement takes them
/// all (group commit), so the faster jobs finish, the larger the batches.
pub(super) async fn complete_in_batches(pool: PgPool, mut receiver: mpsc::Receiver<Completion>, in_flight: usize) {
    const BATCH: usize = 500;
    let mut flushing = JoinSet::new();
    loop {
        if flushing.len() >= in_flight.max(1) {
            flushing.join_next().await;
            continue;
        }
        let mut batch = Vec::with_capacity(BATCH);
        tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => if received == 0 { break },
            Some(_) = flushing.join_next() => continue,
        }
        flushing.spawn(complete(pool.clone(), batch));
    }
    let flushed = async { while flushing.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_STATEMENT_LIMIT, flushed).await.is_err() {
        tracing::warn!("recording the last completions timed out; the rescuer will retry those jobs");
    }
}

async fn complete(pool: PgPool, batch: Vec<Completion>) {
    let ids: Vec<i64> = batch.iter().map(|(id, _, _)| *id).collect();
    let attempts: Vec<i32> = batch.iter().map(|(_, attempt, _)| *attempt).collect();
    let results: Vec<serde_json::Value> = batch.into_iter().map(|(_, _, result)| result).collect();
    crate::jobs::fault::mark(crate::jobs::fault::COMPLETING);
    match store::complete_many(&pool, &ids, &attempts, &results).await {
        Ok(done) if done.len() < ids.len() => {
            tracing::warn!(stale = ids.len() - done.len(), "completions of stale attempts were not recorded");
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, count = ids.len(), "recording completions failed; the rescuer will retry these jobs");
        }
    }
}
