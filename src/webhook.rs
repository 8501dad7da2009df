//! Webhooks: endpoints registered for a tenant (or fleet-wide), events emitted inside the
//! caller's transaction, and deliveries signed as the Standard Webhooks specification says,
//! sent later by the worker pool with retries.
//!
//! Guarantees: an event's message and delivery jobs exist iff the emitting transaction commits;
//! emitting never touches the network, so it never slows the refresh or request that emits;
//! every attempt is logged; a delivery connects only to addresses the [`HostPolicy`] admits,
//! checked on the resolved addresses the connection actually uses.

pub mod address;
pub mod deliver;
pub mod secret;
pub mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::telemetry::trace::TraceContext;

pub use address::{AllowedHost, HostPolicy};

/// What a receiver can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    /// A connection moved from one health state to another.
    #[serde(rename = "connection.state_changed")]
    ConnectionStateChanged,
    /// A failing connection (degraded, waiting for the user, or failing at the bank or provider) is healthy again.
    #[serde(rename = "connection.repaired")]
    ConnectionRepaired,
    /// Refreshes succeed, but an account has brought nothing new for far longer than its usual rhythm.
    #[serde(rename = "connection.stalled")]
    ConnectionStalled,
    /// A refresh finished, successfully or not.
    #[serde(rename = "refresh.completed")]
    RefreshCompleted,
    /// New, changed or removed transactions wait at the sync cursor.
    #[serde(rename = "transactions.sync_available")]
    TransactionsSyncAvailable,
    /// A bank is failing for many connections at once.
    #[serde(rename = "incident.opened")]
    IncidentOpened,
    /// The bank works again.
    #[serde(rename = "incident.resolved")]
    IncidentResolved,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        Self::ConnectionStateChanged,
        Self::ConnectionRepaired,
        Self::ConnectionStalled,
        Self::RefreshCompleted,
        Self::TransactionsSyncAvailable,
        Self::IncidentOpened,
        Self::IncidentResolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionStateChanged => "connection.state_changed",
            Self::ConnectionRepaired => "connection.repaired",
            Self::ConnectionStalled => "connection.stalled",
            Self::RefreshCompleted => "refresh.completed",
            Self::TransactionsSyncAvailable => "transactions.sync_available",
            Self::IncidentOpened => "incident.opened",
            Self::IncidentResolved => "incident.resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Something that happened. A tenant event (`tenant_id` set) reaches that tenant's endpoints;
/// a fleet event (`tenant_id` none, e.g. an incident) reaches the endpoints of every tenant with
/// a connection at `institution_id`. Fleet-wide endpoints receive both.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub tenant_id: Option<Uuid>,
    pub institution_id: Option<Uuid>,
    /// The payload's `data`: ids and states, never credentials.
    pub data: serde_json::Value,
}

/// A registered endpoint: never its secret.
// Its secret stays sealed in the store, so the endpoint is what the API answers as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = WebhookView)]
pub struct Endpoint {
    pub id: Uuid,
    /// Null for a fleet-wide endpoint.
    pub tenant_id: Option<Uuid>,
    pub url: String,
    pub events: Vec<EventKind>,
    pub description: String,
    /// False once the receiver answered 410 Gone or a PATCH disabled it; no deliveries are made
    /// until a PATCH enables it again.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One logged delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub message_id: Uuid,
    pub event_type: String,
    pub attempt: i32,
    pub outcome: String,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// How deliveries go out (configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Which hosts may be registered and delivered to.
    pub hosts: HostPolicy,
    /// The whole exchange, connecting to reading the (capped) response.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self { hosts: HostPolicy::GlobalOnly, timeout: Duration::from_secs(10) }
    }
}

/// The `webhook-id` of a message: stable across retries.
pub fn message_header_id(message_id: Uuid) -> String {
    format!("msg_{}", message_id.simple())
}

/// The Standard Webhooks payload, in the order the specification shows.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: DateTime<Utc>,
    data: &'a serde_json::Value,
}

/// Records `event` for every enabled endpoint subscribed to it, in the caller's transaction:
/// one message row and one delivery job per endpoint, or nothing at all when nobody listens.
/// No network: the deliveries run later in the worker pool. Returns the deliveries enqueued.
pub async fn emit(conn: &mut PgConnection, event: &Event) -> Result<u64, sqlx::Error> {
    let endpoints = store::subscribers(&mut *conn, event.kind.as_str(), event.tenant_id, event.institution_id).await?;
    emit_to(conn, event, &endpoints).await
}

/// [`emit`] for several events: [`emit_groups`] with one group in the caller's trace.
pub async fn emit_all(conn: &mut PgConnection, events: &[Event]) -> Result<u64, sqlx::Error> {
    emit_groups(conn, &[(None, events)]).await
}

/// [`emit`] for groups of events, each group's deliveries enqueued in its own trace (a batch of
/// refreshes, each emitting two or three events under its job's trace; `None` keeps the
/// caller's). The endpoints of every tenant's events are read in one statement, so a batch pays
/// one subscriber probe, not one per event; fleet-wide events are read one by one as in [`emit`].
pub async fn emit_groups(
    conn: &mut PgConnection,
    groups: &[(Option<TraceContext>, &[Event])],
) -> Result<u64, sqlx::Error> {
    let events = || groups.iter().flat_map(|(_, events)| events.iter());
    let mut tenants: Vec<Uuid> = events().filter_map(|event| event.tenant_id).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let listeners = if tenants.is_empty() {
        Vec::new()
    } else {
        let mut kinds: Vec<&str> = events().map(|event| event.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        store::tenants_listeners(&mut *conn, &tenants, &kinds).await?
    };
    let mut delivered = 0;
    for (trace, events) in groups {
        let emitting = emit_group(&mut *conn, &listeners, events);
        delivered += match trace {
            Some(trace) => trace.scope(emitting).await?,
            None => emitting.await?,
        };
    }
    Ok(delivered)
}

async fn emit_group(
    conn: &mut PgConnection,
    listeners: &[store::Listener],
    events: &[Event],
) -> Result<u64, sqlx::Error> {
    let mut delivered = 0;
    for event in events {
        delivered += match event.tenant_id {
            Some(tenant_id) => {
                let endpoints: Vec<Uuid> = listeners
                    .iter()
                    .filter(|listener| listener.tenant_id.is_none_or(|owner| owner == tenant_id))
                    .filter(|listener| listener.events.iter().any(|kind| kind == event.kind.as_str()))
                    .map(|listener| listener.id)
                    .collect();
                emit_to(conn, event, &endpoints).await?
            }
            None => emit(conn, event).await?,
        };
    }
    Ok(delivered)
}

async fn emit_to(conn: &mut PgConnection, event: &Event, endpoints: &[Uuid]) -> Result<u64, sqlx::Error> {
    if endpoints.is_empty() {
        return Ok(0);
    }
    let payload = Payload { kind: event.kind.as_str(), timestamp: Utc::now(), data: &event.data };
    // Serialising a `Value` with string keys cannot fail.
    let body = serde_json::to_string(&payload).unwrap_or_default();
    let message = store::NewMessage {
        id: Uuid::now_v7(),
        event_type: event.kind.as_str(),
        tenant_id: event.tenant_id,
        institution_id: event.institution_id,
        body: &body,
    };
    store::insert_message(&mut *conn, &message).await?;
    for endpoint_id in endpoints {
        deliver::enqueue(&mut *conn, *endpoint_id, message.id).await?;
    }
    Ok(endpoints.len() as u64)
}

/// How long webhook messages and their delivery log are kept. A delivery's retries end within
/// two days; its log is kept a month for support questions.
pub const LOG_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// Deletes messages (and by cascade their delivery log) past [`LOG_RETENTION`], and forgets
/// previous signing secrets whose grace period is over (deliveries ignore them already), in
/// batches. Returns how many rows went.
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let before = Utc::now() - LOG_RETENTION;
    let messages = crate::database::in_batches(1000, || store::prune_messages(pool, before, 1000)).await?;
    let secrets = crate::database::in_batches(1000, || store::clear_expired_previous_secrets(pool, 1000)).await?;
    Ok(messages + secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::Value::from(kind.as_str())));
        }
        assert_eq!(EventKind::parse("connection.deleted"), None);
    }

    #[test]
    fn the_payload_keeps_the_specification_order() {
        let data = serde_json::json!({ "connection_id": "c1" });
        let payload = Payload {
            kind: EventKind::RefreshCompleted.as_str(),
            timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            data: &data,
        };
        let body = serde_json::to_string(&payload).unwrap_or_default();
        assert_eq!(
            body,
            r#"{"type":"refresh.completed","timestamp":"2023-11-14T22:13:20Z","data":{"connection_id":"c1"}}"#
        );
    }
}
