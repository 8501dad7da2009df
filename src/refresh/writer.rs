//! Group commit of refresh successes. A refresh whose bank answered hands what it fetched to its
//! pool's writer and waits for the verdict; the writer stores everything that is ready in one
//! transaction: one fence statement for the whole batch (every job's attempt, its row locked in
//! id order and its connection's feed lock after it), then one statement of each kind for all the
//! batch's refreshes (`stored`: accounts, the feed, outcomes, the stall read, the connections'
//! states and timelines, the webhooks' subscribers), then the batch's job completions, and one
//! commit (one WAL flush) for all of it.
//!
//! The writer never waits for a batch to fill: it takes what the channel holds (at least one),
//! so an idle pool's refresh commits as soon as it arrives; under load, what arrives while a
//! transaction is committing makes the next batch ([`IN_FLIGHT`]). A batch is cut at [`BATCH`]
//! refreshes or [`BATCH_ROWS`] rows, and a batch that is full, or half full ([`WIDE`]), starts at
//! once on a spare pool connection: waiting could not widen its commit much, only delay its
//! refreshes (a first refresh brings hundreds of rows, and two transactions writing them one
//! refresh after another were slower than the per-refresh transactions they replaced). A stale
//! attempt's fence takes no lock and writes nothing, so it needs no savepoint: it is left out and
//! reported lost. A statement that fails aborts the transaction, and the batch is then written
//! again one refresh per transaction, so one refresh's error fails only that refresh.
//!
//! Nothing is acknowledged before the commit: the handler (still holding its job, whose lease the
//! pool's heartbeat keeps) returns only with the verdict, so a process killed with results queued
//! here loses only uncommitted work, and the jobs are retried. While it waits, its job gives its
//! slot back (`jobs::slot`), so the pool's slots go on asking banks instead of waiting for
//! commits; [`WAITING`] bounds the jobs waiting so.

mod stored;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use crate::connection::store::RefreshTarget;
use crate::feed;
use crate::incident;
use crate::jobs::fault;
use crate::jobs::slot::Slot;
use crate::provider::Fetched;
use crate::telemetry::trace::TraceContext;
use crate::telemetry::{Metrics, RefreshResult};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

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
/// Most rows (accounts and reported transactions) one transaction stores, unless its first
/// refresh alone brings more: one backend writes a batch's rows one refresh after another while
/// every handler of the batch waits, so a batch of first refreshes (about 230 rows each) is cut
/// after a few, and the next full batch runs beside it.
const BATCH_ROWS: usize = 1024;
/// Transactions committing at once while the batch waiting is small. One: with two (one executing
/// while the other waited for its WAL flush), refreshes arriving at a moderate pace (C=64, a
/// 50 ms bank) were split between two small batches, and PostgreSQL spent about a third more per
/// refresh for no more throughput (bench/README, session 16).
const IN_FLIGHT: usize = 1;
/// A batch waiting with at least this many refreshes starts beside the one committing, on a
/// spare pool connection, as a full one does: it already shares its commit widely, and under
/// saturation (C=256) holding it back cost a few per cent of throughput (session 16).
const WIDE: usize = BATCH / 2;
/// Pool connections the writer leaves to the rest of the pool (claims, heartbeats, failures,
/// the handlers' reads) when wide batches run beyond [`IN_FLIGHT`].
const LEFT_TO_THE_POOL: usize = 1;

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

impl Success {
    /// The rows this refresh writes: its accounts and their reported transactions.
    fn rows(&self) -> usize {
        self.fetched.data.accounts.iter().map(|feed| 1 + feed.transactions.len()).sum()
    }
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

/// Most results waiting for the writer once their jobs gave their slots back: one batch. More
/// let the pool run further ahead of the database than helps: with the database the bottleneck
/// (C=256), answers piled up, full batches started beside each other, and PostgreSQL spent more
/// per refresh (bench/README, session 31). A result waits for room here still holding its slot,
/// so the pool slows to the writer's pace; this also bounds the memory the waiting answers hold.
const WAITING: usize = BATCH;

/// A pool's writer, started by the first success it is handed; it stops when its owner (the
/// pool's `Refresher`) is dropped.
#[derive(Debug)]
pub struct Writer {
    sender: OnceLock<mpsc::Sender<Queued>>,
    /// Room for the results waiting with their slots given back ([`WAITING`]).
    waiting: Arc<Semaphore>,
}

impl Default for Writer {
    fn default() -> Self {
        Self { sender: OnceLock::new(), waiting: Arc::new(Semaphore::new(WAITING)) }
    }
}

impl Writer {
    /// Queues `success` and waits for the verdict. Once there is room for it among the results
    /// waiting, the job gives its slot back (`jobs::slot`): it only waits for a shared commit
    /// now, and the pool starts another.
    pub(super) async fn write(&self, context: impl FnOnce() -> Context, success: Success, slot: &Slot) -> Written {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(BATCH * 8);
            tokio::spawn(run(context(), receiver));
            sender
        });
        let Ok(_room) = Arc::clone(&self.waiting).acquire_owned().await else {
            return stopped();
        };
        let (reply, verdict) = oneshot::channel();
        if sender.send((success, reply)).await.is_err() {
            return stopped();
        }
        slot.give_back();
        verdict.await.unwrap_or_else(|_| stopped())
    }
}

fn stopped() -> Written {
    Written::Failed("the refresh writer stopped".into())
}

async fn run(context: Context, mut receiver: mpsc::Receiver<Queued>) {
    let pool_size = usize::try_from(context.pool.options().get_max_connections()).unwrap_or(usize::MAX);
    let most_in_flight = pool_size.saturating_sub(LEFT_TO_THE_POOL).max(IN_FLIGHT);
    let mut writing = JoinSet::new();
    let mut waiting = Waiting::default();
    let mut open = true;
    loop {
        while let Ok(queued) = receiver.try_recv() {
            waiting.push(queued);
        }
        let (len, full) = waiting.next_batch();
        if starts_now(len, full, writing.len(), most_in_flight) {
            writing.spawn(write_batch(context.clone(), waiting.take(len)));
            continue;
        }
        if !open && len == 0 {
            break;
        }
        tokio::select! {
            received = receiver.recv(), if open => match received {
                Some(queued) => waiting.push(queued),
                None => open = false,
            },
            Some(_) = writing.join_next() => {}
        }
    }
    while writing.join_next().await.is_some() {}
}

/// Results received and not yet in a transaction, oldest first, with their row counts.
#[derive(Default)]
struct Waiting(VecDeque<(usize, Queued)>);

impl Waiting {
    fn push(&mut self, queued: Queued) {
        self.0.push_back((queued.0.rows(), queued));
    }

    /// How many of the oldest results make the next batch, and whether it is full.
    fn next_batch(&self) -> (usize, bool) {
        batch_cut(self.0.iter().map(|(rows, _)| *rows))
    }

    fn take(&mut self, len: usize) -> Vec<Queued> {
        self.0.drain(..len).map(|(_, queued)| queued).collect()
    }
}

/// The next batch of results with these row counts (oldest first): at most [`BATCH`] of them and
/// [`BATCH_ROWS`] rows, but at least one; full when a limit, not the supply, ended it.
fn batch_cut(rows: impl IntoIterator<Item = usize>) -> (usize, bool) {
    let (mut len, mut total) = (0, 0);
    for rows in rows {
        if len == BATCH || (len > 0 && total + rows > BATCH_ROWS) {
            return (len, true);
        }
        (len, total) = (len + 1, total + rows);
    }
    (len, len == BATCH || total >= BATCH_ROWS)
}

/// Whether the next batch (`len` refreshes, `full` or not) starts while `writing` transactions
/// commit: at once when none (or fewer than [`IN_FLIGHT`]) does, beside them when it is wide,
/// up to `most_in_flight`; otherwise it waits and grows.
fn starts_now(len: usize, full: bool, writing: usize, most_in_flight: usize) -> bool {
    let wide = full || len >= WIDE;
    len > 0 && (writing < IN_FLIGHT || (wide && writing < most_in_flight))
}

async fn write_batch(context: Context, mut batch: Vec<Queued>) {
    fault::hold_at(FAULT_QUEUED).await;
    // The fence locks job rows in id order; a job queued twice (a lost attempt and its successor)
    // is fenced for its newest attempt.
    batch.sort_by_key(|(success, _)| (success.job_id, success.attempt));
    let (successes, replies): (Vec<Success>, Vec<oneshot::Sender<Written>>) = batch.into_iter().unzip();
    let verdicts = if repeats_a_connection(&successes) {
        // The batch's statements take a connection once; two refreshes of one (which the queue's
        // one running job per connection rules out) would be written one after the other.
        one_at_a_time(&context, &successes).await
    } else {
        match commit(&context, &successes).await {
            Ok(verdicts) => verdicts,
            Err(error) if successes.len() > 1 => {
                tracing::warn!(%error, count = successes.len(), "a batch of refreshes failed; writing them one at a time");
                one_at_a_time(&context, &successes).await
            }
            Err(error) => vec![Written::Failed(error.to_string())],
        }
    };
    fault::mark(FAULT_WRITTEN);
    for (reply, verdict) in replies.into_iter().zip(verdicts) {
        // A handler that stopped waiting (its lease lost, the pool stopped) needs no answer.
        let _ = reply.send(verdict);
    }
}

fn repeats_a_connection(successes: &[Success]) -> bool {
    let mut seen = HashSet::with_capacity(successes.len());
    !successes.iter().all(|success| seen.insert(success.target.id))
}

/// Each refresh in a transaction of its own, so one refresh's error fails only that refresh.
async fn one_at_a_time(context: &Context, successes: &[Success]) -> Vec<Written> {
    let mut verdicts = Vec::with_capacity(successes.len());
    for success in successes {
        let alone = commit(context, std::slice::from_ref(success)).await;
        verdicts.push(alone.map_or_else(|error| Written::Failed(error.to_string()), |mut one| one.remove(0)));
    }
    verdicts
}

/// One transaction for `successes` (sorted by job, a connection once), one verdict each, in order.
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
    let is_held = |success: &Success| held.contains(&(success.job_id, success.attempt));
    let stored: Vec<&Success> = successes.iter().filter(|success| is_held(success)).collect();
    let results = stored::store_successes(&mut tx, context, &stored).await?;
    if !stored.is_empty() {
        let ids: Vec<i64> = stored.iter().map(|success| success.job_id).collect();
        let attempts: Vec<i32> = stored.iter().map(|success| success.attempt).collect();
        crate::jobs::store::complete_many(&mut *tx, &ids, &attempts, &results).await?;
    }
    tx.commit().await?;
    // Stored and committed, jobs completed; the handlers have not heard yet.
    fault::pause_at(super::job::FAULT_STORED).await;
    let mut results = results.into_iter();
    let mut verdicts = Vec::with_capacity(successes.len());
    for success in successes {
        if !is_held(success) {
            verdicts.push(Written::Lost);
            continue;
        }
        // One result per stored refresh, in order.
        let result = results.next().unwrap_or_default();
        context.metrics.refresh_stored(success.target.institution_id, RefreshResult::Succeeded);
        verdicts.push(Written::Stored(result));
    }
    Ok(verdicts)
}
#[cfg(test)]
mod tests {
    use super::{BATCH, BATCH_ROWS, IN_FLIGHT, WIDE, batch_cut, starts_now};

    #[test]
    fn a_small_batch_waits_for_the_commit_under_way_and_grows() {
        assert!(starts_now(1, false, 0, 4), "an idle writer commits at once");
        assert!(!starts_now(3, false, IN_FLIGHT, 4));
        assert!(!starts_now(0, false, 0, 4), "nothing to write");
    }

    #[test]
    fn a_wide_or_full_batch_starts_beside_the_commits_up_to_the_pool_share() {
        assert!(starts_now(WIDE, false, IN_FLIGHT, 4));
        assert!(starts_now(5, true, IN_FLIGHT, 4), "cut by rows");
        assert!(!starts_now(BATCH, true, 4, 4), "every connection it may use is committing");
    }

    #[test]
    fn a_batch_takes_whatever_waits_below_both_limits_and_is_not_full() {
        assert_eq!(batch_cut([]), (0, false));
        assert_eq!(batch_cut([3, 40, 12]), (3, false));
    }

    #[test]
    fn a_batch_is_cut_by_rows_before_the_refresh_that_would_pass_the_limit() {
        // First refreshes of about 230 rows: four fit, the fifth starts the next batch.
        assert_eq!(batch_cut([232; 9]), (4, true));
        assert_eq!(batch_cut([BATCH_ROWS - 1, 1]), (2, true));
        assert_eq!(batch_cut([BATCH_ROWS - 1, 2]), (1, true));
    }

    #[test]
    fn a_refresh_with_more_rows_than_a_batch_holds_is_a_batch_of_its_own() {
        assert_eq!(batch_cut([BATCH_ROWS * 3, 5]), (1, true));
        assert_eq!(batch_cut([BATCH_ROWS * 3]), (1, true));
    }

    #[test]
    fn a_batch_is_cut_by_count_when_its_refreshes_bring_few_rows() {
        assert_eq!(batch_cut(vec![2; BATCH + 5]), (BATCH, true));
        assert_eq!(batch_cut(vec![2; BATCH]), (BATCH, true));
    }
}
