//! What refreshes read and schedule: a connection's refresh target, due scheduled refreshes,
//! a new connection's first slot.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::connection::*;

/// What a refresh needs to reach the bank.
#[derive(Debug)]
pub struct RefreshTarget {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub institution_id: Uuid,
    /// Failed refreshes since the last success: a success after any is a repair.
    pub failure_streak: i32,
    pub state: State,
    pub last_success_at: Option<DateTime<Utc>>,
    pub sealed: Vec<u8>,
    pub key_id: String,
    /// The provider references of the accounts the bank listed last time.
    pub known_accounts: Vec<serde_json::Value>,
}

/// One query, not the connection's full view: this runs once per refresh.
pub async fn refresh_target(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<RefreshTarget>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"select c.id, c.tenant_id, c.institution_id, c.failure_streak, c.state, c.last_success_at,
                  c.credentials_sealed, c.credentials_key_id,
                  array(select a.provider_ref from account a
                        where a.connection_id = c.id and a.provider_ref is not null
                        order by a.created_at, a.id) as "known_accounts!"
           from connection c where c.id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    let state = State::parse(&row.state)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown connection state `{}`", row.state).into()))?;
    Ok(Some(RefreshTarget {
        id: row.id,
        tenant_id: row.tenant_id,
        institution_id: row.institution_id,
        failure_streak: row.failure_streak,
        state,
        last_success_at: row.last_success_at,
        sealed: row.credentials_sealed,
        key_id: row.credentials_key_id,
        known_accounts: row.known_accounts,
    }))
}

/// Claims connections whose scheduled refresh is due and moves their next refresh one interval
/// on, in the caller's transaction (which also enqueues their jobs): on many replicas each due
/// refresh is taken exactly once, and a crash before commit loses none.
/// Only connections in one of `states` (the lifecycle says which states are refreshed on a
/// schedule) are taken.
pub async fn take_due(
    executor: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    limit: i64,
    states: &[State],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let states: Vec<&str> = states.iter().map(|state| state.as_str()).collect();
    sqlx::query_scalar!(
        r#"update connection c set next_refresh_at = $1 + make_interval(secs => c.refresh_every_seconds)
           from (select id from connection
                 where next_refresh_at <= $1 and not paused and state = any($3)
                 order by next_refresh_at limit $2 for update skip locked) due
           where c.id = due.id
           returning c.id"#,
        now,
        limit,
        &states as &[&str],
    )
    .fetch_all(executor)
    .await
}

/// Gives a connection its first scheduled refresh somewhere within one interval, so a fleet
/// created at once does not refresh at once.
pub async fn schedule_first_refresh(executor: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update connection set next_refresh_at = now() + make_interval(secs => refresh_every_seconds * random())
           where id = $1 and next_refresh_at is null"#,
        id
    )
    .execute(executor)
    .await?;
    Ok(())
}
