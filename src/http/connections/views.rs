//! What `/v1/connections` answers: a connection with its health and accounts, and its timeline.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::catalog::{Action, CatalogIndex, Code};
use crate::connection::{self, Account, Connection};
use crate::institution::InstitutionRef;

/// The catalogue error a connection is in, with the one thing to do about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionError {
    #[schema(example = 103)]
    #[schema(value_type = i32)]
    pub code: Code,
    /// The provider's own code (`ofx:15500`, `http:503`).
    pub raw: Option<String>,
    pub title: String,
    /// Safe to show the business owner.
    pub user_message: String,
    pub action: Option<Action>,
    /// With `action: wait_until`: nothing to do before this; we retry by then.
    pub wait_until: Option<DateTime<Utc>>,
    pub retryable: bool,
    pub since: Option<DateTime<Utc>>,
}

/// The institution's open incident, as a connection shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentRef {
    pub id: Uuid,
    pub title: String,
    /// Affected connections are not retried before this.
    pub wait_until: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub state: connection::State,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The newest balance or transaction date the bank gave.
    pub data_as_of: Option<DateTime<Utc>>,
    pub failure_streak: i32,
    /// The next automatic refresh; null while none will happen (paused, waiting for the user,
    /// disconnected), so nobody tells a customer to wait for it.
    pub next_refresh_at: Option<DateTime<Utc>>,
    pub error: Option<ConnectionError>,
    /// The institution's open incident, if any.
    pub incident: Option<IncidentRef>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub institution: InstitutionRef,
    pub display_name: String,
    pub state: connection::State,
    pub paused: bool,
    /// Automatic refresh interval, e.g. `24h`.
    pub refresh_every: String,
    pub credentials_updated_at: DateTime<Utc>,
    pub health: Health,
    /// Present on single-connection responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub accounts: Option<Vec<Account>>,
    /// Display names (compared case-insensitively) that this connection's accounts share with
    /// another visible account of the tenant: a known cause of error 324. Each is spelt as this
    /// connection's own accounts spell it (the least spelling if they differ), not as the other
    /// accounts do.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub duplicate_account_names: Option<Vec<String>>,
    /// Also the ETag.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
}

pub(in crate::http) fn view(connection: Connection, catalog: &CatalogIndex) -> ConnectionView {
    // In a bank incident the one action is to wait, whatever the bank's error says.
    let in_incident = connection.state == connection::State::BankIssue && connection.incident.is_some();
    let error = connection.error_code.map(|code| {
        let entry = catalog.entry(code).map(|stored| &stored.entry);
        let action = if in_incident { Some(Action::WaitUntil) } else { entry.map(|entry| entry.action) };
        let wait_until = (action == Some(Action::WaitUntil)).then(|| wait_until(&connection)).flatten();
        ConnectionError {
            code,
            raw: connection.error_raw.clone(),
            title: entry.map_or_else(|| format!("Error {code}"), |entry| entry.title.clone()),
            user_message: entry.map_or_else(
                || "Something went wrong refreshing this connection; we will keep trying.".to_owned(),
                |entry| entry.user_message.clone(),
            ),
            action,
            wait_until,
            retryable: entry.is_some_and(|entry| entry.retryable),
            since: connection.error_at,
        }
    });
    let incident = connection.incident.as_ref().map(|incident| IncidentRef {
        id: incident.id,
        title: incident.title.clone(),
        wait_until: incident.wait_until,
    });
    let next_refresh_at = connection.next_scheduled_refresh();
    ConnectionView {
        id: connection.id,
        tenant_id: connection.tenant_id,
        institution: InstitutionRef { id: connection.institution_id, name: connection.institution_name },
        display_name: connection.display_name,
        state: connection.state,
        paused: connection.paused,
        refresh_every: connection::every_text(connection.refresh_every_seconds),
        credentials_updated_at: connection.credentials_updated_at,
        health: Health {
            state: connection.state,
            last_attempt_at: connection.last_attempt_at,
            last_success_at: connection.last_success_at,
            data_as_of: connection.data_as_of,
            failure_streak: connection.failure_streak,
            next_refresh_at,
            error,
            incident,
        },
        accounts: None,
        duplicate_account_names: None,
        version: connection.version,
        created_at: connection.created_at,
        updated_at: connection.updated_at,
        disconnected_at: connection.disconnected_at,
    }
}

/// When the next automatic attempt happens: the queued refresh, else the schedule, and never
/// before the institution's incident says.
fn wait_until(connection: &Connection) -> Option<DateTime<Utc>> {
    let next = connection.retry_at.or(connection.next_refresh_at);
    let incident = connection.incident.as_ref().map(|incident| incident.wait_until);
    next.max(incident)
}
