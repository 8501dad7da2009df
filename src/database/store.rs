//! Queries about the database itself, for readiness.

use sqlx::PgExecutor;

/// The newest successfully applied migration, or None when migrations never ran here.
pub async fn latest_applied_migration(executor: impl PgExecutor<'_>) -> Result<Option<i64>, sqlx::Error> {
    let result =
        sqlx::query_scalar!(r#"select max(version) from _sqlx_migrations where success"#).fetch_one(executor).await;
    match result {
        Ok(version) => Ok(version),
        // 42P01 undefined_table: no migration has ever run against this database.
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => Ok(None),
        Err(error) => Err(error),
    }
}
