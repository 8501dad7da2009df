//! The only code that touches `statement_import` and `import_held_duplicate`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{DuplicateState, Format};

pub async fn insert_import(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    connection_id: Uuid,
    file_sha256: &[u8],
    format: Format,
    report: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into statement_import (id, connection_id, file_sha256, format, report) values ($1, $2, $3, $4, $5)",
        id,
        connection_id,
        file_sha256,
        format.as_str(),
        report,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// The stored report of an import and its connection.
pub async fn report(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<(Uuid, serde_json::Value)>, sqlx::Error> {
    let row = sqlx::query!("select connection_id, report from statement_import where id = $1", id)
        .fetch_optional(executor)
        .await?;
    Ok(row.map(|row| (row.connection_id, row.report)))
}

/// A held row, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub id: Uuid,
    pub import_id: Uuid,
    pub account_id: Uuid,
    pub line: i32,
    pub fitid: Option<String>,
    pub synthetic_key: String,
    pub posted_at: DateTime<Utc>,
    pub amount: Decimal,
    pub currency: String,
    pub name: String,
    pub memo: String,
    pub check_number: String,
    pub resembles: Uuid,
    pub state: String,
}

pub async fn insert_held(conn: &mut PgConnection, rows: &[Held]) -> Result<(), sqlx::Error> {
    for row in rows {
        sqlx::query!(
            r#"insert into import_held_duplicate (id, import_id, account_id, line, fitid, synthetic_key, posted_at, amount,
                                                  currency, name, memo, check_number, resembles)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"#,
            row.id,
            row.import_id,
            row.account_id,
            row.line,
            row.fitid,
            row.synthetic_key,
            row.posted_at,
            row.amount,
            row.currency,
            row.name,
            row.memo,
            row.check_number,
            row.resembles,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The held row, locked for a decision.
pub async fn held_for_update(conn: &mut PgConnection, import_id: Uuid, id: Uuid) -> Result<Option<Held>, sqlx::Error> {
    sqlx::query_as!(
        Held,
        r#"select id, import_id, account_id, line, fitid, synthetic_key, posted_at, amount, currency, name, memo,
                  check_number, resembles, state
           from import_held_duplicate where import_id = $1 and id = $2 for update"#,
        import_id,
        id,
    )
    .fetch_optional(&mut *conn)
    .await
}

pub async fn held_of_import(executor: impl PgExecutor<'_>, import_id: Uuid) -> Result<Vec<Held>, sqlx::Error> {
    sqlx::query_as!(
        Held,
        r#"select id, import_id, account_id, line, fitid, synthetic_key, posted_at, amount, currency, name, memo,
                  check_number, resembles, state
           from import_held_duplicate where import_id = $1 order by line, id"#,
        import_id,
    )
    .fetch_all(executor)
    .await
}

pub async fn decide(executor: impl PgExecutor<'_>, id: Uuid, state: DuplicateState) -> Result<(), sqlx::Error> {
    sqlx::query!("update import_held_duplicate set state = $2, decided_at = now() where id = $1", id, state.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

/// Marks where a statement imported on trust begins (`import::matching`), so it can be undone
/// if the file turns out to hold another.
pub async fn savepoint(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("savepoint import_statement").execute(conn).await?;
    Ok(())
}

pub async fn rollback_to_savepoint(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("rollback to savepoint import_statement").execute(conn).await?;
    Ok(())
}
