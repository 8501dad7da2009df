//! The only code that touches the `incident` and `refresh_outcome` tables.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::catalog::Code;
use crate::institution::InstitutionRef;

use super::{Incident, IncidentState, NewIncident, RefreshOutcome, Source, WindowCounts};

struct Row {
    id: Uuid,
    institution_id: Uuid,
    institution_name: String,
    state: String,
    source: String,
    title: String,
    message: String,
    error_code: Option<i32>,
    failed_connections: i32,
    attempted_connections: i32,
    wait_until: DateTime<Utc>,
    opened_at: DateTime<Utc>,
    opened_by: Option<Uuid>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<Uuid>,
    resolution: String,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn into_incident(self) -> Result<Incident, sqlx::Error> {
        let decode = |what: &str, text: &str| sqlx::Error::Decode(format!("unknown incident {what} `{text}`").into());
        Ok(Incident {
            state: IncidentState::parse(&self.state).ok_or_else(|| decode("state", &self.state))?,
            source: Source::parse(&self.source).ok_or_else(|| decode("source", &self.source))?,
            id: self.id,
            institution: InstitutionRef { id: self.institution_id, name: self.institution_name },
            title: self.title,
            message: self.message,
            error_code: self
                .error_code
                .map(Code::try_from)
                .transpose()
                .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
            failed_connections: self.failed_connections,
            attempted_connections: self.attempted_connections,
            wait_until: self.wait_until,
            opened_at: self.opened_at,
            opened_by: self.opened_by,
            resolved_at: self.resolved_at,
            resolved_by: self.resolved_by,
            resolution: self.resolution,
            updated_at: self.updated_at,
        })
    }
}

/// Records refresh outcomes and returns their institutions' open incidents, in one round trip:
/// every refresh does both.
pub async fn record_outcomes(
    executor: impl PgExecutor<'_>,
    outcomes: &[RefreshOutcome],
) -> Result<Vec<Incident>, sqlx::Error> {
    let codes = outcomes
        .iter()
        .map(|outcome| outcome.failure.map(|failure| i32::try_from(failure.code)).transpose())
        .collect::<Result<Vec<Option<i32>>, _>>()
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    let institutions: Vec<Uuid> = outcomes.iter().map(|outcome| outcome.institution_id).collect();
    let connections: Vec<Uuid> = outcomes.iter().map(|outcome| outcome.connection_id).collect();
    let at: Vec<DateTime<Utc>> = outcomes.iter().map(|outcome| outcome.at).collect();
    let succeeded: Vec<bool> = outcomes.iter().map(|outcome| outcome.failure.is_none()).collect();
    let bank_side: Vec<bool> =
        outcomes.iter().map(|outcome| outcome.failure.is_some_and(|failure| failure.bank_side)).collect();
    // A data-modifying CTE runs exactly once whether or not the query reads it; the open
    // incidents are read from the statement's snapshot, which the insert does not change.
    sqlx::query_as!(
        Row,
        r#"with recorded as (
               insert into refresh_outcome (institution_id, connection_id, occurred_at, succeeded, bank_side, error_code)
               select * from unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::bool[], $5::bool[], $6::int[])
           )
           select o.id, o.institution_id, i.name as institution_name, o.state, o.source, o.title, o.message,
                  o.error_code, o.failed_connections, o.attempted_connections, o.wait_until, o.opened_at,
                  o.opened_by, o.resolved_at, o.resolved_by, o.resolution, o.updated_at
           from incident o join institution i on i.id = o.institution_id
           where o.institution_id = any($1) and o.state = 'open'"#,
        &institutions,
        &connections,
        &at,
        &succeeded,
        &bank_side,
        &codes as &[Option<i32>],
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(Row::into_incident)
    .collect()
}

/// Distinct connections attempted and failed bank-side since `since`, and the commonest code.
pub async fn window_counts(
    executor: impl PgExecutor<'_>,
    institution_id: Uuid,
    since: DateTime<Utc>,
) -> Result<WindowCounts, sqlx::Error> {
    let row = sqlx::query!(
        r#"select count(distinct connection_id) as "attempted!",
                  count(distinct connection_id) filter (where bank_side) as "failed!",
                  mode() within group (order by error_code) filter (where bank_side) as top_code
           from refresh_outcome
           where institution_id = $1 and occurred_at >= $2"#,
        institution_id,
        since,
    )
    .fetch_one(executor)
    .await?;
    let top_code =
        row.top_code.map(Code::try_from).transpose().map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    Ok(WindowCounts { attempted: row.attempted, failed: row.failed, top_code })
}

/// Distinct connections that succeeded after the institution's last bank-side failure (counted
/// from `since` when there was none after it).
pub async fn successes_since_last_bank_failure(
    executor: impl PgExecutor<'_>,
    institution_id: Uuid,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(distinct connection_id) as "count!" from refresh_outcome
           where institution_id = $1 and succeeded
             and occurred_at > coalesce((select max(occurred_at) from refresh_outcome
                                         where institution_id = $1 and bank_side and occurred_at >= $2), $2)"#,
        institution_id,
        since,
    )
    .fetch_one(executor)
    .await
}

/// Refresh attempts and successes of an institution since each instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub attempts_1h: i64,
    pub successes_1h: i64,
    pub attempts_24h: i64,
    pub successes_24h: i64,
}

pub async fn rates(
    executor: impl PgExecutor<'_>,
    institution_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Rates, sqlx::Error> {
    let row = sqlx::query!(
        r#"select count(*) filter (where occurred_at >= $2::timestamptz - interval '1 hour') as "attempts_1h!",
                  count(*) filter (where occurred_at >= $2::timestamptz - interval '1 hour' and succeeded) as "successes_1h!",
                  count(*) as "attempts_24h!",
                  count(*) filter (where succeeded) as "successes_24h!"
           from refresh_outcome
           where institution_id = $1 and occurred_at >= $2::timestamptz - interval '24 hours' and occurred_at <= $2"#,
        institution_id,
        now,
    )
    .fetch_one(executor)
    .await?;
    Ok(Rates {
        attempts_1h: row.attempts_1h,
        successes_1h: row.successes_1h,
        attempts_24h: row.attempts_24h,
        successes_24h: row.successes_24h,
    })
}

/// Refresh attempts and successes of one institution in one hour of the last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyOutcomes {
    pub institution_id: Uuid,
    /// 0 is the hour ending `now`, 23 the one a day ago.
    pub hours_ago: i32,
    pub attempts: i64,
    pub successes: i64,
}

/// The last 24 hours of outcomes of these institutions, by hour; hours without attempts are absent.
pub async fn hourly_outcomes(
    executor: impl PgExecutor<'_>,
    institution_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<HourlyOutcomes>, sqlx::Error> {
    sqlx::query_as!(
        HourlyOutcomes,
        r#"select institution_id as "institution_id!",
                  least(floor(extract(epoch from ($2::timestamptz - occurred_at)) / 3600), 23)::int as "hours_ago!",
                  count(*) as "attempts!", count(*) filter (where succeeded) as "successes!"
           from refresh_outcome
           where institution_id = any($1) and occurred_at > $2::timestamptz - interval '24 hours' and occurred_at <= $2
           group by 1, 2"#,
        institution_ids,
        now,
    )
    .fetch_all(executor)
    .await
}

/// Deletes outcomes older than `before`, a batch per statement.
pub async fn prune_outcomes(
    executor: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let outcome = sqlx::query!(
        r#"delete from refresh_outcome where ctid = any(array(
               select ctid from refresh_outcome where occurred_at < $1 limit $2))"#,
        before,
        batch,
    )
    .execute(executor)
    .await?;
    Ok(outcome.rows_affected())
}

/// Opens an incident unless the institution has one open already (then `None`).
pub async fn open(conn: &mut PgConnection, new: &NewIncident) -> Result<Option<Incident>, sqlx::Error> {
    let opened = sqlx::query_scalar!(
        r#"insert into incident (id, institution_id, source, title, message, error_code, failed_connections,
                                 attempted_connections, wait_until, opened_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           on conflict (institution_id) where state = 'open' do nothing
           returning id"#,
        Uuid::now_v7(),
        new.institution_id,
        new.source.as_str(),
        new.title,
        new.message,
        new.error_code.map(i32::try_from).transpose().map_err(|error| sqlx::Error::Encode(Box::new(error)))?,
        new.failed_connections,
        new.attempted_connections,
        new.wait_until,
        new.opened_by,
    )
    .fetch_optional(&mut *conn)
    .await?;
    read_back(conn, opened).await
}

pub async fn open_for(executor: impl PgExecutor<'_>, institution_id: Uuid) -> Result<Option<Incident>, sqlx::Error> {
    let only_open =
        Selection { state: Some(IncidentState::Open), institution_id: Some(institution_id), ..Selection::one() };
    Ok(select(executor, &only_open).await?.pop())
}

pub async fn get(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Incident>, sqlx::Error> {
    Ok(select(executor, &Selection { id: Some(id), ..Selection::one() }).await?.pop())
}

/// Newest first; `after` is the last (opened_at, id) of the previous page.
pub async fn list(
    executor: impl PgExecutor<'_>,
    state: Option<IncidentState>,
    institution_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Incident>, sqlx::Error> {
    select(executor, &Selection { id: None, state, institution_id, after, limit }).await
}

/// Which incidents to read; a `None` filter lets every value through.
struct Selection {
    id: Option<Uuid>,
    state: Option<IncidentState>,
    institution_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
}

impl Selection {
    fn one() -> Self {
        Self { id: None, state: None, institution_id: None, after: None, limit: 1 }
    }
}

/// The one read of incidents with their institution's name: every other read and every write's
/// answer goes through it, so the row's shape is written once.
async fn select(executor: impl PgExecutor<'_>, selection: &Selection) -> Result<Vec<Incident>, sqlx::Error> {
    let (after_time, after_id) = selection.after.unzip();
    sqlx::query_as!(
        Row,
        r#"select o.id, o.institution_id, i.name as institution_name, o.state, o.source, o.title, o.message,
                  o.error_code, o.failed_connections, o.attempted_connections, o.wait_until, o.opened_at,
                  o.opened_by, o.resolved_at, o.resolved_by, o.resolution, o.updated_at
           from incident o join institution i on i.id = o.institution_id
           where ($1::uuid is null or o.id = $1)
             and ($2::text is null or o.state = $2)
             and ($3::uuid is null or o.institution_id = $3)
             and ($4::timestamptz is null or (o.opened_at, o.id) < ($4, $5::uuid))
           order by o.opened_at desc, o.id desc
           limit $6"#,
        selection.id,
        selection.state.map(IncidentState::as_str),
        selection.institution_id,
        after_time,
        after_id,
        selection.limit,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(Row::into_incident)
    .collect()
}

/// The incident a write touched, as the reads show it; `None` when the write touched none.
async fn read_back(conn: &mut PgConnection, written: Option<Uuid>) -> Result<Option<Incident>, sqlx::Error> {
    match written {
        Some(id) => get(conn, id).await,
        None => Ok(None),
    }
}

/// Moves an open incident's retry horizon forward. Skips the write while the stored horizon is
/// within a minute of the new one, so a burst of failures does not queue on the incident row.
pub async fn extend_wait(executor: impl PgExecutor<'_>, id: Uuid, until: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update incident set wait_until = $2, updated_at = now()
           where id = $1 and state = 'open' and wait_until < $2::timestamptz - interval '1 minute'"#,
        id,
        until,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Changes to an incident; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub title: Option<&'a str>,
    pub message: Option<&'a str>,
    pub wait_until: Option<DateTime<Utc>>,
}

/// Edits an open incident; `None` when it is not open (or does not exist).
pub async fn update_open(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &Changes<'_>,
) -> Result<Option<Incident>, sqlx::Error> {
    let changed = sqlx::query_scalar!(
        r#"update incident set title = coalesce($2, title), message = coalesce($3, message),
                               wait_until = coalesce($4, wait_until), updated_at = now()
           where id = $1 and state = 'open'
           returning id"#,
        id,
        changes.title,
        changes.message,
        changes.wait_until,
    )
    .fetch_optional(&mut *conn)
    .await?;
    read_back(conn, changed).await
}

/// Resolves an open incident; `None` when it was not open, so only one caller ever resolves it.
pub async fn resolve(
    conn: &mut PgConnection,
    id: Uuid,
    by: Option<Uuid>,
    resolution: &str,
) -> Result<Option<Incident>, sqlx::Error> {
    let resolved = sqlx::query_scalar!(
        r#"update incident set state = 'resolved', resolved_at = now(), resolved_by = $2, resolution = $3,
                               updated_at = now()
           where id = $1 and state = 'open'
           returning id"#,
        id,
        by,
        resolution,
    )
    .fetch_optional(&mut *conn)
    .await?;
    read_back(conn, resolved).await
}

/// Each institution with an open incident, and when that incident is expected to end (its
/// `wait_until`): what `/metrics` exports. At most one open incident per institution (a
/// partial unique index), and few institutions at once.
pub async fn open_expected_ends(executor: impl PgExecutor<'_>) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    let rows =
        sqlx::query!(r#"select institution_id, wait_until from incident where state = 'open' order by institution_id"#)
            .fetch_all(executor)
            .await?;
    Ok(rows.into_iter().map(|row| (row.institution_id, row.wait_until)).collect())
}
