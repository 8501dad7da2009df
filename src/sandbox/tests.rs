//! The bank logic without HTTP: requests in, replies out.
#![allow(clippy::unwrap_used)]

use chrono::TimeDelta;

use super::*;
use crate::ofx::{OfxDocument, OfxRequest, Password, RequestMessage, SignonRequest, Status};

fn now() -> DateTime<Utc> {
    ledger::epoch() + TimeDelta::days(200) + TimeDelta::hours(12)
}

fn request(version: OfxVersion, password: &str, messages: Vec<RequestMessage>) -> Vec<u8> {
    let request = OfxRequest {
        version,
        client_date: now().fixed_offset(),
        signon: SignonRequest {
            user_id: "user_good".into(),
            password: Password::new(password),
            language: "ENG".into(),
            org: Some("FEEDWATCH-SANDBOX".into()),
            fid: None,
            app_id: "QWIN".into(),
            app_ver: "2700".into(),
            client_uid: None,
        },
        messages,
    };
    ofx::write_request(&request).into_bytes()
}

fn account_list() -> Vec<RequestMessage> {
    vec![RequestMessage::AccountList { trnuid: "1".into(), since: now().fixed_offset() }]
}

fn statements(bank: &SandboxBank) -> Vec<RequestMessage> {
    let accounts = ledger::accounts(bank.config.seed, "healthy", "user_good");
    accounts
        .iter()
        .enumerate()
        .map(|(n, account)| match account.ofx_account("999999999") {
            ofx::Account::Bank(bank) => RequestMessage::BankStatement {
                trnuid: n.to_string(),
                account: bank,
                start: Some((now() - TimeDelta::days(30)).fixed_offset()),
                end: None,
                include_transactions: true,
            },
            ofx::Account::CreditCard { account_id } => RequestMessage::CreditCardStatement {
                trnuid: n.to_string(),
                account_id,
                start: None,
                end: None,
                include_transactions: true,
            },
        })
        .collect()
}

fn bank(config: SandboxConfig) -> SandboxBank {
    SandboxBank::new(config, Clock::System)
}

fn ofx_reply(reply: &BankReply) -> OfxDocument {
    let Outcome::Ofx(body) = &reply.outcome else { panic!("not an OFX reply: {reply:?}") };
    ofx::parse(body.as_bytes(), &ParseOptions::default()).unwrap()
}

#[test]
fn good_credentials_list_three_accounts_and_their_statements() {
    let bank = bank(SandboxConfig::default());
    for version in [OfxVersion::V102, OfxVersion::V220] {
        let list = ofx_reply(&bank.respond("healthy", &request(version, "pass_good", account_list()), now()));
        assert_eq!(list.version, version);
        assert_eq!(list.account_list.unwrap().accounts.len(), 3);
        let reply = ofx_reply(&bank.respond("healthy", &request(version, "pass_good", statements(&bank)), now()));
        assert_eq!(reply.statements.len(), 3);
        assert!(reply.statements.iter().all(|s| s.status == Some(Status::ok()) && !s.transactions.is_empty()));
        let checking = &reply.statements[0];
        let from = now() - TimeDelta::days(30);
        assert!(checking.transactions.iter().all(|t| t.posted >= from && t.posted <= now()));
    }
}

#[test]
fn statement_faults_hit_only_the_savings_account() {
    let bank = bank(SandboxConfig::default());
    let reply = ofx_reply(&bank.respond("healthy", &request(OfxVersion::V103, "error_324", statements(&bank)), now()));
    let codes: Vec<u32> = reply.statements.iter().map(|s| s.status.as_ref().unwrap().code).collect();
    assert_eq!(codes, [0, 2003, 0]);
}

#[test]
fn garbled_replies_do_not_parse_in_either_dialect() {
    let bank = bank(SandboxConfig::default());
    for version in [OfxVersion::V102, OfxVersion::V220] {
        for messages in [account_list(), statements(&bank)] {
            let reply = bank.respond("healthy", &request(version, "error_713", messages), now());
            let Outcome::Garbled(body) = reply.outcome else { panic!("{reply:?}") };
            assert!(ofx::parse(body.as_bytes(), &ParseOptions::default()).is_err(), "{body}");
        }
    }
}

#[test]
fn unreadable_requests_get_an_ofx_error_that_echoes_nothing() {
    let bank = bank(SandboxConfig::default());
    let body = String::from_utf8(request(OfxVersion::V102, "hunter2-secret", account_list())).unwrap();
    let broken = body.replace("<DTCLIENT>", "<DTCLIENT>not-a-date");
    let reply = bank.respond("healthy", broken.as_bytes(), now());
    let Outcome::Ofx(text) = &reply.outcome else { panic!() };
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(ofx_reply(&reply).signon.unwrap().status.code, 2000);
    assert_eq!(ofx_reply(&bank.respond("healthy", b"garbage", now())).signon.unwrap().status.code, 2000);
}

#[test]
fn institutions_misbehave_as_configured() {
    let bank = bank(SandboxConfig { flaky_rate: 1.0, ..SandboxConfig::default() });
    let good = request(OfxVersion::V102, "pass_good", account_list());
    let unknown = bank.respond("nowhere", &good, now());
    assert_eq!(unknown.outcome, Outcome::Http { status: 404, retry_after: None });
    let maintenance = bank.respond("maintenance", &good, now());
    assert_eq!(maintenance.outcome, Outcome::Http { status: 503, retry_after: Some(magic::RETRY_AFTER) });
    let rejected = ofx_reply(&bank.respond("rejecting", &good, now()));
    assert_eq!(rejected.signon.unwrap().status.code, 15500);
    assert_eq!(bank.respond("slow", &good, now()).delay, bank.config.slow_latency);
    for _ in 0..20 {
        match bank.respond("flaky", &good, now()).outcome {
            Outcome::Http { status: 503, retry_after: None } => {}
            Outcome::Ofx(body) => {
                let document = ofx::parse(body.as_bytes(), &ParseOptions::default()).unwrap();
                assert_eq!(document.account_list.unwrap().status.unwrap().code, 2000);
            }
            other => panic!("{other:?}"),
        }
    }
    let steady = self::bank(SandboxConfig { flaky_rate: 0.0, ..SandboxConfig::default() });
    assert!((0..20).all(|_| ofx_reply(&steady.respond("flaky", &good, now())).signon.unwrap().status.code == 0));
}

#[test]
fn a_foreign_fi_is_refused_with_13504() {
    let bank = bank(SandboxConfig::default());
    let body = String::from_utf8(request(OfxVersion::V102, "pass_good", account_list())).unwrap();
    let foreign = body.replace("FEEDWATCH-SANDBOX", "OTHER-BANK");
    assert_eq!(ofx_reply(&bank.respond("healthy", foreign.as_bytes(), now())).signon.unwrap().status.code, 13504);
}

#[test]
fn maintenance_windows_name_their_end() {
    let window = "00:00-23:00".parse().unwrap();
    let bank = bank(SandboxConfig { maintenance: window, ..SandboxConfig::default() });
    let good = request(OfxVersion::V102, "pass_good", account_list());
    let reply = bank.respond("maintenance", &good, now());
    assert_eq!(reply.outcome, Outcome::Http { status: 503, retry_after: Some(Duration::from_secs(11 * 3600)) });
}

#[test]
fn one_request_carries_the_account_list_and_statements() {
    let bank = bank(SandboxConfig::default());
    for version in [OfxVersion::V102, OfxVersion::V220] {
        let mut messages = account_list();
        messages.extend(statements(&bank));
        messages.push(RequestMessage::BankStatement {
            trnuid: "gone".into(),
            account: ofx::BankAccount {
                bank_id: "999999999".into(),
                branch_id: None,
                account_id: "3000000000".into(),
                account_type: "CHECKING".into(),
            },
            start: None,
            end: None,
            include_transactions: true,
        });
        let reply = ofx_reply(&bank.respond("healthy", &request(version, "pass_good", messages), now()));
        assert_eq!(reply.account_list.unwrap().accounts.len(), 3);
        let codes: Vec<(Option<&str>, u32)> =
            reply.statements.iter().map(|s| (s.trnuid.as_deref(), s.status.as_ref().unwrap().code)).collect();
        assert_eq!(codes, [(Some("0"), 0), (Some("1"), 0), (Some("gone"), 2003), (Some("2"), 0)], "{version:?}");
        assert!(
            reply.statements.iter().filter(|s| s.trnuid.as_deref() != Some("gone")).all(|s| !s.transactions.is_empty())
        );
    }
    assert_eq!(bank.exchanges(), 2);
}
