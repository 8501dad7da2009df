//! Queries about the database itself: readiness, and creating the private cluster's database.

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

/// Whether the server has a database called `name`. Runs on a connection to another database
/// (the server's maintenance database), so it is not checked against our schema.
pub async fn database_exists(executor: impl PgExecutor<'_>, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
        .bind(name)
        .fetch_one(executor)
        .await
}

/// Creates the database `name`, a plain identifier we chose (names cannot be bound parameters).
pub async fn create_database(executor: impl PgExecutor<'_>, name: &str) -> Result<(), sqlx::Error> {
    executor.execute(format!("create database {name}").as_str()).await?;
    Ok(())
}

/// What the server is (a standby or a primary, and whether a new session of it may write), and
/// the backend process of this session. Asked of each server of a multi-host `DATABASE_URL`, and
/// of every new connection to one.
pub async fn server_role(executor: impl PgExecutor<'_>) -> Result<(super::hosts::ServerRole, i32), sqlx::Error> {
    let (in_recovery, read_only, backend_pid): (bool, bool, i32) =
        sqlx::query_as("select pg_is_in_recovery(), current_setting('transaction_read_only') = 'on', pg_backend_pid()")
            .fetch_one(executor)
            .await?;
    Ok((super::hosts::ServerRole { in_recovery, read_only }, backend_pid))
}

/// Which of `backend_pids` still serve a session of feedwatch on this server.
pub async fn live_sessions(executor: impl PgExecutor<'_>, backend_pids: &[i32]) -> Result<Vec<i32>, sqlx::Error> {
    sqlx::query_scalar("select pid from pg_stat_activity where pid = any($1) and application_name like 'feedwatch%'")
        .bind(backend_pids)
        .fetch_all(executor)
        .await
}

/// Ends feedwatch's own sessions among `backend_pids` on a server the pools left (a primary
/// turned read-only keeps them, `LISTEN`s included); returns how many ended. The termination is
/// an aggregate's filter, not a `where` condition: the planner orders conditions by cost, and a
/// cheap `pg_terminate_backend` would run before the others, on every session of the server.
pub async fn end_sessions(executor: impl PgExecutor<'_>, backend_pids: &[i32]) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity \
         where pid = any($1) and application_name like 'feedwatch%' and pid <> pg_backend_pid()",
    )
    .bind(backend_pids)
    .fetch_one(executor)
    .await
}
