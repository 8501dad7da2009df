//! The refresh workers' wiring: their settings, their own database pool, and the job kinds
//! (refreshes, webhook deliveries) they run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;

use crate::catalog::CatalogHandle;
use crate::config::WorkerArgs;
use crate::connection::Sealer;
use crate::database;
use crate::jobs::worker::{PoolConfig, Registration, WorkerPool};
use crate::provider::{DirectConnect, DirectConnectOptions};
use crate::refresh::bulkhead::Bulkheads;
use crate::refresh::{self, RefreshHandler, Refresher};
use crate::telemetry::Metrics;
use crate::webhook::{self, deliver::DeliveryHandler};

/// The refresh workers of an instance.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// 0 runs no worker pool (API-only replicas, and tests that drive jobs by hand).
    pub concurrency: usize,
    pub db_connections: u32,
    pub lease: Duration,
    pub refresh_timeout: Duration,
    pub sandbox_url: Option<String>,
    pub incidents: crate::incident::Rules,
    pub stale_after: Duration,
    /// Jobs claimed ahead of the free slots (the floor, when it adapts).
    pub prefetch: usize,
    /// Above `prefetch`, the buffer adapts to observed handler and claim times up to this many
    /// (`jobs::pace`); the default unless a prefetch is configured, which is then fixed.
    pub prefetch_ceiling: usize,
    /// Claim and completion statements in flight at once.
    pub statements_in_flight: usize,
    /// Refreshes of one institution this instance runs at once.
    pub institution_concurrency: usize,
    /// Longest one exchange with a bank may take; shorter than the lease and the refresh timeout.
    pub bank_timeout: Duration,
    /// When a connection whose refreshes succeed counts as stalled.
    pub stalls: crate::feed::stall::Rules,
}

impl WorkerSettings {
    pub fn from_args(args: &WorkerArgs) -> Self {
        Self {
            concurrency: args.workers,
            db_connections: args.worker_db_connections,
            lease: args.worker_lease,
            refresh_timeout: args.refresh_timeout,
            sandbox_url: args.sandbox_url.clone(),
            incidents: args.incidents.rules(),
            stale_after: args.stale_after,
            prefetch: args.worker_prefetch.unwrap_or(args.workers / 4),
            prefetch_ceiling: if args.worker_prefetch.is_some() { 0 } else { crate::jobs::pace::PREFETCH_CEILING },
            statements_in_flight: usize::from(args.worker_statements_in_flight),
            institution_concurrency: usize::from(args.institution_concurrency),
            bank_timeout: args.bank_timeout,
            stalls: crate::feed::stall::Rules::with_floor(args.stall_floor),
        }
    }
}

/// A worker pool that refreshes connections, on a database pool of its own so refreshes cannot
/// starve the API's connections. Its webhook deliveries use the default settings (public hosts
/// only); [`worker_pool_with`] takes configured ones.
pub fn worker_pool(
    pool: &PgPool,
    sealer: &Arc<Sealer>,
    catalog: &CatalogHandle,
    settings: &WorkerSettings,
    shutdown_grace: Duration,
) -> anyhow::Result<WorkerPool> {
    worker_pool_with(pool, sealer, catalog, settings, &webhook::Settings::default(), shutdown_grace, &Metrics::new())
}

/// A worker pool that refreshes connections and delivers webhooks.
pub fn worker_pool_with(
    pool: &PgPool,
    sealer: &Arc<Sealer>,
    catalog: &CatalogHandle,
    settings: &WorkerSettings,
    webhooks: &webhook::Settings,
    shutdown_grace: Duration,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<WorkerPool> {
    anyhow::ensure!(
        settings.bank_timeout < settings.lease && settings.bank_timeout < settings.refresh_timeout,
        "FEEDWATCH_BANK_TIMEOUT ({:?}) must be shorter than FEEDWATCH_WORKER_LEASE ({:?}) and \
         FEEDWATCH_REFRESH_TIMEOUT ({:?}), so a bank that stalls fails the refresh (and counts towards \
         an incident) before the job is given up",
        settings.bank_timeout,
        settings.lease,
        settings.refresh_timeout
    );
    let worker_db =
        database::companion(pool, "feedwatch-worker", settings.db_connections.max(2), Duration::from_secs(10));
    let refresher = Refresher {
        pool: worker_db.clone(),
        sealer: Arc::clone(sealer),
        provider: DirectConnect::new(
            DirectConnectOptions { timeout: settings.bank_timeout, ..Default::default() },
            catalog.clone(),
        )
        .context("building the HTTP client")?,
        catalog: catalog.clone(),
        sandbox_url: settings.sandbox_url.clone(),
        incidents: settings.incidents.clone(),
        metrics: Arc::clone(metrics),
        bulkheads: Bulkheads::new(settings.institution_concurrency),
        stalls: settings.stalls,
        reader: refresh::Reader::default(),
        writer: refresh::Writer::default(),
    };
    let registration = Registration {
        handler: Arc::new(RefreshHandler(Arc::new(refresher))),
        timeout: settings.refresh_timeout,
        backoff: refresh::BACKOFF,
    };
    let deliverer =
        webhook::deliver::Deliverer::new(worker_db.clone(), Arc::clone(sealer), webhooks.clone(), Arc::clone(metrics))
            .context("building the webhook HTTP client")?;
    let deliveries = Registration {
        handler: Arc::new(DeliveryHandler(Arc::new(deliverer))),
        // The client's own timeout ends an attempt first; this is the backstop.
        timeout: webhooks.timeout + Duration::from_secs(10),
        backoff: webhook::deliver::BACKOFF,
    };
    let mut config = PoolConfig::new(settings.concurrency.max(1));
    config.lease = settings.lease;
    config.shutdown_grace = shutdown_grace;
    config.prefetch = settings.prefetch;
    config.prefetch_ceiling = settings.prefetch_ceiling;
    config.claims_in_flight = settings.statements_in_flight.max(1);
    config.completions_in_flight = settings.statements_in_flight.max(1);
    Ok(WorkerPool::new(worker_db, config)
        .register(refresh::KIND, registration)
        .register(webhook::deliver::KIND, deliveries))
}
