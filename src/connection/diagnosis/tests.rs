#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::catalog::{Catalog, Code};
use crate::connection::{AccountKind, OpenIncident};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).single().unwrap_or_default()
}

fn healthy() -> Connection {
    Connection {
        id: Uuid::nil(),
        tenant_id: Uuid::nil(),
        institution_id: Uuid::nil(),
        institution_name: "First Example Bank".into(),
        display_name: "Operating".into(),
        state: State::Healthy,
        paused: false,
        refresh_every_seconds: 86_400,
        credentials_updated_at: now() - TimeDelta::days(30),
        last_attempt_at: Some(now() - TimeDelta::hours(2)),
        last_success_at: Some(now() - TimeDelta::hours(2)),
        data_as_of: Some(now() - TimeDelta::hours(3)),
        failure_streak: 0,
        error_code: None,
        error_raw: None,
        error_at: None,
        next_refresh_at: Some(now() + TimeDelta::hours(22)),
        version: 3,
        created_at: now() - TimeDelta::days(60),
        updated_at: now() - TimeDelta::hours(2),
        disconnected_at: None,
        retry_at: None,
        incident: None,
    }
}

fn account(name: &str, state: AccountState) -> Account {
    Account {
        id: Uuid::new_v4(),
        connection_id: Uuid::nil(),
        bank_account_id: name.into(),
        kind: AccountKind::Checking,
        masked_number: "1234".into(),
        bank_name: name.into(),
        display_name: name.into(),
        state,
        currency: "USD".into(),
        balance: None,
        available: None,
        balance_as_of: None,
        error_code: None,
        created_at: now(),
        updated_at: now(),
    }
}

fn catalog() -> Catalog {
    Catalog::shipped().unwrap_or_else(|errors| panic!("shipped catalogue: {errors}"))
}

fn run(
    connection: &Connection,
    accounts: &[Account],
    duplicates: &[String],
    pending: Option<&PendingRefresh>,
) -> Vec<Finding> {
    let catalog = catalog();
    let error = connection.error_code.and_then(|code| catalog.entries.get(&code));
    diagnose(&Facts {
        connection,
        accounts,
        duplicate_names: duplicates,
        error,
        pending,
        activity: &[],
        stalls: crate::feed::stall::Rules::default(),
        stale_after: TimeDelta::hours(48),
        now: now(),
    })
}

fn first_failure(findings: &[Finding]) -> Option<&Finding> {
    findings.iter().find(|finding| finding.verdict == Verdict::Fail)
}

#[test]
fn a_healthy_connection_passes_every_check_in_ladder_order() {
    let findings = run(&healthy(), &[account("Checking", AccountState::Active)], &[], None);
    let order: Vec<Check> = findings.iter().map(|finding| finding.check).collect();
    assert_eq!(
        order,
        [
            Check::InstitutionIncident,
            Check::Credentials,
            Check::Mfa,
            Check::Accounts,
            Check::DuplicateNames,
            Check::OtherError,
            Check::FeedActivity,
            Check::Staleness,
            Check::AutomaticRefreshes
        ]
    );
    assert_eq!(first_failure(&findings), None, "{findings:#?}");
    assert!(findings.iter().all(|finding| finding.next_step.is_none() && !finding.evidence.is_empty()));
}

#[test]
fn an_incident_comes_first_and_says_to_wait() {
    let mut connection = healthy();
    connection.state = State::BankIssue;
    connection.error_code = Some(Code::new(102));
    let until = now() + TimeDelta::minutes(30);
    connection.incident = Some(OpenIncident { id: Uuid::nil(), title: "Bank down".into(), wait_until: until });
    let findings = run(&connection, &[], &[], None);
    let answer = first_failure(&findings).unwrap();
    assert_eq!(answer.check, Check::InstitutionIncident);
    assert_eq!(answer.action, Some(Action::WaitUntil));
    assert!(answer.next_step.as_deref().unwrap().contains("2026-11-22 12:30 UTC"), "{answer:?}");
}

#[test]
fn a_changed_password_fails_the_credentials_check_with_when_they_last_changed() {
    let mut connection = healthy();
    connection.state = State::NeedsUserAction;
    connection.error_code = Some(Code::new(103));
    connection.error_at = Some(now() - TimeDelta::hours(5));
    let findings = run(&connection, &[], &[], None);
    let answer = first_failure(&findings).unwrap();
    assert_eq!(answer.check, Check::Credentials);
    assert_eq!(answer.action, Some(Action::Reconnect));
    assert!(answer.evidence.contains("103") && answer.evidence.contains("Credentials last changed 2026-10-23"));
    let automatic = findings.iter().find(|finding| finding.check == Check::AutomaticRefreshes).unwrap();
    assert_eq!(automatic.verdict, Verdict::Fail, "no retries while the user must act");
}

#[test]
fn mfa_missing_accounts_and_duplicate_names_each_answer_with_their_own_action() {
    let mut connection = healthy();
    connection.error_code = Some(Code::new(185));
    let answer = run(&connection, &[], &[], None);
    assert_eq!(
        first_failure(&answer).map(|finding| (finding.check, finding.action)),
        Some((Check::Mfa, Some(Action::AnswerMfa)))
    );

    let accounts = [account("Checking", AccountState::Active), account("Old savings", AccountState::NotFound)];
    let findings = run(&healthy(), &accounts, &[], None);
    let answer = first_failure(&findings).unwrap();
    assert_eq!((answer.check, answer.action), (Check::Accounts, Some(Action::RemapAccount)));
    assert!(answer.evidence.contains("Old savings (not_found)"), "{answer:?}");

    let findings = run(&healthy(), &accounts[..1], &["Checking".to_owned()], None);
    assert_eq!(first_failure(&findings).unwrap().check, Check::DuplicateNames);
}

#[test]
fn staleness_and_backoff_are_found_when_nothing_else_is_wrong() {
    let mut connection = healthy();
    connection.state = State::Degraded;
    connection.last_success_at = Some(now() - TimeDelta::hours(72));
    let pending = PendingRefresh {
        run_at: now() + TimeDelta::minutes(4),
        running: false,
        attempt: 3,
        last_error: Some("http 503".into()),
    };
    let findings = run(&connection, &[], &[], Some(&pending));
    let failed: Vec<Check> =
        findings.iter().filter(|finding| finding.verdict == Verdict::Fail).map(|finding| finding.check).collect();
    assert_eq!(failed, [Check::Staleness, Check::AutomaticRefreshes]);
    let backoff = findings.last().unwrap();
    assert!(backoff.evidence.contains("3 failed attempt(s)") && backoff.evidence.contains("http 503"), "{backoff:?}");
}

#[test]
fn a_paused_connection_says_how_to_resume() {
    let mut connection = healthy();
    connection.paused = true;
    let findings = run(&connection, &[], &[], None);
    let answer = first_failure(&findings).unwrap();
    assert_eq!(answer.check, Check::AutomaticRefreshes);
    assert!(answer.next_step.as_deref().unwrap().contains("paused: false"));
}

#[test]
fn an_account_the_bank_refuses_is_the_answer_and_named_with_its_code_even_among_duplicate_names() {
    let mut connection = healthy();
    connection.state = State::Degraded;
    connection.error_code = Some(Code::new(709));
    let mut refused = account("Business savings", AccountState::Refused);
    refused.error_code = Some(Code::new(709));
    let accounts = [account("Checking", AccountState::Active), refused];
    let findings = run(&connection, &accounts, &["Checking".to_owned()], None);
    let answer = first_failure(&findings).unwrap();
    assert_eq!((answer.check, answer.action), (Check::Accounts, Some(Action::FixAtBank)), "{answer:?}");
    assert!(answer.evidence.contains("Business savings (error 709)"), "{answer:?}");
    assert!(answer.evidence.contains("Account not enabled for online access"), "{answer:?}");
    let entry = &catalog().entries[&Code::new(709)];
    assert_eq!(answer.next_step.as_deref(), entry.steps.first().map(String::as_str));
}

#[test]
fn a_stalled_account_is_the_answer_with_the_entry_s_first_step_and_not_a_remap() {
    let mut connection = healthy();
    connection.state = State::Degraded;
    connection.error_code = Some(Code::FEED_STALLED);
    let accounts = [account("Savings", AccountState::Active)];
    let today = now().date_naive();
    let silent = crate::feed::stall::Activity {
        account_id: accounts[0].id,
        account_name: "Savings".into(),
        days: (30..90).map(|ago| today - TimeDelta::days(ago)).rev().collect(),
    };
    let flowing = crate::feed::stall::Activity {
        account_name: "Checking".into(),
        days: (0..60).map(|ago| today - TimeDelta::days(ago)).rev().collect(),
        ..silent.clone()
    };
    let catalog = catalog();
    let entry = catalog.entries.get(&Code::FEED_STALLED).unwrap();
    let activity = [flowing, silent];
    let findings = diagnose(&Facts {
        connection: &connection,
        accounts: &accounts,
        duplicate_names: &[],
        error: Some(entry),
        pending: None,
        activity: &activity,
        stalls: crate::feed::stall::Rules::default(),
        stale_after: TimeDelta::hours(48),
        now: now(),
    });
    let answer = first_failure(&findings).unwrap();
    assert_eq!(answer.check, Check::FeedActivity, "{findings:#?}");
    assert_eq!(answer.action, Some(entry.action));
    assert_eq!(answer.next_step.as_deref(), entry.steps.first().map(String::as_str));
    assert!(answer.evidence.contains("Savings") && answer.evidence.contains("30 days ago"), "{}", answer.evidence);
    assert!(!answer.evidence.contains("Checking"), "{}", answer.evidence);

    let quiet = [crate::feed::stall::Activity { days: activity[1].days[..4].to_vec(), ..activity[1].clone() }];
    let findings = diagnose(&Facts {
        activity: &quiet,
        error: None,
        ..Facts {
            connection: &healthy(),
            accounts: &accounts,
            duplicate_names: &[],
            error: None,
            pending: None,
            activity: &[],
            stalls: crate::feed::stall::Rules::default(),
            stale_after: TimeDelta::hours(48),
            now: now(),
        }
    });
    let rung = findings.iter().find(|finding| finding.check == Check::FeedActivity).unwrap();
    assert_eq!(rung.verdict, Verdict::Pass, "too little history is not judged: {rung:?}");
}

#[test]
fn a_transaction_level_code_is_not_read_as_a_connection_failure() {
    // No refresh assigns 610 or 611; should one ever be stored, the ladder must not send anyone to act on it.
    for code in [610, 611] {
        let mut connection = healthy();
        connection.error_code = Some(Code::new(code));
        let findings = run(&connection, &[account("Checking", AccountState::Active)], &[], None);
        let other = findings.iter().find(|finding| finding.check == Check::OtherError).unwrap();
        assert_eq!(other.verdict, Verdict::Pass, "{other:?}");
        assert!(other.evidence.contains("not a connection error"), "{other:?}");
        assert_eq!(first_failure(&findings), None, "{findings:#?}");
    }
}
