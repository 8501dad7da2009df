//! Bank incidents: many connections of one institution failing bank-side at once. The refresh
//! path records every outcome, opens an incident when the failures cross the thresholds, slows
//! the affected connections' retries while it is open, and resolves it once refreshes succeed
//! again. Helpdesk agents can also declare and resolve incidents by hand.
//!
//! Detection runs on every replica without a leader: the database allows one open incident per
//! institution (a partial unique index), so concurrent detections open it once.

pub mod store;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::catalog::Code;
use crate::institution::InstitutionRef;

/// Thresholds for opening and resolving incidents (configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// How far back detection looks at refresh outcomes.
    pub window: TimeDelta,
    /// Distinct connections that must have failed bank-side within the window.
    pub min_failed_connections: i64,
    /// …and their least share of the connections attempted within the window (0 to 1).
    pub min_failed_share: f64,
    /// While an incident is open, affected connections are retried this often instead of
    /// backing off from seconds.
    pub retry_every: Duration,
    /// Distinct connections that must succeed after the last bank-side failure to resolve a
    /// detected incident.
    pub resolve_after_successes: i64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            window: TimeDelta::minutes(15),
            min_failed_connections: 5,
            min_failed_share: 0.5,
            retry_every: Duration::from_secs(30 * 60),
            resolve_after_successes: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Open, Self::Resolved].into_iter().find(|state| state.as_str() == text)
    }
}

/// Who opened an incident.
// Named apart from the catalogue's `Source` (an entry's reference): under one name, the second
// schema silently replaced the first in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = IncidentSource)]
pub enum Source {
    /// The refresh path, from failure counts.
    Detected,
    /// A helpdesk agent.
    Declared,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detected => "detected",
            Self::Declared => "declared",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Detected, Self::Declared].into_iter().find(|source| source.as_str() == text)
    }
}

/// A bank incident.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = IncidentView)]
pub struct Incident {
    pub id: Uuid,
    pub institution: InstitutionRef,
    pub state: IncidentState,
    pub source: Source,
    pub title: String,
    /// Safe to show business owners.
    pub message: String,
    /// The bank-side catalogue code most failures had (detected incidents).
    #[schema(value_type = Option<i32>)]
    pub error_code: Option<Code>,
    /// Distinct connections that failed bank-side in the detection window.
    pub failed_connections: i32,
    /// Distinct connections attempted in the detection window.
    pub attempted_connections: i32,
    /// Affected connections are not retried before this: the `wait_until` users see.
    pub wait_until: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    /// The key that declared it; absent when detected.
    pub opened_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
    pub resolution: String,
    pub updated_at: DateTime<Utc>,
}

/// What one refresh outcome was, as incident detection sees it.
#[derive(Debug, Clone, Copy)]
pub struct RefreshOutcome {
    pub institution_id: Uuid,
    pub connection_id: Uuid,
    pub at: DateTime<Utc>,
    /// `None` for a success.
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Copy)]
pub struct Failure {
    pub code: Code,
    /// The catalogue says the bank must act.
    pub bank_side: bool,
}

/// What recording an outcome did to the institution's incidents.
#[derive(Debug, Clone, Default)]
pub struct Effect {
    /// The institution's open incident after this outcome, if any.
    pub open: Option<Incident>,
    /// This outcome opened `open`.
    pub opened: bool,
    /// This outcome resolved an incident.
    pub resolved: Option<Incident>,
}

/// Records a refresh outcome in the caller's transaction and applies the rules: a bank-side
/// failure may open an incident, a success may resolve a detected one.
pub async fn record(conn: &mut PgConnection, outcome: &RefreshOutcome, rules: &Rules) -> Result<Effect, sqlx::Error> {
    let mut effects = record_all(conn, std::slice::from_ref(outcome), rules).await?;
    Ok(effects.pop().unwrap_or_default())
}

/// [`record`] for several outcomes (a batch of refreshes stored together): one statement
/// records them all and reads their institutions' open incidents; then the rules apply to each
/// outcome in order, as if recorded one after another, with the counts they read seeing the
/// whole batch. An outcome after one that opened or resolved its institution's incident sees
/// that.
pub async fn record_all(
    conn: &mut PgConnection,
    outcomes: &[RefreshOutcome],
    rules: &Rules,
) -> Result<Vec<Effect>, sqlx::Error> {
    let mut open: HashMap<Uuid, Option<Incident>> = HashMap::new();
    for incident in store::record_outcomes(&mut *conn, outcomes).await? {
        open.insert(incident.institution.id, Some(incident));
    }
    let mut effects = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let current = open.get(&outcome.institution_id).cloned().flatten();
        let effect = apply_rules(conn, outcome, current, rules).await?;
        open.insert(outcome.institution_id, effect.open.clone());
        effects.push(effect);
    }
    Ok(effects)
}

async fn apply_rules(
    conn: &mut PgConnection,
    outcome: &RefreshOutcome,
    open: Option<Incident>,
    rules: &Rules,
) -> Result<Effect, sqlx::Error> {
    match (outcome.failure, open) {
        (Some(failure), Some(open)) if failure.bank_side => {
            let wait_until = outcome.at + to_delta(rules.retry_every);
            store::extend_wait(&mut *conn, open.id, wait_until).await?;
            Ok(Effect {
                open: Some(Incident { wait_until: open.wait_until.max(wait_until), ..open }),
                ..Effect::default()
            })
        }
        (Some(failure), None) if failure.bank_side => detect(conn, outcome, rules).await,
        (None, Some(open)) if open.source == Source::Detected => {
            let resolved = resolve_if_recovered(conn, &open, rules).await?;
            let still_open = resolved.is_none().then_some(open);
            Ok(Effect { open: still_open, opened: false, resolved })
        }
        (_, open) => Ok(Effect { open, ..Effect::default() }),
    }
}

async fn detect(conn: &mut PgConnection, outcome: &RefreshOutcome, rules: &Rules) -> Result<Effect, sqlx::Error> {
    let counts = store::window_counts(&mut *conn, outcome.institution_id, outcome.at - rules.window).await?;
    if !crosses(&counts, rules) {
        return Ok(Effect::default());
    }
    let opening = NewIncident {
        institution_id: outcome.institution_id,
        source: Source::Detected,
        title: "The bank is failing for many connections".to_owned(),
        message: format!(
            "{} of {} connections refreshed in the last {} minutes failed with bank-side errors. \
             Nothing to do: we retry automatically and close this when refreshes succeed again.",
            counts.failed,
            counts.attempted,
            rules.window.num_minutes()
        ),
        error_code: counts.top_code,
        failed_connections: clamp(counts.failed),
        attempted_connections: clamp(counts.attempted),
        wait_until: outcome.at + to_delta(rules.retry_every),
        opened_by: None,
    };
    match store::open(&mut *conn, &opening).await? {
        Some(opened) => Ok(Effect { open: Some(opened), opened: true, resolved: None }),
        // Another replica opened it first: join theirs.
        None => Ok(Effect { open: store::open_for(&mut *conn, outcome.institution_id).await?, ..Effect::default() }),
    }
}

async fn resolve_if_recovered(
    conn: &mut PgConnection,
    open: &Incident,
    rules: &Rules,
) -> Result<Option<Incident>, sqlx::Error> {
    let recovered = store::successes_since_last_bank_failure(&mut *conn, open.institution.id, open.opened_at).await?;
    if recovered < rules.resolve_after_successes {
        return Ok(None);
    }
    let resolution = format!("Resolved automatically: {recovered} connections refreshed successfully again.");
    store::resolve(&mut *conn, open.id, None, &resolution).await
}

/// Distinct connections of an institution within a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    pub attempted: i64,
    pub failed: i64,
    /// The most frequent bank-side code.
    pub top_code: Option<Code>,
}

/// Whether a window's failures call for an incident.
pub fn crosses(counts: &WindowCounts, rules: &Rules) -> bool {
    // Precision loss is irrelevant for counts far below 2^52.
    #[allow(clippy::cast_precision_loss)]
    let share = if counts.attempted == 0 { 0.0 } else { counts.failed as f64 / counts.attempted as f64 };
    counts.failed >= rules.min_failed_connections && share >= rules.min_failed_share
}

/// An incident to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub institution_id: Uuid,
    pub source: Source,
    pub title: String,
    pub message: String,
    pub error_code: Option<Code>,
    pub failed_connections: i32,
    pub attempted_connections: i32,
    pub wait_until: DateTime<Utc>,
    pub opened_by: Option<Uuid>,
}

/// How long refresh outcomes are kept. Detection looks back minutes and success rates a day;
/// a week is plenty.
pub const OUTCOME_RETENTION: TimeDelta = TimeDelta::days(7);

/// Deletes refresh outcomes past [`OUTCOME_RETENTION`], in batches. Returns how many went.
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let before = Utc::now() - OUTCOME_RETENTION;
    crate::database::in_batches(1000, || store::prune_outcomes(pool, before, 1000)).await
}

fn clamp(count: i64) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

fn to_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(attempted: i64, failed: i64) -> WindowCounts {
        WindowCounts { attempted, failed, top_code: Some(Code::new(102)) }
    }

    #[test]
    fn an_incident_needs_both_enough_connections_and_a_large_enough_share() {
        let rules = Rules { min_failed_connections: 5, min_failed_share: 0.5, ..Rules::default() };
        assert!(crosses(&counts(8, 5), &rules));
        assert!(crosses(&counts(5, 5), &rules));
        assert!(!crosses(&counts(4, 4), &rules), "too few connections");
        assert!(!crosses(&counts(100, 20), &rules), "too small a share: 20 of 100");
        assert!(!crosses(&counts(0, 0), &rules));
    }

    #[test]
    fn states_and_sources_round_trip() {
        for state in [IncidentState::Open, IncidentState::Resolved] {
            assert_eq!(IncidentState::parse(state.as_str()), Some(state));
        }
        for source in [Source::Detected, Source::Declared] {
            assert_eq!(Source::parse(source.as_str()), Some(source));
        }
        assert_eq!(IncidentState::parse("closed"), None);
    }
}
