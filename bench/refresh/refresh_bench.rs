//! End-to-end refresh benchmark (issue #8): refreshes per second of feedwatch's refresh worker
//! pool (`feedwatch::app::worker_pool`, the one `serve` and `worker` run) against the sandbox
//! bank answering after a fixed latency, at concurrency C, and the resident memory it takes.
//!
//! `run` starts a private PostgreSQL (durable settings, its own process), migrates, seeds the
//! sandbox institutions and K = C × `--per-slot` connections to the `healthy` sandbox bank
//! (user_good / pass_good, credentials sealed like the service does), enqueues one refresh per
//! connection with `refresh::enqueue`, and times three rounds of the worker pool:
//!
//! - **first**: every connection's first refresh (90 days of history, the account list first);
//! - **repeat**: the sandbox's clock moves on one day, one refresh per connection is enqueued
//!   again (`Trigger::Scheduled`), and the pool refreshes every connection a second time, as the
//!   daily scheduled refresh of an already-synced connection does (a 14-day window, a few new
//!   transactions, accounts already known);
//! - **again**: the same day once more (an hourly schedule, a retry, "refresh now"): the bank
//!   reports what is stored already.
//!
//! Each round also reports the updates of every table it updated, and how many were HOT (issue
//! #17).
//!
//! Each round reports refreshes/s, bank exchanges per refresh, and the CPU seconds each process
//! spent (this process, the bank, PostgreSQL, and the rest of the machine) from `/proc`. By
//! default the sandbox bank runs in a child process (this binary's `bank` subcommand, the same
//! router `feedwatch sandbox-bank` serves), so this process's RSS is the refreshing side only
//! (plus the small benchmark driver); `--bank in-process` serves it here. Prints one JSON line.

mod bank;
mod parse;
mod usage;

use bank::{Bank, serve_bank, start_bank};
use usage::{CpuSample, cpu_seconds, own_memory, stat_fields};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use chrono::{TimeDelta, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use feedwatch::app::{WorkerSettings, worker_pool_with};
use feedwatch::catalog::{CatalogHandle, Purpose};
use feedwatch::connection::ChangedBy;
use feedwatch::connection::lifecycle;
use feedwatch::connection::store::NewConnection;
use feedwatch::connection::{Credentials, Sealer};
use feedwatch::devdb::{Durability, LocalPostgres};
use feedwatch::jobs::Outcome;
use feedwatch::jobs::worker::{PoolObserver, WorkerPool};
use feedwatch::refresh::{self, Trigger};
use feedwatch::telemetry::Metrics;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How far the sandbox's clock moves between the first and the repeat round.
const DAY: TimeDelta = TimeDelta::days(1);

#[derive(Debug, Parser)]
#[command(about = "feedwatch end-to-end refresh benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BankPlace {
    /// A child process (this binary's `bank` subcommand).
    Child,
    /// Served inside this process (its memory then counts in this process's RSS).
    InProcess,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the sandbox bank, its clock a day behind, until stdin closes; prints `{"url": …}`
    /// first. Each stdin line `advance` moves the clock one day on, `stats` asks for the count
    /// of exchanges; each is answered with one JSON line.
    Bank {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
    },
    /// Diagnostic: time `n` sequential provider fetches (the HTTP exchanges and OFX parsing of one
    /// refresh, no database) against a sandbox bank child process with the given latency: first
    /// fetches (90 days, accounts unknown) and repeat fetches (14 days, accounts known).
    Probe {
        #[arg(long, default_value_t = 50)]
        n: u32,
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// Diagnostic: time `n` reads by `ofx::parse` of the sandbox bank's reply to a repeat and a
    /// first refresh's statement request (built in this process: no HTTP, no database), against
    /// a floor on the same bytes (a UTF-8 check and a count of tags).
    Parse {
        #[arg(long, default_value_t = 20_000)]
        n: u32,
    },
    /// Seed, refresh every connection twice (first, then repeat), report refreshes/s, CPU and memory.
    Run {
        /// Worker pool concurrency C.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Connections per slot: K = C × this.
        #[arg(long, default_value_t = 4)]
        per_slot: usize,
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        /// Database connections of the worker pool (the service's default is 5).
        #[arg(long, default_value_t = 5)]
        db_connections: u32,
        /// Jobs claimed ahead of the free slots (`FEEDWATCH_WORKER_PREFETCH`) [default: C / 4,
        /// as the service].
        #[arg(long)]
        prefetch: Option<usize>,
        /// Claim and completion statements in flight (`FEEDWATCH_WORKER_STATEMENTS_IN_FLIGHT`, 1).
        #[arg(long, default_value_t = 1)]
        statements_in_flight: usize,
        #[arg(long, value_enum, default_value_t = BankPlace::Child)]
        bank: BankPlace,
        /// Use this sandbox bank instead (e.g. `feedwatch sandbox-bank --latency 50ms`); its clock
        /// cannot be moved, so the repeat round sees no new day.
        #[arg(long)]
        sandbox_url: Option<String>,
        /// Parent of the PostgreSQL data directory (a fresh subdirectory is made and removed).
        #[arg(long, default_value = "/var/tmp")]
        work_dir: PathBuf,
        /// Diagnostic: an empty database on this machine to use instead of a private cluster (e.g.
        /// one with pg_stat_statements loaded); it is migrated and filled, never emptied.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 180)]
        timeout_s: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The service's own logging (its default filter unless RUST_LOG says otherwise): its spans and
    // lines cost what they cost in the service.
    feedwatch::telemetry::init_tracing(feedwatch::config::LogFormat::Pretty);
    match Cli::parse().command {
        Command::Bank { listen, latency_ms } => serve_bank(listen, latency_ms).await,
        Command::Probe { n, latency_ms } => probe(n, Duration::from_millis(latency_ms)).await,
        Command::Parse { n } => parse::run(n),
        Command::Run {
            concurrency,
            per_slot,
            latency_ms,
            db_connections,
            prefetch,
            statements_in_flight,
            bank,
            sandbox_url,
            work_dir,
            database_url,
            timeout_s,
        } => {
            let options = RunOptions {
                concurrency,
                connections: concurrency * per_slot,
                latency: Duration::from_millis(latency_ms),
                db_connections,
                prefetch: prefetch.unwrap_or(concurrency / 4),
                // Unset, the service's default: C / 4 at least, adapting up to the ceiling.
                prefetch_ceiling: if prefetch.is_some() { 0 } else { feedwatch::jobs::pace::PREFETCH_CEILING },
                statements_in_flight,
                timeout: Duration::from_secs(timeout_s),
            };
            let dir = work_dir.join(format!("feedwatch-refresh-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let result = run(options, bank, sandbox_url, database_url, &dir).await;
            let _ = std::fs::remove_dir_all(&dir);
            let report = result?;
            println!("{report}");
            Ok(())
        }
    }
}

#[derive(Debug, Clone)]
struct RunOptions {
    concurrency: usize,
    connections: usize,
    latency: Duration,
    db_connections: u32,
    prefetch: usize,
    prefetch_ceiling: usize,
    statements_in_flight: usize,
    timeout: Duration,
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// Watches refreshes finish: counts by outcome, and when each one finished, per round.
#[derive(Default)]
struct Progress {
    succeeded: AtomicU64,
    other: AtomicU64,
    finished_at: Mutex<Vec<Duration>>,
    /// How long each refresh's handler ran (bank and database), as the pool measured it.
    handler_seconds: Mutex<Vec<f64>>,
    started: Mutex<Option<Instant>>,
}

impl Progress {
    /// Zeroes the counts and starts the round's clock.
    fn start_round(&self) -> Instant {
        self.succeeded.store(0, Ordering::Relaxed);
        self.other.store(0, Ordering::Relaxed);
        self.finished_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        self.handler_seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        let now = Instant::now();
        *self.started.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
        now
    }

    fn done(&self) -> u64 {
        self.succeeded.load(Ordering::Relaxed) + self.other.load(Ordering::Relaxed)
    }
}

impl PoolObserver for Progress {
    fn finished(&self, _kind: &str, outcome: &Outcome, seconds: f64) {
        self.handler_seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(seconds);
        match outcome {
            // A success the writer stored completed its job in the same commit (`Completed`).
            Outcome::Succeeded(result) | Outcome::Completed(result) if result.get("skipped").is_none() => {
                &self.succeeded
            }
            _ => &self.other,
        }
        .fetch_add(1, Ordering::Relaxed);
        let started = *self.started.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(started) = started {
            self.finished_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(started.elapsed());
        }
    }
}

async fn run(
    options: RunOptions,
    place: BankPlace,
    sandbox_url: Option<String>,
    database_url: Option<String>,
    dir: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let local = match database_url {
        Some(_) => None,
        None => Some(
            LocalPostgres::start(&dir.join("postgres"), Durability::Durable).await.context("starting PostgreSQL")?,
        ),
    };
    let url = database_url.as_deref().or(local.as_ref().map(LocalPostgres::url)).unwrap_or_default();
    let pool = feedwatch::database::pool(url, 10)?;
    feedwatch::database::migrate(&pool).await.context("migrating")?;
    let label = match (&sandbox_url, place) {
        (Some(_), _) => "external (--sandbox-url)",
        (None, BankPlace::Child) => "separate process",
        (None, BankPlace::InProcess) => "in-process",
    };
    let (bank_url, mut bank) = match sandbox_url {
        Some(url) => (url, Bank::External),
        None => start_bank(place, options.latency).await?,
    };
    let result = measure(&pool, &options, &bank_url, &mut bank).await;
    bank.stop().await;
    pool.close().await;
    if let Some(local) = local {
        local.stop().await;
    }
    let mut report = result?;
    report["bank"] = json!(label);
    Ok(report)
}

/// The worker pool under test, and what watches it.
struct Pool {
    workers: Arc<WorkerPool>,
    progress: Arc<Progress>,
    /// The pool's metrics, where each refresh times its stages (read, bank, store).
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<()>,
}

async fn measure(
    pool: &PgPool,
    options: &RunOptions,
    bank_url: &str,
    bank: &mut Bank,
) -> anyhow::Result<serde_json::Value> {
    let sealer = Arc::new(Sealer::from_config(&Sealer::generate_config("bench1"))?);
    let index = feedwatch::catalog::shipped_index().map_err(|errors| anyhow!("{errors}"))?;
    let catalog = CatalogHandle::new(index, Purpose::Lookup);
    let seeding = Instant::now();
    let ids = seed(pool, &sealer, options.connections).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let backend: i32 = sqlx::query_scalar("select pg_backend_pid()").fetch_one(pool).await?;
    let postmaster = stat_fields(&backend.to_string()).get(1).copied().unwrap_or(0) as u32;
    let (_, rss_before_kb) = own_memory();

    let settings = WorkerSettings {
        concurrency: options.concurrency,
        db_connections: options.db_connections,
        lease: Duration::from_secs(60),
        refresh_timeout: Duration::from_secs(300),
        sandbox_url: Some(bank_url.to_owned()),
        incidents: feedwatch::incident::Rules::default(),
        stale_after: Duration::from_secs(48 * 3600),
        prefetch: options.prefetch,
        prefetch_ceiling: options.prefetch_ceiling,
        statements_in_flight: options.statements_in_flight,
        // The benchmark measures the pool's throughput, not the per-bank bulkhead: every slot
        // may refresh the same sandbox bank.
        institution_concurrency: options.concurrency,
        bank_timeout: Duration::from_secs(30),
        stalls: feedwatch::feed::stall::Rules::default(),
    };
    // Before the pool starts: the first round's refreshes are enqueued already.
    let updates_at_seed = TableUpdates::read(pool).await?;
    let progress = Arc::new(Progress::default());
    let metrics = Metrics::new();
    let webhooks = feedwatch::webhook::Settings::default();
    let workers = worker_pool_with(pool, &sealer, &catalog, &settings, &webhooks, Duration::from_secs(5), &metrics)?;
    let workers = Arc::new(workers.observe(progress.clone()));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&workers).run(shutdown.clone()));
    let under_test = Pool { workers, progress, metrics, shutdown, running };
    let rounds = both_rounds(pool, options, bank, &under_test, postmaster, &ids, updates_at_seed).await;
    under_test.shutdown.cancel();
    under_test.running.await?;
    drop(under_test.workers);
    let (first, repeat, again) = rounds?;
    let (hwm_kb, rss_end_kb) = own_memory();
    let peak_rss_kb =
        [&first, &repeat, &again].iter().map(|r| r["peak_rss_kb"].as_u64().unwrap_or(0)).fold(hwm_kb, u64::max);
    let bank_peak_kb =
        [&first, &repeat, &again].iter().map(|r| r["bank_peak_rss_kb"].as_u64().unwrap_or(0)).fold(0, u64::max);
    let transactions: i64 = sqlx::query_scalar("select count(*) from feed_transaction").fetch_one(pool).await?;
    let healthy: i64 =
        sqlx::query_scalar("select count(*) from connection where last_success_at is not null").fetch_one(pool).await?;
    let mb = |kb: u64| round(kb as f64 / 1024.0, 1);
    Ok(json!({
        "bench": "refresh_end_to_end",
        "concurrency": options.concurrency,
        "connections": options.connections,
        "latency_ms": options.latency.as_millis() as u64,
        "db_connections": options.db_connections,
        "prefetch": options.prefetch,
        "prefetch_ceiling": options.prefetch_ceiling,
        "statements_in_flight": options.statements_in_flight,
        "seed_seconds": round(seed_seconds, 3),
        "target_per_s": round(0.7 * options.concurrency as f64 / options.latency.as_secs_f64(), 0),
        "first": first,
        "repeat": repeat,
        "again": again,
        "connections_with_success": healthy,
        "transactions_stored": transactions,
        "rss_before_pool_mb": mb(rss_before_kb),
        "peak_rss_mb": mb(peak_rss_kb),
        "rss_end_mb": mb(rss_end_kb),
        "bank_peak_rss_mb": if bank_peak_kb > 0 { json!(mb(bank_peak_kb)) } else { json!(null) },
        "rss_target_mb": 150,
    }))
}

/// The first round, then the bank's clock a day on, then the repeat round, then the again round.
async fn both_rounds(
    pool: &PgPool,
    options: &RunOptions,
    bank: &mut Bank,
    under_test: &Pool,
    postmaster: u32,
    ids: &[Uuid],
    updates_at_seed: TableUpdates,
) -> anyhow::Result<(serde_json::Value, serde_json::Value, serde_json::Value)> {
    let first = round_of(pool, options, bank, under_test, postmaster, None, updates_at_seed).await?;
    let clock_advanced = bank.advance_a_day().await?;
    let updates = TableUpdates::read(pool).await?;
    let mut repeat = round_of(pool, options, bank, under_test, postmaster, Some(ids), updates).await?;
    repeat["bank_clock_advanced_one_day"] = json!(clock_advanced);
    // The same day again (an hourly schedule, a retry, "refresh now"): the bank reports what is
    // stored already.
    let updates = TableUpdates::read(pool).await?;
    let again = round_of(pool, options, bank, under_test, postmaster, Some(ids), updates).await?;
    Ok((first, repeat, again))
}

/// Updates of each table so far, and how many of them were HOT (one heap tuple, no index entry),
/// from the cumulative statistics. Backends report their counts when idle, at most once a second:
/// the pause lets most of the last round's reach the view (read the counts as shares; a round's
/// late reports land in the next).
#[derive(Debug, Clone, Default)]
struct TableUpdates(std::collections::BTreeMap<String, (i64, i64)>);

impl TableUpdates {
    async fn read(pool: &PgPool) -> anyhow::Result<Self> {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        sqlx::query("select pg_stat_clear_snapshot()").execute(pool).await?;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "select relname::text, n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where relname !~ '^_sqlx'",
        )
        .fetch_all(pool)
        .await?;
        Ok(Self(rows.into_iter().map(|(table, updated, hot)| (table, (updated, hot))).collect()))
    }

    /// The updates since `before` of each table updated since, as `{table: {n_tup_upd,
    /// n_tup_hot_upd}}`; `connection` is always there.
    fn since(&self, before: &Self) -> serde_json::Value {
        let tables = self.0.iter().filter_map(|(table, (updated, hot))| {
            let (updated_before, hot_before) = before.0.get(table).copied().unwrap_or_default();
            let changed = *updated > updated_before || table == "connection";
            changed.then(|| {
                (table.clone(), json!({ "n_tup_upd": updated - updated_before, "n_tup_hot_upd": hot - hot_before }))
            })
        });
        serde_json::Value::Object(tables.collect())
    }
}

/// Times one round: every connection refreshed once. The first round's jobs were enqueued by
/// the seed; a repeat round enqueues one scheduled refresh per connection in `again`.
async fn round_of(
    pool: &PgPool,
    options: &RunOptions,
    bank: &mut Bank,
    under_test: &Pool,
    postmaster: u32,
    again: Option<&[Uuid]>,
    updates_before: TableUpdates,
) -> anyhow::Result<serde_json::Value> {
    let exchanges_before = bank.exchanges().await?;
    // On stderr so a profiler's controller (e.g. `callgrind_control --dump`) can split the rounds.
    eprintln!("[refresh_bench] round {} starts", if again.is_some() { "repeat" } else { "first" });
    if let Some(ids) = again {
        let mut tx = feedwatch::database::begin(pool).await?;
        for id in ids {
            refresh::enqueue(&mut tx, *id, Trigger::Scheduled).await?;
        }
        tx.commit().await?;
    }
    let statements_tracked = reset_statement_stats(pool).await;
    let stages_before = StageTimes::read(&under_test.metrics);
    let cpu_before = CpuSample::take(bank.pid(), postmaster);
    let started = under_test.progress.start_round();
    let total = options.connections as u64;
    let mut peak_rss_kb = 0;
    let mut bank_peak_kb = 0;
    loop {
        let (_, rss) = own_memory();
        peak_rss_kb = peak_rss_kb.max(rss);
        if let Some((hwm, _)) = bank.memory() {
            bank_peak_kb = bank_peak_kb.max(hwm);
        }
        let done = under_test.progress.done();
        if done >= total {
            break;
        }
        if started.elapsed() > options.timeout {
            bail!("timed out: {done} of {total} refreshes finished");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Done means every job row is final too (successes are marked in batches).
    loop {
        let open: i64 = sqlx::query_scalar("select count(*) from job where state in ('available', 'running')")
            .fetch_one(pool)
            .await?;
        let retrying: i64 = sqlx::query_scalar("select count(*) from job where state = 'available' and attempt > 0")
            .fetch_one(pool)
            .await?;
        if open == retrying {
            break;
        }
        if started.elapsed() > options.timeout {
            bail!("timed out waiting for job rows to be final");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let cpu_after = CpuSample::take(bank.pid(), postmaster);
    let exchanges_after = bank.exchanges().await?;
    let (hwm_kb, _) = own_memory();
    let progress = &under_test.progress;
    let succeeded = progress.succeeded.load(Ordering::Relaxed);
    let states: Vec<(String, i64)> =
        sqlx::query_as("select state, count(*) from job group by state order by state").fetch_all(pool).await?;

    let mut times = progress.finished_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    times.sort();
    let at = |share: f64| times[((times.len() as f64 * share) as usize).min(times.len() - 1)].as_secs_f64();
    let (t10, t90) = (at(0.10), at(0.90));
    let steady = if t90 > t10 { 0.8 * times.len() as f64 / (t90 - t10) } else { 0.0 };
    let overall = total as f64 / elapsed.as_secs_f64();
    let ideal = options.concurrency as f64 / options.latency.as_secs_f64();
    let target = 0.7 * ideal;
    let exchanges = exchanges_before.zip(exchanges_after).map(|(before, after)| after - before);
    let mut handler = progress.handler_seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    handler.sort_by(f64::total_cmp);
    let handler_ms = |share: f64| {
        let index = ((handler.len() as f64 * share) as usize).min(handler.len().saturating_sub(1));
        handler.get(index).map_or(0.0, |seconds| round(seconds * 1000.0, 1))
    };
    // Slots busy in a handler on average; the rest of C waited on the queue (claims, completions).
    let in_handlers = handler.iter().sum::<f64>() / elapsed.as_secs_f64();
    let statements = if statements_tracked { statement_stats(pool, total).await? } else { json!(null) };
    let updates = TableUpdates::read(pool).await?.since(&updates_before);
    Ok(json!({
        "seconds": round(elapsed.as_secs_f64(), 3),
        "refreshes_per_s": overall.round(),
        "steady_refreshes_per_s": steady.round(),
        "ideal_per_s": ideal.round(),
        "target_per_s": target.round(),
        "ratio_to_target": round(overall / target, 3),
        "steady_ratio_to_target": round(steady / target, 3),
        "refreshes_succeeded": succeeded,
        "refreshes_other": progress.other.load(Ordering::Relaxed),
        "bank_exchanges_per_refresh": exchanges.map(|count| round(count as f64 / total as f64, 2)),
        "handler_ms": { "p50": handler_ms(0.5), "p90": handler_ms(0.9), "p99": handler_ms(0.99) },
        "mean_refreshes_in_handlers": round(in_handlers, 1),
        "stage_ms_mean": StageTimes::read(&under_test.metrics).mean_ms_since(&stages_before),
        "job_states_after": states.into_iter().map(|(state, count)| (state, json!(count))).collect::<serde_json::Map<_, _>>(),
        "cpu": cpu_before.report(&cpu_after, total, matches!(bank, Bank::InProcess { .. })),
        "postgres_statements": statements,
        "connection_updates": updates["connection"],
        "table_updates": updates,
        "peak_rss_kb": hwm_kb.max(peak_rss_kb),
        "bank_peak_rss_kb": bank_peak_kb,
    }))
}

/// Each refresh stage's total seconds and count, read from the pool's metrics
/// (`feedwatch_refresh_stage_duration_seconds`), so a round reports where a refresh's time went.
struct StageTimes(Vec<(String, f64, f64)>);

impl StageTimes {
    fn read(metrics: &Metrics) -> Self {
        let text = metrics.encode();
        let value = |stage: &str, part: &str| {
            let name = format!("feedwatch_refresh_stage_duration_seconds_{part}{{stage=\"{stage}\"}} ");
            text.lines().find_map(|line| line.strip_prefix(&name)?.parse::<f64>().ok()).unwrap_or(0.0)
        };
        Self(
            ["read", "bank", "store"]
                .iter()
                .map(|&stage| (stage.to_owned(), value(stage, "sum"), value(stage, "count")))
                .collect(),
        )
    }

    fn mean_ms_since(&self, before: &Self) -> serde_json::Value {
        let means = self.0.iter().zip(&before.0).map(|((stage, sum, count), (_, sum0, count0))| {
            let mean = if count > count0 { 1000.0 * (sum - sum0) / (count - count0) } else { 0.0 };
            (stage.clone(), json!(round(mean, 2)))
        });
        serde_json::Value::Object(means.collect())
    }
}

/// Starts counting statements afresh when the database has pg_stat_statements (only an
/// external `--database-url` can: the private cluster does not load it).
async fn reset_statement_stats(pool: &PgPool) -> bool {
    sqlx::query("select pg_stat_statements_reset()").execute(pool).await.is_ok()
}

/// The statements that took the most execution time since the reset, per refresh; with every
/// statement's calls and time summed, and the stall judgement's read (`feed::store::stall`,
/// one per successful refresh) on its own, wherever it ranks.
async fn statement_stats(pool: &PgPool, refreshes: u64) -> anyhow::Result<serde_json::Value> {
    let rows: Vec<(f64, f64, f64, String)> = sqlx::query_as(
        r#"select calls::float8 / $1, total_exec_time / $1, total_plan_time / $1,
                  left(regexp_replace(query, '\s+', ' ', 'g'), 100)
           from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
             and query not like '%pg_stat_statements%'
           order by total_exec_time desc limit 15"#,
    )
    .bind(refreshes.max(1) as f64)
    .fetch_all(pool)
    .await?;
    let (calls, exec_ms, stall_calls, stall_ms): (f64, f64, f64, f64) = sqlx::query_as(
        r#"select coalesce(sum(calls), 0)::float8 / $1, coalesce(sum(total_exec_time), 0)::float8 / $1,
                  coalesce(sum(calls) filter (where query like '%array(select distinct (t.posted_at%'), 0)::float8 / $1,
                  coalesce(sum(total_exec_time) filter (where query like '%array(select distinct (t.posted_at%'), 0)::float8
                      / $1
           from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
             and query not like '%pg_stat_statements%'"#,
    )
    .bind(refreshes.max(1) as f64)
    .fetch_one(pool)
    .await?;
    let top = rows.into_iter().map(|(calls, exec, plan, query)| {
        json!({ "calls": round(calls, 2), "exec_ms": round(exec, 3), "plan_ms": round(plan, 3), "query": query })
    });
    Ok(json!({
        "all": { "calls": round(calls, 2), "exec_ms": round(exec_ms, 3) },
        "stall": { "calls": round(stall_calls, 2), "exec_ms": round(stall_ms, 3) },
        "top": top.collect::<Vec<_>>(),
    }))
}

/// The sandbox institutions (as the service seeds them) and `count` connections to the healthy
/// one, each with its refresh enqueued, in one transaction. Returns the connections' ids.
async fn seed(pool: &PgPool, sealer: &Sealer, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let seeded = feedwatch::app::seed_sandbox_institutions(pool).await?;
    let healthy = seeded.iter().find(|(slug, _)| *slug == "healthy").map(|(_, id)| *id);
    let institution_id = healthy.ok_or_else(|| anyhow!("no healthy sandbox institution"))?;
    let tenant_id = Uuid::new_v4();
    let mut ids = Vec::with_capacity(count);
    let mut tx = feedwatch::database::begin(pool).await?;
    for n in 0..count {
        let id = Uuid::new_v4();
        let credentials =
            Credentials { user_id: "user_good".into(), password: "pass_good".into(), extra: Default::default() };
        let (sealed, key_id) = sealer.seal(id, &credentials)?;
        let name = format!("bench connection {n}");
        let new = NewConnection {
            id,
            tenant_id,
            institution_id,
            display_name: &name,
            refresh_every_seconds: 86_400,
            credentials_sealed: &sealed,
            credentials_key_id: &key_id,
        };
        lifecycle::created(&mut tx, &new, &serde_json::json!({ "bench": true }), ChangedBy::SYSTEM).await?;
        refresh::enqueue(&mut tx, id, Trigger::Created).await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

async fn probe(n: u32, latency: Duration) -> anyhow::Result<()> {
    use feedwatch::provider::{DirectConnect, DirectConnectOptions, DirectConnectSettings, FeedProvider, FetchRequest};
    let (url, mut bank) = start_bank(BankPlace::Child, latency).await?;
    let index = feedwatch::catalog::shipped_index().map_err(|errors| anyhow!("{errors}"))?;
    let provider = DirectConnect::new(DirectConnectOptions::default(), CatalogHandle::new(index, Purpose::Lookup))?;
    let healthy =
        feedwatch::sandbox::INSTITUTIONS.iter().find(|i| i.slug == "healthy").ok_or_else(|| anyhow!("no healthy"))?;
    let settings = DirectConnectSettings {
        url: format!("{url}/ofx/healthy"),
        org: Some(healthy.org.to_owned()),
        fid: Some(healthy.fid.to_owned()),
        app_id: "QWIN".into(),
        app_ver: "2700".into(),
        version: healthy.version,
    };
    let credentials = feedwatch::provider::Credentials {
        user_id: "user_good".into(),
        password: secrecy::SecretString::from("pass_good".to_owned()),
        extra: Default::default(),
    };
    let now = Utc::now();
    let first = FetchRequest {
        institution: &settings,
        credentials: &credentials,
        since: Some(now - TimeDelta::days(90)),
        now,
        known_accounts: &[],
    };
    let fetched = provider.fetch_with_references(&first).await.map_err(|error| anyhow!("{error:?}"))?;
    let known: Vec<serde_json::Value> = fetched.references.into_iter().flatten().collect();
    let repeat = FetchRequest { since: Some(now - TimeDelta::days(14)), known_accounts: &known, ..first };
    let mut report = serde_json::Map::new();
    for (name, request) in [("first", &first), ("repeat", &repeat)] {
        let exchanges = bank.exchanges().await?;
        let (wall, cpu) = (Instant::now(), cpu_seconds("self", false));
        let bank_cpu = bank.pid().map(|pid| cpu_seconds(&pid.to_string(), false));
        let mut transactions = 0;
        for _ in 0..n {
            let data = provider.fetch(request).await.map_err(|error| anyhow!("{error:?}"))?;
            transactions = data.accounts.iter().map(|account| account.transactions.len()).sum::<usize>();
        }
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds("self", false) - cpu);
        let bank_cpu = bank.pid().map(|pid| cpu_seconds(&pid.to_string(), false)).zip(bank_cpu).map(|(b, a)| b - a);
        let exchanges = bank.exchanges().await?.zip(exchanges).map(|(after, before)| after - before);
        let per_fetch = |seconds: f64| round(seconds * 1000.0 / f64::from(n), 2);
        report.insert(
            name.to_owned(),
            json!({
                "transactions_per_fetch": transactions,
                "exchanges_per_fetch": exchanges.map(|count| count as f64 / f64::from(n)),
                "wall_ms_per_fetch": per_fetch(wall),
                "client_cpu_ms_per_fetch": per_fetch(cpu),
                "bank_cpu_ms_per_fetch": bank_cpu.map(per_fetch),
            }),
        );
    }
    bank.stop().await;
    report.insert("probe".into(), json!("provider_fetch"));
    report.insert("fetches".into(), json!(n));
    report.insert("latency_ms".into(), json!(latency.as_millis() as u64));
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}
