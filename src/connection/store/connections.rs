//! The `connection` rows themselves: create, read, list, edit, purge and sealed credentials.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::catalog::{Code, CodeOutOfRange};
use crate::connection::*;

fn decode_code(error: CodeOutOfRange) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(error))
}

pub(super) struct ConnectionRow {
    pub(super) id: Uuid,
    pub(super) tenant_id: Uuid,
    pub(super) institution_id: Uuid,
    pub(super) institution_name: String,
    pub(super) display_name: String,
    pub(super) state: String,
    pub(super) paused: bool,
    pub(super) refresh_every_seconds: i32,
    pub(super) credentials_updated_at: DateTime<Utc>,
    pub(super) last_attempt_at: Option<DateTime<Utc>>,
    pub(super) last_success_at: Option<DateTime<Utc>>,
    pub(super) data_as_of: Option<DateTime<Utc>>,
    pub(super) failure_streak: i32,
    pub(super) error_code: Option<i32>,
    pub(super) error_raw: Option<String>,
    pub(super) error_at: Option<DateTime<Utc>>,
    pub(super) next_refresh_at: Option<DateTime<Utc>>,
    pub(super) version: i32,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) disconnected_at: Option<DateTime<Utc>>,
    pub(super) retry_at: Option<DateTime<Utc>>,
    pub(super) incident_id: Option<Uuid>,
    pub(super) incident_title: Option<String>,
    pub(super) incident_wait_until: Option<DateTime<Utc>>,
}

impl ConnectionRow {
    pub(super) fn into_connection(self) -> Result<Connection, sqlx::Error> {
        let state = State::parse(&self.state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown connection state `{}`", self.state).into()))?;
        Ok(Connection {
            id: self.id,
            tenant_id: self.tenant_id,
            institution_id: self.institution_id,
            institution_name: self.institution_name,
            display_name: self.display_name,
            state,
            paused: self.paused,
            refresh_every_seconds: self.refresh_every_seconds,
            credentials_updated_at: self.credentials_updated_at,
            last_attempt_at: self.last_attempt_at,
            last_success_at: self.last_success_at,
            data_as_of: self.data_as_of,
            failure_streak: self.failure_streak,
            error_code: self.error_code.map(Code::try_from).transpose().map_err(decode_code)?,
            error_raw: self.error_raw,
            error_at: self.error_at,
            next_refresh_at: self.next_refresh_at,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            disconnected_at: self.disconnected_at,
            retry_at: self.retry_at,
            incident: match (self.incident_id, self.incident_title, self.incident_wait_until) {
                (Some(id), Some(title), Some(wait_until)) => Some(OpenIncident { id, title, wait_until }),
                _ => None,
            },
        })
    }
}

/// A connection to create; its credentials arrive sealed.
#[derive(Debug)]
pub struct NewConnection<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub institution_id: Uuid,
    pub display_name: &'a str,
    pub refresh_every_seconds: i32,
    pub credentials_sealed: &'a [u8],
    pub credentials_key_id: &'a str,
}

pub async fn get(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Connection>, sqlx::Error> {
    Ok(select(executor, Some(id), &ListFilter::default(), None, 1).await?.pop())
}

/// One page of connections in creation order.
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &ListFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Connection>, sqlx::Error> {
    match filter {
        ListFilter { tenant_id, state: None, institution_id: None, error_code: None, stale_before: None, q: None } => {
            plain_page(executor, *tenant_id, after, limit).await
        }
        _ => select(executor, None, filter, after, limit).await,
    }
}

/// A query for connection rows with their institution, pending retry and open incident: the
/// row's shape written once, followed by the statement's own `where`, order and limit (a string
/// literal) and its arguments. sqlx checks the whole statement at compile time.
macro_rules! query_connection_rows {
    ($($rest:tt)*) => {
        sqlx::query_as!(
            ConnectionRow,
            r#"select c.id, c.tenant_id, c.institution_id, i.name as institution_name, c.display_name, c.state,
                      c.paused, c.refresh_every_seconds, c.credentials_updated_at, c.last_attempt_at,
                      c.last_success_at, c.data_as_of, c.failure_streak, c.error_code, c.error_raw, c.error_at,
                      c.next_refresh_at, c.version, c.created_at, c.updated_at, c.disconnected_at,
                      (select j.run_at from job j
                       where j.unique_key = 'refresh:' || c.id::text and j.state = 'available') as retry_at,
                      oi.id as "incident_id?", oi.title as "incident_title?", oi.wait_until as "incident_wait_until?"
               from connection c join institution i on i.id = c.institution_id
                    left join incident oi on oi.institution_id = c.institution_id and oi.state = 'open'
            "# + $($rest)*
        )
    };
}

/// The common pages, filtered by nothing but the tenant, as statements of their own. Once
/// PostgreSQL plans [`select`] generically, none of its `$n is null or …` conditions can use an
/// index: every page scanned and sorted all the connections. These walk the listing indexes
/// from the cursor and stop at the limit (bench/README.md, #17 read path, session 12). A first
/// page starts below every row (`-infinity`, the nil id), which is what no cursor meant.
async fn plain_page(
    executor: impl PgExecutor<'_>,
    tenant_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Connection>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    let rows = match tenant_id {
        None => {
            query_connection_rows!(
                r#"where (c.created_at, c.id) > (coalesce($1, '-infinity'::timestamptz),
                                                 coalesce($2, '00000000-0000-0000-0000-000000000000'::uuid))
                   order by c.created_at, c.id
                   limit $3"#,
                after_time,
                after_id,
                limit,
            )
            .fetch_all(executor)
            .await?
        }
        Some(tenant_id) => {
            query_connection_rows!(
                r#"where c.tenant_id = $1
                     and (c.created_at, c.id) > (coalesce($2, '-infinity'::timestamptz),
                                                 coalesce($3, '00000000-0000-0000-0000-000000000000'::uuid))
                   order by c.created_at, c.id
                   limit $4"#,
                tenant_id,
                after_time,
                after_id,
                limit,
            )
            .fetch_all(executor)
            .await?
        }
    };
    rows.into_iter().map(ConnectionRow::into_connection).collect()
}

/// Connections under any filter; `id` narrows it to one connection.
async fn select(
    executor: impl PgExecutor<'_>,
    id: Option<Uuid>,
    filter: &ListFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Connection>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    let pattern = filter.q.as_deref().map(|q| format!("%{}%", crate::institution::store::escape_like(q)));
    query_connection_rows!(
        r#"where ($1::timestamptz is null or (c.created_at, c.id) > ($1, $2::uuid))
             and ($3::uuid is null or c.tenant_id = $3)
             and ($4::text is null or c.state = $4)
             and ($5::uuid is null or c.institution_id = $5)
             and ($6::int is null or c.error_code = $6)
             and ($7::timestamptz is null
                  or (c.state <> 'disconnected' and coalesce(c.last_success_at, c.created_at) < $7))
             and ($8::text is null or c.display_name ilike $8 or i.name ilike $8)
             and ($10::uuid is null or c.id = $10)
           order by c.created_at, c.id
           limit $9"#,
        after_time,
        after_id,
        filter.tenant_id,
        filter.state.map(State::as_str),
        filter.institution_id,
        filter.error_code.map(i32::try_from).transpose().map_err(|error| sqlx::Error::Encode(Box::new(error)))?,
        filter.stale_before,
        pattern,
        limit,
        id,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(ConnectionRow::into_connection)
    .collect()
}

/// Changes to apply to a connection; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub display_name: Option<&'a str>,
    pub paused: Option<bool>,
    pub refresh_every_seconds: Option<i32>,
    pub credentials: Option<(&'a [u8], &'a str)>,
}

/// Applies changes if the connection is still at `expected_version`; returns the new version,
/// or None when someone else changed it first (or it does not exist).
pub async fn update(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    expected_version: i32,
    changes: &Changes<'_>,
) -> Result<Option<i32>, sqlx::Error> {
    let (sealed, key_id) = changes.credentials.unzip();
    sqlx::query_scalar!(
        r#"update connection set
               display_name = coalesce($3, display_name),
               paused = coalesce($4, paused),
               refresh_every_seconds = coalesce($5, refresh_every_seconds),
               credentials_sealed = coalesce($6, credentials_sealed),
               credentials_key_id = coalesce($7, credentials_key_id),
               credentials_updated_at = case when $6::bytea is null then credentials_updated_at else now() end,
               version = version + 1,
               updated_at = now()
           where id = $1 and version = $2
           returning version"#,
        id,
        expected_version,
        changes.display_name,
        changes.paused,
        changes.refresh_every_seconds,
        sealed,
        key_id,
    )
    .fetch_optional(executor)
    .await
}

/// Deletes a connection and everything of it (accounts, timeline, transactions cascade).
pub async fn purge(executor: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query!("delete from connection where id = $1", id).execute(executor).await?.rows_affected() == 1)
}

/// The sealed credentials and the key id they were sealed under.
pub async fn sealed_credentials(
    executor: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<(Vec<u8>, String)>, sqlx::Error> {
    Ok(sqlx::query!("select credentials_sealed, credentials_key_id from connection where id = $1", id)
        .fetch_optional(executor)
        .await?
        .map(|row| (row.credentials_sealed, row.credentials_key_id)))
}

/// Connections whose credentials are sealed under a key other than `current`, a batch at a time.
pub async fn sealed_under_other_keys(
    executor: impl PgExecutor<'_>,
    current: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>, String)>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"select id, credentials_sealed, credentials_key_id from connection
           where credentials_key_id <> $1 order by id limit $2 for update skip locked"#,
        current,
        limit,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(|row| (row.id, row.credentials_sealed, row.credentials_key_id))
    .collect())
}

/// Replaces sealed credentials without counting as a user change (key rotation).
pub async fn reseal(executor: impl PgExecutor<'_>, id: Uuid, sealed: &[u8], key_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update connection set credentials_sealed = $2, credentials_key_id = $3 where id = $1",
        id,
        sealed,
        key_id
    )
    .execute(executor)
    .await?;
    Ok(())
}
