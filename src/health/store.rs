//! The only code that touches the health tallies and their delta log.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{FailingBySide, InstitutionCount, TallyRow};
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

/// A read-only transaction on one snapshot, so several reads of a summary agree. Takes the pool
/// because it begins the transaction it returns, with its isolation level in the `BEGIN` itself:
/// a separate `SET TRANSACTION` fails whenever anything ran in the transaction before it.
pub async fn snapshot(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    crate::database::begin_with(pool, "begin isolation level repeatable read, read only").await
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

/// The fleet's tally rows, pending deltas included.
pub async fn fleet_rows(executor: impl PgExecutor<'_>) -> Result<Vec<TallyRow>, sqlx::Error> {
    tally_rows(executor, None).await
}

/// One institution's tally rows, pending deltas included.
pub async fn institution_rows(
    executor: impl PgExecutor<'_>,
    institution_id: Uuid,
) -> Result<Vec<TallyRow>, sqlx::Error> {
    tally_rows(executor, Some(institution_id)).await
}

/// The fleet's tallies, or one institution's, with the pending deltas folded in. The tests on
/// `$1` are one-time filters, so each scope reads only its own tally table.
async fn tally_rows(executor: impl PgExecutor<'_>, institution_id: Option<Uuid>) -> Result<Vec<TallyRow>, sqlx::Error> {
    sqlx::query_as!(
        StoredTally,
        r#"select state as "state!", error_code as "error_code!", stale as "stale!", sum(connections)::bigint as "connections!"
           from (select state, error_code, stale, connections from health_tally where $1::uuid is null
                 union all
                 select state, error_code, stale, connections from institution_health_tally where institution_id = $1
                 union all
                 select state, error_code, stale, delta from health_delta
                 where $1::uuid is null or institution_id = $1) counted
           group by 1, 2, 3
           having sum(connections) <> 0"#,
        institution_id,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(TallyRow::try_from)
    .collect()
}

/// A tenant's rows (at one institution, if given), counted from its connections: a tenant's
/// fleet is small enough to count.
pub async fn tenant_rows(
    executor: impl PgExecutor<'_>,
    tenant_id: Uuid,
    institution_id: Option<Uuid>,
) -> Result<Vec<TallyRow>, sqlx::Error> {
    sqlx::query_as!(
        StoredTally,
        r#"select state, coalesce(error_code, 0) as "error_code!", stale, count(*) as "connections!"
           from connection where tenant_id = $1 and ($2::uuid is null or institution_id = $2)
           group by 1, 2, 3"#,
        tenant_id,
        institution_id,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(TallyRow::try_from)
    .collect()
}

/// The `limit` institutions with the most failing connections, pending deltas included.
///
/// Exact without reading every institution: an institution that is neither among the top
/// `limit + P` of the rolled-up ranking nor touched by one of the P institutions' pending deltas
/// cannot outrank the `limit` unchanged institutions above it.
pub async fn top_failing(executor: impl PgExecutor<'_>, limit: i64) -> Result<Vec<InstitutionCount>, sqlx::Error> {
    sqlx::query_as!(
        InstitutionCount,
        r#"with pending as (
               select institution_id, sum(delta)::bigint as connections,
                      coalesce(sum(delta) filter (where health_is_failing(state)), 0)::bigint as failing,
                      coalesce(sum(delta) filter (where stale), 0)::bigint as stale
               from health_delta group by 1
           ), candidates as (
               (select institution_id from institution_health
                order by failing desc, institution_id
                limit $1 + (select count(*) from pending))
               union
               select institution_id from pending
           ), counted as (
               select c.institution_id,
                      coalesce(h.connections, 0) + coalesce(p.connections, 0) as connections,
                      coalesce(h.failing, 0) + coalesce(p.failing, 0) as failing,
                      coalesce(h.stale, 0) + coalesce(p.stale, 0) as stale
               from candidates c
               left join institution_health h on h.institution_id = c.institution_id
               left join pending p on p.institution_id = c.institution_id
           )
           select counted.institution_id as "institution_id!", i.name, counted.connections as "connections!",
                  counted.failing as "failing!", counted.stale as "stale!"
           from counted join institution i on i.id = counted.institution_id
           where counted.failing > 0
           order by counted.failing desc, counted.institution_id
           limit $1"#,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// One institution's counts, pending deltas included; `None` when none of its connections fail.
pub async fn institution_count(
    executor: impl PgExecutor<'_>,
    institution_id: Uuid,
) -> Result<Option<InstitutionCount>, sqlx::Error> {
    sqlx::query_as!(
        InstitutionCount,
        r#"with counted as (
               select sum(connections)::bigint as connections, sum(failing)::bigint as failing,
                      sum(stale)::bigint as stale
               from (select connections, failing, stale from institution_health where institution_id = $1
                     union all
                     select delta, case when health_is_failing(state) then delta else 0 end,
                            case when stale then delta else 0 end
                     from health_delta where institution_id = $1) rows
           )
           select i.id as "institution_id!", i.name, counted.connections as "connections!",
                  counted.failing as "failing!", counted.stale as "stale!"
           from counted, institution i
           where i.id = $1 and counted.failing > 0"#,
        institution_id,
    )
    .fetch_optional(executor)
    .await
}

/// A tenant's institutions (or the one given) with the most failing connections, counted from
/// its connections.
pub async fn tenant_top_failing(
    executor: impl PgExecutor<'_>,
    tenant_id: Uuid,
    institution_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<InstitutionCount>, sqlx::Error> {
    sqlx::query_as!(
        InstitutionCount,
        r#"select c.institution_id, i.name, count(*) as "connections!",
                  count(*) filter (where health_is_failing(c.state)) as "failing!",
                  count(*) filter (where c.stale) as "stale!"
           from connection c join institution i on i.id = c.institution_id
           where c.tenant_id = $1 and ($2::uuid is null or c.institution_id = $2)
           group by c.institution_id, i.name
           having count(*) filter (where health_is_failing(c.state)) > 0
           order by 4 desc, c.institution_id
           limit $3"#,
        tenant_id,
        institution_id,
        limit,
    )
    .fetch_all(executor)
    .await
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
