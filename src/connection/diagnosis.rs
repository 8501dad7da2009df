//! The troubleshooting ladder a good helpdesk agent runs on a broken connection, in the order
//! that finds the cause fastest: a bank-wide incident first (nothing else matters then), then
//! sign-in, MFA, accounts, names, other errors, silent stalls (refreshes succeed, nothing new
//! arrives), staleness and finally why automatic refreshes are not running. Each rung is a pure function of facts gathered beforehand, so the ladder is
//! tested without a database.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Account, AccountState, Connection, State};
use crate::catalog::{Action, Actor, Category, Code, Entry};
use crate::feed::stall::{self, Activity, Rules as StallRules};

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Is the institution in an incident?
    InstitutionIncident,
    /// Did the sign-in fail, and were the credentials changed since?
    Credentials,
    /// Is the bank waiting for an MFA answer?
    Mfa,
    /// Are accounts missing or closed at the bank?
    Accounts,
    /// Do several accounts share a name (QuickBooks 324)?
    DuplicateNames,
    /// Does another error of the catalogue stop refreshes?
    OtherError,
    /// Do the accounts still bring new transactions at their usual rhythm (silent stalls)?
    FeedActivity,
    /// Has the connection gone without a success for too long?
    Staleness,
    /// Are automatic refreshes running, or paused by the user or by backoff?
    AutomaticRefreshes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Finding {
    pub check: Check,
    pub verdict: Verdict,
    /// What was looked at, with times and codes.
    pub evidence: String,
    /// What to do next; absent when the check passed.
    pub next_step: Option<String>,
    /// The front end's one action for a failed check.
    pub action: Option<Action>,
}

/// The connection's queued or running refresh.
#[derive(Debug, Clone)]
pub struct PendingRefresh {
    pub run_at: DateTime<Utc>,
    pub running: bool,
    /// Attempts already spent on this job.
    pub attempt: i32,
    pub last_error: Option<String>,
}

/// Everything the ladder looks at.
#[derive(Debug)]
pub struct Facts<'a> {
    pub connection: &'a Connection,
    pub accounts: &'a [Account],
    /// Names of this connection's accounts that other accounts of the tenant also use.
    pub duplicate_names: &'a [String],
    /// The catalogue entry of the connection's current error.
    pub error: Option<&'a Entry>,
    pub pending: Option<&'a PendingRefresh>,
    /// Each active account's days of feed activity, and when silence counts as a stall.
    pub activity: &'a [Activity],
    pub stalls: StallRules,
    pub stale_after: TimeDelta,
    pub now: DateTime<Utc>,
}

/// Runs every rung; the first failing finding is the answer.
pub fn diagnose(facts: &Facts<'_>) -> Vec<Finding> {
    vec![
        incident(facts),
        credentials(facts),
        mfa(facts),
        accounts(facts),
        duplicate_names(facts),
        other_error(facts),
        feed_activity(facts),
        staleness(facts),
        automatic_refreshes(facts),
    ]
}

fn pass(check: Check, evidence: impl Into<String>) -> Finding {
    Finding { check, verdict: Verdict::Pass, evidence: evidence.into(), next_step: None, action: None }
}

fn fail(check: Check, evidence: String, next_step: impl Into<String>, action: Option<Action>) -> Finding {
    Finding { check, verdict: Verdict::Fail, evidence, next_step: Some(next_step.into()), action }
}

fn at(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn incident(facts: &Facts<'_>) -> Finding {
    let connection = facts.connection;
    let Some(incident) = &connection.incident else {
        return pass(Check::InstitutionIncident, format!("{} has no open incident.", connection.institution_name));
    };
    fail(
        Check::InstitutionIncident,
        format!("{} has an open incident: {}.", connection.institution_name, incident.title),
        format!(
            "Nothing to do at this end: the bank is failing for many connections. Refreshes resume automatically \
             after {}, and the incident closes itself once they succeed.",
            at(incident.wait_until)
        ),
        Some(Action::WaitUntil),
    )
}

/// The current error, when its catalogue category is one of `categories`.
fn error_in<'a>(facts: &Facts<'a>, categories: &[Category]) -> Option<(Code, &'a Entry)> {
    let code = facts.connection.error_code?;
    facts.error.filter(|entry| categories.contains(&entry.category)).map(|entry| (code, entry))
}

fn credentials(facts: &Facts<'_>) -> Finding {
    let connection = facts.connection;
    let changed = format!("Credentials last changed {}.", at(connection.credentials_updated_at));
    let Some((code, entry)) = error_in(facts, &[Category::Credentials, Category::Consent, Category::BankAction]) else {
        return pass(Check::Credentials, format!("No sign-in error. {changed}"));
    };
    let since = connection.error_at.map_or_else(String::new, |time| format!(" since {}", at(time)));
    fail(
        Check::Credentials,
        format!("Sign-in failing with {code} ({}){since}. {changed}", entry.title),
        first_step(entry, "Ask the user to sign in again with the bank's current credentials."),
        Some(entry.action),
    )
}

fn mfa(facts: &Facts<'_>) -> Finding {
    let Some((code, entry)) = error_in(facts, &[Category::Mfa]) else {
        return pass(Check::Mfa, "The bank is not waiting for a security answer.");
    };
    fail(
        Check::Mfa,
        format!("The bank asks for multi-factor authentication: {code} ({}).", entry.title),
        first_step(entry, "Ask the user to refresh by hand and answer the bank's security question."),
        Some(Action::AnswerMfa),
    )
}

fn accounts(facts: &Facts<'_>) -> Finding {
    let gone: Vec<&Account> = facts
        .accounts
        .iter()
        .filter(|account| matches!(account.state, AccountState::NotFound | AccountState::Closed))
        .collect();
    let refused: Vec<&Account> =
        facts.accounts.iter().filter(|account| account.state == AccountState::Refused).collect();
    // A stall is an account's silence, not a missing account: its own rung explains it.
    let account_error = error_in(facts, &[Category::Account]).filter(|(code, _)| *code != Code::FEED_STALLED);
    if gone.is_empty() && refused.is_empty() && account_error.is_none() {
        let active = facts.accounts.iter().filter(|account| account.state == AccountState::Active).count();
        return pass(Check::Accounts, format!("{active} active account(s); the bank reported every one of them."));
    }
    let names: Vec<String> =
        gone.iter().map(|account| format!("{} ({})", account.display_name, account.state.as_str())).collect();
    let mut evidence =
        if names.is_empty() { String::new() } else { format!("The bank no longer reports: {}. ", names.join(", ")) };
    let refusals: Vec<String> = refused
        .iter()
        .map(|account| match account.error_code {
            Some(code) => format!("{} (error {code})", account.display_name),
            None => account.display_name.clone(),
        })
        .collect();
    if !refusals.is_empty() {
        evidence.push_str(&format!("The bank refuses statements for: {}. ", refusals.join(", ")));
    }
    if let Some((code, entry)) = account_error {
        evidence.push_str(&format!("Current error {code} ({}).", entry.title));
    }
    let remap = "Map each missing account to the bank's new account (PATCH the account's bank_account_id), or hide \
                 it if it was closed.";
    let (next_step, action) = match account_error {
        // A refusal is fixed at the bank, as its entry says, not by remapping.
        Some((_, entry)) if gone.is_empty() && !refused.is_empty() => (first_step(entry, remap), entry.action),
        _ => (remap.to_owned(), Action::RemapAccount),
    };
    fail(Check::Accounts, evidence.trim_end().to_owned(), next_step, Some(action))
}

fn duplicate_names(facts: &Facts<'_>) -> Finding {
    if facts.duplicate_names.is_empty() {
        return pass(Check::DuplicateNames, "Every account name is unique within the tenant.");
    }
    fail(
        Check::DuplicateNames,
        format!("Several accounts of the tenant are named: {}.", facts.duplicate_names.join(", ")),
        "Rename the accounts so each name is unique (PATCH the account's display_name); a feed cannot tell \
         same-named accounts apart.",
        Some(Action::RemapAccount),
    )
}

fn other_error(facts: &Facts<'_>) -> Finding {
    let handled = [Category::Credentials, Category::Consent, Category::BankAction, Category::Mfa, Category::Account];
    let Some(code) = facts.connection.error_code else {
        return pass(Check::OtherError, "The last refresh reported no error.");
    };
    let Some(entry) = facts.error else {
        return fail(
            Check::OtherError,
            format!("Error {code} is not in the catalogue."),
            "Contact support with the connection id and the raw error from the timeline.",
            Some(Action::ContactSupport),
        );
    };
    if handled.contains(&entry.category) {
        return pass(Check::OtherError, format!("Error {code} is covered by the checks above."));
    }
    if let Some(what) = entry.category.not_a_failure() {
        return pass(Check::OtherError, format!("Code {code} ({}) is {what}.", entry.title));
    }
    let who = match entry.actor {
        Actor::Bank => "the bank",
        Actor::User => "the user",
        _ => "support",
    };
    fail(
        Check::OtherError,
        format!("Error {code} ({}); {who} must act.", entry.title),
        first_step(entry, "Follow the catalogue entry's steps."),
        Some(entry.action),
    )
}

fn feed_activity(facts: &Facts<'_>) -> Finding {
    let today = facts.now.date_naive();
    let verdicts: Vec<stall::Verdict> =
        facts.activity.iter().map(|activity| stall::judge(activity, today, facts.stalls)).collect();
    let stalled: Vec<String> = verdicts
        .iter()
        .filter_map(|verdict| match verdict {
            stall::Verdict::Stalled(stall) => Some(format!(
                "{} (last new transaction {}, {} days ago; usually at most {} day(s) apart, stalled after {})",
                stall.account_name, stall.last_active, stall.silent_days, stall.usual_gap_days, stall.limit_days
            )),
            _ => None,
        })
        .collect();
    if stalled.is_empty() {
        let judged = verdicts.iter().filter(|verdict| matches!(verdict, stall::Verdict::Flowing { .. })).count();
        let unjudged = verdicts.len() - judged;
        return pass(
            Check::FeedActivity,
            format!(
                "{judged} account(s) bring new transactions at their usual rhythm; {unjudged} have too little history \
                 to judge."
            ),
        );
    }
    let entry = facts.error.filter(|entry| entry.code == Code::FEED_STALLED);
    fail(
        Check::FeedActivity,
        format!("Refreshes answer, but nothing new arrives from: {}.", stalled.join("; ")),
        entry.map_or_else(
            || {
                "Ask the user whether the bank's website shows recent activity; if it does, import a statement \
                 file to fill the gap and reconnect."
                    .to_owned()
            },
            |entry| first_step(entry, ""),
        ),
        Some(entry.map_or(Action::UploadFile, |entry| entry.action)),
    )
}

fn staleness(facts: &Facts<'_>) -> Finding {
    let connection = facts.connection;
    let since = connection.last_success_at.unwrap_or(connection.created_at);
    let age = facts.now - since;
    let last = connection.last_success_at.map_or_else(
        || "Never refreshed successfully".to_owned(),
        |time| format!("Last successful refresh {}", at(time)),
    );
    if connection.state == State::Disconnected || age <= facts.stale_after {
        return pass(Check::Staleness, format!("{last} ({} h ago).", age.num_hours()));
    }
    fail(
        Check::Staleness,
        format!("{last}: {} h ago, beyond the {} h limit.", age.num_hours(), facts.stale_after.num_hours()),
        "Data is out of date: fix the failing check above if there is one, else refresh by hand (POST \
         /v1/connections/{id}/refresh) and watch the timeline.",
        None,
    )
}

fn automatic_refreshes(facts: &Facts<'_>) -> Finding {
    let connection = facts.connection;
    let check = Check::AutomaticRefreshes;
    if connection.state == State::Disconnected {
        let evidence = "The connection is disconnected: nothing refreshes it.".to_owned();
        return fail(check, evidence, "Create the connection again to resume bank feeds.", Some(Action::Reconnect));
    }
    if connection.paused {
        let evidence = "Automatic refreshes are paused on this connection.".to_owned();
        return fail(check, evidence, "Resume them: PATCH the connection with `paused: false`.", None);
    }
    match facts.pending {
        Some(pending) if pending.running => pass(check, "A refresh is running now."),
        Some(pending) if pending.attempt > 0 && pending.run_at > facts.now => {
            let error = pending.last_error.as_deref().map_or_else(String::new, |error| format!(" (last: {error})"));
            fail(
                check,
                format!(
                    "Backing off after {} failed attempt(s){error}; next attempt {}.",
                    pending.attempt,
                    at(pending.run_at)
                ),
                "Wait for the retry, or refresh by hand once the cause above is fixed.",
                Some(Action::WaitUntil),
            )
        }
        Some(pending) => pass(check, format!("A refresh is queued for {}.", at(pending.run_at))),
        None if connection.state == State::NeedsUserAction => fail(
            check,
            "Automatic refreshes stop until the user acts: retrying would repeat the failure.".to_owned(),
            "Fix the failing check above; saving new credentials queues a refresh.",
            Some(Action::Reconnect),
        ),
        None => match connection.next_refresh_at {
            Some(next) => pass(check, format!("Next scheduled refresh {}.", at(next))),
            None => pass(check, "The first scheduled refresh has not been planned yet."),
        },
    }
}

fn first_step(entry: &Entry, fallback: &str) -> String {
    entry.steps.first().cloned().unwrap_or_else(|| fallback.to_owned())
}

#[cfg(test)]
mod tests;
