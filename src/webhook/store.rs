//! The only code that touches `webhook_endpoint`, `webhook_message` and `webhook_delivery`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{Delivery, Endpoint, EventKind};

#[derive(Debug)]
pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
    pub secret_sealed: &'a [u8],
    pub secret_key_id: &'a str,
}

struct EndpointRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    url: String,
    events: Vec<String>,
    description: String,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for Endpoint {
    fn from(row: EndpointRow) -> Self {
        Self {
            id: row.id,
            tenant_id: row.tenant_id,
            url: row.url,
            // Names this build does not know (a newer replica's) are left out, not failed on.
            events: row.events.iter().filter_map(|name| EventKind::parse(name)).collect(),
            description: row.description,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub async fn insert_endpoint(executor: impl PgExecutor<'_>, new: &NewEndpoint<'_>) -> Result<Endpoint, sqlx::Error> {
    let row = sqlx::query_as!(
        EndpointRow,
        r#"insert into webhook_endpoint (id, tenant_id, url, events, description, secret_sealed, secret_key_id)
           values ($1, $2, $3, $4, $5, $6, $7)
           returning id, tenant_id, url, events, description, enabled, disabled_reason, created_at, updated_at"#,
        new.id,
        new.tenant_id,
        new.url,
        new.events,
        new.description,
        new.secret_sealed,
        new.secret_key_id,
    )
    .fetch_one(executor)
    .await?;
    Ok(row.into())
}

/// The endpoint, locked until the caller's transaction ends, so an edit reads what it replaces.
pub async fn lock_endpoint(conn: &mut PgConnection, id: Uuid) -> Result<Option<Endpoint>, sqlx::Error> {
    let locked = sqlx::query_scalar!("select id from webhook_endpoint where id = $1 for update", id)
        .fetch_optional(&mut *conn)
        .await?;
    match locked {
        Some(id) => get_endpoint(conn, id).await,
        None => Ok(None),
    }
}

/// An edit: `None` leaves a column as it is (so events a newer replica knows and this build does
/// not survive an edit of the URL); `enabled` and its reason are always written, together.
#[derive(Debug)]
pub struct EndpointEdit<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub description: Option<&'a str>,
    pub enabled: bool,
    pub disabled_reason: Option<&'a str>,
}

pub async fn update_endpoint(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    edit: &EndpointEdit<'_>,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let row = sqlx::query_as!(
        EndpointRow,
        r#"update webhook_endpoint
           set url = coalesce($2, url), events = coalesce($3, events), description = coalesce($4, description),
               enabled = $5, disabled_reason = $6, updated_at = now()
           where id = $1
           returning id, tenant_id, url, events, description, enabled, disabled_reason, created_at, updated_at"#,
        id,
        edit.url,
        edit.events,
        edit.description,
        edit.enabled,
        edit.disabled_reason,
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(Endpoint::from))
}

/// Makes `sealed` the signing secret and keeps the one it replaces, as it is sealed, until
/// `previous_expires_at`. A previous secret still in its grace period is dropped: only the two
/// newest are ever valid.
pub async fn rotate_secret(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    sealed: &[u8],
    key_id: &str,
    previous_expires_at: DateTime<Utc>,
) -> Result<Option<Endpoint>, sqlx::Error> {
    // On the right of `set`, columns are the row's values before this update.
    let row = sqlx::query_as!(
        EndpointRow,
        r#"update webhook_endpoint
           set previous_secret_sealed = secret_sealed, previous_secret_key_id = secret_key_id,
               previous_secret_expires_at = $4, secret_sealed = $2, secret_key_id = $3, updated_at = now()
           where id = $1
           returning id, tenant_id, url, events, description, enabled, disabled_reason, created_at, updated_at"#,
        id,
        sealed,
        key_id,
        previous_expires_at,
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(Endpoint::from))
}

/// Forgets previous signing secrets whose grace period is over, a batch per statement.
pub async fn clear_expired_previous_secrets(executor: impl PgExecutor<'_>, batch: i64) -> Result<u64, sqlx::Error> {
    let cleared = sqlx::query!(
        r#"update webhook_endpoint
           set previous_secret_sealed = null, previous_secret_key_id = null, previous_secret_expires_at = null
           where id = any(array(
               select id from webhook_endpoint where previous_secret_expires_at <= now() limit $1))"#,
        batch,
    )
    .execute(executor)
    .await?;
    Ok(cleared.rows_affected())
}

pub async fn get_endpoint(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Endpoint>, sqlx::Error> {
    let row = sqlx::query_as!(
        EndpointRow,
        r#"select id, tenant_id, url, events, description, enabled, disabled_reason, created_at, updated_at
           from webhook_endpoint where id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(Endpoint::from))
}

/// Endpoints oldest first, after a keyset position; only `tenant_id`'s when given.
pub async fn list_endpoints(
    executor: impl PgExecutor<'_>,
    tenant_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Endpoint>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        EndpointRow,
        r#"select id, tenant_id, url, events, description, enabled, disabled_reason, created_at, updated_at
           from webhook_endpoint
           where ($1::uuid is null or tenant_id = $1)
             and ($2::timestamptz is null or (created_at, id) > ($2, $3::uuid))
           order by created_at, id
           limit $4"#,
        tenant_id,
        after_time,
        after_id,
        limit,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(Endpoint::from).collect())
}

/// Deletes an endpoint and its delivery log; its queued deliveries find it gone and stop.
pub async fn delete_endpoint(executor: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!("delete from webhook_endpoint where id = $1", id).execute(executor).await?;
    Ok(deleted.rows_affected() == 1)
}

/// The sealed signing secret and the key it is sealed under.
pub async fn sealed_secret(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<(Vec<u8>, String)>, sqlx::Error> {
    let row = sqlx::query!("select secret_sealed, secret_key_id from webhook_endpoint where id = $1", id)
        .fetch_optional(executor)
        .await?;
    Ok(row.map(|row| (row.secret_sealed, row.secret_key_id)))
}

/// Stops deliveries to an endpoint, saying why.
pub async fn disable(executor: impl PgExecutor<'_>, id: Uuid, reason: &str) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update webhook_endpoint set enabled = false, disabled_reason = $2, updated_at = now() where id = $1 and enabled",
        id,
        reason
    )
    .execute(executor)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// An endpoint's sealed signing secrets: the current one and, during a rotation's grace
/// period (or until maintenance clears it), the previous one. Each is (blob, key id).
#[derive(Debug)]
pub struct SealedSecrets {
    pub id: Uuid,
    pub current: (Vec<u8>, String),
    pub previous: Option<(Vec<u8>, String)>,
}

/// Endpoints with a secret (current or previous) sealed under another key than `current`, for
/// re-sealing after a rotation; locked so a secret rotation cannot slip in between.
pub async fn sealed_under_other_keys(
    executor: impl PgExecutor<'_>,
    current: &str,
    limit: i64,
) -> Result<Vec<SealedSecrets>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select id, secret_sealed, secret_key_id, previous_secret_sealed, previous_secret_key_id
           from webhook_endpoint
           where secret_key_id <> $1 or previous_secret_key_id <> $1
           limit $2
           for update"#,
        current,
        limit
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| SealedSecrets {
            id: row.id,
            current: (row.secret_sealed, row.secret_key_id),
            previous: row.previous_secret_sealed.zip(row.previous_secret_key_id),
        })
        .collect())
}

/// Stores re-sealed secrets; the previous secret's expiry is left as it was.
pub async fn reseal(executor: impl PgExecutor<'_>, sealed: &SealedSecrets) -> Result<(), sqlx::Error> {
    let (previous_sealed, previous_key_id) = sealed.previous.clone().unzip();
    sqlx::query!(
        r#"update webhook_endpoint
           set secret_sealed = $2, secret_key_id = $3, previous_secret_sealed = $4, previous_secret_key_id = $5
           where id = $1"#,
        sealed.id,
        sealed.current.0,
        sealed.current.1,
        previous_sealed,
        previous_key_id,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// The enabled endpoints an event reaches: fleet-wide ones always; for a tenant event that
/// tenant's; for a fleet event the tenants with a live connection at its institution. Two
/// statements, so the tenant case (every refresh) stays a probe of the tenant index.
pub async fn subscribers(
    executor: impl PgExecutor<'_>,
    event_type: &str,
    tenant_id: Option<Uuid>,
    institution_id: Option<Uuid>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    match tenant_id {
        Some(tenant_id) => tenant_subscribers(executor, event_type, tenant_id).await,
        None => fleet_subscribers(executor, event_type, institution_id).await,
    }
}

async fn tenant_subscribers(
    executor: impl PgExecutor<'_>,
    event_type: &str,
    tenant_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select id from webhook_endpoint
           where (tenant_id = $2 or tenant_id is null) and enabled and $1 = any(events)
           order by created_at, id"#,
        event_type,
        tenant_id,
    )
    .fetch_all(executor)
    .await
}

/// An enabled endpoint that hears tenants' events, with the event types it takes and whose it is
/// (`None`: fleet-wide, every tenant's).
#[derive(Debug)]
pub struct Listener {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub events: Vec<String>,
}

/// The enabled endpoints of these tenants (and the fleet-wide ones) taking any of
/// `event_types`, in the order [`subscribers`] gives: one probe of the tenant index for the
/// events of several tenants.
pub async fn tenants_listeners(
    executor: impl PgExecutor<'_>,
    tenant_ids: &[Uuid],
    event_types: &[&str],
) -> Result<Vec<Listener>, sqlx::Error> {
    sqlx::query_as!(
        Listener,
        r#"select id, tenant_id, events from webhook_endpoint
           where (tenant_id = any($2) or tenant_id is null) and enabled and events && $1::text[]
           order by created_at, id"#,
        event_types as &[&str],
        tenant_ids,
    )
    .fetch_all(executor)
    .await
}

async fn fleet_subscribers(
    executor: impl PgExecutor<'_>,
    event_type: &str,
    institution_id: Option<Uuid>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select e.id from webhook_endpoint e
           where e.enabled and $1 = any(e.events)
             and (e.tenant_id is null
                  or exists (select 1 from connection c
                             where c.tenant_id = e.tenant_id and c.institution_id = $2
                               and c.state <> 'disconnected'))
           order by e.created_at, e.id"#,
        event_type,
        institution_id,
    )
    .fetch_all(executor)
    .await
}

#[derive(Debug)]
pub struct NewMessage<'a> {
    pub id: Uuid,
    pub event_type: &'a str,
    pub tenant_id: Option<Uuid>,
    pub institution_id: Option<Uuid>,
    pub body: &'a str,
}

pub async fn insert_message(executor: impl PgExecutor<'_>, message: &NewMessage<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into webhook_message (id, event_type, tenant_id, institution_id, body) values ($1, $2, $3, $4, $5)",
        message.id,
        message.event_type,
        message.tenant_id,
        message.institution_id,
        message.body,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// What one delivery needs: where, the sealed secrets, and the exact body.
#[derive(Debug)]
pub struct DeliveryTarget {
    pub url: String,
    pub enabled: bool,
    pub secret_sealed: Vec<u8>,
    pub secret_key_id: String,
    /// The secret a rotation replaced, only while its grace period lasts.
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub previous_secret_key_id: Option<String>,
    pub event_type: String,
    pub body: String,
}

pub async fn delivery_target(
    executor: impl PgExecutor<'_>,
    endpoint_id: Uuid,
    message_id: Uuid,
) -> Result<Option<DeliveryTarget>, sqlx::Error> {
    // An expired previous secret reads as none, whether or not maintenance has cleared it yet.
    sqlx::query_as!(
        DeliveryTarget,
        r#"select e.url, e.enabled, e.secret_sealed, e.secret_key_id,
                  case when e.previous_secret_expires_at > now() then e.previous_secret_sealed end
                      as previous_secret_sealed,
                  case when e.previous_secret_expires_at > now() then e.previous_secret_key_id end
                      as previous_secret_key_id,
                  m.event_type, m.body
           from webhook_endpoint e, webhook_message m
           where e.id = $1 and m.id = $2"#,
        endpoint_id,
        message_id,
    )
    .fetch_optional(executor)
    .await
}

#[derive(Debug)]
pub struct NewDelivery<'a> {
    pub endpoint_id: Uuid,
    pub message_id: Uuid,
    pub event_type: &'a str,
    pub attempt: i32,
    pub outcome: &'a str,
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub duration_ms: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Logs one attempt. The endpoint may have been deleted meanwhile; then there is nothing to log.
pub async fn insert_delivery(executor: impl PgExecutor<'_>, delivery: &NewDelivery<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into webhook_delivery
               (id, endpoint_id, message_id, event_type, attempt, outcome, status_code, error, duration_ms, next_attempt_at)
           select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
           where exists (select 1 from webhook_endpoint where id = $2)"#,
        Uuid::now_v7(),
        delivery.endpoint_id,
        delivery.message_id,
        delivery.event_type,
        delivery.attempt,
        delivery.outcome,
        delivery.status_code,
        delivery.error,
        delivery.duration_ms,
        delivery.next_attempt_at,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// An endpoint's delivery log, newest first, before a keyset position.
pub async fn deliveries(
    executor: impl PgExecutor<'_>,
    endpoint_id: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let (before_time, before_id) = before.unzip();
    sqlx::query_as!(
        Delivery,
        r#"select id, endpoint_id, message_id, event_type, attempt, outcome, status_code, error, duration_ms,
                  next_attempt_at, at
           from webhook_delivery
           where endpoint_id = $1 and ($2::timestamptz is null or (at, id) < ($2, $3::uuid))
           order by at desc, id desc
           limit $4"#,
        endpoint_id,
        before_time,
        before_id,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// Deletes messages created before `before`, and with them (by cascade) their delivery log, a
/// batch per statement. Returns how many messages went.
pub async fn prune_messages(
    executor: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let outcome = sqlx::query!(
        r#"delete from webhook_message where id = any(array(
               select id from webhook_message where created_at < $1 limit $2))"#,
        before,
        batch,
    )
    .execute(executor)
    .await?;
    Ok(outcome.rows_affected())
}
