//! The webhook events a connection's lifecycle emits, with their payloads in one place so every
//! transition sends the same shape: ids, states and codes, never credentials or transaction
//! contents.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::catalog::Code;
use crate::connection::State;
use crate::feed::stall::AccountStall;
use crate::incident::Incident;
use crate::telemetry::trace::TraceContext;
use crate::webhook::{self, Event, EventKind};

/// Whose connection an event is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    pub tenant_id: Uuid,
    pub institution_id: Uuid,
    pub connection_id: Uuid,
}

impl Subject {
    pub fn of(connection: &crate::connection::Connection) -> Self {
        Self {
            tenant_id: connection.tenant_id,
            institution_id: connection.institution_id,
            connection_id: connection.id,
        }
    }

    fn event(&self, kind: EventKind, data: serde_json::Value) -> Event {
        Event { kind, tenant_id: Some(self.tenant_id), institution_id: Some(self.institution_id), data }
    }
}

/// A state change: `connection.state_changed`; nothing when the state did not change.
pub fn state_changed(subject: &Subject, from: State, to: State, error_code: Option<Code>) -> Vec<Event> {
    if from == to {
        return Vec::new();
    }
    let data = json!({
        "connection_id": subject.connection_id, "from": from.as_str(), "to": to.as_str(), "error_code": error_code
    });
    vec![subject.event(EventKind::ConnectionStateChanged, data)]
}

/// `connection.repaired` for a successful refresh that ends a failure: the connection was in a
/// failing state, or failed refreshes preceded it (new credentials put a connection back to
/// syncing but only a success shows the fix worked).
pub fn repaired(subject: &Subject, from: State, failure_streak: i32) -> Option<Event> {
    let was_failing = crate::health::is_failing(from) || failure_streak > 0;
    let data =
        json!({ "connection_id": subject.connection_id, "from": from.as_str(), "failed_refreshes": failure_streak });
    was_failing.then(|| subject.event(EventKind::ConnectionRepaired, data))
}

/// `connection.stalled`: refreshes succeed, but these accounts have brought nothing new for far
/// longer than their own rhythm.
pub fn stalled(subject: &Subject, accounts: &[AccountStall]) -> Event {
    let mut data = stall_detail(accounts);
    data["connection_id"] = json!(subject.connection_id);
    subject.event(EventKind::ConnectionStalled, data)
}

/// The stalled accounts as the timeline event and the webhook describe them.
pub fn stall_detail(accounts: &[AccountStall]) -> serde_json::Value {
    json!({ "error_code": Code::FEED_STALLED, "accounts": accounts })
}

/// What one refresh attempt ended with.
#[derive(Debug, Clone, Copy)]
pub enum Finished {
    Succeeded { added: u64, modified: u64, removed: u64 },
    Failed { code: Code },
}

/// `refresh.completed` for every stored attempt, and `transactions.sync_available` when the
/// sync cursor has something new.
pub fn refresh_completed(subject: &Subject, refresh_id: i64, state: State, finished: Finished) -> Vec<Event> {
    let data = match finished {
        Finished::Succeeded { added, modified, removed } => json!({
            "connection_id": subject.connection_id, "refresh_id": refresh_id, "outcome": "succeeded", "state": state.as_str(),
            "added": added, "modified": modified, "removed": removed,
        }),
        Finished::Failed { code } => json!({
            "connection_id": subject.connection_id, "refresh_id": refresh_id, "outcome": "failed", "state": state.as_str(),
            "error_code": code,
        }),
    };
    let mut events = vec![subject.event(EventKind::RefreshCompleted, data)];
    if let Finished::Succeeded { added, modified, removed } = finished
        && added + modified + removed > 0
    {
        let data =
            json!({ "connection_id": subject.connection_id, "added": added, "modified": modified, "removed": removed });
        events.push(subject.event(EventKind::TransactionsSyncAvailable, data));
    }
    events
}

/// `incident.opened` or `incident.resolved`, to everyone with a connection at the bank.
pub fn incident(kind: EventKind, incident: &Incident) -> Event {
    let data = json!({
        "incident_id": incident.id, "institution_id": incident.institution.id,
        "institution_name": incident.institution.name, "state": incident.state.as_str(),
        "source": incident.source.as_str(), "title": incident.title, "message": incident.message,
        "error_code": incident.error_code, "wait_until": incident.wait_until, "resolution": incident.resolution,
    });
    Event { kind, tenant_id: None, institution_id: Some(incident.institution.id), data }
}

/// Emits each event in the caller's transaction.
pub async fn emit_all(conn: &mut PgConnection, events: &[Event]) -> Result<(), sqlx::Error> {
    webhook::emit_all(conn, events).await?;
    Ok(())
}

/// Emits groups of events in the caller's transaction, each group's deliveries in its trace.
pub async fn emit_groups(
    conn: &mut PgConnection,
    groups: &[(Option<TraceContext>, &[Event])],
) -> Result<(), sqlx::Error> {
    webhook::emit_groups(conn, groups).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject { tenant_id: Uuid::new_v4(), institution_id: Uuid::new_v4(), connection_id: Uuid::new_v4() }
    }

    fn kinds(events: &[Event]) -> Vec<EventKind> {
        events.iter().map(|event| event.kind).collect()
    }

    #[test]
    fn a_failing_connection_that_works_again_is_repaired() {
        let subject = subject();
        let events = state_changed(&subject, State::NeedsUserAction, State::Healthy, None);
        assert_eq!(kinds(&events), [EventKind::ConnectionStateChanged]);
        assert_eq!(events[0].data["from"], "needs_user_action");
        assert_eq!(events[0].tenant_id, Some(subject.tenant_id));
        assert!(state_changed(&subject, State::Healthy, State::Healthy, None).is_empty());
        assert!(repaired(&subject, State::NeedsUserAction, 0).is_some());
        assert!(repaired(&subject, State::Syncing, 2).is_some(), "new credentials, then a success");
        assert!(repaired(&subject, State::Syncing, 0).is_none(), "a first refresh repairs nothing");
        assert!(repaired(&subject, State::Healthy, 0).is_none());
    }

    #[test]
    fn only_refreshes_that_changed_transactions_announce_a_sync() {
        let subject = subject();
        let quiet = Finished::Succeeded { added: 0, modified: 0, removed: 0 };
        assert_eq!(kinds(&refresh_completed(&subject, 7, State::Healthy, quiet)), [EventKind::RefreshCompleted]);
        let busy = Finished::Succeeded { added: 3, modified: 0, removed: 1 };
        let events = refresh_completed(&subject, 7, State::Healthy, busy);
        assert_eq!(kinds(&events), [EventKind::RefreshCompleted, EventKind::TransactionsSyncAvailable]);
        assert_eq!(events[1].data["added"], 3);
        let failed = refresh_completed(&subject, 8, State::BankIssue, Finished::Failed { code: Code::new(102) });
        assert_eq!(failed[0].data["outcome"], "failed");
        assert_eq!(failed[0].data["error_code"], 102);
    }
}
