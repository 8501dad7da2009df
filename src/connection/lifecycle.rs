//! The one owner of a connection's health. Every event that can change a connection's state
//! has one function here; each computes the next state with the transition table
//! ([`transition`]) and writes the state, the timeline event and the webhook events together,
//! in the caller's transaction. Nothing else writes `connection.state`: the statements that do
//! are visible to the `connection` module only.
//!
//! | event | function | state afterwards |
//! |---|---|---|
//! | created | [`created`] | `syncing` |
//! | refresh succeeded | [`refreshes_succeeded`] | `healthy`; `degraded` with the account's code when the bank refused an account, or with 721 when an account has stalled (`feed::stall`) |
//! | refresh failed | [`refresh_failed`] | by who must act: user → `needs_user_action`, bank (or anything during an incident) → `bank_issue`, else `provider_issue` |
//! | credentials replaced | [`edited`] | `syncing` when the error is one new credentials fix, else unchanged |
//! | paused, resumed, renamed, rescheduled | [`edited`] | unchanged |
//! | disconnected | [`disconnected`] | `disconnected` (final: no event moves it again) |
//! | went stale | [`went_stale`] | `healthy`/`syncing` → `degraded`, else unchanged |
//! | incident opened / resolved | [`incident_opened`], [`incident_resolved`] | unchanged until the next refresh |

pub mod notices;
pub mod transition;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sqlx::PgConnection;

use super::store::transitions;
use super::store::{self, Changes, NewConnection};
use super::{ChangedBy, Connection, State};
use crate::catalog::{self, CatalogIndex, Code};
use crate::feed::stall::AccountStall;
use crate::incident::Incident;
use crate::telemetry::trace::TraceContext;
use crate::webhook::EventKind;
pub use notices::{Finished, Subject};
pub use transition::{Cause, Party};

/// Creates a connection in its initial state, with its timeline's first event and its first
/// scheduled refresh. The caller enqueues the first refresh in the same transaction.
pub async fn created(
    tx: &mut PgConnection,
    new: &NewConnection<'_>,
    detail: &serde_json::Value,
    by: ChangedBy,
) -> Result<(), sqlx::Error> {
    transitions::insert(&mut *tx, new, transition::INITIAL).await?;
    store::insert_event(&mut *tx, new.id, "connection.created", detail, by).await?;
    store::schedule_first_refresh(&mut *tx, new.id).await
}

/// What a successful refresh found.
#[derive(Debug)]
pub struct Succeeded<'a> {
    pub job_id: i64,
    pub at: DateTime<Utc>,
    /// The newest balance or posting date the bank reported.
    pub data_as_of: Option<DateTime<Utc>>,
    /// The `refresh.succeeded` timeline event's detail.
    pub detail: &'a serde_json::Value,
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
    /// Failed refreshes before this one: a success after any is a repair.
    pub failure_streak: i32,
    /// The code and raw code of an account whose statement the bank refused (709), if any:
    /// the connection carries it as its error, so its health and diagnosis name it.
    pub refused_account: Option<(Code, &'a str)>,
    /// Accounts silent for far longer than their rhythm (`feed::stall`): unless an account was
    /// refused, the connection carries the stall code as its error.
    pub stalled: &'a [AccountStall],
    /// The refresh job's trace, which the webhook deliveries this success enqueues carry.
    pub trace: Option<TraceContext>,
}

impl Succeeded<'_> {
    fn cause(&self) -> Cause {
        match (self.refused_account, self.stalled.is_empty()) {
            (Some(_), _) => Cause::RefreshSucceededWithRefusedAccounts,
            (None, false) => Cause::RefreshSucceededButStalled,
            (None, true) => Cause::RefreshSucceeded,
        }
    }

    /// The error the connection keeps after this success.
    fn error(&self) -> Option<(Code, &str)> {
        self.refused_account.or_else(|| (!self.stalled.is_empty()).then_some((Code::FEED_STALLED, STALLED_RAW)))
    }
}

/// The raw code a stall is stored with: feedwatch's own observation, not a provider's code.
pub const STALLED_RAW: &str = "feedwatch:stalled";

/// Refreshes succeeded (a batch stored together; a connection appears once): each connection is
/// healthy again, or degraded when an account was refused or has stalled. Returns the state each
/// is in, in order. A stall's onset (the connection did not carry the stall code before) adds a
/// `connection.stalled` timeline event and webhook; a success that brings the account back
/// clears it like any other error. The states and the usual timeline events are one statement
/// for the batch, the webhooks' subscribers one more.
pub async fn refreshes_succeeded(
    tx: &mut PgConnection,
    refreshes: &[(Subject, Succeeded<'_>)],
) -> Result<Vec<State>, sqlx::Error> {
    let recorded: Vec<transitions::Recorded<'_>> = refreshes
        .iter()
        .map(|(subject, done)| transitions::Recorded {
            id: subject.connection_id,
            success: transitions::Success { at: done.at, data_as_of: done.data_as_of, error: done.error() },
            detail: done.detail,
            rule: transition::rule(done.cause()),
        })
        .collect();
    let befores = transitions::record_successes(&mut *tx, &recorded).await?;
    let mut events = Vec::with_capacity(refreshes.len());
    for (((subject, done), recorded), before) in refreshes.iter().zip(&recorded).zip(befores) {
        events.push(success_events(tx, subject, done, recorded, before).await?);
    }
    let groups: Vec<_> = refreshes.iter().zip(&events).map(|((_, done), events)| (done.trace, &events[..])).collect();
    notices::emit_groups(tx, &groups).await?;
    Ok(recorded.iter().map(|recorded| recorded.rule.to).collect())
}

/// The webhook events of one recorded success, and its `connection.stalled` timeline event
/// when a stall begins.
async fn success_events(
    tx: &mut PgConnection,
    subject: &Subject,
    done: &Succeeded<'_>,
    recorded: &transitions::Recorded<'_>,
    before: Option<transitions::Before>,
) -> Result<Vec<crate::webhook::Event>, sqlx::Error> {
    let rule = recorded.rule;
    let finished = Finished::Succeeded { added: done.added, modified: done.modified, removed: done.removed };
    let mut events = notices::refresh_completed(subject, done.job_id, rule.to, finished);
    if let Some(before) = before {
        let code = recorded.success.error.map(|(code, _)| code);
        events.extend(notices::state_changed(subject, before.state, rule.to, code));
        if code.is_none() {
            events.extend(notices::repaired(subject, before.state, done.failure_streak));
        }
        if done.cause() == Cause::RefreshSucceededButStalled && before.error_code != Some(Code::FEED_STALLED) {
            let detail = notices::stall_detail(done.stalled);
            store::insert_event(&mut *tx, subject.connection_id, "connection.stalled", &detail, ChangedBy::SYSTEM)
                .await?;
            events.push(notices::stalled(subject, done.stalled));
        }
    }
    Ok(events)
}

/// A refresh failure, classified.
#[derive(Debug)]
pub struct Failed<'a> {
    pub job_id: i64,
    pub at: DateTime<Utc>,
    pub code: Code,
    /// The provider's own code (`ofx:15500`).
    pub raw: &'a str,
    pub message: &'a str,
    pub party: Party,
    /// The institution has an open incident.
    pub in_incident: bool,
}

/// A refresh failed: the state says who must act. Returns the state the failure implies.
pub async fn refresh_failed(
    tx: &mut PgConnection,
    subject: &Subject,
    failed: &Failed<'_>,
) -> Result<State, sqlx::Error> {
    let id = subject.connection_id;
    let rule = transition::rule(Cause::RefreshFailed { party: failed.party, in_incident: failed.in_incident });
    let before = transitions::record_failure(&mut *tx, id, failed.at, &rule, failed.code, failed.raw).await?;
    let detail = json!({ "job_id": failed.job_id, "code": failed.code, "raw": failed.raw, "message": failed.message });
    store::insert_event(&mut *tx, id, "refresh.failed", &detail, ChangedBy::SYSTEM).await?;
    if let Some(before) = before.filter(|before| *before != rule.to) {
        let detail = json!({ "from": before.as_str(), "to": rule.to.as_str(), "code": failed.code });
        store::insert_event(&mut *tx, id, "connection.state_changed", &detail, ChangedBy::SYSTEM).await?;
    }
    let mut events =
        notices::refresh_completed(subject, failed.job_id, rule.to, Finished::Failed { code: failed.code });
    if let Some(before) = before {
        events.extend(notices::state_changed(subject, before, rule.to, Some(failed.code)));
    }
    notices::emit_all(tx, &events).await?;
    Ok(rule.to)
}

/// Who must act on an error, as the live catalogue says (an admin's edit counts at once).
pub fn party_for(catalog: &CatalogIndex, code: Code) -> Party {
    match catalog.entry(code).map(|stored| stored.entry.actor) {
        Some(catalog::Actor::User) => Party::User,
        Some(catalog::Actor::Bank) => Party::Bank,
        _ => Party::Other,
    }
}

/// Errors that new sign-in details fix: the user-side sign-in, MFA, consent and bank-action ones.
fn fixed_by_new_credentials(catalog: &CatalogIndex) -> Vec<Code> {
    use crate::catalog::Category;
    catalog
        .entries()
        .filter(|stored| {
            matches!(
                stored.entry.category,
                Category::Credentials | Category::Mfa | Category::Consent | Category::BankAction
            )
        })
        .map(|stored| stored.entry.code)
        .collect()
}

/// Applies a person's edit if the connection is still at `expected_version`, with one timeline
/// event per change; new credentials also clear an error they fix (the connection goes back to
/// syncing until its next refresh shows whether they work). Returns the new version, or `None`
/// when someone else changed the connection first. The caller enqueues the refresh that tries
/// new credentials.
pub async fn edited(
    tx: &mut PgConnection,
    before: &Connection,
    expected_version: i32,
    changes: &Changes<'_>,
    by: ChangedBy,
    catalog: &CatalogIndex,
) -> Result<Option<i32>, sqlx::Error> {
    let Some(version) = store::update(&mut *tx, before.id, expected_version, changes).await? else {
        return Ok(None);
    };
    if let Some(name) = changes.display_name.filter(|name| *name != before.display_name) {
        let detail = json!({ "from": before.display_name, "to": name });
        store::insert_event(&mut *tx, before.id, "connection.renamed", &detail, by).await?;
    }
    if let Some(paused) = changes.paused.filter(|paused| *paused != before.paused) {
        // Pausing stops scheduled refreshes, not the health the last refresh showed.
        let (kind, cause) =
            if paused { ("connection.paused", Cause::Paused) } else { ("connection.resumed", Cause::Resumed) };
        debug_assert_eq!(transition::next(before.state, cause), before.state);
        store::insert_event(&mut *tx, before.id, kind, &json!({}), by).await?;
    }
    if let Some(seconds) = changes.refresh_every_seconds.filter(|seconds| *seconds != before.refresh_every_seconds) {
        let detail =
            json!({ "from": super::every_text(before.refresh_every_seconds), "to": super::every_text(seconds) });
        store::insert_event(&mut *tx, before.id, "connection.schedule_changed", &detail, by).await?;
    }
    if changes.credentials.is_some() {
        credentials_replaced(tx, before, by, catalog).await?;
    }
    Ok(Some(version))
}

async fn credentials_replaced(
    tx: &mut PgConnection,
    before: &Connection,
    by: ChangedBy,
    catalog: &CatalogIndex,
) -> Result<(), sqlx::Error> {
    // The detail says that they changed, never what they are.
    store::insert_event(&mut *tx, before.id, "connection.credentials_updated", &json!({}), by).await?;
    let rule = transition::rule(Cause::CredentialsReplaced { fixes_error: true });
    if !transitions::clear_user_error(&mut *tx, before.id, &fixed_by_new_credentials(catalog), &rule).await? {
        return Ok(());
    }
    let detail = json!({ "from": before.state.as_str(), "to": rule.to.as_str(), "cleared_error": before.error_code });
    store::insert_event(&mut *tx, before.id, "connection.state_changed", &detail, by).await?;
    notices::emit_all(tx, &notices::state_changed(&Subject::of(before), before.state, rule.to, None)).await
}

/// Disconnects: refreshes stop, data stays. Returns the new version, or `None` when the version
/// moved (or it was disconnected meanwhile).
pub async fn disconnected(
    tx: &mut PgConnection,
    current: &Connection,
    expected_version: i32,
    by: ChangedBy,
) -> Result<Option<i32>, sqlx::Error> {
    let rule = transition::rule(Cause::Disconnected);
    let Some(version) = transitions::disconnect(&mut *tx, current.id, expected_version, &rule).await? else {
        return Ok(None);
    };
    let detail = json!({ "from": current.state.as_str(), "to": rule.to.as_str() });
    store::insert_event(&mut *tx, current.id, "connection.disconnected", &detail, by).await?;
    notices::emit_all(tx, &notices::state_changed(&Subject::of(current), current.state, rule.to, None)).await?;
    Ok(Some(version))
}

/// The staleness sweep: connections with no success for `stale_after` are marked stale, and the
/// ones that still looked fine degrade, with a timeline event and a webhook each. Returns how
/// many changed state.
pub async fn went_stale(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    stale_after: TimeDelta,
) -> Result<usize, sqlx::Error> {
    let rule = transition::rule(Cause::WentStale);
    let changed = transitions::mark_stale(&mut *tx, now, stale_after, &rule).await?;
    let reason = format!("no successful refresh for {} h", stale_after.num_hours());
    for moved in &changed {
        let detail = json!({ "from": moved.before.as_str(), "to": moved.after.as_str(), "reason": reason });
        store::insert_event(&mut *tx, moved.id, "connection.state_changed", &detail, ChangedBy::SYSTEM).await?;
        let subject =
            Subject { tenant_id: moved.tenant_id, institution_id: moved.institution_id, connection_id: moved.id };
        notices::emit_all(tx, &notices::state_changed(&subject, moved.before, moved.after, None)).await?;
    }
    Ok(changed.len())
}

/// An incident opened for an institution (detected or declared): everyone with a connection at
/// the bank hears of it. Connections' states follow on their next refresh.
pub async fn incident_opened(tx: &mut PgConnection, incident: &Incident) -> Result<(), sqlx::Error> {
    notices::emit_all(tx, &[notices::incident(EventKind::IncidentOpened, incident)]).await
}

/// An incident was resolved. Connections' states follow on their next refresh, which the
/// refresh module brings forward (`refresh::incident_resolved`).
pub async fn incident_resolved(tx: &mut PgConnection, incident: &Incident) -> Result<(), sqlx::Error> {
    notices::emit_all(tx, &[notices::incident(EventKind::IncidentResolved, incident)]).await
}
