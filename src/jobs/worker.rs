//! The worker pool: claims in batches (by default one statement in flight, for the free slots
//! only; optionally several, running ahead of the slots into a small local buffer); each job in
//! its own task under a lease that one batched heartbeat keeps alive for everything the pool
//! holds; outcomes fenced by the attempt, successes completed in batches (group commit); on
//! shutdown, buffered and unfinished jobs are handed back without spending an attempt.
//!
//! No database connection or transaction is held while a job runs: the claim, the heartbeat and
//! each outcome are short statements of their own.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinError, JoinSet};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, Backoffs};
use super::pace::Pace;
use super::slot::Slots;
use super::store::AvailableJobs;
use super::{ClaimedJob, Outcome, store};
use crate::telemetry::trace::TraceContext;

mod completions;
mod heartbeat;
mod shutdown;
use completions::complete_in_batches;
use heartbeat::{Announce, Heartbeat};

pub type HandlerFuture = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

/// What runs jobs of one kind. Must be idempotent: a job runs at least once.
pub trait JobHandler: Send + Sync + 'static {
    fn handle(&self, job: ClaimedJob) -> HandlerFuture;
}

/// A kind of job the pool runs, with its limits.
#[derive(Clone)]
pub struct Registration {
    pub handler: Arc<dyn JobHandler>,
    /// A run longer than this is abandoned and retried.
    pub timeout: Duration,
    pub backoff: Backoff,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("timeout", &self.timeout).field("backoff", &self.backoff).finish()
    }
}

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// Jobs claimed beyond the free slots and held here until a slot frees, so a freed slot
    /// never waits for a claim round trip. Their leases run while they wait and no other replica
    /// can take them, so keep it a small share of what the pool finishes in a lease; 0 claims
    /// only for free slots.
    pub prefetch: usize,
    /// Above `prefetch`, the buffer adapts between the two: it holds what the slots finish in
    /// two claim round trips, from the observed handler and claim times (`jobs::pace`). At or
    /// below it, `prefetch` is fixed.
    pub prefetch_ceiling: usize,
    /// Most jobs one claim statement takes.
    pub claim_batch: usize,
    /// Claim statements in flight at once: with two, one executes while the other waits for its
    /// commit to reach the disk. Each takes a database connection of the pool's own.
    pub claims_in_flight: usize,
    /// Completion statements in flight at once, for the same reason.
    pub completions_in_flight: usize,
    pub lease: Duration,
    /// How often to look for work when no notification arrives.
    pub poll_interval: Duration,
    /// How long in-flight jobs may finish after shutdown is requested.
    pub shutdown_grace: Duration,
    /// Identifies this process in `locked_by` (host/pid).
    pub worker_id: String,
}

impl PoolConfig {
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency: concurrency.max(1),
            prefetch: 0,
            prefetch_ceiling: 0,
            claim_batch: 500,
            claims_in_flight: 1,
            completions_in_flight: 1,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(25),
            worker_id: format!("{}/{}", hostname(), std::process::id()),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|name| name.trim().to_owned()).unwrap_or_else(|_| "localhost".into())
}

/// Hooks for observing the pool (metrics); all optional.
pub trait PoolObserver: Send + Sync + 'static {
    /// The pool recorded itself as a live worker (at start, then every third of its lease).
    fn announced(&self) {}
    fn claimed(&self, _count: usize) {}
    fn finished(&self, _kind: &str, _outcome: &Outcome, _seconds: f64) {}
    /// Slots held by running jobs (`jobs::slot`: a job waiting on shared work holds none).
    fn busy(&self, _occupied: usize) {}
    fn rescued(&self, _count: u64) {}
}

#[derive(Debug)]
struct NoObserver;
impl PoolObserver for NoObserver {}

/// A job this pool holds (buffered or running): the attempt that fences it, and a token the
/// heartbeat cancels when the lease turns out to be lost.
#[derive(Debug)]
struct Held {
    attempt: i32,
    lost: CancellationToken,
}

pub struct WorkerPool {
    pool: PgPool,
    config: PoolConfig,
    kinds: HashMap<String, Registration>,
    /// The registrations' policies, kept beside them for the retry path and the rescuer.
    backoffs: Backoffs,
    observer: Arc<dyn PoolObserver>,
    held: Mutex<HashMap<i64, Held>>,
    /// Jobs running now, for the pool's reports of itself.
    running: AtomicUsize,
    /// Observed handler and claim times, for an adaptive prefetch.
    pace: Arc<Pace>,
    /// Places given back by running jobs that wait on shared work (`jobs::slot`).
    slots: Arc<Slots>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool").field("config", &self.config).field("kinds", &self.kinds.keys()).finish()
    }
}

/// The shortest poll or heartbeat period (a zero period would spin).
const MIN_TICK: Duration = Duration::from_millis(10);

/// A successful job waiting to be marked, so completions go out in batches.
type Completion = (i64, i32, serde_json::Value);

type Claimed = Result<Vec<ClaimedJob>, sqlx::Error>;

/// The run loop's own state.
struct Local {
    /// Claimed, not started yet, in claim order.
    buffer: VecDeque<ClaimedJob>,
    running: JoinSet<()>,
    /// Claim statements in flight, each in its task so the loop can start jobs meanwhile.
    claiming: JoinSet<Claimed>,
    /// How many jobs each claim in flight asked for.
    asked: HashMap<tokio::task::Id, usize>,
    /// The last claim found fewer due jobs than it asked for: claim again only on a sign of new
    /// work (a notification, the poll, a finished job whose key may have unblocked another).
    drained: bool,
    /// The last claim got all it asked for. Until one does, a single claim probes the queue, so
    /// an idle pool makes one empty claim per wake, not `claims_in_flight`.
    flowing: bool,
    poll: Interval,
}

/// Stops the handler's task when the task running it is dropped or aborted, so a job abandoned
/// (timeout, lost lease, shutdown) stops running instead of going on detached.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl WorkerPool {
    pub fn new(pool: PgPool, config: PoolConfig) -> Self {
        Self {
            pool,
            config,
            kinds: HashMap::new(),
            backoffs: Backoffs::default(),
            observer: Arc::new(NoObserver),
            held: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            pace: Arc::new(Pace::default()),
            slots: Arc::new(Slots::default()),
        }
    }

    pub fn register(mut self, kind: &str, registration: Registration) -> Self {
        self.backoffs = self.backoffs.with(kind, registration.backoff);
        self.kinds.insert(kind.to_owned(), registration);
        self
    }

    /// Each registered kind's backoff, for the rescuer of jobs whose worker died.
    /// The database pool the workers claim and run jobs on.
    pub fn database(&self) -> &PgPool {
        &self.pool
    }

    pub fn backoffs(&self) -> Backoffs {
        self.backoffs.clone()
    }

    pub fn observe(mut self, observer: Arc<dyn PoolObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs until `shutdown`: keeps the slots (and the buffer, with `prefetch`) filled, claiming
    /// whenever there is room, a notification arrives, a job finishes or the poll interval passes.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut listener = AvailableJobs::listen(&self.pool).await.ok();
        let (completions, receiver) = mpsc::channel::<Completion>(self.config.concurrency * 4 + 64);
        let completer =
            tokio::spawn(complete_in_batches(self.pool.clone(), receiver, self.config.completions_in_flight));
        let heartbeat = Heartbeat::start(&self, Announce::Yes);
        let mut poll = tokio::time::interval(self.config.poll_interval.max(MIN_TICK));
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut local = Local {
            buffer: VecDeque::new(),
            running: JoinSet::new(),
            claiming: JoinSet::new(),
            asked: HashMap::new(),
            drained: false,
            flowing: false,
            poll,
        };
        while !shutdown.is_cancelled() {
            self.start_buffered(&mut local, &completions);
            self.claim_if_room(&mut local);
            self.running.store(local.running.len(), Ordering::Relaxed);
            self.observer.busy(self.slots.occupied(local.running.len()));
            self.wait_for_work(&shutdown, &mut listener, &mut local).await;
        }
        self.stop(local).await;
        heartbeat.stop().await;
        drop(completions);
        let _ = completer.await;
    }

    async fn wait_for_work(
        &self,
        shutdown: &CancellationToken,
        listener: &mut Option<AvailableJobs>,
        local: &mut Local,
    ) {
        let notified = async {
            match listener.as_mut() {
                Some(listener) => {
                    if listener.notified().await.is_err() {
                        // The listener reconnects on its next use; the poll covers the gap.
                        tokio::time::sleep(self.config.poll_interval).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            Some(claimed) = local.claiming.join_next_with_id() => self.take_claim(local, claimed),
            Some(_) = local.running.join_next() => local.drained = false,
            () = self.slots.freed() => local.drained = false,
            () = notified => local.drained = false,
            _ = local.poll.tick() => local.drained = false,
        }
    }

    /// Starts buffered jobs while slots are free (a job waiting on shared work gave its slot
    /// back), after reaping every task that finished: one claim for all the freed slots, not one
    /// each.
    fn start_buffered(self: &Arc<Self>, local: &mut Local, completions: &mpsc::Sender<Completion>) {
        while local.running.try_join_next().is_some() {}
        while self.slots.occupied(local.running.len()) < self.config.concurrency {
            let Some(mut job) = local.buffer.pop_front() else { break };
            let (slot, taken) = self.slots.take();
            job.slot = slot;
            let pool = Arc::clone(self);
            let completions = completions.clone();
            local.running.spawn(async move {
                let _taken = taken;
                pool.run_one(job, Some(&completions)).await;
            });
        }
    }

    /// Starts claims for the room left, unless enough are in flight or the queue looked empty.
    fn claim_if_room(&self, local: &mut Local) {
        let most = if local.flowing { self.config.claims_in_flight.max(1) } else { 1 };
        while !local.drained && local.claiming.len() < most {
            let occupied = self.slots.occupied(local.running.len());
            let held = occupied + local.buffer.len() + local.asked.values().sum::<usize>();
            let prefetch =
                self.pace.prefetch(self.config.concurrency, self.config.prefetch, self.config.prefetch_ceiling);
            let room = (self.config.concurrency + prefetch).saturating_sub(held).min(self.config.claim_batch);
            if room == 0 {
                return;
            }
            let (pool, lease, worker) = (self.pool.clone(), self.config.lease, self.config.worker_id.clone());
            let pace = Arc::clone(&self.pace);
            let claim = local.claiming.spawn(async move {
                let started = Instant::now();
                let claimed = store::claim(&pool, room as i64, lease, &worker).await;
                pace.claimed(started.elapsed());
                claimed
            });
            local.asked.insert(claim.id(), room);
        }
    }

    fn take_claim(&self, local: &mut Local, claimed: Result<(tokio::task::Id, Claimed), JoinError>) {
        let (id, claimed) = match claimed {
            Ok((id, claimed)) => (id, claimed.map_err(|error| error.to_string())),
            Err(failed) => (failed.id(), Err(failed.to_string())),
        };
        let asked = local.asked.remove(&id).unwrap_or_default();
        let jobs = match claimed {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(%error, "claiming jobs failed; retrying after the poll interval");
                (local.drained, local.flowing) = (true, false);
                return;
            }
        };
        self.observer.claimed(jobs.len());
        local.drained = jobs.len() < asked;
        local.flowing = !local.drained;
        self.hold(&jobs);
        local.buffer.extend(jobs);
    }

    /// Records that the pool holds these jobs, so the heartbeat keeps their leases.
    fn hold(&self, jobs: &[ClaimedJob]) {
        let mut held = self.lock_held();
        for job in jobs {
            held.insert(job.job_id, Held { attempt: job.attempt, lost: CancellationToken::new() });
        }
    }

    /// Runs one held job and records its outcome.
    async fn run_one(&self, job: ClaimedJob, completions: Option<&mpsc::Sender<Completion>>) {
        super::fault::pause_at(super::fault::CLAIMED).await;
        let lost = self.lock_held().get(&job.job_id).map(|held| held.lost.clone()).unwrap_or_default();
        let outcome = if lost.is_cancelled() { None } else { self.execute(&job, &lost).await };
        self.record(&job, outcome, completions).await;
    }

    /// Runs one job under its lease; `None` when the lease was lost (another attempt owns it).
    async fn execute(&self, job: &ClaimedJob, lost: &CancellationToken) -> Option<Outcome> {
        let Some(registration) = self.kinds.get(&job.kind).cloned() else {
            let error = format!("no handler for job kind `{}`", job.kind);
            return Some(Outcome::Fail { error, result: None });
        };
        // A job nobody traced (a scheduled refresh) starts its own trace, so its outbound calls
        // and the jobs it enqueues still share one id.
        let trace = job.trace.unwrap_or_else(TraceContext::new_root);
        let span = tracing::info_span!("job", job.id = job.job_id, job.kind = %job.kind, job.attempt = job.attempt,
            trace_id = %trace.trace_id());
        let started = Instant::now();
        let work = trace.scope(registration.handler.handle(job.clone()));
        let run = tokio::spawn(tracing::Instrument::instrument(work, span));
        let _stop_when_abandoned = AbortOnDrop(run.abort_handle());
        let outcome = tokio::select! {
            result = tokio::time::timeout(registration.timeout, run) => Some(match result {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(join)) if join.is_panic() => Outcome::Retry { error: "the job panicked".into(), after: None, result: None },
                Ok(Err(_)) => Outcome::Retry { error: "the job was cancelled".into(), after: None, result: None },
                Err(_) => Outcome::Retry { error: format!("timed out after {:?}", registration.timeout), after: None, result: None },
            }),
            () = lost.cancelled() => {
                tracing::warn!(job.id = job.job_id, job.attempt = job.attempt, "lease lost; abandoning the run");
                None
            }
        };
        if let Some(outcome) = &outcome {
            // What a slot is held for: a job that gave its place back freed it sooner.
            self.pace.handled(job.slot.held_since(started));
            self.observer.finished(&job.kind, outcome, started.elapsed().as_secs_f64());
        }
        outcome
    }

    /// Records an outcome, fenced by the attempt: a stale attempt changes nothing.
    async fn record(&self, job: &ClaimedJob, outcome: Option<Outcome>, completions: Option<&mpsc::Sender<Completion>>) {
        self.lock_held().remove(&job.job_id);
        let Some(outcome) = outcome else { return };
        let backoff = self.backoffs.of(&job.kind);
        let error_entry = |error: &str| serde_json::json!({ "attempt": job.attempt, "at": Utc::now(), "error": error });
        let recorded = match &outcome {
            Outcome::Succeeded(result) => match completions {
                Some(sender) => sender.send((job.job_id, job.attempt, result.clone())).await.is_ok(),
                None => store::complete_many(&self.pool, &[job.job_id], &[job.attempt], std::slice::from_ref(result))
                    .await
                    .map(|ids| !ids.is_empty())
                    .unwrap_or(false),
            },
            Outcome::Completed(_) => true,
            Outcome::Retry { error, after, result } => {
                let delay = after.unwrap_or_else(|| backoff.delay(job.attempt, rand::random()));
                let run_at = Utc::now() + chrono::TimeDelta::from_std(delay).unwrap_or_default();
                store::retry(&self.pool, job.job_id, job.attempt, run_at, &error_entry(error), result.as_ref())
                    .await
                    .unwrap_or(false)
            }
            Outcome::Fail { error, result } => {
                store::fail(&self.pool, job.job_id, job.attempt, &error_entry(error), result.as_ref())
                    .await
                    .unwrap_or(false)
            }
            Outcome::Snooze { after, reason } => {
                tracing::info!(job.id = job.job_id, ?after, reason, "job snoozed");
                let run_at = Utc::now() + chrono::TimeDelta::from_std(*after).unwrap_or_default();
                store::requeue_unspent(&self.pool, job.job_id, job.attempt, run_at).await.unwrap_or(false)
            }
        };
        if !recorded {
            tracing::warn!(
                job.id = job.job_id,
                job.attempt = job.attempt,
                "outcome not recorded: the attempt is stale or the database failed"
            );
        }
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Held>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs due jobs until none is left, then returns how many ran: for tests and backfills.
    pub async fn run_until_idle(self: &Arc<Self>) -> usize {
        let heartbeat = Heartbeat::start(self, Announce::No);
        let mut total = 0;
        loop {
            let limit = self.config.concurrency as i64;
            let claimed = match store::claim(&self.pool, limit, self.config.lease, &self.config.worker_id).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "claiming jobs failed");
                    break;
                }
            };
            if claimed.is_empty() {
                break;
            }
            total += claimed.len();
            self.hold(&claimed);
            let mut runs = JoinSet::new();
            for job in claimed {
                let pool = Arc::clone(self);
                runs.spawn(async move { pool.run_one(job, None).await });
            }
            while runs.join_next().await.is_some() {}
        }
        heartbeat.stop().await;
        total
    }
}

/// How long shutdown waits for each of its statements (claims in flight, hand-backs, the last
/// completions, the worker row): with the database gone, a stop must not wait out the pool's
/// acquire timeouts one after another; whatever is left undone, leases and the rescuer undo.
const SHUTDOWN_STATEMENT_LIMIT: Duration = Duration::from_secs(1);
