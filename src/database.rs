//! The connection pool and the schema migrations embedded in the binary.

pub mod failover;
pub mod hosts;
pub mod reads;
pub mod store;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

/// Every migration under `migrations/`, compiled in.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Opens a pool without connecting yet: `serve` starts even while the database is down, and
/// `/readyz` says so until it comes back.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    Ok(single_host_pool(url.parse()?, max_connections))
}

/// The service's pool for `url`, and the [`Failover`](failover::Failover) that moves it (and the
/// pools made beside it) between the hosts of a multi-host URL. A URL with one host and no
/// `target_session_attrs` gives exactly [`pool`]'s pool and no failover.
pub async fn connect(url: &str, max_connections: u32) -> Result<(PgPool, Option<failover::Failover>), ConnectError> {
    match hosts::parse(url)? {
        hosts::DatabaseUrl::Single(options) => Ok((single_host_pool(*options, max_connections), None)),
        hosts::DatabaseUrl::Hosts { candidates, target } => {
            let failover = failover::Failover::start(candidates, target).await?;
            let pool = failover.pool("feedwatch", max_connections, API_ACQUIRE_TIMEOUT);
            Ok((pool, Some(failover)))
        }
    }
}

/// Why [`connect`] could not give a pool.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Url(#[from] hosts::UrlError),
    #[error(transparent)]
    NoHost(#[from] failover::NoHost),
}

/// A second pool beside `pool`: the same server and pool settings (the failover's checks
/// included), its own connections, size, acquire timeout and application name. A failover must
/// still [`adopt`](failover::Failover::adopt) it to move it.
pub fn companion(pool: &PgPool, application_name: &str, max_connections: u32, acquire_timeout: Duration) -> PgPool {
    let options = (*pool.connect_options()).clone().application_name(application_name);
    pool.options().clone().max_connections(max_connections).acquire_timeout(acquire_timeout).connect_lazy_with(options)
}

/// How long an API request waits for a connection before it answers 503.
const API_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

fn single_host_pool(options: PgConnectOptions, max_connections: u32) -> PgPool {
    pool_options(max_connections)
        .acquire_timeout(API_ACQUIRE_TIMEOUT)
        .connect_lazy_with(options.application_name("feedwatch"))
}

/// Options every pool of the service shares. No ping before each acquire: it is a round trip
/// (a wake-up of a backend and of the caller) on every request and every refresh, and sqlx pings
/// each connection when it is released anyway; a connection that broke in between fails the one
/// statement that meets it (a 503, or a refresh retried) and is not pooled again.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new().max_connections(max_connections).test_before_acquire(false)
}

/// Begins a transaction. Every transaction of the service begins here (clippy refuses
/// `Pool::begin` elsewhere): sqlx 0.8.6 counts a transaction as open only once `BEGIN` has
/// answered, so a caller dropped while it waits (a client that hung up) hands the pool a
/// connection still inside the transaction, where the next borrower's statements run and its own
/// `BEGIN` is ignored (sqlx issue #4393, fixed upstream after 0.9.0). Here the begin runs in a task
/// of its own, so it always finishes; a transaction whose caller is gone is dropped in that task,
/// which queues its rollback before the connection goes back to the pool.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    begin_in_task(pool, None).await
}

/// Begins a transaction with `statement` (`BEGIN` and its modes, one statement, so nothing can
/// run between the two), as cancel-safe as [`begin`].
pub async fn begin_with(pool: &PgPool, statement: &'static str) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    begin_in_task(pool, Some(statement)).await
}

#[allow(clippy::disallowed_methods)] // the one place that may call them: it makes them cancel-safe
async fn begin_in_task(
    pool: &PgPool,
    statement: Option<&'static str>,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    let begun = tokio::spawn(async move {
        match statement {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    });
    match begun.await {
        Ok(begun) => begun,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // The runtime is shutting down.
        Err(_) => Err(sqlx::Error::PoolClosed),
    }
}

/// Applies pending migrations. Safe on many replicas at once: sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// The newest migration this binary knows.
pub fn latest_known_migration() -> i64 {
    MIGRATOR.iter().map(|migration| migration.version).max().unwrap_or(0)
}

/// Whether an error says the database cannot be used right now (rather than that a statement
/// is wrong): a pool that timed out or closed, a connection refused or cut, and the server
/// shutting down (`57P01`), crashing (`57P02`), still starting or unable to connect (`57P03`),
/// out of connections (`53300`), any connection exception (class `08`), and a write refused
/// by a read-only server (`25006`: a demoted primary or a standby, met during a failover before
/// the pools move on). Such a failure is worth retrying shortly; the one answer to "is this an
/// outage?".
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "25006") || code.starts_with("08")
        }),
        _ => false,
    }
}

/// Whether PostgreSQL declined this attempt because of a concurrent one: a deadlock it broke
/// (`40P01`) or a serialization failure (`40001`). Not an outage and not a wrong request: the
/// same request is expected to succeed when tried again.
pub fn is_conflict(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.code().is_some_and(|code| matches!(code.as_ref(), "40P01" | "40001")))
}

/// Repeats `step` (one short statement over at most `batch` rows) until a round handles fewer,
/// so no statement holds many locks or runs long; returns the rows handled. How every retention
/// delete runs.
pub async fn in_batches<F, Fut>(batch: u64, mut step: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let done = step().await?;
        total += done;
        if done < batch {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_faulty_statements() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into())));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::Protocol("unexpected message".into())));
    }
}
