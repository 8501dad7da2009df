//! Group commit of refresh successes. A refresh whose bank answered hands what it fetched to its
//! pool's writer and waits for the verdict; the writer stores everything that is ready in one
//! transaction: one fence statement for the whole batch (every job's attempt, its row locked in
//! id order and its connection's feed lock after it), then each refresh's statements, then the
//! batch's job completions, and one commit (one WAL flush) for all of it.
//!
//! The writer never waits for a batch to fill: it takes what the channel holds (at least one),
//! so an idle pool's refresh commits as soon as it arrives; under load, what arrives while
//! [`IN_FLIGHT`] transactions are committing makes the next batch. A stale attempt's fence takes
//! no lock and writes nothing, so it needs no savepoint: it is left out and reported lost. A
//! statement that fails aborts the transaction, and the batch is then written again one refresh
//! per transaction, so one refresh's error fails only that refresh.
//!
//! Nothing is acknowledged before the commit: the handler (still holding its job, whose lease the
//! pool's heartbeat keeps) returns only with the verdict, so a process killed with results queued
//! here loses only uncommitted work, and the jobs are retried.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::job::{distinct_accounts, listed_account, newest_data, refused_account, reported_transactions, subject};
use crate::connection::lifecycle::{self, Succeeded};
use crate::connection::store::{self as connection_store, ListedAccount, RefreshTarget};
use crate::feed::{self, ReportedTransaction};
use crate::incident::{self, RefreshOutcome};
use crate::jobs::fault;
use crate::provider::Fetched;
use crate::telemetry::trace::TraceContext;
use crate::telemetry::{Metrics, RefreshResult};

/// Crash points of the group commit (`jobs::fault`): a batch reached the writer and nothing of it
/// is written (a hold: a test may expire the leases and let another attempt finish first); a
/// batch's transaction has begun and its statements and commit run while the kill lands (a
/// mark: the writer carries on); a batch's transaction has ended, whatever it decided (a mark).
pub const FAULT_QUEUED: &str = "refresh.queued";
pub const FAULT_COMMITTING: &str = "refresh.committing";
pub const FAULT_WRITTEN: &str = "refresh.written";

/// Most refreshes one transaction stores: enough to share a commit widely, few enough that one
/// transaction's locks and statements stay short.
const BATCH: usize = 64;
/// Transactions committing at once: while one waits for its WAL flush, the next executes.
const IN_FLIGHT: usize = 2;

/// A refresh whose bank answered, with what the store needs.
pub(super) struct Success {
    pub job_id: i64,
    pub attempt: i32,
    pub target: RefreshTarget,
    pub fetched: Fetched,
    pub window_start: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// The job's trace: what the success enqueues (webhook deliveries) carries it on.
    pub trace: Option<TraceContext>,
}

/// The writer's verdict on one refresh.
pub(super) enum Written {
    /// Stored, and its job marked succeeded in the same commit.
    Stored(serde_json::Value),
    /// Another attempt owns the job: nothing was written.
    Lost,
    Failed(String),
}

/// What the writer needs besides the results: the rules a success is judged by.
#[derive(Clone)]
pub(super) struct Context {
    pub pool: PgPool,
    pub incidents: incident::Rules,
    pub stalls: feed::stall::Rules,
    pub metrics: Arc<Metrics>,
}

type Queued = (Success, oneshot::Sender<Written>);

/// A pool's writer, started by the first success it is handed; it stops when its owner (the
/// pool's `Refresher`) is dropped.
#[derive(Debug, Default)]
pub struct Writer(OnceLock<mpsc::Sender<Queued>>);

impl Writer {
    pub(super) async fn write(&self, context: impl FnOnce() -> Context, success: Success) -> Written {
        let sender = self.0.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(BATCH * 8);
            tokio::spawn(run(context(), receiver));
            sender
        });
        let (reply, verdict) = oneshot::channel();
        if sender.send((success, reply)).await.is_err() {
            return Written::Failed("the refresh writer stopped".into());
        }
        verdict.await.unwrap_or_else(|_| Written::Failed("the refresh writer stopped".into()))
    }
}

async fn run(context: Context, mut receiver: mpsc::Receiver<Queued>) {
    let mut writing = JoinSet::new();
    loop {
        if writing.len() >= IN_FLIGHT {
            writing.join_next().await;
            continue;
        }
        let mut batch = Vec::with_capacity(BATCH);
        tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => if received == 0 { break },
            Some(_) = writing.join_next() => continue,
        }
        writing.spawn(write_batch(context.clone(), batch));
    }
    while writing.join_next().await.is_some() {}
}

async fn write_batch(context: Context, mut batch: Vec<Queued>) {
    fault::hold_at(FAULT_QUEUED).await;
    // The fence locks job rows in id order; a job queued twice (a lost attempt and its successor)
    // is fenced for its newest attempt.
    batch.sort_by_key(|(success, _)| (success.job_id, success.attempt));
    let (successes, replies): (Vec<Success>, Vec<oneshot::Sender<Written>>) = batch.into_iter().unzip();
    let verdicts = match commit(&context, &successes).await {
        Ok(verdicts) => verdicts,
        Err(error) if successes.len() > 1 => {
            tracing::warn!(%error, count = successes.len(), "a batch of refreshes failed; writing them one at a time");
            let mut verdicts = Vec::with_capacity(successes.len());
            for success in &successes {
                let alone = commit(&context, std::slice::from_ref(success)).await;
                verdicts.push(alone.map_or_else(|error| Written::Failed(error.to_string()), |mut one| one.remove(0)));
            }
            verdicts
        }
        Err(error) => vec![Written::Failed(error.to_string())],
    };
    fault::mark(FAULT_WRITTEN);
    for (reply, verdict) in replies.into_iter().zip(verdicts) {
        // A handler that stopped waiting (its lease lost, the pool stopped) needs no answer.
        let _ = reply.send(verdict);
    }
}

/// One transaction for `successes` (sorted by job), one verdict each, in order.
async fn commit(context: &Context, successes: &[Success]) -> Result<Vec<Written>, sqlx::Error> {
    let mut tx = crate::database::begin(&context.pool).await?;
    fault::mark(FAULT_COMMITTING);
    let locks: Vec<(String, i64)> =
        successes.iter().map(|success| feed::store::connection_lock(success.target.id)).collect();
    let fences: Vec<(i64, i32, (&str, i64))> = successes
        .iter()
        .zip(&locks)
        .map(|(success, (name, seed))| (success.job_id, success.attempt, (name.as_str(), *seed)))
        .collect();
    let held: HashSet<(i64, i32)> =
        crate::jobs::store::hold_many_if_current_locking(&mut tx, &fences).await?.into_iter().collect();
    let mut verdicts = Vec::with_capacity(successes.len());
    let (mut ids, mut attempts, mut results) = (Vec::new(), Vec::new(), Vec::new());
    for success in successes {
        if !held.contains(&(success.job_id, success.attempt)) {
            verdicts.push(Written::Lost);
            continue;
        }
        // The writer's task is no job's: each refresh's statements run in its own job's trace.
        let result = match success.trace {
            Some(trace) => trace.scope(store_success(&mut tx, context, success)).await?,
            None => store_success(&mut tx, context, success).await?,
        };
        ids.push(success.job_id);
        attempts.push(success.attempt);
        results.push(result.clone());
        verdicts.push(Written::Stored(result));
    }
    if !ids.is_empty() {
        crate::jobs::store::complete_many(&mut *tx, &ids, &attempts, &results).await?;
    }
    tx.commit().await?;
    // Stored and committed, jobs completed; the handlers have not heard yet.
    fault::pause_at(super::job::FAULT_STORED).await;
    for (success, verdict) in successes.iter().zip(&verdicts) {
        if matches!(verdict, Written::Stored(_)) {
            context.metrics.refresh_stored(success.target.institution_id, RefreshResult::Succeeded);
        }
    }
    Ok(verdicts)
}

/// A fixed handful of statements, however many accounts and transactions the bank returned;
/// the caller holds the job (fenced) and the connection's feed lock.
async fn store_success(
    tx: &mut PgConnection,
    context: &Context,
    success: &Success,
) -> Result<serde_json::Value, sqlx::Error> {
    let Success { job_id, target, fetched, window_start, now, .. } = success;
    let (id, now) = (target.id, *now);
    let accounts = distinct_accounts(fetched);
    let listed: Vec<ListedAccount> =
        accounts.iter().map(|(feed, reference)| listed_account(feed, *reference)).collect();
    let reported: Vec<Option<Vec<ReportedTransaction>>> = accounts
        .iter()
        .zip(&listed)
        .map(|((feed, _), listed)| {
            feed.error.is_none().then(|| reported_transactions(&feed.transactions, listed.reported.currency))
        })
        .collect();
    let newest = newest_data(&listed, &reported);
    let account_ids = connection_store::store_listed_accounts(&mut *tx, id, &listed).await?;
    // Accounts whose statement failed keep their transactions: nothing was reported for them.
    let batches: Vec<(Uuid, &[ReportedTransaction])> = account_ids
        .iter()
        .zip(&reported)
        .filter_map(|(account_id, reported)| reported.as_deref().map(|reported| (*account_id, reported)))
        .collect();
    let changes = feed::store::apply_accounts(&mut *tx, id, &batches, *window_start).await?;
    let result = serde_json::json!({
        "accounts": accounts.len(), "added": changes.added, "modified": changes.modified, "removed": changes.removed
    });
    let detail = serde_json::json!({ "job_id": job_id, "counts": result });
    let outcome = RefreshOutcome { institution_id: target.institution_id, connection_id: id, at: now, failure: None };
    let effect = incident::record(&mut *tx, &outcome, &context.incidents).await?;
    if let Some(resolved) = &effect.resolved {
        super::incident_resolved(&mut *tx, resolved).await?;
    }
    // Judged on what the store now holds, this refresh's rows included: one statement, which
    // reads the history only of accounts quiet long enough to be stalled.
    let (since, today) = ((now - feed::stall::LOOKBACK).date_naive(), now.date_naive());
    let quiet_since = feed::stall::quiet_since(today, context.stalls);
    let activity = feed::store::stall::quiet_activity(&mut *tx, id, since, quiet_since).await?;
    let stalled = feed::stall::stalled(&activity, today, context.stalls);
    let done = Succeeded {
        job_id: *job_id,
        at: now,
        data_as_of: newest,
        detail: &detail,
        added: changes.added,
        modified: changes.modified,
        removed: changes.removed,
        failure_streak: target.failure_streak,
        refused_account: refused_account(&accounts),
        stalled: &stalled,
    };
    lifecycle::refresh_succeeded(&mut *tx, &subject(target), &done).await?;
    Ok(result)
}
