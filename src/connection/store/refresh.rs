//! What refreshes read and schedule: connections' refresh targets, due scheduled refreshes,
//! a new connection's first slot.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::connection::*;

/// What a refresh needs to reach the bank.
#[derive(Debug, Clone)]
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

/// The targets of the connections among `ids` that exist, each beside its id; a row whose state
/// is unknown is an error for that connection alone. One statement for many refreshes, not the
/// connections' full views: refreshes starting together read their targets at once
/// (`refresh::reader`).
pub async fn refresh_targets(
    executor: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Result<RefreshTarget, sqlx::Error>)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select c.id, c.tenant_id, c.institution_id, c.failure_streak, c.state, c.last_success_at,
                  c.credentials_sealed, c.credentials_key_id,
                  array(select a.provider_ref from account a
                        where a.connection_id = c.id and a.provider_ref is not null
                        order by a.created_at, a.id) as "known_accounts!"
           from connection c where c.id = any($1)"#,
        ids
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let target = State::parse(&row.state)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown connection state `{}`", row.state).into()))
                .map(|state| RefreshTarget {
                    id: row.id,
                    tenant_id: row.tenant_id,
                    institution_id: row.institution_id,
                    failure_streak: row.failure_streak,
                    state,
                    last_success_at: row.last_success_at,
                    sealed: row.credentials_sealed,
                    key_id: row.credentials_key_id,
                    known_accounts: row.known_accounts,
                });
            (row.id, target)
        })
        .collect())
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
