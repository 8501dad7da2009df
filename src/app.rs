//! The composition root: the one place that wires configuration, database, HTTP and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::cache::KeyCache;
use crate::auth::{self, NewKey, PresentedKey, Role};
use crate::catalog::{self, Catalog, CatalogHandle, Purpose};
use crate::config::WorkerArgs;
use crate::config::{DatabaseArgs, SandboxBankArgs, ServeArgs};
use crate::connection::Sealer;
use crate::health;
use crate::housekeeping;
use crate::http::{self, AppState, HttpSettings};
use crate::institution::{InstitutionFields, OfxSettings, ProviderKind};
use crate::jobs::maintenance::{self, MaintenanceConfig};
use crate::refresh;
use crate::refresh::schedule;
use crate::sandbox::{Clock, SandboxBank, SandboxConfig};
use crate::telemetry::Metrics;
use crate::webhook;

mod db;
mod keys;
mod workers;

pub use db::Database;
pub use keys::{create_key, reseal_all, rotate_credentials};
pub use workers::{WorkerSettings, worker_pool, worker_pool_with};

/// How long a verified API key is trusted without asking the database again; also the longest
/// a revocation takes to reach the other replicas.
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// Settings of a running instance, independent of where they came from.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    pub listen: SocketAddr,
    pub http: HttpSettings,
    pub shutdown_grace: Duration,
    pub bootstrap_admin_key: Option<SecretString>,
    pub sealer: Sealer,
    pub workers: WorkerSettings,
    pub refresh_cooldown: Duration,
    /// Serve the sandbox bank (demo mode), on its own listener at `sandbox_listen`.
    pub mount_sandbox: bool,
    /// Where the sandbox bank listens in demo mode; port 0 picks a free one.
    pub sandbox_listen: SocketAddr,
    /// Seed the demo tenant (demo mode; needs the sandbox).
    pub seed_demo: bool,
    /// Where webhooks may go (registration and delivery).
    pub webhooks: webhook::Settings,
}

impl InstanceSettings {
    pub fn from_args(args: &ServeArgs, sealer: Sealer) -> Self {
        Self {
            listen: args.listen,
            http: HttpSettings {
                cors_origins: args.cors_origins.clone(),
                max_body_bytes: args.max_body_bytes,
                import_max_bytes: args.import_max_bytes,
                request_timeout: args.request_timeout,
                import_timeout: args.import_timeout,
                auth_throttle: crate::auth::throttle::ThrottleSettings {
                    burst: args.auth_failure_burst,
                    refill: args.auth_failure_refill,
                },
                connections: args.connection_limits(),
                console: crate::http::console::Settings {
                    secure_cookies: args.console_secure_cookies,
                    lifetimes: crate::session::Lifetimes {
                        idle: args.console_idle_timeout,
                        absolute: args.console_session_lifetime,
                    },
                },
            },
            shutdown_grace: args.shutdown_grace,
            bootstrap_admin_key: args.bootstrap_admin_key.clone(),
            sealer,
            workers: WorkerSettings::from_args(&args.workers),
            refresh_cooldown: args.refresh_cooldown,
            mount_sandbox: demo_mode(args),
            sandbox_listen: args.sandbox_addr,
            seed_demo: demo_mode(args),
            webhooks: args.workers.webhooks.settings(),
        }
    }
}

/// Demo mode is on for the private PostgreSQL unless refused, off with DATABASE_URL unless asked.
fn demo_mode(args: &ServeArgs) -> bool {
    !args.no_demo && (args.demo || args.database.database_url.is_none())
}

/// A started instance: the HTTP server runs until `shutdown` is cancelled.
#[derive(Debug)]
pub struct Instance {
    pub addr: SocketAddr,
    /// Where the sandbox bank listens, in demo mode.
    pub sandbox_addr: Option<SocketAddr>,
    /// A newly generated admin key, when the database had no key at all.
    pub first_admin_key: Option<SecretString>,
    pub shutdown: CancellationToken,
    /// The catalogue this instance serves, for tests that watch it change.
    pub catalog: CatalogHandle,
    /// The worker pool's own database pool, when this instance runs workers.
    worker_database: Option<PgPool>,
    server: JoinHandle<std::io::Result<()>>,
    background: TaskTracker,
}

impl Instance {
    /// Bootstraps keys, binds the listener and starts serving on the given (migrated) pool.
    pub async fn start(pool: PgPool, settings: InstanceSettings) -> anyhow::Result<Self> {
        let first_admin_key = bootstrap_keys(&pool, settings.bootstrap_admin_key.as_ref()).await?;
        let listener =
            TcpListener::bind(settings.listen).await.with_context(|| format!("binding {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let catalog = load_catalog(&pool, Purpose::Search).await?;
        seed_sandbox_institutions(&pool).await?;
        let sealer = Arc::new(settings.sealer);
        let shutdown = CancellationToken::new();
        let background = TaskTracker::new();
        let sandbox_addr = if settings.mount_sandbox {
            let listen = settings.sandbox_listen;
            Some(serve_sandbox(listen, &settings.http, settings.shutdown_grace, &shutdown, &background).await?)
        } else {
            None
        };
        let mut workers = settings.workers.clone();
        if let (Some(sandbox), None) = (sandbox_addr, &workers.sandbox_url) {
            workers.sandbox_url = Some(format!("http://{sandbox}"));
        }
        background.spawn(catalog::follow_changes(pool.clone(), catalog.clone(), shutdown.clone()));
        let metrics = Metrics::new();
        let mut worker_database = None;
        if workers.concurrency > 0 {
            let worker_pool = worker_pool_with(
                &pool,
                &sealer,
                &catalog,
                &workers,
                &settings.webhooks,
                settings.shutdown_grace,
                &metrics,
            )?
            .observe(metrics.clone());
            worker_database = Some(worker_pool.database().clone());
            let maintenance = MaintenanceConfig::with_backoffs(worker_pool.backoffs());
            background.spawn(Arc::new(worker_pool).run(shutdown.clone()));
            background.spawn(housekeeping::run(pool.clone(), maintenance.every, shutdown.clone()));
            background.spawn(maintenance::run(pool.clone(), maintenance, metrics.clone(), shutdown.clone()));
            background.spawn(schedule::run(pool.clone(), SCHEDULE_EVERY, workers.stale_after, shutdown.clone()));
        }
        background.spawn(health::run_rollup(pool.clone(), HEALTH_ROLLUP_EVERY, shutdown.clone()));
        background.close();
        let (state_pool, state_sealer) = (pool.clone(), Arc::clone(&sealer));
        let reads = crate::database::reads::Reads::new(pool.clone());
        let state = AppState::new(http::Handles {
            pool,
            reads,
            metrics,
            catalog: catalog.clone(),
            sealer,
            keys: KeyCache::new(KEY_CACHE_TTL, 10_000),
            refresh_cooldown: settings.refresh_cooldown,
            stale_after: workers.stale_after,
            stalls: workers.stalls,
            rendered_entries: http::errors::RenderedEntries::default(),
            webhook_hosts: settings.webhooks.hosts.clone(),
            auth_failures: crate::auth::throttle::FailureThrottle::new(settings.http.auth_throttle),
        });
        let router = http::router(state, &settings.http);
        let server = tokio::spawn(http::serve_with_limits(
            listener,
            router,
            shutdown.clone(),
            settings.shutdown_grace,
            settings.http.connections,
        ));
        if settings.seed_demo && settings.mount_sandbox {
            let seeded = crate::demo::seed(&state_pool, &state_sealer).await?;
            if seeded > 0 {
                tracing::info!(tenant = %crate::demo::TENANT, connections = seeded, "demo tenant seeded");
            }
        }
        Ok(Self { addr, sandbox_addr, first_admin_key, shutdown, catalog, worker_database, server, background })
    }

    /// The database pools this instance built beside the one it was given.
    pub fn companion_pools(&self) -> Vec<&PgPool> {
        self.worker_database.iter().collect()
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let served = self.server.await.context("server task panicked")?.context("server failed");
        self.background.wait().await;
        served
    }
}

/// Serves the demo sandbox bank on its own listener, with the API's connection limits, until
/// `shutdown`; returns the address refreshes reach it at.
async fn serve_sandbox(
    listen: SocketAddr,
    http_settings: &HttpSettings,
    grace: Duration,
    shutdown: &CancellationToken,
    background: &TaskTracker,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("binding the sandbox bank to {listen}"))?;
    let mut addr = listener.local_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let bank = Arc::new(SandboxBank::new(SandboxConfig::demo(), Clock::System));
    let router = http::sandbox_bank::service(Arc::clone(&bank), http_settings.request_timeout);
    let stop = shutdown.clone();
    background.spawn(async move {
        stop.cancelled().await;
        // Stalled and delayed replies end first, so the listener's graceful end waits for nothing.
        bank.close();
    });
    let (stop, limits) = (shutdown.clone(), http_settings.connections);
    background.spawn(async move {
        if let Err(error) = http::serve_with_limits(listener, router, stop, grace, limits).await {
            tracing::error!(%error, "the sandbox bank's listener failed");
        }
    });
    tracing::info!(%addr, "sandbox bank listening");
    Ok(addr)
}

/// How often each replica looks for due scheduled refreshes.
const SCHEDULE_EVERY: Duration = Duration::from_secs(30);
/// Deltas wait at most this long before the tallies include them (readers add them meanwhile).
const HEALTH_ROLLUP_EVERY: Duration = Duration::from_secs(2);

/// The sandbox bank's institutions exist in every database, so demo and test connections can
/// point at them; they are reached at the configured sandbox URL.
/// Returns each sandbox slug with its institution id.
pub async fn seed_sandbox_institutions(pool: &PgPool) -> anyhow::Result<Vec<(&'static str, uuid::Uuid)>> {
    let mut seeded = Vec::new();
    for bank in crate::sandbox::INSTITUTIONS {
        let fields = InstitutionFields {
            slug: format!("{}{}", refresh::SANDBOX_SLUG_PREFIX, bank.slug),
            name: bank.name.to_owned(),
            provider: ProviderKind::Sandbox,
            ofx: OfxSettings {
                url: None,
                org: bank.org.to_owned(),
                fid: bank.fid.to_owned(),
                app_id: "QWIN".into(),
                app_version: "2700".into(),
                version: i32::from(bank.version.number()),
            },
            aliases: vec![bank.slug.to_owned()],
            active: true,
        };
        seeded.push((bank.slug, crate::institution::store::upsert_by_slug(pool, &fields).await?));
    }
    Ok(seeded)
}

/// Syncs the shipped catalogue into the database and builds the in-memory index from it, with
/// what `purpose` needs.
async fn load_catalog(pool: &PgPool, purpose: Purpose) -> anyhow::Result<CatalogHandle> {
    let shipped = Catalog::shipped()?;
    if catalog::sync_shipped(pool, &shipped).await.context("syncing the error catalogue")? {
        tracing::info!(
            entries = shipped.entries.len(),
            aliases = shipped.aliases.len(),
            "error catalogue updated from the shipped files"
        );
    }
    Ok(CatalogHandle::new(catalog::load_index(pool, purpose).await?, purpose))
}

/// Registers the configured bootstrap admin key, or creates the first admin key of an empty
/// database and returns it so the caller can show it once.
async fn bootstrap_keys(pool: &PgPool, configured: Option<&SecretString>) -> anyhow::Result<Option<SecretString>> {
    if let Some(text) = configured {
        let key = PresentedKey::parse(text.expose_secret())
            .context("FEEDWATCH_BOOTSTRAP_ADMIN_KEY is not a key of the form fw_<32 hex id>_<64 hex secret>")?;
        let inserted =
            auth::store::insert_if_absent(pool, &admin_insert(key.id, &key.secret_hash(), "bootstrap (configuration)"))
                .await?;
        if inserted {
            tracing::info!(key_id = %key.id, "bootstrap admin key registered");
        }
        return Ok(None);
    }
    if auth::store::any_exists(pool).await? {
        return Ok(None);
    }
    let key = NewKey::generate();
    auth::store::insert(pool, &admin_insert(key.id, &key.secret_hash, "first admin key")).await?;
    Ok(Some(key.text))
}

fn admin_insert<'a>(id: uuid::Uuid, secret_hash: &'a [u8], label: &'a str) -> auth::store::KeyInsert<'a> {
    auth::store::KeyInsert { id, secret_hash, role: Role::Admin, tenant_id: None, label, created_by: None }
}

/// `feedwatch serve`: runs until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let stop_requested = shutdown_signal();
    let database = Database::open(&args.database).await?;
    let settings = InstanceSettings::from_args(&args, database.sealer.clone());
    let instance = Instance::start(database.pool.clone(), settings).await?;
    let failover = database.follow_failover(&instance.companion_pools(), &instance.shutdown);
    println!("feedwatch listening on http://{}", instance.addr);
    if let Some(key) = &instance.first_admin_key {
        println!("  first admin key (shown once, keep it): {}", key.expose_secret());
    }
    println!("  API docs: http://{}/docs", instance.addr);
    if let Some(sandbox) = instance.sandbox_addr {
        println!("  sandbox bank (demo mode): http://{sandbox}");
    }
    stop_requested.await;
    tracing::info!("shutting down: finishing in-flight requests");
    instance.stop().await?;
    if let Some(failover) = failover {
        let _ = failover.await;
    }
    database.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `feedwatch sandbox-bank`: serves the sandbox bank alone until SIGTERM or SIGINT.
pub async fn run_sandbox_bank(args: SandboxBankArgs) -> anyhow::Result<()> {
    let stop_requested = shutdown_signal();
    let bank = std::sync::Arc::new(SandboxBank::new(args.sandbox_config(), Clock::System));
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("sandbox bank listening on http://{addr}");
    println!("  maintenance window: {}", args.maintenance);
    for institution in bank.institutions() {
        let url = format!("http://{addr}{}", institution.path());
        let (org, fid, version) = (institution.org, institution.fid, institution.version.number());
        println!("  {:<12} {url}  (ORG {org}, FID {fid}, OFX {version})", institution.slug);
    }
    println!("  sign in as user_good / pass_good, or any user with password error_<code>");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        listener,
        http::sandbox_bank::router(bank.clone()),
        shutdown.clone(),
        args.shutdown_grace,
    ));
    stop_requested.await;
    tracing::info!("shutting down the sandbox bank");
    // Stalled and delayed replies end first, so graceful shutdown has nothing left to wait for.
    bank.close();
    shutdown.cancel();
    server.await.context("sandbox bank task panicked")?.context("sandbox bank failed")
}

/// `feedwatch worker`: refreshes, maintenance and the scheduler with no HTTP server, until
/// SIGTERM or SIGINT; then in-flight refreshes finish within the grace period or are handed back.
pub async fn run_worker(args: &DatabaseArgs, workers: &WorkerArgs, shutdown_grace: Duration) -> anyhow::Result<()> {
    let stop_requested = shutdown_signal();
    let database = Database::open(args).await?;
    let catalog = load_catalog(&database.pool, Purpose::Lookup).await?;
    let settings = WorkerSettings::from_args(workers);
    let sealer = Arc::new(database.sealer.clone());
    let webhooks = workers.webhooks.settings();
    // A worker-only process serves no /metrics: its counters go nowhere.
    let metrics = Metrics::new();
    let pool =
        Arc::new(worker_pool_with(&database.pool, &sealer, &catalog, &settings, &webhooks, shutdown_grace, &metrics)?);
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    if let Some(failover) = database.follow_failover(&[pool.database()], &shutdown) {
        tasks.spawn(failover);
    }
    tasks.spawn(catalog::follow_changes(database.pool.clone(), catalog.clone(), shutdown.clone()));
    tasks.spawn(Arc::clone(&pool).run(shutdown.clone()));
    let maintenance = MaintenanceConfig::with_backoffs(pool.backoffs());
    tasks.spawn(housekeeping::run(database.pool.clone(), maintenance.every, shutdown.clone()));
    tasks.spawn(maintenance::run(database.pool.clone(), maintenance, metrics, shutdown.clone()));
    tasks.spawn(schedule::run(database.pool.clone(), SCHEDULE_EVERY, settings.stale_after, shutdown.clone()));
    tasks.spawn(health::run_rollup(database.pool.clone(), HEALTH_ROLLUP_EVERY, shutdown.clone()));
    tasks.close();
    println!("feedwatch worker running {} refresh slots", settings.concurrency.max(1));
    stop_requested.await;
    tracing::info!("shutting down: finishing in-flight refreshes");
    shutdown.cancel();
    tasks.wait().await;
    database.close().await;
    Ok(())
}

/// `feedwatch migrate`.
pub async fn run_migrate(args: &DatabaseArgs) -> anyhow::Result<()> {
    let database = Database::open(args).await?;
    database.close().await;
    Ok(())
}

/// Listens for SIGTERM and SIGINT from the moment it is called, so a signal that arrives while
/// the caller is still starting up (or printing its address) is not lost to the default action,
/// which would kill the process without a graceful shutdown.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        let (mut terminate, mut interrupt) = match (terminate, interrupt) {
            (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot listen for SIGTERM/SIGINT; falling back to Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        workers: WorkerArgs,
    }

    fn settings(args: &[&str]) -> WorkerSettings {
        WorkerSettings::from_args(&Cli::try_parse_from([&["feedwatch"], args].concat()).expect("valid flags").workers)
    }

    #[test]
    fn refresh_pools_claim_a_quarter_of_their_slots_ahead_unless_told_otherwise() {
        assert_eq!(settings(&["--workers", "64"]).prefetch, 16);
        assert_eq!(settings(&["--workers", "2"]).prefetch, 0);
        assert_eq!(settings(&["--workers", "64", "--worker-prefetch", "0"]).prefetch, 0);
        assert_eq!(settings(&["--workers", "8", "--worker-prefetch", "100"]).prefetch, 100);
        assert_eq!(settings(&["--workers", "64"]).prefetch_ceiling, crate::jobs::pace::PREFETCH_CEILING);
        assert_eq!(settings(&["--workers", "64", "--worker-prefetch", "16"]).prefetch_ceiling, 0);
    }
}
