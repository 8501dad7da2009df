//! The only code that touches the `console_session` table.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::auth::{Principal, Role};

pub async fn insert(
    executor: impl PgExecutor<'_>,
    id_hash: &[u8],
    key_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console_session (id_hash, key_id, expires_at) values ($1, $2, $3)",
        id_hash,
        key_id,
        expires_at,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// A live session's caller and clocks.
#[derive(Debug)]
pub struct LiveSession {
    pub principal: Principal,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The session if it has not expired, was seen after `idle_since`, and its key is not revoked.
pub async fn find_live(
    executor: impl PgExecutor<'_>,
    id_hash: &[u8],
    idle_since: DateTime<Utc>,
) -> Result<Option<LiveSession>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select s.key_id, k.role, k.tenant_id, s.last_seen_at, s.expires_at
           from console_session s join api_key k on k.id = s.key_id
           where s.id_hash = $1 and s.expires_at > now() and s.last_seen_at > $2 and k.revoked_at is null"#,
        id_hash,
        idle_since,
    )
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        let role =
            Role::parse(&row.role).ok_or_else(|| sqlx::Error::Decode(format!("unknown role `{}`", row.role).into()))?;
        Ok(LiveSession {
            principal: Principal { key_id: row.key_id, role, tenant_id: row.tenant_id },
            last_seen_at: row.last_seen_at,
            expires_at: row.expires_at,
        })
    })
    .transpose()
}

pub async fn touch(executor: impl PgExecutor<'_>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query!("update console_session set last_seen_at = now() where id_hash = $1", id_hash)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn delete(executor: impl PgExecutor<'_>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from console_session where id_hash = $1", id_hash).execute(executor).await?;
    Ok(())
}

/// Deletes sessions expired, or idle, since before `before`.
pub async fn prune(executor: impl PgExecutor<'_>, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("delete from console_session where expires_at < $1 or last_seen_at < $1", before,)
        .execute(executor)
        .await?;
    Ok(done.rows_affected())
}
