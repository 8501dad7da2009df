//! The connection pool and the schema migrations embedded in the binary.

pub mod store;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Every migration under `migrations/`, compiled in.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Opens a pool without connecting yet: `serve` starts even while the database is down, and
/// `/readyz` says so until it comes back.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options.application_name("feedwatch")))
}

/// Applies pending migrations. Safe on many replicas at once: sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// The newest migration this binary knows.
pub fn latest_known_migration() -> i64 {
    MIGRATOR.iter().map(|migration| migration.version).max().unwrap_or(0)
}
