//! OFX Direct Connect over real HTTP: against the sandbox bank for everything a bank can do,
//! and against wiremock or raw sockets for the transport faults the sandbox does not make.
//! No database needed.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use feedwatch::catalog::{CatalogHandle, CatalogIndex, Code, Purpose};
use feedwatch::provider::{
    AccountKind, Credentials, DirectConnect, DirectConnectOptions, DirectConnectSettings, FeedData, FeedProvider,
    FetchRequest, ProviderError,
};
use feedwatch::refresh::retry::{self, Plan};
use feedwatch::sandbox::{Clock, INSTITUTIONS, ManualClock, SandboxBank, SandboxConfig, ledger, magic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A day well into the sandbox's history, at noon.
fn day(n: i64) -> DateTime<Utc> {
    ledger::epoch() + TimeDelta::days(n) + TimeDelta::hours(12)
}

/// What the refresh path does with `error`, as the shipped catalogue says. A test that asks about
/// many errors builds the catalogue once ([`shipped`], [`retry_plan_by`]).
fn retry_plan(error: &ProviderError) -> Plan {
    retry_plan_by(&shipped(), error)
}

fn retry_plan_by(catalog: &CatalogIndex, error: &ProviderError) -> Plan {
    retry::plan(retry::retryable(catalog, error.code), error.retry_after)
}

fn shipped() -> CatalogIndex {
    feedwatch::catalog::shipped_index().expect("the shipped catalogue loads")
}

struct Sandbox {
    addr: SocketAddr,
    clock: ManualClock,
    bank: Arc<SandboxBank>,
}

impl Sandbox {
    async fn start(config: SandboxConfig) -> Self {
        let clock = ManualClock::new(day(300));
        let bank = Arc::new(SandboxBank::new(config, Clock::Manual(clock.clone())));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = feedwatch::http::sandbox_bank::router(bank.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, clock, bank }
    }

    fn settings(&self, slug: &str) -> DirectConnectSettings {
        let institution = INSTITUTIONS.iter().find(|institution| institution.slug == slug).unwrap();
        DirectConnectSettings {
            url: format!("http://{}{}", self.addr, institution.path()),
            org: Some(institution.org.to_owned()),
            fid: Some(institution.fid.to_owned()),
            app_id: "QWIN".to_owned(),
            app_ver: "2700".to_owned(),
            version: institution.version,
        }
    }

    async fn fetch(&self, slug: &str, password: &str, since: Option<DateTime<Utc>>) -> Result<FeedData, ProviderError> {
        let client =
            client(DirectConnectOptions { timeout: Duration::from_secs(1), ..DirectConnectOptions::default() });
        let settings = self.settings(slug);
        let credentials = Credentials::new("user_good", password);
        let now = self.clock.now();
        client
            .fetch(&FetchRequest { institution: &settings, credentials: &credentials, since, now, known_accounts: &[] })
            .await
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.bank.close();
    }
}

fn client(options: DirectConnectOptions) -> DirectConnect {
    let catalog = CatalogHandle::new(feedwatch::catalog::shipped_index().unwrap(), Purpose::Lookup);
    DirectConnect::new(options, catalog).unwrap()
}

/// The code a fetch ended with: its error, or the first failing account's.
fn outcome_code(result: &Result<FeedData, ProviderError>) -> Option<u32> {
    match result {
        Err(error) => Some(error.code.get()),
        Ok(data) => data.accounts.iter().find_map(|account| account.error.as_ref().map(|error| error.code.get())),
    }
}

#[tokio::test]
async fn good_credentials_yield_three_accounts_with_transactions_and_balances() {
    let sandbox =
        Sandbox::start(SandboxConfig { slow_latency: Duration::from_millis(20), ..SandboxConfig::default() }).await;
    let now = sandbox.clock.now();
    let since = now - TimeDelta::days(30);
    // healthy speaks OFX 1.02 (SGML), slow speaks 2.2 (XML).
    for slug in ["healthy", "slow"] {
        let data = sandbox.fetch(slug, "pass_good", Some(since)).await.unwrap();
        let kinds: Vec<AccountKind> = data.accounts.iter().map(|feed| feed.account.kind).collect();
        assert_eq!(kinds, [AccountKind::Checking, AccountKind::Savings, AccountKind::CreditCard], "{slug}");
        for feed in &data.accounts {
            let account = &feed.account;
            assert!(feed.error.is_none(), "{slug}: {:?}", feed.error);
            assert!(account.masked_number.starts_with("****") && account.masked_number.len() == 8);
            assert!(account.masked_number.ends_with(&account.id[account.id.len() - 4..]));
            assert_eq!(account.currency.as_deref(), Some("USD"));
            assert_eq!(account.ledger_balance.as_ref().unwrap().as_of, now);
            assert!(account.available_balance.is_some());
            assert!(feed.transactions.iter().all(|t| since <= t.posted && t.posted <= now));
            assert!(feed.transactions.iter().all(|t| t.currency.as_deref() == Some("USD") && t.name.is_some()));
        }
        assert_eq!(data.accounts[0].account.name, "Everyday Checking");
        assert!(data.accounts[0].transactions.len() > 10, "{slug}: a month of checking");
        assert!(data.accounts[2].transactions.iter().any(|t| t.pending), "{slug}: card has pending charges");
    }
    let default_history = sandbox.fetch("healthy", "pass_good", None).await.unwrap();
    let oldest = default_history.accounts[0].transactions.iter().map(|t| t.posted).min().unwrap();
    assert!(oldest >= now - TimeDelta::days(90) && oldest < now - TimeDelta::days(80));
}

#[tokio::test]
async fn every_magic_password_yields_its_catalogue_code() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await;
    let catalog = shipped();
    let cases = magic::FAITHFUL.iter().map(|code| (*code, *code)).chain(magic::NEAREST.iter().copied());
    for (asked, expected) in cases {
        let password = format!("error_{asked}");
        let result = sandbox.fetch("healthy", &password, None).await;
        assert_eq!(outcome_code(&result), Some(expected), "{password}: {result:?}");
        let error = match &result {
            Err(error) => error.clone(),
            Ok(data) => {
                // Statement faults hit one account while the others succeed.
                let failed: Vec<_> = data.accounts.iter().filter_map(|feed| feed.error.clone()).collect();
                assert_eq!((failed.len(), data.accounts.len()), (1, 3), "{password}");
                assert!(data.accounts.iter().any(|feed| feed.error.is_none() && !feed.transactions.is_empty()));
                failed[0].clone()
            }
        };
        assert!(!error.message.contains(&password) && !error.raw.contains(&password), "{error:?}");
        // Only the throttled and the maintenance answers say when to come back.
        let expected_retry = match asked {
            706 | 707 => Plan::After(magic::RETRY_AFTER),
            _ => retry::plan(retry::retryable(&catalog, error.code), None),
        };
        assert_eq!(retry_plan_by(&catalog, &error), expected_retry, "{password}");
    }
}

#[tokio::test]
async fn codes_seen_over_time_come_from_well_formed_empty_statements() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await;
    for code in magic::OVER_TIME {
        assert_eq!(magic::for_code(*code), Some(magic::Magic::EmptyStatements), "{code}");
        let data = sandbox.fetch("healthy", &format!("error_{code}"), None).await.unwrap();
        assert_eq!(data.accounts.len(), 3, "every account is listed");
        for feed in &data.accounts {
            assert!(feed.error.is_none(), "every statement succeeds: {:?}", feed.error);
            assert!(feed.transactions.is_empty(), "and holds nothing: {:?}", feed.transactions.len());
            assert!(feed.account.ledger_balance.is_some(), "balances still come");
        }
    }
}

#[tokio::test]
async fn magic_codes_travel_the_way_a_bank_would_send_them() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await;
    let raw = |result: Result<FeedData, ProviderError>| match result {
        Err(error) => error.raw,
        Ok(data) => data.accounts.into_iter().find_map(|feed| feed.error).unwrap().raw,
    };
    let expectations = [
        ("error_103", "ofx:15500"),
        ("wrong password", "ofx:15500"),
        ("error_108", "ofx:15000"),
        ("error_324", "ofx:2003"),
        ("error_102", "http:503"),
        ("error_707", "http:maintenance"),
        ("error_706", "http:429"),
        ("error_720", "http:404"),
        ("error_712", "http:timeout"),
        ("error_713", "http:malformed"),
        ("error_714", "ofx:no_accounts"),
        ("error_799", "ofx:9999"),
    ];
    for (password, expected) in expectations {
        assert_eq!(raw(sandbox.fetch("healthy", password, None).await), expected, "{password}");
    }
}

#[tokio::test]
async fn history_grows_and_pending_transactions_post_with_a_link() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await;
    let since = day(280);
    let before = sandbox.fetch("healthy", "pass_good", Some(since)).await.unwrap();
    sandbox.clock.set(day(306));
    let after = sandbox.fetch("healthy", "pass_good", Some(since)).await.unwrap();
    for (early, late) in before.accounts.iter().zip(&after.accounts) {
        assert!(late.transactions.len() > early.transactions.len(), "{:?} grows", early.account.kind);
    }
    let card_before = &before.accounts[2].transactions;
    let card_after = &after.accounts[2].transactions;
    let pending: Vec<_> = card_before.iter().filter(|t| t.pending).collect();
    assert!(!pending.is_empty());
    for trn in pending {
        assert!(!card_after.iter().any(|t| t.fitid == trn.fitid), "pending {} is gone once posted", trn.fitid);
        let posted = card_after.iter().find(|t| t.replaces_fitid.as_ref() == Some(&trn.fitid)).unwrap();
        assert!(!posted.pending && posted.fitid != trn.fitid && posted.amount == trn.amount);
    }
}

#[tokio::test]
async fn known_accounts_make_one_exchange_and_new_or_vanished_ones_still_show() {
    let sandbox =
        Sandbox::start(SandboxConfig { slow_latency: Duration::from_millis(20), ..SandboxConfig::default() }).await;
    let client = client(DirectConnectOptions::default());
    let credentials = Credentials::new("user_good", "pass_good");
    let now = sandbox.clock.now();
    for slug in ["healthy", "slow"] {
        let settings = sandbox.settings(slug);
        let since = Some(now - TimeDelta::days(14));
        let fetch = |known_accounts: Vec<serde_json::Value>| {
            let (client, settings, credentials, bank) = (&client, &settings, &credentials, &sandbox.bank);
            async move {
                let before = bank.exchanges();
                let request =
                    FetchRequest { institution: settings, credentials, since, now, known_accounts: &known_accounts };
                let fetched = client.fetch_with_references(&request).await.unwrap();
                (fetched, bank.exchanges() - before)
            }
        };
        let (first, exchanges) = fetch(Vec::new()).await;
        assert_eq!(exchanges, 2, "{slug}: the account list, then the statements");
        let references: Vec<serde_json::Value> = first.references.iter().map(|r| r.clone().unwrap()).collect();
        assert_eq!(references.len(), 3);

        let (known, exchanges) = fetch(references.clone()).await;
        assert_eq!(exchanges, 1, "{slug}: the list and every known statement in one request");
        assert_eq!(known, first, "{slug}: the same data either way");

        // The card is new to us, and an account the bank no longer lists is still "known".
        let mut vanished = references[0].clone();
        vanished["bank"]["account_id"] = "3000000000".into();
        let (changed, exchanges) = fetch(vec![references[0].clone(), vanished, references[1].clone()]).await;
        assert_eq!(exchanges, 2, "{slug}: a second request only for the new account");
        assert_eq!(changed, first, "{slug}: the new account found, the vanished one left out");
        let card = &changed.data.accounts[2];
        assert!(card.account.kind == AccountKind::CreditCard && card.error.is_none() && !card.transactions.is_empty());
    }
}

#[tokio::test]
async fn flaky_institution_fails_bank_side_at_rate_one_and_never_at_zero() {
    let always = Sandbox::start(SandboxConfig { flaky_rate: 1.0, ..SandboxConfig::default() }).await;
    let never = Sandbox::start(SandboxConfig { flaky_rate: 0.0, ..SandboxConfig::default() }).await;
    for _ in 0..8 {
        let failed = always.fetch("flaky", "pass_good", None).await;
        assert_eq!(outcome_code(&failed), Some(102), "{failed:?}");
        assert!(matches!(failed.unwrap_err().raw.as_str(), "http:503" | "ofx:2000"));
        let fine = never.fetch("flaky", "pass_good", None).await.unwrap();
        assert!(fine.accounts.len() == 3 && fine.accounts.iter().all(|feed| feed.error.is_none()));
    }
}

#[tokio::test]
async fn maintenance_and_rejecting_institutions() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await;
    let down = sandbox.fetch("maintenance", "pass_good", None).await.unwrap_err();
    assert_eq!((down.code, retry_plan(&down)), (Code::new(707), Plan::After(magic::RETRY_AFTER)));
    let rejected = sandbox.fetch("rejecting", "pass_good", None).await.unwrap_err();
    assert_eq!(
        (rejected.code, rejected.raw.as_str(), retry_plan(&rejected)),
        (Code::new(103), "ofx:15500", Plan::GiveUp)
    );
    let healthy = sandbox.settings("healthy");
    let settings = DirectConnectSettings { url: healthy.url.replace("healthy", "nowhere"), ..healthy };
    let client = client(DirectConnectOptions::default());
    let credentials = Credentials::new("user_good", "pass_good");
    let request = FetchRequest {
        institution: &settings,
        credentials: &credentials,
        since: None,
        now: day(300),
        known_accounts: &[],
    };
    assert_eq!(client.fetch(&request).await.unwrap_err().code, Code::new(720));
}

#[tokio::test]
async fn the_router_serves_under_a_prefix_as_demo_mode_mounts_it() {
    let bank = Arc::new(SandboxBank::new(SandboxConfig::default(), Clock::Manual(ManualClock::new(day(300)))));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().nest("/sandbox-bank", feedwatch::http::sandbox_bank::router(bank));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let listing: serde_json::Value =
        reqwest::get(format!("http://{addr}/sandbox-bank")).await.unwrap().json().await.unwrap();
    let slugs: Vec<&str> = listing.as_array().unwrap().iter().map(|i| i["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["healthy", "flaky", "maintenance", "slow", "rejecting"]);
    let settings = DirectConnectSettings {
        url: format!("http://{addr}/sandbox-bank/ofx/healthy"),
        ..plain_settings(String::new())
    };
    let credentials = Credentials::new("user_good", "pass_good");
    let request = FetchRequest {
        institution: &settings,
        credentials: &credentials,
        since: None,
        now: day(300),
        known_accounts: &[],
    };
    assert_eq!(client(DirectConnectOptions::default()).fetch(&request).await.unwrap().accounts.len(), 3);
}

#[tokio::test]
async fn a_stalled_reply_does_not_hold_up_shutdown() {
    let bank = Arc::new(SandboxBank::new(SandboxConfig::default(), Clock::System));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ofx/healthy", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let router = feedwatch::http::sandbox_bank::router(bank.clone());
    let server = tokio::spawn(
        axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned()).into_future(),
    );
    let stalled = tokio::spawn(async move {
        let settings = DirectConnectSettings { url, ..plain_settings(String::new()) };
        let credentials = Credentials::new("user_good", "error_712");
        let request = FetchRequest {
            institution: &settings,
            credentials: &credentials,
            since: None,
            now: Utc::now(),
            known_accounts: &[],
        };
        client(DirectConnectOptions::default()).fetch(&request).await.unwrap_err()
    });
    // Once the bank has the request, it is stalling (or about to: closing first ends it alike).
    tokio::time::timeout(Duration::from_secs(10), bank.received(1)).await.expect("the request reached the bank");
    bank.close();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("shutdown finished").unwrap().unwrap();
    assert_eq!(stalled.await.unwrap().raw, "http:504");
}

// ---- transport faults, against wiremock and raw sockets ----

fn plain_settings(url: String) -> DirectConnectSettings {
    DirectConnectSettings {
        url,
        org: None,
        fid: None,
        app_id: "QWIN".to_owned(),
        app_ver: "2700".to_owned(),
        version: feedwatch::ofx::OfxVersion::V102,
    }
}

async fn fetch_from(url: String, options: DirectConnectOptions) -> ProviderError {
    let settings = plain_settings(url);
    let credentials = Credentials::new("user_good", "s3cret-password");
    let request = FetchRequest {
        institution: &settings,
        credentials: &credentials,
        since: None,
        now: Utc::now(),
        known_accounts: &[],
    };
    let error = client(options).fetch(&request).await.unwrap_err();
    assert!(!format!("{error:?}").contains("s3cret"), "{error:?}");
    error
}

async fn mock(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(template).expect(1).mount(&server).await;
    server
}

#[tokio::test]
async fn slow_headers_time_out_as_712() {
    let server = mock(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).await;
    let options = DirectConnectOptions { timeout: Duration::from_millis(300), ..DirectConnectOptions::default() };
    let error = fetch_from(server.uri(), options).await;
    assert_eq!((error.code, error.raw.as_str(), retry_plan(&error)), (Code::new(712), "http:timeout", Plan::Later));
}

#[tokio::test]
async fn a_body_over_the_limit_is_713() {
    let body = "<OFX>".repeat(100_000);
    let server = mock(ResponseTemplate::new(200).set_body_raw(body, "application/x-ofx")).await;
    let options = DirectConnectOptions { max_response_bytes: 64 * 1024, ..DirectConnectOptions::default() };
    let error = fetch_from(server.uri(), options).await;
    assert_eq!((error.code, error.raw.as_str()), (Code::new(713), "http:too_large"));
}

/// No Content-Length and no end: the client must stop reading at its limit on its own.
#[tokio::test]
async fn an_endless_chunked_body_is_cut_off_at_the_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ofx\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 8192, "A".repeat(8192));
        while socket.write_all(chunk.as_bytes()).await.is_ok() {}
    });
    let options = DirectConnectOptions { max_response_bytes: 256 * 1024, ..DirectConnectOptions::default() };
    let error = fetch_from(format!("http://{addr}/ofx"), options).await;
    assert_eq!((error.code, error.raw.as_str()), (Code::new(713), "http:too_large"));
}

#[tokio::test]
async fn an_html_page_is_713() {
    let page = "<html><head><title>Sign in</title></head><body>Please log in</body></html>";
    let server = mock(ResponseTemplate::new(200).set_body_raw(page, "text/html")).await;
    let error = fetch_from(server.uri(), DirectConnectOptions::default()).await;
    assert_eq!((error.code, error.raw.as_str()), (Code::new(713), "http:malformed"));
    assert!(error.message.contains("text/html"), "{}", error.message);
}

#[tokio::test]
async fn a_redirect_loop_is_720_and_not_followed() {
    let server = MockServer::start().await;
    let template = ResponseTemplate::new(302).insert_header("location", format!("{}/", server.uri()).as_str());
    // expect(1): a followed redirect would come back here.
    Mock::given(method("POST")).respond_with(template).expect(1).mount(&server).await;
    let error = fetch_from(server.uri(), DirectConnectOptions::default()).await;
    assert_eq!((error.code, error.raw.as_str(), retry_plan(&error)), (Code::new(720), "http:redirect", Plan::GiveUp));
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_706_after_that_delay() {
    let server = mock(ResponseTemplate::new(429).insert_header("retry-after", "30")).await;
    let error = fetch_from(server.uri(), DirectConnectOptions::default()).await;
    assert_eq!((error.code, error.raw.as_str()), (Code::new(706), "http:429"));
    assert_eq!(retry_plan(&error), Plan::After(Duration::from_secs(30)));
}

#[tokio::test]
async fn an_empty_success_is_713() {
    let server = mock(ResponseTemplate::new(200)).await;
    let error = fetch_from(server.uri(), DirectConnectOptions::default()).await;
    assert_eq!((error.code, error.raw.as_str()), (Code::new(713), "http:empty"));
}

#[tokio::test]
async fn server_errors_without_retry_after_are_102() {
    for (status, raw) in [(503, "http:503"), (500, "http:500"), (501, "http:5xx")] {
        let server = mock(ResponseTemplate::new(status)).await;
        let error = fetch_from(server.uri(), DirectConnectOptions::default()).await;
        assert_eq!((error.code, error.raw.as_str(), retry_plan(&error)), (Code::new(102), raw, Plan::Later));
    }
}

#[tokio::test]
async fn a_refused_connection_is_102() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = fetch_from(format!("http://{addr}/ofx"), DirectConnectOptions::default()).await;
    assert_eq!((error.code, error.raw.as_str()), (Code::new(102), "http:connect"));
}

/// A server that answers plain HTTP where TLS was expected fails the handshake.
#[tokio::test]
async fn a_failed_tls_handshake_is_718() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut hello = [0u8; 1024];
        let _ = socket.read(&mut hello).await;
        let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    });
    let error = fetch_from(format!("https://{addr}/ofx"), DirectConnectOptions::default()).await;
    assert_eq!((error.code, error.raw.as_str()), (Code::new(718), "http:tls"));
}
