//! The transition table: which health state a connection moves to when something happens to
//! it. Pure, so every (state, cause) pair is tested here and the SQL that applies a transition
//! receives the table's answer instead of spelling states of its own.

use crate::connection::State;

/// Who must act for a refresh failure to go away, as the catalogue entry of its code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// Sign-in, MFA, consent, remapping: only the user can fix it.
    User,
    /// The bank is failing.
    Bank,
    /// The provider, our settings for the bank, or an unclassified failure.
    Other,
}

/// What happened to a connection, as far as its health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    RefreshSucceeded,
    /// The refresh succeeded, but the bank refused the statement of one account or more
    /// (709: not enabled for online access): the rest is fine, that account gets nothing.
    RefreshSucceededWithRefusedAccounts,
    /// The refresh succeeded, but an account has brought nothing new for far longer than its
    /// own rhythm (`feed::stall`): the bank answers, with nothing in it.
    RefreshSucceededButStalled,
    /// `in_incident`: the institution has an open incident, so anything but a user-side failure
    /// is taken to be the bank's.
    RefreshFailed {
        party: Party,
        in_incident: bool,
    },
    /// New sign-in details; `fixes_error`: the connection's error is one that new details fix.
    CredentialsReplaced {
        fixes_error: bool,
    },
    Paused,
    Resumed,
    Disconnected,
    /// No success for longer than the staleness limit.
    WentStale,
    /// An incident opened or resolved for the connection's institution: the state follows on the
    /// next refresh (which a resolution brings forward), not at once.
    IncidentOpened,
    IncidentResolved,
}

/// Every state but `Disconnected`: the states a connection is refreshed and judged in.
pub const LIVE: &[State] =
    &[State::Healthy, State::Syncing, State::Degraded, State::NeedsUserAction, State::BankIssue, State::ProviderIssue];

/// The state a new connection starts in: its first refresh is queued with it.
pub const INITIAL: State = State::Syncing;

/// One row of the table: connections in a state of `from` move to `to`; any other state stays.
/// The store applies it as `case when state = any(from) then to else state end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub from: &'static [State],
    pub to: State,
}

impl Rule {
    /// Nothing changes, whatever the state.
    const KEEP: Rule = Rule { from: &[], to: State::Healthy };

    pub fn applies_to(&self, state: State) -> bool {
        self.from.contains(&state)
    }

    /// `from` as the store binds it.
    pub fn from_names(&self) -> Vec<&'static str> {
        self.from.iter().map(|state| state.as_str()).collect()
    }
}

/// The table itself.
pub fn rule(cause: Cause) -> Rule {
    match cause {
        Cause::RefreshSucceeded => Rule { from: LIVE, to: State::Healthy },
        // Not a failing state: the other accounts keep refreshing on schedule.
        Cause::RefreshSucceededWithRefusedAccounts => Rule { from: LIVE, to: State::Degraded },
        // Every check passes, yet data stopped: green would hide it, failing would overstate it.
        Cause::RefreshSucceededButStalled => Rule { from: LIVE, to: State::Degraded },
        Cause::RefreshFailed { party, in_incident } => Rule { from: LIVE, to: failing_state(party, in_incident) },
        Cause::CredentialsReplaced { fixes_error: true } => Rule { from: LIVE, to: State::Syncing },
        Cause::Disconnected => Rule { from: LIVE, to: State::Disconnected },
        // Green must not stay green while nothing arrives; a failing state already says more.
        Cause::WentStale => Rule { from: &[State::Healthy, State::Syncing], to: State::Degraded },
        Cause::CredentialsReplaced { fixes_error: false }
        | Cause::Paused
        | Cause::Resumed
        | Cause::IncidentOpened
        | Cause::IncidentResolved => Rule::KEEP,
    }
}

/// The state after `cause`, from `current`.
pub fn next(current: State, cause: Cause) -> State {
    let rule = rule(cause);
    if rule.applies_to(current) { rule.to } else { current }
}

fn failing_state(party: Party, in_incident: bool) -> State {
    match (party, in_incident) {
        (Party::User, _) => State::NeedsUserAction,
        (Party::Bank, _) | (Party::Other, true) => State::BankIssue,
        (Party::Other, false) => State::ProviderIssue,
    }
}

/// Whether the scheduler refreshes a connection in this state: not once it is disconnected, and
/// not while only the user can fix it (a refresh would fail the same way, and repeated failed
/// sign-ins can lock the user out at the bank).
pub fn scheduled(state: State) -> bool {
    !matches!(state, State::Disconnected | State::NeedsUserAction)
}

/// The states the scheduler refreshes.
pub fn scheduled_states() -> Vec<State> {
    State::ALL.into_iter().filter(|state| scheduled(*state)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    const CAUSES: [Cause; 17] = [
        Cause::RefreshSucceeded,
        Cause::RefreshSucceededWithRefusedAccounts,
        Cause::RefreshSucceededButStalled,
        Cause::RefreshFailed { party: Party::User, in_incident: false },
        Cause::RefreshFailed { party: Party::User, in_incident: true },
        Cause::RefreshFailed { party: Party::Bank, in_incident: false },
        Cause::RefreshFailed { party: Party::Bank, in_incident: true },
        Cause::RefreshFailed { party: Party::Other, in_incident: false },
        Cause::RefreshFailed { party: Party::Other, in_incident: true },
        Cause::CredentialsReplaced { fixes_error: true },
        Cause::CredentialsReplaced { fixes_error: false },
        Cause::Paused,
        Cause::Resumed,
        Cause::Disconnected,
        Cause::WentStale,
        Cause::IncidentOpened,
        Cause::IncidentResolved,
    ];

    /// The whole table written out: one row per cause, one column per state in `State::ALL`
    /// order (healthy, syncing, degraded, needs_user_action, bank_issue, provider_issue,
    /// disconnected).
    fn expected(cause: Cause) -> [State; 7] {
        match cause {
            Cause::RefreshSucceeded => [Healthy, Healthy, Healthy, Healthy, Healthy, Healthy, Disconnected],
            Cause::RefreshSucceededWithRefusedAccounts | Cause::RefreshSucceededButStalled => {
                [Degraded, Degraded, Degraded, Degraded, Degraded, Degraded, Disconnected]
            }
            Cause::RefreshFailed { party: Party::User, .. } => [
                NeedsUserAction,
                NeedsUserAction,
                NeedsUserAction,
                NeedsUserAction,
                NeedsUserAction,
                NeedsUserAction,
                Disconnected,
            ],
            Cause::RefreshFailed { party: Party::Bank, .. }
            | Cause::RefreshFailed { party: Party::Other, in_incident: true } => {
                [BankIssue, BankIssue, BankIssue, BankIssue, BankIssue, BankIssue, Disconnected]
            }
            Cause::RefreshFailed { party: Party::Other, in_incident: false } => {
                [ProviderIssue, ProviderIssue, ProviderIssue, ProviderIssue, ProviderIssue, ProviderIssue, Disconnected]
            }
            Cause::CredentialsReplaced { fixes_error: true } => {
                [Syncing, Syncing, Syncing, Syncing, Syncing, Syncing, Disconnected]
            }
            Cause::Disconnected => [Disconnected; 7],
            Cause::WentStale => [Degraded, Degraded, Degraded, NeedsUserAction, BankIssue, ProviderIssue, Disconnected],
            Cause::CredentialsReplaced { fixes_error: false }
            | Cause::Paused
            | Cause::Resumed
            | Cause::IncidentOpened
            | Cause::IncidentResolved => State::ALL,
        }
    }

    #[test]
    fn every_state_and_cause_pair_follows_the_table() {
        for cause in CAUSES {
            for (current, want) in State::ALL.into_iter().zip(expected(cause)) {
                assert_eq!(next(current, cause), want, "{current:?} on {cause:?}");
            }
        }
    }

    #[test]
    fn a_disconnected_connection_never_changes_state() {
        for cause in CAUSES {
            assert_eq!(next(Disconnected, cause), Disconnected, "{cause:?}");
            assert!(!rule(cause).applies_to(Disconnected));
        }
    }

    #[test]
    fn a_rule_changes_only_the_states_it_names() {
        for cause in CAUSES {
            let rule = rule(cause);
            for state in State::ALL {
                assert_eq!(
                    next(state, cause) != state,
                    rule.applies_to(state) && rule.to != state,
                    "{state:?} {cause:?}"
                );
            }
            assert_eq!(rule.from_names().len(), rule.from.len());
        }
    }

    #[test]
    fn the_scheduler_skips_disconnected_and_user_fixable_connections() {
        assert_eq!(scheduled_states(), [Healthy, Syncing, Degraded, BankIssue, ProviderIssue]);
        assert!(scheduled(INITIAL));
    }
}
