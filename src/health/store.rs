//! The only code that touches the health tallies and their delta log.

mod summary;

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

pub use summary::{Summary, summary};

use super::{FailingBySide, TallyRow};
use crate::catalog::Code;

/// A tally row as the tables hold it: error code 0 means none.
#[derive(Debug)]
struct StoredTally {
    state: String,
    error_code: i32,
    stale: bool,
    connections: i64,
}

impl TryFrom<StoredTally> for TallyRow {
    type Error = sqlx::Error;

    fn try_from(row: StoredTally) -> Result<Self, sqlx::Error> {
        let error_code = match row.error_code {
            0 => None,
            code => Some(Code::try_from(code).map_err(|error| sqlx::Error::Decode(Box::new(error)))?),
        };
        Ok(Self { state: row.state, error_code, stale: row.stale, connections: row.connections })
    }
}

/// Folds every committed delta into the tallies in one statement. Returns the deltas moved, or
/// `None` when another replica is rolling up right now (the advisory lock keeps two rollups from
/// upserting the same tally rows in different orders). Takes the pool because it owns its
/// transaction: the advisory lock lasts until that commits, and no caller's work may hold it.
pub async fn rollup(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = crate::database::begin(pool).await?;
    let locked =
        sqlx::query_scalar!(r#"select pg_try_advisory_xact_lock(hashtext('feedwatch.health_rollup')) as "locked!""#)
            .fetch_one(&mut *tx)
            .await?;
    if !locked {
        return Ok(None);
    }
    let moved = sqlx::query_scalar!(
        r#"with moved as (
               delete from health_delta returning institution_id, state, error_code, stale, delta
           ), grouped as (
               select institution_id, state, error_code, stale, sum(delta)::bigint as delta
               from moved group by 1, 2, 3, 4
           ), fleet as (
               insert into health_tally as t (state, error_code, stale, connections)
               select state, error_code, stale, sum(delta)::bigint from grouped group by 1, 2, 3
               on conflict (state, error_code, stale) do update set connections = t.connections + excluded.connections
           ), per_institution as (
               insert into institution_health_tally as t (institution_id, state, error_code, stale, connections)
               select institution_id, state, error_code, stale, delta from grouped
               on conflict (institution_id, state, error_code, stale)
               do update set connections = t.connections + excluded.connections
           ), totals as (
               insert into institution_health as t (institution_id, connections, failing, stale)
               select institution_id, sum(delta)::bigint,
                      coalesce(sum(delta) filter (where health_is_failing(state)), 0)::bigint,
                      coalesce(sum(delta) filter (where stale), 0)::bigint
               from grouped group by 1
               on conflict (institution_id) do update set connections = t.connections + excluded.connections,
                   failing = t.failing + excluded.failing, stale = t.stale + excluded.stale
           )
           select count(*) as "moved!" from moved"#
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(moved))
}

/// The fleet's tally rows, pending deltas included (the metrics' read; the summary has its own).
pub async fn fleet_rows(executor: impl PgExecutor<'_>) -> Result<Vec<TallyRow>, sqlx::Error> {
    sqlx::query_as!(
        StoredTally,
        r#"select state as "state!", error_code as "error_code!", stale as "stale!", sum(connections)::bigint as "connections!"
           from (select state, error_code, stale, connections from health_tally
                 union all
                 select state, error_code, stale, delta from health_delta) counted
           group by 1, 2, 3
           having sum(connections) <> 0"#,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(TallyRow::try_from)
    .collect()
}

/// Institutions with failing connections, split by who must act (pending deltas included),
/// ranked bank side first: the list a helpdesk reads for outages.
pub async fn failing_by_side(executor: impl PgExecutor<'_>, limit: i64) -> Result<Vec<FailingBySide>, sqlx::Error> {
    sqlx::query_as!(
        FailingBySide,
        r#"with rows as (
               select institution_id, state, connections from institution_health_tally
               union all
               select institution_id, state, delta from health_delta
           ), counted as (
               select institution_id, sum(connections)::bigint as connections,
                      coalesce(sum(connections) filter (where state = 'bank_issue'), 0)::bigint as bank_side,
                      coalesce(sum(connections) filter (where state = 'needs_user_action'), 0)::bigint as user_side,
                      coalesce(sum(connections) filter (where state in ('provider_issue', 'degraded')), 0)::bigint as other
               from rows group by institution_id
           )
           select c.institution_id as "institution_id!", i.name, c.connections as "connections!",
                  c.bank_side as "bank_side!", c.user_side as "user_side!", c.other as "other!"
           from counted c join institution i on i.id = c.institution_id
           where c.bank_side + c.user_side + c.other > 0
           order by c.bank_side desc, c.other desc, c.user_side desc, c.institution_id
           limit $1"#,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// As [`failing_by_side`], counted from one tenant's connections.
pub async fn tenant_failing_by_side(
    executor: impl PgExecutor<'_>,
    tenant_id: Uuid,
    limit: i64,
) -> Result<Vec<FailingBySide>, sqlx::Error> {
    sqlx::query_as!(
        FailingBySide,
        r#"select c.institution_id as "institution_id!", i.name, count(*) as "connections!",
                  count(*) filter (where c.state = 'bank_issue') as "bank_side!",
                  count(*) filter (where c.state = 'needs_user_action') as "user_side!",
                  count(*) filter (where c.state in ('provider_issue', 'degraded')) as "other!"
           from connection c join institution i on i.id = c.institution_id
           where c.tenant_id = $1
           group by c.institution_id, i.name
           having count(*) filter (where health_is_failing(c.state)) > 0
           order by 4 desc, 6 desc, 5 desc, c.institution_id
           limit $2"#,
        tenant_id,
        limit,
    )
    .fetch_all(executor)
    .await
}
