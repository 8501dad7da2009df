//! A connection's timeline (`connection_event`): appended by every change, read oldest first.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::connection::*;

pub async fn insert_event(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    kind: &str,
    detail: &serde_json::Value,
    by: ChangedBy,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into connection_event (id, connection_id, kind, detail, actor_key_id, actor_role)
           values ($1, $2, $3, $4, $5, $6)"#,
        // Time-ordered ids break ties between events of the same instant.
        Uuid::now_v7(),
        connection_id,
        kind,
        detail,
        by.key_id,
        by.role,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// One page of a connection's timeline, oldest first.
pub async fn events(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        Event,
        r#"select id, connection_id, kind, detail, actor_key_id, actor_role, occurred_at
           from connection_event
           where connection_id = $1 and ($2::timestamptz is null or (occurred_at, id) > ($2, $3::uuid))
           order by occurred_at, id
           limit $4"#,
        connection_id,
        after_time,
        after_id,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// The newest `limit` events of a connection, newest first: what a helpdesk reads first.
pub async fn recent_events(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as!(
        Event,
        r#"select id, connection_id, kind, detail, actor_key_id, actor_role, occurred_at
           from connection_event
           where connection_id = $1
           order by occurred_at desc, id desc
           limit $2"#,
        connection_id,
        limit,
    )
    .fetch_all(executor)
    .await
}
