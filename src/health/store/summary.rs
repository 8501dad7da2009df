//! `/v1/health/summary` as one statement per scope: the tallies, the failing institutions, the
//! queue and the open incidents. One statement reads one snapshot, so the parts agree without a
//! repeatable-read transaction, whose `BEGIN`, `COMMIT` and one round trip per part cost the
//! summary seven round trips with sqlx's release ping, where it now pays two (bench/README.md,
//! #17 session 11).
//!
//! The rows that vary in number come back as arrays of records, one column each. The queue's
//! backlog is the queue's own view (`job_backlog`, defined by its migration), read only when
//! `with_queue`: it sits in a `case`, whose sub-select PostgreSQL runs only when that branch is
//! taken.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::StoredTally;
use crate::health::{InstitutionCount, QueueBacklog, Scope, TallyRow};

/// What a summary shows, from one snapshot.
#[derive(Debug)]
pub struct Summary {
    pub rows: Vec<TallyRow>,
    /// Most failing first.
    pub failing: Vec<InstitutionCount>,
    /// Present when asked for.
    pub queue: Option<QueueBacklog>,
    pub open_incidents: i64,
}

/// A tally row as a record: state, error code (0 for none), stale, connections.
type TallyRecord = (String, i32, bool, i64);
/// An institution in the ranking as a record: id, name, connections, failing, stale.
type FailingRecord = (Uuid, String, i64, i64, i64);
/// The queue as a record: available, due, running, age of the oldest due job in seconds.
type QueueRecord = (i64, i64, i64, Option<f64>);

/// The summary of `scope` (a tenant's optionally narrowed to `institution_id`, whose open
/// incidents are then the institution's), ranking at most `top` institutions.
pub async fn summary(
    executor: impl PgExecutor<'_>,
    scope: Scope,
    institution_id: Option<Uuid>,
    top: i64,
    with_queue: bool,
) -> Result<Summary, sqlx::Error> {
    let (tallies, failing, queue, open_incidents) = match scope {
        Scope::Fleet => {
            let row = fleet_summary(executor, top, with_queue).await?;
            (row.tallies, row.failing, row.queue, row.open_incidents)
        }
        Scope::Institution(institution) => {
            let row = institution_summary(executor, institution, with_queue).await?;
            (row.tallies, row.failing, row.queue, row.open_incidents)
        }
        Scope::Tenant(tenant) => {
            let row = tenant_summary(executor, tenant, institution_id, top, with_queue).await?;
            (row.tallies, row.failing, row.queue, row.open_incidents)
        }
    };
    Ok(Summary {
        rows: tallies
            .into_iter()
            .map(|(state, error_code, stale, connections)| {
                TallyRow::try_from(StoredTally { state, error_code, stale, connections })
            })
            .collect::<Result<_, _>>()?,
        failing: failing
            .into_iter()
            .map(|(institution_id, name, connections, failing, stale)| InstitutionCount {
                institution_id,
                name,
                connections,
                failing,
                stale,
            })
            .collect(),
        queue: queue.map(|(available, due, running, oldest_due_seconds)| QueueBacklog {
            available,
            due,
            running,
            oldest_due_seconds,
        }),
        open_incidents,
    })
}

/// The columns every scope's statement answers.
struct Row {
    tallies: Vec<TallyRecord>,
    failing: Vec<FailingRecord>,
    queue: Option<QueueRecord>,
    open_incidents: i64,
}

/// The fleet: the tallies and the ranking with the pending deltas folded in. The ranking is
/// exact without reading every institution: an institution that is neither among the top
/// `top + P` of the rolled-up ranking nor touched by one of the P institutions' pending deltas
/// cannot outrank the `top` unchanged institutions above it.
async fn fleet_summary(executor: impl PgExecutor<'_>, top: i64, with_queue: bool) -> Result<Row, sqlx::Error> {
    sqlx::query_as!(
        Row,
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
           ), ranked as (
               select counted.institution_id, i.name, counted.connections, counted.failing, counted.stale
               from counted join institution i on i.id = counted.institution_id
               where counted.failing > 0
               order by counted.failing desc, counted.institution_id
               limit $1
           ), tallies as (
               select state, error_code, stale, sum(connections)::bigint as connections
               from (select state, error_code, stale, connections from health_tally
                     union all
                     select state, error_code, stale, delta from health_delta) counted
               group by 1, 2, 3
               having sum(connections) <> 0
           )
           select array(select row(state, error_code, stale, connections) from tallies) as "tallies!: Vec<TallyRecord>",
                  array(select row(institution_id, name, connections, failing, stale) from ranked
                        order by failing desc, institution_id) as "failing!: Vec<FailingRecord>",
                  case when $2::boolean then
                      (select row(available, due, running, oldest_due_seconds) from job_backlog)
                  end as "queue: QueueRecord",
                  (select count(*) from incident where state = 'open') as "open_incidents!""#,
        top,
        with_queue,
    )
    .fetch_one(executor)
    .await
}

/// One institution: its tallies with its pending deltas, and its own line of the ranking when
/// any of its connections fail.
async fn institution_summary(
    executor: impl PgExecutor<'_>,
    institution_id: Uuid,
    with_queue: bool,
) -> Result<Row, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"with counted as (
               select sum(connections)::bigint as connections, sum(failing)::bigint as failing,
                      sum(stale)::bigint as stale
               from (select connections, failing, stale from institution_health where institution_id = $1
                     union all
                     select delta, case when health_is_failing(state) then delta else 0 end,
                            case when stale then delta else 0 end
                     from health_delta where institution_id = $1) rows
           ), tallies as (
               select state, error_code, stale, sum(connections)::bigint as connections
               from (select state, error_code, stale, connections from institution_health_tally
                     where institution_id = $1
                     union all
                     select state, error_code, stale, delta from health_delta where institution_id = $1) counted
               group by 1, 2, 3
               having sum(connections) <> 0
           )
           select array(select row(state, error_code, stale, connections) from tallies) as "tallies!: Vec<TallyRecord>",
                  array(select row(i.id, i.name, counted.connections, counted.failing, counted.stale)
                        from counted, institution i
                        where i.id = $1 and counted.failing > 0) as "failing!: Vec<FailingRecord>",
                  case when $2::boolean then
                      (select row(available, due, running, oldest_due_seconds) from job_backlog)
                  end as "queue: QueueRecord",
                  (select count(*) from incident where state = 'open' and institution_id = $1) as "open_incidents!""#,
        institution_id,
        with_queue,
    )
    .fetch_one(executor)
    .await
}

/// A tenant's connections (at one institution, if given), counted: a tenant's fleet is small
/// enough to count.
async fn tenant_summary(
    executor: impl PgExecutor<'_>,
    tenant_id: Uuid,
    institution_id: Option<Uuid>,
    top: i64,
    with_queue: bool,
) -> Result<Row, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"with tallies as (
               select state, coalesce(error_code, 0) as error_code, stale, count(*) as connections
               from connection where tenant_id = $1 and ($2::uuid is null or institution_id = $2)
               group by 1, 2, 3
           ), ranked as (
               select c.institution_id, i.name, count(*) as connections,
                      count(*) filter (where health_is_failing(c.state)) as failing,
                      count(*) filter (where c.stale) as stale
               from connection c join institution i on i.id = c.institution_id
               where c.tenant_id = $1 and ($2::uuid is null or c.institution_id = $2)
               group by c.institution_id, i.name
               having count(*) filter (where health_is_failing(c.state)) > 0
               order by 4 desc, c.institution_id
               limit $3
           )
           select array(select row(state, error_code, stale, connections) from tallies) as "tallies!: Vec<TallyRecord>",
                  array(select row(institution_id, name, connections, failing, stale) from ranked
                        order by failing desc, institution_id) as "failing!: Vec<FailingRecord>",
                  case when $4::boolean then
                      (select row(available, due, running, oldest_due_seconds) from job_backlog)
                  end as "queue: QueueRecord",
                  (select count(*) from incident
                   where state = 'open' and ($2::uuid is null or institution_id = $2)) as "open_incidents!""#,
        tenant_id,
        institution_id,
        top,
        with_queue,
    )
    .fetch_one(executor)
    .await
}
