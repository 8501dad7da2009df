//! The composition root: the one place that wires configuration, database, HTTP and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{self, NewKey, PresentedKey, Role};
use crate::catalog::{self, Catalog, CatalogHandle};
use crate::config::{DatabaseArgs, SandboxBankArgs, ServeArgs};
use crate::database;
use crate::devdb::{Durability, LocalPostgres};
use crate::http::{self, AppState, HttpSettings};
use crate::sandbox::{Clock, SandboxBank};
use crate::telemetry::Metrics;

/// A database to use, and the private server behind it when we started one.
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    local: Option<LocalPostgres>,
}

impl Database {
    /// Connects to DATABASE_URL, or starts the private cluster under `--data-dir`, then migrates.
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        let (url, local) = match &args.database_url {
            Some(url) => (url.expose_secret().to_owned(), None),
            None => {
                let local = LocalPostgres::start(&args.data_dir, Durability::Durable)
                    .await
                    .context("starting the private PostgreSQL (set DATABASE_URL to use another)")?;
                tracing::info!(
                    data_dir = %args.data_dir.display(),
                    port = local.port(),
                    as_postgres_user = local.runs_as_postgres_user(),
                    "private PostgreSQL started"
                );
                (local.url().to_owned(), Some(local))
            }
        };
        let pool =
            database::pool(&url, args.db_max_connections).context("DATABASE_URL is not a valid PostgreSQL URL")?;
        database::migrate(&pool).await.context("applying database migrations")?;
        Ok(Self { pool, local })
    }

    /// Closes the pool, then stops the private server if we started one.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(local) = self.local {
            local.stop().await;
        }
    }
}

/// Settings of a running instance, independent of where they came from.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    pub listen: SocketAddr,
    pub http: HttpSettings,
    pub shutdown_grace: Duration,
    pub bootstrap_admin_key: Option<SecretString>,
}

impl InstanceSettings {
    pub fn from_args(args: &ServeArgs) -> Self {
        Self {
            listen: args.listen,
            http: HttpSettings {
                cors_origins: args.cors_origins.clone(),
                max_body_bytes: args.max_body_bytes,
                request_timeout: args.request_timeout,
            },
            shutdown_grace: args.shutdown_grace,
            bootstrap_admin_key: args.bootstrap_admin_key.clone(),
        }
    }
}

/// A started instance: the HTTP server runs until `shutdown` is cancelled.
#[derive(Debug)]
pub struct Instance {
    pub addr: SocketAddr,
    /// A newly generated admin key, when the database had no key at all.
    pub first_admin_key: Option<SecretString>,
    pub shutdown: CancellationToken,
    /// The catalogue this instance serves, for tests that watch it change.
    pub catalog: CatalogHandle,
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
        let catalog = load_catalog(&pool).await?;
        let shutdown = CancellationToken::new();
        let background = TaskTracker::new();
        background.spawn(catalog::follow_changes(pool.clone(), catalog.clone(), shutdown.clone()));
        background.close();
        let state = AppState { pool, metrics: Metrics::new(), catalog: catalog.clone() };
        let router = http::router(state, &settings.http);
        let server = tokio::spawn(serve(listener, router, shutdown.clone(), settings.shutdown_grace));
        Ok(Self { addr, first_admin_key, shutdown, catalog, server, background })
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let served = self.server.await.context("server task panicked")?.context("server failed");
        self.background.wait().await;
        served
    }
}

/// Syncs the shipped catalogue into the database and builds the in-memory index from it.
async fn load_catalog(pool: &PgPool) -> anyhow::Result<CatalogHandle> {
    let shipped = Catalog::shipped()?;
    if catalog::sync_shipped(pool, &shipped).await.context("syncing the error catalogue")? {
        tracing::info!(
            entries = shipped.entries.len(),
            aliases = shipped.aliases.len(),
            "error catalogue updated from the shipped files"
        );
    }
    Ok(CatalogHandle::new(catalog::load_index(pool).await?))
}

async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let server = axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grace_expired = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = grace_expired => {
            tracing::warn!(?grace, "in-flight requests still running after the grace period; exiting anyway");
            Ok(())
        }
    }
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
    let database = Database::open(&args.database).await?;
    let instance = Instance::start(database.pool.clone(), InstanceSettings::from_args(&args)).await?;
    println!("feedwatch listening on http://{}", instance.addr);
    if let Some(key) = &instance.first_admin_key {
        println!("  first admin key (shown once, keep it): {}", key.expose_secret());
    }
    println!("  API docs: http://{}/docs", instance.addr);
    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    instance.stop().await?;
    database.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `feedwatch sandbox-bank`: serves the sandbox bank alone until SIGTERM or SIGINT.
pub async fn run_sandbox_bank(args: SandboxBankArgs) -> anyhow::Result<()> {
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
    let server =
        tokio::spawn(serve(listener, http::sandbox_bank::router(bank.clone()), shutdown.clone(), args.shutdown_grace));
    wait_for_signal().await;
    tracing::info!("shutting down the sandbox bank");
    // Stalled and delayed replies end first, so graceful shutdown has nothing left to wait for.
    bank.close();
    shutdown.cancel();
    server.await.context("sandbox bank task panicked")?.context("sandbox bank failed")
}

/// `feedwatch keys create`: prints a new key once.
pub async fn create_key(
    args: &DatabaseArgs,
    role: Role,
    tenant_id: Option<uuid::Uuid>,
    label: &str,
) -> anyhow::Result<String> {
    let database = Database::open(args).await?;
    let key = NewKey::generate();
    let insert =
        auth::store::KeyInsert { id: key.id, secret_hash: &key.secret_hash, role, tenant_id, label, created_by: None };
    let result = auth::store::insert(&database.pool, &insert).await;
    database.close().await;
    result.context("storing the key")?;
    Ok(key.text.expose_secret().to_owned())
}

/// `feedwatch migrate`.
pub async fn run_migrate(args: &DatabaseArgs) -> anyhow::Result<()> {
    let database = Database::open(args).await?;
    database.close().await;
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
}
