//! Fleet health: connection counts by state, error code, institution and staleness, for the
//! dashboards. Counts come from tallies that statement triggers keep through an append-only delta
//! log (see migration 0006), so a summary over a million connections reads a few hundred rows;
//! `rollup` folds the deltas in and runs on every replica, one at a time.

pub mod store;

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::catalog::Code;
use crate::connection::State;

/// What a summary covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Fleet,
    Tenant(Uuid),
    Institution(Uuid),
}

/// Connections sharing a state, an error code and staleness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyRow {
    pub state: String,
    pub error_code: Option<Code>,
    pub stale: bool,
    pub connections: i64,
}

/// An institution's place in the "failing institutions" ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstitutionCount {
    pub institution_id: Uuid,
    pub name: String,
    pub connections: i64,
    pub failing: i64,
    pub stale: i64,
}

/// An institution's failing connections by who must act, so a bank's outage is not confused with
/// its customers' wrong passwords: `bank_side` waits for the bank (`bank_issue`), `user_side` for
/// the user (`needs_user_action`), `other` for us or the provider (`provider_issue`, `degraded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingBySide {
    pub institution_id: Uuid,
    pub name: String,
    pub connections: i64,
    pub bank_side: i64,
    pub user_side: i64,
    pub other: i64,
}

/// Refresh work waiting and running, as the summary shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueBacklog {
    pub available: i64,
    /// Waiting jobs whose start time has come.
    pub due: i64,
    pub running: i64,
    /// Age of the oldest due job.
    pub oldest_due_seconds: Option<f64>,
}

/// The counts of a scope, folded from its tally rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub connections: i64,
    /// Every state, zero included, so dashboards need not know the list.
    pub by_state: BTreeMap<&'static str, i64>,
    /// Connections with a current error, by catalogue code.
    pub by_error_code: BTreeMap<Code, i64>,
    /// Connections (not disconnected) without a success for longer than the staleness limit.
    pub stale: i64,
}

impl Counts {
    pub fn from_rows(rows: &[TallyRow]) -> Self {
        let mut counts =
            Self { by_state: State::ALL.iter().map(|state| (state.as_str(), 0)).collect(), ..Self::default() };
        for row in rows {
            counts.connections += row.connections;
            if let Some(state) = State::parse(&row.state) {
                *counts.by_state.entry(state.as_str()).or_default() += row.connections;
            }
            if let Some(code) = row.error_code {
                *counts.by_error_code.entry(code).or_default() += row.connections;
            }
            if row.stale {
                counts.stale += row.connections;
            }
        }
        counts.by_error_code.retain(|_, connections| *connections != 0);
        counts
    }
}

/// Whether a state counts as failing in the institution ranking; the SQL function
/// `health_is_failing` says the same.
pub fn is_failing(state: State) -> bool {
    matches!(state, State::Degraded | State::NeedsUserAction | State::BankIssue | State::ProviderIssue)
}

/// Folds pending deltas into the tallies every `every` until `shutdown`.
pub async fn run_rollup(pool: PgPool, every: Duration, shutdown: CancellationToken) {
    loop {
        match store::rollup(&pool).await {
            Ok(Some(moved)) if moved > 0 => tracing::debug!(moved, "health tallies rolled up"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "rolling up health tallies failed; retrying next round"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, error_code: u32, stale: bool, connections: i64) -> TallyRow {
        let error_code = (error_code != 0).then_some(Code::new(error_code));
        TallyRow { state: state.to_owned(), error_code, stale, connections }
    }

    #[test]
    fn counts_fold_rows_by_state_code_and_staleness() {
        let counts = Counts::from_rows(&[
            row("healthy", 0, false, 10),
            row("degraded", 0, true, 2),
            row("bank_issue", 102, false, 3),
            row("bank_issue", 102, true, 1),
            row("needs_user_action", 103, false, 4),
            row("provider_issue", 105, false, 0),
        ]);
        assert_eq!(counts.connections, 20);
        assert_eq!(counts.by_state["healthy"], 10);
        assert_eq!(counts.by_state["bank_issue"], 4);
        assert_eq!(counts.by_state["syncing"], 0, "every state is listed");
        assert_eq!(counts.by_state.len(), State::ALL.len());
        assert_eq!(
            counts.by_error_code,
            BTreeMap::from([(Code::new(102), 4), (Code::new(103), 4)]),
            "zero counts are dropped"
        );
        assert_eq!(counts.stale, 3);
    }

    #[test]
    fn failing_states_match_the_ranking() {
        let failing: Vec<_> = State::ALL.iter().copied().filter(|state| is_failing(*state)).collect();
        assert_eq!(failing, [State::Degraded, State::NeedsUserAction, State::BankIssue, State::ProviderIssue]);
    }
}
