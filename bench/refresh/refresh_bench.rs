//! End-to-end refresh benchmark (issue #8): refreshes per second of feedwatch's refresh worker
//! pool (`feedwatch::app::worker_pool`, the one `serve` and `worker` run) against the sandbox
//! bank answering after a fixed latency, at concurrency C, and the resident memory it takes.
//!
//! `run` starts a private PostgreSQL (durable settings, its own process), migrates, seeds the
//! sandbox institutions and K = C × `--per-slot` connections to the `healthy` sandbox bank
//! (user_good / pass_good, credentials sealed like the service does), enqueues one refresh per
//! connection with `jobs::refresh::enqueue`, then runs the worker pool until every job is
//! finished. By default the sandbox bank runs in a child process (this binary's `bank`
//! subcommand, the same router `feedwatch sandbox-bank` serves), so this process's RSS is the
//! refreshing side only (plus the small benchmark driver); `--bank in-process` serves it here.
//! Prints one JSON line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use feedwatch::app::{WorkerSettings, worker_pool};
use feedwatch::catalog::CatalogHandle;
use feedwatch::connection::store::{self as connections, NewConnection};
use feedwatch::connection::{Credentials, Sealer};
use feedwatch::devdb::{Durability, LocalPostgres};
use feedwatch::jobs::Outcome;
use feedwatch::jobs::refresh::{self, Trigger};
use feedwatch::jobs::worker::PoolObserver;
use feedwatch::sandbox::{Clock, SandboxBank, SandboxConfig};
use serde_json::json;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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
    /// Serve the sandbox bank until stdin closes; prints `{"url": …}` first.
    Bank {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
    },
    /// Diagnostic: time `n` sequential provider fetches (the HTTP exchanges and OFX parsing of one
    /// refresh, no database) against a sandbox bank child process with the given latency.
    Probe {
        #[arg(long, default_value_t = 50)]
        n: u32,
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// Seed, refresh every connection once, report refreshes/s and memory.
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
        #[arg(long, value_enum, default_value_t = BankPlace::Child)]
        bank: BankPlace,
        /// Use this sandbox bank instead (e.g. `feedwatch sandbox-bank --latency 50ms`).
        #[arg(long)]
        sandbox_url: Option<String>,
        /// Parent of the PostgreSQL data directory (a fresh subdirectory is made and removed).
        #[arg(long, default_value = "/var/tmp")]
        work_dir: PathBuf,
        #[arg(long, default_value_t = 180)]
        timeout_s: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,sqlx=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Bank { listen, latency_ms } => serve_bank(listen, latency_ms).await,
        Command::Probe { n, latency_ms } => probe(n, Duration::from_millis(latency_ms)).await,
        Command::Run { concurrency, per_slot, latency_ms, db_connections, bank, sandbox_url, work_dir, timeout_s } => {
            let options = RunOptions {
                concurrency,
                connections: concurrency * per_slot,
                latency: Duration::from_millis(latency_ms),
                db_connections,
                timeout: Duration::from_secs(timeout_s),
            };
            let dir = work_dir.join(format!("feedwatch-refresh-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let result = run(options, bank, sandbox_url, &dir).await;
            let _ = std::fs::remove_dir_all(&dir);
            let report = result?;
            println!("{report}");
            Ok(())
        }
    }
}

fn sandbox_config(latency: Duration) -> SandboxConfig {
    SandboxConfig { latency, ..SandboxConfig::default() }
}

async fn serve_bank(listen: SocketAddr, latency_ms: u64) -> anyhow::Result<()> {
    let bank = Arc::new(SandboxBank::new(sandbox_config(Duration::from_millis(latency_ms)), Clock::System));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("{}", json!({ "url": format!("http://{addr}"), "pid": std::process::id() }));
    let stop = CancellationToken::new();
    let server = tokio::spawn({
        let stop = stop.clone();
        let router = feedwatch::http::sandbox_bank::router(Arc::clone(&bank));
        async move { axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await }
    });
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    bank.close();
    stop.cancel();
    server.await??;
    Ok(())
}

#[derive(Debug, Clone)]
struct RunOptions {
    concurrency: usize,
    connections: usize,
    latency: Duration,
    db_connections: u32,
    timeout: Duration,
}

/// The sandbox bank the refreshes talk to, and how to stop it.
enum Bank {
    Child { child: tokio::process::Child, pid: u32 },
    InProcess { bank: Arc<SandboxBank>, stop: CancellationToken },
    External,
}

async fn start_bank(place: BankPlace, latency: Duration) -> anyhow::Result<(String, Bank)> {
    match place {
        BankPlace::Child => {
            let mut child = tokio::process::Command::new(std::env::current_exe()?)
                .args(["bank", "--latency-ms", &latency.as_millis().to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("starting the sandbox bank process")?;
            let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).await?;
            let started: serde_json::Value = serde_json::from_str(&line).context("the bank's first line")?;
            let url = started["url"].as_str().ok_or_else(|| anyhow!("no url from the bank"))?.to_owned();
            let pid = child.id().ok_or_else(|| anyhow!("the bank exited"))?;
            Ok((url, Bank::Child { child, pid }))
        }
        BankPlace::InProcess => {
            let bank = Arc::new(SandboxBank::new(sandbox_config(latency), Clock::System));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let stop = CancellationToken::new();
            let router = feedwatch::http::sandbox_bank::router(Arc::clone(&bank));
            let until = stop.clone();
            tokio::spawn(
                async move { axum::serve(listener, router).with_graceful_shutdown(until.cancelled_owned()).await },
            );
            Ok((format!("http://{addr}"), Bank::InProcess { bank, stop }))
        }
    }
}

impl Bank {
    fn memory(&self) -> Option<(u64, u64)> {
        match self {
            Self::Child { pid, .. } => memory_of(&format!("/proc/{pid}/status")),
            _ => None,
        }
    }

    async fn stop(self) {
        match self {
            Self::Child { mut child, .. } => {
                drop(child.stdin.take());
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                let _ = child.kill().await;
            }
            Self::InProcess { bank, stop } => {
                bank.close();
                stop.cancel();
            }
            Self::External => {}
        }
    }
}

/// (VmHWM, VmRSS) in kB.
fn memory_of(status_path: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn own_memory() -> (u64, u64) {
    memory_of("/proc/self/status").unwrap_or((0, 0))
}

/// Watches refreshes finish: counts by outcome, and when each one finished.
#[derive(Default)]
struct Progress {
    succeeded: AtomicU64,
    other: AtomicU64,
    finished_at: Mutex<Vec<Duration>>,
    started: Mutex<Option<Instant>>,
}

impl PoolObserver for Progress {
    fn finished(&self, _kind: &str, outcome: &Outcome, _seconds: f64) {
        match outcome {
            Outcome::Succeeded(result) if result.get("skipped").is_none() => &self.succeeded,
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
    dir: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let local =
        LocalPostgres::start(&dir.join("postgres"), Durability::Durable).await.context("starting PostgreSQL")?;
    let pool = feedwatch::database::pool(local.url(), 10)?;
    feedwatch::database::migrate(&pool).await.context("migrating")?;
    let label = match (&sandbox_url, place) {
        (Some(_), _) => "external (--sandbox-url)",
        (None, BankPlace::Child) => "separate process",
        (None, BankPlace::InProcess) => "in-process",
    };
    let (bank_url, bank) = match sandbox_url {
        Some(url) => (url, Bank::External),
        None => start_bank(place, options.latency).await?,
    };
    let result = measure(&pool, &options, &bank_url, &bank).await;
    bank.stop().await;
    pool.close().await;
    local.stop().await;
    let mut report = result?;
    report["bank"] = json!(label);
    Ok(report)
}

async fn measure(
    pool: &PgPool,
    options: &RunOptions,
    bank_url: &str,
    bank: &Bank,
) -> anyhow::Result<serde_json::Value> {
    let sealer = Arc::new(Sealer::from_config(&Sealer::generate_config("bench1"))?);
    let catalog = CatalogHandle::new(feedwatch::catalog::shipped_index().map_err(|errors| anyhow!("{errors}"))?);
    let seeding = Instant::now();
    seed(pool, &sealer, options.connections).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let (_, rss_before_kb) = own_memory();

    let settings = WorkerSettings {
        concurrency: options.concurrency,
        db_connections: options.db_connections,
        lease: Duration::from_secs(60),
        refresh_timeout: Duration::from_secs(300),
        sandbox_url: Some(bank_url.to_owned()),
        incidents: feedwatch::incident::Rules::default(),
        stale_after: Duration::from_secs(48 * 3600),
        prefetch: 0,
        statements_in_flight: 1,
    };
    let progress = Arc::new(Progress::default());
    let workers =
        Arc::new(worker_pool(pool, &sealer, &catalog, &settings, Duration::from_secs(5))?.observe(progress.clone()));
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    *progress.started.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(started);
    let running = tokio::spawn(Arc::clone(&workers).run(shutdown.clone()));

    let total = options.connections as u64;
    let mut peak_rss_kb = 0;
    let mut bank_peak_kb = 0;
    loop {
        let (_, rss) = own_memory();
        peak_rss_kb = peak_rss_kb.max(rss);
        if let Some((hwm, _)) = bank.memory() {
            bank_peak_kb = bank_peak_kb.max(hwm);
        }
        let done = progress.succeeded.load(Ordering::Relaxed) + progress.other.load(Ordering::Relaxed);
        if done >= total {
            break;
        }
        if started.elapsed() > options.timeout {
            shutdown.cancel();
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
    let (hwm_kb, rss_end_kb) = own_memory();
    shutdown.cancel();
    running.await?;

    let states: Vec<(String, i64)> =
        sqlx::query_as("select state, count(*) from job group by state order by state").fetch_all(pool).await?;
    let transactions: i64 = sqlx::query_scalar("select count(*) from feed_transaction").fetch_one(pool).await?;
    let healthy: i64 =
        sqlx::query_scalar("select count(*) from connection where last_success_at is not null").fetch_one(pool).await?;

    let mut times = progress.finished_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    times.sort();
    let at = |share: f64| times[((times.len() as f64 * share) as usize).min(times.len() - 1)].as_secs_f64();
    let (t10, t90) = (at(0.10), at(0.90));
    let steady = if t90 > t10 { 0.8 * times.len() as f64 / (t90 - t10) } else { 0.0 };
    let overall = total as f64 / elapsed.as_secs_f64();
    let ideal = options.concurrency as f64 / options.latency.as_secs_f64();
    let target = 0.7 * ideal;
    let mb = |kb: u64| (kb as f64 / 1024.0 * 10.0).round() / 10.0;
    Ok(json!({
        "bench": "refresh_end_to_end",
        "concurrency": options.concurrency,
        "connections": total,
        "latency_ms": options.latency.as_millis() as u64,
        "db_connections": options.db_connections,
        "seed_seconds": (seed_seconds * 1000.0).round() / 1000.0,
        "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "refreshes_per_s": overall.round(),
        "steady_refreshes_per_s": steady.round(),
        "ideal_per_s": ideal.round(),
        "target_per_s": target.round(),
        "ratio_to_target": (overall / target * 1000.0).round() / 1000.0,
        "steady_ratio_to_target": (steady / target * 1000.0).round() / 1000.0,
        "refreshes_succeeded": progress.succeeded.load(Ordering::Relaxed),
        "refreshes_other": progress.other.load(Ordering::Relaxed),
        "job_states": states.into_iter().map(|(state, count)| (state, json!(count))).collect::<serde_json::Map<_, _>>(),
        "connections_with_success": healthy,
        "transactions_stored": transactions,
        "rss_before_pool_mb": mb(rss_before_kb),
        "peak_rss_mb": mb(hwm_kb.max(peak_rss_kb)),
        "rss_end_mb": mb(rss_end_kb),
        "bank_peak_rss_mb": if bank_peak_kb > 0 { json!(mb(bank_peak_kb)) } else { json!(null) },
        "rss_target_mb": 150,
    }))
}

/// The sandbox institutions (as the service seeds them) and `count` connections to the healthy
/// one, each with its refresh enqueued, in one transaction.
async fn seed(pool: &PgPool, sealer: &Sealer, count: usize) -> anyhow::Result<()> {
    let seeded = feedwatch::app::seed_sandbox_institutions(pool).await?;
    let healthy = seeded.iter().find(|(slug, _)| *slug == "healthy").map(|(_, id)| *id);
    let institution_id = healthy.ok_or_else(|| anyhow!("no healthy sandbox institution"))?;
    let tenant_id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
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
        connections::insert(&mut *tx, &new).await?;
        refresh::enqueue(&mut tx, id, Trigger::Created).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// CPU time (user + system) of this process so far.
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks/s.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

async fn probe(n: u32, latency: Duration) -> anyhow::Result<()> {
    use feedwatch::provider::{DirectConnect, DirectConnectOptions, DirectConnectSettings, FeedProvider, FetchRequest};
    let (url, bank) = start_bank(BankPlace::Child, latency).await?;
    let provider = DirectConnect::new(DirectConnectOptions::default())?;
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
    let now = chrono::Utc::now();
    let request = FetchRequest {
        institution: &settings,
        credentials: &credentials,
        since: Some(now - chrono::TimeDelta::days(90)),
        now,
    };
    let (wall, cpu) = (Instant::now(), own_cpu());
    let mut transactions = 0;
    for _ in 0..n {
        let data = provider.fetch(&request).await.map_err(|error| anyhow!("{error:?}"))?;
        transactions = data.accounts.iter().map(|account| account.transactions.len()).sum::<usize>();
    }
    let (wall, cpu) = (wall.elapsed(), own_cpu() - cpu);
    let bank_cpu = match &bank {
        Bank::Child { pid, .. } => {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> =
                stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
            let ticks = |index: usize| fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
            Some((ticks(11) + ticks(12)) * 10)
        }
        _ => None,
    };
    bank.stop().await;
    println!(
        "{}",
        json!({
            "probe": "provider_fetch", "fetches": n, "latency_ms": latency.as_millis() as u64,
            "transactions_per_fetch": transactions,
            "wall_ms_per_fetch": (wall.as_secs_f64() * 1000.0 / f64::from(n) * 10.0).round() / 10.0,
            "client_cpu_ms_per_fetch": (cpu.as_secs_f64() * 1000.0 / f64::from(n) * 10.0).round() / 10.0,
            "bank_cpu_ms_total": bank_cpu,
        })
    );
    Ok(())
}
