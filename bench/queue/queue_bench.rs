//! Queue ceiling benchmark (issue #8): how many no-op jobs per second feedwatch's `WorkerPool`
//! claims and completes on a private PostgreSQL with durable settings (fsync on).
//!
//! Two subcommands, so `bench/queue/run.sh` can point pgbench and graphile-worker at the same
//! cluster:
//! - `serve-db --dir DIR`: starts the cluster (`Durability::Durable`), migrates, prints one JSON
//!   line `{"url": …}` on stdout and keeps the cluster up until its standard input closes.
//! - `run --url URL --jobs N --concurrency C`: empties the `job` table, inserts N no-op jobs with
//!   one `insert … select from generate_series`, runs a `WorkerPool` whose handler succeeds at
//!   once, and prints one JSON line per round with jobs/s (timed from the pool's start until the
//!   last job is `succeeded` in the table).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use feedwatch::devdb::{Durability, LocalPostgres};
use feedwatch::jobs::backoff::Backoff;
use feedwatch::jobs::worker::{HandlerFuture, JobHandler, PoolConfig, PoolObserver, Registration, WorkerPool};
use feedwatch::jobs::{ClaimedJob, Outcome};
use serde_json::json;
use sqlx::PgPool;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

const KIND: &str = "bench_noop";
/// Never applied: a no-op job does not fail.
const BACKOFF: Backoff = Backoff { base: Duration::from_secs(15), cap: Duration::from_secs(15 * 60) };

#[derive(Debug, Parser)]
#[command(about = "feedwatch queue ceiling benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a durable private PostgreSQL, migrate, print its URL, wait for stdin to close.
    ServeDb {
        /// Data directory (created; removed by the caller afterwards).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run no-op jobs through the worker pool and print jobs/s.
    Run {
        #[arg(long, env = "DATABASE_URL")]
        url: String,
        #[arg(long, default_value_t = 100_000)]
        jobs: i64,
        /// PoolConfig::concurrency: jobs run at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// PoolConfig::prefetch: jobs claimed ahead of the free slots into the local buffer.
        #[arg(long, default_value_t = 0)]
        prefetch: usize,
        /// PoolConfig::prefetch_ceiling: above --prefetch, the buffer adapts up to this many
        /// (the service's default pool: --prefetch C/4 --prefetch-ceiling 1000).
        #[arg(long, default_value_t = 0)]
        prefetch_ceiling: usize,
        /// PoolConfig::claim_batch: most jobs one claim statement takes.
        #[arg(long, default_value_t = 500)]
        claim_batch: usize,
        /// PoolConfig::claims_in_flight.
        #[arg(long, default_value_t = 2)]
        claims_in_flight: usize,
        /// PoolConfig::completions_in_flight.
        #[arg(long, default_value_t = 2)]
        completions_in_flight: usize,
        #[arg(long, default_value_t = 10)]
        poll_ms: u64,
        /// Size of the PgPool the worker pool uses.
        #[arg(long, default_value_t = 10)]
        db_connections: u32,
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// Keep the pool running this long after the last job is done, counting the claims it
        /// still makes (0 skips).
        #[arg(long, default_value_t = 1000)]
        linger_ms: u64,
        /// Write `round,seconds,claimed` per claim statement to this CSV file.
        #[arg(long)]
        trace_claims: Option<PathBuf>,
        /// Give up a round after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout_s: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The service's own logging (its default filter unless RUST_LOG says otherwise): its spans and
    // lines cost what they cost in the service.
    feedwatch::telemetry::init_tracing(feedwatch::config::LogFormat::Pretty);
    match Cli::parse().command {
        Command::ServeDb { dir } => serve_db(dir).await,
        Command::Run {
            url,
            jobs,
            concurrency,
            prefetch,
            prefetch_ceiling,
            claim_batch,
            claims_in_flight,
            completions_in_flight,
            poll_ms,
            db_connections,
            rounds,
            linger_ms,
            trace_claims,
            timeout_s,
        } => {
            // The service's pool options (no ping before each acquire).
            let pool = feedwatch::database::pool_options(db_connections).connect(&url).await?;
            let mut trace = String::from("round,seconds,claimed\n");
            for round in 1..=rounds {
                let options = RoundOptions {
                    jobs,
                    concurrency,
                    prefetch,
                    prefetch_ceiling,
                    claim_batch,
                    claims_in_flight,
                    completions_in_flight,
                    poll: Duration::from_millis(poll_ms),
                    linger: Duration::from_millis(linger_ms),
                    timeout: Duration::from_secs(timeout_s),
                };
                let (mut report, claims) =
                    run_round(&pool, &options).await.with_context(|| format!("round {round}"))?;
                report["round"] = json!(round);
                println!("{report}");
                for (seconds, claimed) in claims {
                    trace.push_str(&format!("{round},{seconds:.6},{claimed}\n"));
                }
            }
            if let Some(path) = trace_claims {
                std::fs::write(&path, trace).with_context(|| path.display().to_string())?;
            }
            pool.close().await;
            Ok(())
        }
    }
}

async fn serve_db(dir: PathBuf) -> anyhow::Result<()> {
    let local = LocalPostgres::start(&dir, Durability::Durable).await.context("starting PostgreSQL")?;
    let pool = feedwatch::database::pool(local.url(), 4)?;
    feedwatch::database::migrate(&pool).await.context("migrating")?;
    let settings: Vec<(String, String)> = sqlx::query_as(
        "select name, setting from pg_settings where name in
           ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_connections', 'wal_level',
            'server_version')
         order by name",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    let settings: serde_json::Map<String, serde_json::Value> =
        settings.into_iter().map(|(name, value)| (name, json!(value))).collect();
    println!("{}", json!({ "url": local.url(), "port": local.port(), "settings": settings }));
    eprintln!("[queue_bench] PostgreSQL up on port {}; close stdin to stop it", local.port());
    // The cluster lives until whoever started us closes our standard input.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    local.stop().await;
    Ok(())
}

/// Succeeds at once.
struct Noop;

impl JobHandler for Noop {
    fn handle(&self, _job: ClaimedJob) -> HandlerFuture {
        Box::pin(async { Outcome::Succeeded(json!({})) })
    }
}

/// Counts what the pool does, to see the shape of its claims.
#[derive(Default)]
struct Counter {
    /// Jobs in the round: an empty claim before this many were claimed found nothing although
    /// jobs were waiting.
    jobs: u64,
    claims: AtomicU64,
    empty_claims: AtomicU64,
    empty_claims_while_available: AtomicU64,
    claimed: AtomicU64,
    finished: AtomicU64,
    /// (seconds since the round started, jobs claimed) per claim, for `--trace-claims`.
    trace: Mutex<Vec<(f64, usize)>>,
    started: Mutex<Option<Instant>>,
}

impl PoolObserver for Counter {
    fn claimed(&self, count: usize) {
        self.claims.fetch_add(1, Ordering::Relaxed);
        let before = self.claimed.fetch_add(count as u64, Ordering::Relaxed);
        if let Some(started) = *self.started.lock().unwrap_or_else(PoisonError::into_inner) {
            self.trace.lock().unwrap_or_else(PoisonError::into_inner).push((started.elapsed().as_secs_f64(), count));
        }
        if count == 0 {
            self.empty_claims.fetch_add(1, Ordering::Relaxed);
            if before < self.jobs {
                self.empty_claims_while_available.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn finished(&self, _kind: &str, _outcome: &Outcome, _seconds: f64) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct RoundOptions {
    jobs: i64,
    concurrency: usize,
    prefetch: usize,
    prefetch_ceiling: usize,
    claim_batch: usize,
    claims_in_flight: usize,
    completions_in_flight: usize,
    poll: Duration,
    linger: Duration,
    timeout: Duration,
}

async fn run_round(pool: &PgPool, options: &RoundOptions) -> anyhow::Result<(serde_json::Value, Vec<(f64, usize)>)> {
    let RoundOptions {
        jobs,
        concurrency,
        prefetch,
        prefetch_ceiling,
        claim_batch,
        claims_in_flight,
        completions_in_flight,
        poll,
        linger,
        timeout,
    } = *options;
    // A fresh table each round: nothing else lives in this benchmark database.
    sqlx::query("truncate job").execute(pool).await?;
    let fill = Instant::now();
    sqlx::query(
        "insert into job (kind, args, trigger) select $1, '{}'::jsonb, 'bench' from generate_series(1, $2::bigint)",
    )
    .bind(KIND)
    .bind(jobs)
    .execute(pool)
    .await?;
    sqlx::query("vacuum analyze job").execute(pool).await?;
    sqlx::query("checkpoint").execute(pool).await?;
    let fill_seconds = fill.elapsed().as_secs_f64();

    let counter = Arc::new(Counter { jobs: jobs as u64, ..Counter::default() });
    let mut config = PoolConfig::new(concurrency);
    config.prefetch = prefetch;
    config.prefetch_ceiling = prefetch_ceiling;
    config.claim_batch = claim_batch;
    config.claims_in_flight = claims_in_flight;
    config.completions_in_flight = completions_in_flight;
    config.poll_interval = poll;
    config.shutdown_grace = Duration::from_secs(5);
    config.worker_id = format!("queue-bench/{}", std::process::id());
    let registration = Registration { handler: Arc::new(Noop), timeout: Duration::from_secs(60), backoff: BACKOFF };
    let worker = Arc::new(WorkerPool::new(pool.clone(), config).register(KIND, registration).observe(counter.clone()));
    let shutdown = CancellationToken::new();

    let started = Instant::now();
    *counter.started.lock().unwrap_or_else(PoisonError::into_inner) = Some(started);
    let running = tokio::spawn(Arc::clone(&worker).run(shutdown.clone()));
    let deadline = started + timeout;
    // Handlers first (cheap to watch), then the table: a job counts once its row says succeeded.
    while counter.finished.load(Ordering::Relaxed) < jobs as u64 {
        if Instant::now() > deadline {
            shutdown.cancel();
            bail!("timed out: {} of {jobs} handlers finished", counter.finished.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let handlers_done = started.elapsed();
    loop {
        let pending: bool = sqlx::query_scalar(
            "select exists(select 1 from job where state = 'running')
                 or exists(select 1 from job where state = 'available')",
        )
        .fetch_one(pool)
        .await?;
        if !pending {
            break;
        }
        if Instant::now() > deadline {
            shutdown.cancel();
            bail!("timed out waiting for the completions to be written");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    // Nothing is left to do: whatever the pool still claims now is overhead.
    let claims_at_done = counter.claims.load(Ordering::Relaxed);
    let empty_at_done = counter.empty_claims.load(Ordering::Relaxed);
    tokio::time::sleep(linger).await;
    let claims_after_done = counter.claims.load(Ordering::Relaxed) - claims_at_done;
    shutdown.cancel();
    running.await?;

    let succeeded: i64 =
        sqlx::query_scalar("select count(*) from job where state = 'succeeded'").fetch_one(pool).await?;
    if succeeded != jobs {
        bail!("{succeeded} of {jobs} jobs succeeded");
    }
    let claims = claims_at_done;
    let claimed = counter.claimed.load(Ordering::Relaxed);
    let report = json!({
        "bench": "feedwatch_worker_pool",
        "jobs": jobs,
        "concurrency": concurrency,
        "prefetch": prefetch,
        "prefetch_ceiling": prefetch_ceiling,
        "claim_batch": claim_batch,
        "claims_in_flight": claims_in_flight,
        "completions_in_flight": completions_in_flight,
        "poll_ms": poll.as_millis() as u64,
        "fill_seconds": round3(fill_seconds),
        "seconds": round3(elapsed.as_secs_f64()),
        "handlers_done_seconds": round3(handlers_done.as_secs_f64()),
        "jobs_per_s": (jobs as f64 / elapsed.as_secs_f64()).round(),
        "claim_statements": claims,
        "empty_claims": empty_at_done,
        "empty_claims_while_available": counter.empty_claims_while_available.load(Ordering::Relaxed),
        "mean_claim_batch": if claims > 0 { round3(claimed as f64 / claims as f64) } else { 0.0 },
        "linger_ms": linger.as_millis() as u64,
        "claims_while_lingering": claims_after_done,
    });
    let trace = std::mem::take(&mut *counter.trace.lock().unwrap_or_else(PoisonError::into_inner));
    Ok((report, trace))
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
