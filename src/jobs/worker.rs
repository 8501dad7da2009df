//! The worker pool: claims jobs in batches, runs each in its own task under a lease kept alive
//! by a heartbeat, records outcomes fenced by the attempt, and hands unfinished jobs back on
//! shutdown without spending an attempt.
//!
//! No database connection or transaction is held while a job runs: the claim and each outcome
//! are short statements of their own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::{AVAILABLE_CHANNEL, ClaimedJob, Outcome, store};

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
    fn claimed(&self, _count: usize) {}
    fn finished(&self, _kind: &str, _outcome: &Outcome, _seconds: f64) {}
    fn busy(&self, _running: usize) {}
    fn rescued(&self, _count: u64) {}
}

#[derive(Debug)]
struct NoObserver;
impl PoolObserver for NoObserver {}

pub struct WorkerPool {
    pool: PgPool,
    config: PoolConfig,
    kinds: HashMap<String, Registration>,
    observer: Arc<dyn PoolObserver>,
    in_flight: Mutex<HashMap<i64, i32>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool").field("config", &self.config).field("kinds", &self.kinds.keys()).finish()
    }
}

/// A successful job waiting to be marked, so completions go out in batches.
type Completion = (i64, i32, serde_json::Value);

impl WorkerPool {
    pub fn new(pool: PgPool, config: PoolConfig) -> Self {
        Self {
            pool,
            config,
            kinds: HashMap::new(),
            observer: Arc::new(NoObserver),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    pub fn register(mut self, kind: &str, registration: Registration) -> Self {
        self.kinds.insert(kind.to_owned(), registration);
        self
    }

    pub fn observe(mut self, observer: Arc<dyn PoolObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs until `shutdown`: claims as many jobs as there are free slots whenever a job
    /// finishes, a notification arrives or the poll interval passes.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut listener = self.listen().await;
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let mut tasks = JoinSet::new();
        let (completions, receiver) = mpsc::channel::<Completion>(self.config.concurrency * 4 + 64);
        let completer = tokio::spawn(complete_in_batches(self.pool.clone(), receiver));
        while !shutdown.is_cancelled() {
            let free = slots.available_permits();
            let claimed = if free > 0 { self.claim_and_spawn(free, &slots, &mut tasks, &completions).await } else { 0 };
            self.observer.busy(self.config.concurrency - slots.available_permits());
            if claimed > 0 && claimed == free {
                continue;
            }
            self.wait_for_work(&shutdown, &mut listener, &mut tasks).await;
        }
        self.drain(tasks).await;
        drop(completions);
        let _ = completer.await;
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(AVAILABLE_CHANNEL).await.ok()?;
        Some(listener)
    }

    async fn wait_for_work(
        &self,
        shutdown: &CancellationToken,
        listener: &mut Option<PgListener>,
        tasks: &mut JoinSet<()>,
    ) {
        let notified = async {
            match listener.as_mut() {
                Some(listener) => {
                    if listener.try_recv().await.is_err() {
                        // The listener reconnects on its next use; the poll covers the gap.
                        tokio::time::sleep(self.config.poll_interval).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = notified => {}
            () = tokio::time::sleep(self.config.poll_interval) => {}
            Some(_) = tasks.join_next() => {}
        }
        // Reap every task that finished meanwhile: one claim for all the freed slots, not one each.
        while tasks.try_join_next().is_some() {}
    }

    async fn claim_and_spawn(
        self: &Arc<Self>,
        free: usize,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        completions: &mpsc::Sender<Completion>,
    ) -> usize {
        let claimed = match store::claim(&self.pool, free as i64, self.config.lease, &self.config.worker_id).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "claiming jobs failed; retrying after the poll interval");
                return 0;
            }
        };
        self.observer.claimed(claimed.len());
        let count = claimed.len();
        for job in claimed {
            let Ok(permit) = slots.clone().try_acquire_owned() else { break };
            let pool = Arc::clone(self);
            let completions = completions.clone();
            tasks.spawn(async move {
                let (job, outcome) = pool.execute(job).await;
                pool.record(&job, outcome, Some(&completions)).await;
                drop(permit);
            });
        }
        count
    }

    /// Runs one job under its lease; `None` when the lease was lost (another attempt owns it).
    async fn execute(&self, job: ClaimedJob) -> (ClaimedJob, Option<Outcome>) {
        self.lock_in_flight().insert(job.job_id, job.attempt);
        let Some(registration) = self.kinds.get(&job.kind).cloned() else {
            let error = format!("no handler for job kind `{}`", job.kind);
            return (job, Some(Outcome::Fail { error, result: None }));
        };
        let span = tracing::info_span!("job", job.id = job.job_id, job.kind = %job.kind, job.attempt = job.attempt);
        let started = std::time::Instant::now();
        let run = tokio::spawn(tracing::Instrument::instrument(registration.handler.handle(job.clone()), span));
        let outcome = tokio::select! {
            result = tokio::time::timeout(registration.timeout, run) => Some(match result {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(join)) if join.is_panic() => Outcome::Retry { error: "the job panicked".into(), after: None, result: None },
                Ok(Err(_)) => Outcome::Retry { error: "the job was cancelled".into(), after: None, result: None },
                Err(_) => Outcome::Retry { error: format!("timed out after {:?}", registration.timeout), after: None, result: None },
            }),
            () = self.keep_lease(&job) => None,
        };
        if let Some(outcome) = &outcome {
            self.observer.finished(&job.kind, outcome, started.elapsed().as_secs_f64());
        }
        (job, outcome)
    }

    /// Heartbeats until the lease is lost, then returns (which abandons the run).
    async fn keep_lease(&self, job: &ClaimedJob) {
        let every = self.config.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match store::heartbeat(&self.pool, job.job_id, job.attempt, self.config.lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(job.id = job.job_id, job.attempt = job.attempt, "lease lost; abandoning the run");
                    return;
                }
                Err(error) => tracing::warn!(%error, job.id = job.job_id, "heartbeat failed; will retry"),
            }
        }
    }

    /// Records an outcome, fenced by the attempt: a stale attempt changes nothing.
    async fn record(&self, job: &ClaimedJob, outcome: Option<Outcome>, completions: Option<&mpsc::Sender<Completion>>) {
        self.lock_in_flight().remove(&job.job_id);
        let Some(outcome) = outcome else { return };
        let backoff = self.kinds.get(&job.kind).map_or(Backoff::REFRESH, |registration| registration.backoff);
        let error_entry = |error: &str| serde_json::json!({ "attempt": job.attempt, "at": Utc::now(), "error": error });
        let recorded = match &outcome {
            Outcome::Succeeded(result) => match completions {
                Some(sender) => sender.send((job.job_id, job.attempt, result.clone())).await.is_ok(),
                None => store::complete_many(&self.pool, &[job.job_id], &[job.attempt], std::slice::from_ref(result))
                    .await
                    .map(|ids| !ids.is_empty())
                    .unwrap_or(false),
            },
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
        let unfinished: Vec<(i64, i32)> = self.lock_in_flight().drain().collect();
        for (job_id, attempt) in unfinished {
            match store::requeue_unspent(&self.pool, job_id, attempt, Utc::now()).await {
                Ok(true) => tracing::info!(job.id = job_id, "handed back at shutdown"),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, job.id = job_id, "could not hand back; the rescuer will"),
            }
        }
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<i64, i32>> {
        self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs due jobs until none is left, then returns how many ran: for tests and backfills.
    pub async fn run_until_idle(self: &Arc<Self>) -> usize {
        let mut total = 0;
        loop {
            let claimed = match store::claim(
                &self.pool,
                self.config.concurrency as i64,
                self.config.lease,
                &self.config.worker_id,
            )
            .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "claiming jobs failed");
                    return total;
                }
            };
            if claimed.is_empty() {
                return total;
            }
            total += claimed.len();
            let runs = claimed.into_iter().map(|job| {
                let pool = Arc::clone(self);
                async move {
                    let (job, outcome) = pool.execute(job).await;
                    pool.record(&job, outcome, None).await;
                }
            });
            futures_join_all(runs).await;
        }
    }
}

async fn futures_join_all<F: Future<Output = ()> + Send + 'static>(futures: impl Iterator<Item = F>) {
    let mut set = JoinSet::new();
    for future in futures {
        set.spawn(future);
    }
    while set.join_next().await.is_some() {}
}

/// Marks successes in batches: under load many finish between two flushes, and one statement
/// for all of them is what lets the queue keep up with fast jobs.
async fn complete_in_batches(pool: PgPool, mut receiver: mpsc::Receiver<Completion>) {
    const BATCH: usize = 500;
    let mut buffer = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut buffer, BATCH).await > 0 {
        let ids: Vec<i64> = buffer.iter().map(|(id, _, _)| *id).collect();
        let attempts: Vec<i32> = buffer.iter().map(|(_, attempt, _)| *attempt).collect();
        let results: Vec<serde_json::Value> = buffer.drain(..).map(|(_, _, result)| result).collect();
        if let Err(error) = store::complete_many(&pool, &ids, &attempts, &results).await {
            tracing::warn!(%error, count = ids.len(), "recording completions failed; the rescuer will retry these jobs");
        }
    }
}
