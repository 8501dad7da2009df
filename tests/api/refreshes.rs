//! Refreshes against the sandbox bank over real HTTP: outcomes, health and the feed. What starts
//! a refresh is in `refresh_triggers.rs`.

use feedwatch::jobs::backoff::{Backoff, Backoffs};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, assert_problem};

const STALE: std::time::Duration = std::time::Duration::from_secs(48 * 3600);

pub(crate) async fn connect(app: &TestApp, key: &str, bank: &str, password: &str) -> String {
    let bank = app.sandbox_institution(bank).await;
    app.connection(key, bank, "Sandbox account", password).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_new_connection_refreshes_to_healthy_with_accounts_and_transactions() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = connect(&app, &tenant, "healthy", "pass_good").await;
    let ran = app.refresh_pool().run_until_idle().await;
    assert_eq!(ran, 1, "the first refresh was enqueued with the connection");
    let connection = app.get_json(&tenant, &format!("/v1/connections/{id}")).await;
    assert_eq!(connection["state"], "healthy", "{connection}");
    assert!(connection["health"]["last_success_at"].is_string());
    assert!(connection["health"]["data_as_of"].is_string());
    assert_eq!(connection["accounts"].as_array().unwrap().len(), 3);
    let sync = app.get_json(&tenant, &format!("/v1/connections/{id}/transactions/sync")).await;
    assert!(!sync["added"].as_array().unwrap().is_empty(), "{sync}");
    let history = app.get_json(&tenant, &format!("/v1/connections/{id}/refreshes")).await;
    let first = &history["items"][0];
    assert_eq!(first["state"], "succeeded");
    assert_eq!(first["trigger"], "created");
    assert!(first["result"]["added"].as_u64().unwrap() > 0);
    let refresh = app.get_json(&tenant, &format!("/v1/refreshes/{}", first["refresh_id"])).await;
    assert_eq!(refresh["connection_id"], id.as_str());
}

/// First refreshes bring hundreds of rows each, more together than one writer batch holds
/// (`refresh::writer` cuts batches by rows and runs full ones side by side): however they were
/// cut, every refresh is stored once, by its first attempt, with exactly the rows it counted.
#[tokio::test]
async fn first_refreshes_of_many_connections_at_once_are_each_stored_once_with_what_they_counted() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let mut ids = Vec::new();
    for _ in 0..16 {
        ids.push(connect(&app, &tenant, "healthy", "pass_good").await);
    }
    assert_eq!(app.refresh_pool().run_until_idle().await, 16);
    let mut rows_written = 0;
    for id in &ids {
        let connection = Uuid::parse_str(id).unwrap();
        assert_eq!(job_state(&app, id).await, ("succeeded".to_owned(), 1), "{id}");
        let (added, stored): (i64, i64) = sqlx::query_as(
            "select (select (result ->> 'added')::bigint from job where connection_id = $1),
                    (select count(*) from feed_transaction where connection_id = $1)",
        )
        .bind(connection)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert!(added > 0, "{id}");
        assert_eq!(added, stored, "{id}: the refresh stored exactly what it counted");
        rows_written += stored;
        let health = app.get_json(&tenant, &format!("/v1/connections/{id}")).await;
        assert_eq!(health["state"], "healthy", "{health}");
    }
    assert!(rows_written > 1024, "together more rows than one batch holds: {rows_written}");
}

/// Refreshes that start together read their targets and institutions together
/// (`refresh::reader`): each still gets its own connection's credentials and its own bank, and a
/// connection disconnected or deleted while its refresh waited is skipped without touching the
/// others read with it.
#[tokio::test]
async fn refreshes_read_together_each_reach_their_own_bank_with_their_own_credentials() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let mut expected = Vec::new();
    for (bank, password, code) in [
        ("healthy", "pass_good", None),
        ("rejecting", "pass_good", Some(103)),
        ("healthy", "error_185", Some(185)),
        ("healthy", "pass_good", None),
        ("rejecting", "pass_good", Some(103)),
        ("healthy", "error_185", Some(185)),
        ("healthy", "pass_good", None),
    ] {
        expected.push((connect(&app, &tenant, bank, password).await, code));
    }
    let disconnected = connect(&app, &tenant, "healthy", "pass_good").await;
    let gone = app
        .anonymous(Method::DELETE, &format!("/v1/connections/{disconnected}"))
        .bearer_auth(&tenant)
        .header("if-match", "*");
    assert_eq!(gone.send().await.unwrap().status(), 204);
    let deleted = connect(&app, &tenant, "healthy", "pass_good").await;
    sqlx::query("delete from connection where id = $1")
        .bind(Uuid::parse_str(&deleted).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();

    assert_eq!(app.refresh_pool().run_until_idle().await, expected.len() + 2);
    for (id, code) in &expected {
        let connection = app.get_json(&tenant, &format!("/v1/connections/{id}")).await;
        match code {
            None => assert_eq!(connection["state"], "healthy", "{connection}"),
            Some(code) => assert_eq!(connection["health"]["error"]["code"], *code, "{connection}"),
        }
    }
    for (id, reason) in
        [(&disconnected, "the connection is disconnected"), (&deleted, "the connection no longer exists")]
    {
        let result: Value = sqlx::query_scalar("select result from job where args ->> 'connection_id' = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(result, json!({ "skipped": reason }), "{id}");
    }
}

#[tokio::test]
async fn running_the_same_refresh_twice_changes_nothing_the_second_time() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = connect(&app, &tenant, "healthy", "pass_good").await;
    let pool = app.refresh_pool();
    pool.run_until_idle().await;
    let cursor =
        app.get_json(&tenant, &format!("/v1/connections/{id}/transactions/sync?count=500")).await["next_cursor"]
            .clone();
    let count = |table: &'static str| {
        let pool = app.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(&format!("select count(*) from {table}")).fetch_one(&pool).await.unwrap() }
    };
    let (transactions, accounts) = (count("feed_transaction").await, count("account").await);
    let accepted = app
        .anonymous(Method::POST, &format!("/v1/connections/{id}/refresh"))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    pool.run_until_idle().await;
    assert_eq!((count("feed_transaction").await, count("account").await), (transactions, accounts));
    let again = app
        .get_json(&tenant, &format!("/v1/connections/{id}/transactions/sync?cursor={}", cursor.as_str().unwrap()))
        .await;
    assert_eq!(again["added"].as_array().unwrap().len() + again["modified"].as_array().unwrap().len(), 0, "{again}");
    let history = app.get_json(&tenant, &format!("/v1/connections/{id}/refreshes")).await;
    assert_eq!(history["items"][0]["result"], json!({ "accounts": 3, "added": 0, "modified": 0, "removed": 0 }));
}

#[tokio::test]
async fn a_changed_password_needs_the_user_and_new_credentials_repair_it() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = connect(&app, &tenant, "healthy", "error_103").await;
    let pool = app.refresh_pool();
    pool.run_until_idle().await;
    let broken = app.get_json(&tenant, &format!("/v1/connections/{id}")).await;
    assert_eq!(broken["state"], "needs_user_action");
    assert_eq!(broken["health"]["error"]["code"], 103);
    assert_eq!(broken["health"]["error"]["raw"], "ofx:15500");
    assert_eq!(broken["health"]["error"]["action"], "reconnect");
    let history = app.get_json(&tenant, &format!("/v1/connections/{id}/refreshes")).await;
    assert_eq!(history["items"][0]["state"], "failed", "a sign-in failure is not retried");
    assert_eq!(history["items"][0]["attempts"], 1);

    let refused = app
        .anonymous(Method::POST, &format!("/v1/connections/{id}/refresh"))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap();
    assert_problem(refused, 409, "waiting_for_user").await;

    let patched = app
        .anonymous(Method::PATCH, &format!("/v1/connections/{id}"))
        .bearer_auth(&tenant)
        .header("if-match", "*")
        .json(&json!({ "credentials": { "user_id": "user_good", "password": "pass_good" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(pool.run_until_idle().await, 1, "new credentials enqueue a refresh");
    let repaired = app.get_json(&tenant, &format!("/v1/connections/{id}")).await;
    assert_eq!(repaired["state"], "healthy");
    assert!(repaired["health"]["error"].is_null());
    let events = app.get_json(&tenant, &format!("/v1/connections/{id}/events?limit=200")).await;
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"refresh.failed")
            && kinds.contains(&"connection.credentials_updated")
            && kinds.contains(&"refresh.succeeded"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_bank_outage_is_retried_and_maintenance_snoozes_without_spending_an_attempt() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let down = connect(&app, &tenant, "healthy", "error_102").await;
    let maintenance = connect(&app, &tenant, "healthy", "error_707").await;
    app.refresh_pool().run_until_idle().await;
    let connection = app.get_json(&tenant, &format!("/v1/connections/{down}")).await;
    assert_eq!(connection["state"], "bank_issue");
    assert_eq!(connection["health"]["error"]["action"], "wait_until");
    let (state, attempt): (String, i32) = sqlx::query_as("select state, attempt from job where connection_id = $1")
        .bind(Uuid::parse_str(&down).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((state.as_str(), attempt), ("available", 1), "retried later");
    let (state, attempt): (String, i32) = sqlx::query_as("select state, attempt from job where connection_id = $1")
        .bind(Uuid::parse_str(&maintenance).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((state.as_str(), attempt), ("available", 0), "snoozed until the window ends");
}

async fn job_state(app: &TestApp, connection: &str) -> (String, i32) {
    sqlx::query_as("select state, attempt from job where connection_id = $1")
        .bind(Uuid::parse_str(connection).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_worker_follows_an_admin_edit_of_an_entrys_retry_rule() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let before_edit = connect(&app, &tenant, "healthy", "error_102").await;
    app.refresh_pool().run_until_idle().await;
    assert_eq!(job_state(&app, &before_edit).await, ("available".to_owned(), 1), "102 ships retryable");

    // An admin decides a plain retry does not help with 102 (say, a bank that never recovers on its own).
    let entry: Value = app.admin(Method::GET, "/v1/errors/102").send().await.unwrap().json().await.unwrap();
    let mut edit = entry["entry"].clone();
    edit["retryable"] = json!(false);
    edit["retry_after"] = Value::Null;
    let response = app.admin(Method::PUT, "/v1/errors/102").json(&edit).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let after_edit = connect(&app, &tenant, "healthy", "error_102").await;
    app.refresh_pool().run_until_idle().await;
    assert_eq!(job_state(&app, &after_edit).await, ("failed".to_owned(), 1), "not retried after the edit");
    let connection = app.get_json(&tenant, &format!("/v1/connections/{after_edit}")).await;
    assert_eq!(
        (connection["state"].as_str(), connection["health"]["error"]["code"].as_i64()),
        (Some("bank_issue"), Some(102))
    );
}

#[tokio::test]
async fn the_sync_cursor_sees_every_change_exactly_once_in_order() {
    use feedwatch::feed::{ReportedTransaction, store};
    let app = TestApp::spawn().await;
    let crate::support::FedAccount { tenant_key: tenant, connection: id, account } = app.fed_account().await;
    let day = |d: i64| chrono::DateTime::from_timestamp(1_760_000_000 + d * 86_400, 0).unwrap();
    let txn = |fitid: &str, d: i64, amount: &str, pending: bool| ReportedTransaction {
        fitid: fitid.into(),
        posted_at: day(d),
        amount: amount.parse().unwrap(),
        currency: "USD".into(),
        name: format!("payee {fitid}"),
        memo: String::new(),
        check_number: String::new(),
        pending,
        replaces_fitid: None,
    };
    let apply = |batch: Vec<ReportedTransaction>| {
        let pool = app.pool.clone();
        async move {
            let mut tx = feedwatch::database::begin(&pool).await.unwrap();
            store::lock_connection(&mut *tx, id).await.unwrap();
            let changes = crate::support::apply_statement(&mut tx, id, &[(account, &batch)], day(0)).await;
            tx.commit().await.unwrap();
            changes
        }
    };
    let sync = |cursor: String| {
        let request = app
            .anonymous(Method::GET, &format!("/v1/connections/{id}/transactions/sync?cursor={cursor}&count=2"))
            .bearer_auth(&tenant)
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    // Walks every page from `cursor`; returns (added, modified, removed) fitids and the final cursor.
    let walk = |mut cursor: String| async move {
        let (mut added, mut modified, mut removed) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let page = sync(cursor.clone()).await;
            let fitids = |key: &str| {
                page[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["fitid"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            };
            added.extend(fitids("added"));
            modified.extend(fitids("modified"));
            removed.extend(fitids("removed"));
            cursor = page["next_cursor"].as_str().unwrap().to_owned();
            if page["has_more"] == false {
                return (added, modified, removed, cursor);
            }
        }
    };

    let first = apply(vec![txn("a", 1, "-10", false), txn("b", 2, "-20", false), txn("p", 3, "-5", true)]).await;
    assert_eq!((first.added, first.modified, first.removed), (3, 0, 0));
    let (added, modified, removed, cursor) = walk("0".into()).await;
    assert_eq!((added, modified, removed), (vec!["a".to_string(), "b".into(), "p".into()], vec![], vec![]));

    // b is corrected, the pending p posts as q, c is new: a changes nothing.
    let mut posted = txn("q", 4, "-5", false);
    posted.replaces_fitid = Some("p".into());
    let second =
        apply(vec![txn("a", 1, "-10", false), txn("b", 2, "-21", false), posted.clone(), txn("c", 5, "-7", false)])
            .await;
    assert_eq!((second.added, second.modified, second.removed), (2, 1, 1));
    let (added, modified, removed, cursor) = walk(cursor).await;
    assert_eq!(added, ["q", "c"]);
    assert_eq!(modified, ["b"]);
    assert_eq!(removed, ["p"]);

    let third =
        apply(vec![txn("a", 1, "-10", false), txn("b", 2, "-21", false), posted.clone(), txn("c", 5, "-7", false)])
            .await;
    assert_eq!((third.added, third.modified, third.removed), (0, 0, 0), "the same report twice changes nothing");
    let (added, modified, removed, cursor) = walk(cursor).await;
    assert!(added.is_empty() && modified.is_empty() && removed.is_empty());

    // A hold h appears; then the bank answers an empty statement: h goes, the posted rows stay.
    let held = vec![txn("a", 1, "-10", false), txn("b", 2, "-21", false), posted, txn("c", 5, "-7", false)];
    let fourth = apply([held, vec![txn("h", 6, "-3", true)]].concat()).await;
    assert_eq!((fourth.added, fourth.modified, fourth.removed), (1, 0, 0));
    let (added, _, _, cursor) = walk(cursor).await;
    assert_eq!(added, ["h"]);
    let empty = apply(vec![]).await;
    assert_eq!((empty.added, empty.modified, empty.removed), (0, 0, 1), "an empty statement drops only holds");
    let (_, _, removed, _) = walk(cursor).await;
    assert_eq!(removed, ["h"]);

    let listed: Value = app.get_json(&tenant, &format!("/v1/accounts/{account}/transactions?limit=10")).await;
    let fitids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|t| t["fitid"].as_str().unwrap()).collect();
    assert_eq!(fitids, ["a", "b", "q", "c"], "posting order, removed ones left out");
    let other = app.key("tenant", Some(Uuid::new_v4())).await;
    assert_problem(
        app.anonymous(Method::GET, &format!("/v1/accounts/{account}/transactions"))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.anonymous(Method::GET, &format!("/v1/connections/{id}/transactions/sync?cursor=-1"))
            .bearer_auth(&tenant)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_cursor",
    )
    .await;
}

#[tokio::test]
async fn a_worker_killed_mid_refresh_loses_no_job_and_stores_nothing_twice() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    // The slow institution answers after seconds, so a refresh is surely mid-flight when killed.
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(connect(&app, &tenant, "slow", "pass_good").await);
    }
    let keys = secrecy::ExposeSecret::expose_secret(&crate::support::sealer_config()).to_owned();
    let (bank_url, bank) = crate::support::serve_sandbox_bank(feedwatch::sandbox::SandboxConfig::demo()).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedwatch"))
        .args(["worker", "--workers", "3", "--worker-lease", "60s"])
        .env("DATABASE_URL", &app.database_url)
        .env("FEEDWATCH_CREDENTIALS_KEYS", keys)
        .env("FEEDWATCH_SANDBOX_URL", &bank_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("worker running"), "{line}");
    // The slow bank has a request once the child is mid-refresh: then it is killed.
    tokio::time::timeout(std::time::Duration::from_secs(30), bank.received(1))
        .await
        .expect("the worker never called the bank");
    crate::support::signal("KILL", child.id());
    child.wait().unwrap();

    // Its leases would expire in a minute; expire them now, as the rescuer then would.
    sqlx::query("update job set lease_expires_at = now() - interval '1 second' where state = 'running'")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let due_at_once = Backoff { base: std::time::Duration::ZERO, cap: std::time::Duration::ZERO };
    let rescued =
        feedwatch::jobs::store::rescue_expired(&mut conn, &Backoffs::uniform(due_at_once), 100).await.unwrap();
    assert!(rescued > 0);
    app.refresh_pool().run_until_idle().await;

    let states: Vec<String> =
        sqlx::query_scalar("select state from job order by job_id").fetch_all(&app.pool).await.unwrap();
    assert_eq!(states, vec!["succeeded"; 6], "every job completed");
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct (account_id, fitid)) from feed_transaction")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows, distinct, "no transaction stored twice");
    let per_connection: Vec<i64> = sqlx::query_scalar("select count(*) from feed_transaction group by connection_id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(per_connection.len(), 6);
    assert!(per_connection.windows(2).all(|pair| pair[0] == pair[1]), "same bank data, same rows: {per_connection:?}");
    for id in ids {
        assert_eq!(app.get_json(&tenant, &format!("/v1/connections/{id}")).await["state"], "healthy");
    }
}

#[tokio::test]
async fn a_connection_without_success_for_two_days_is_degraded_even_without_an_error() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let stale = connect(&app, &tenant, "healthy", "pass_good").await;
    let fresh = connect(&app, &tenant, "healthy", "pass_good").await;
    app.refresh_pool().run_until_idle().await;
    sqlx::query("update connection set last_success_at = now() - interval '3 days' where id = $1")
        .bind(Uuid::parse_str(&stale).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(feedwatch::refresh::schedule::degrade_stale(&app.pool, STALE).await.unwrap(), 1);
    assert_eq!(app.get_json(&tenant, &format!("/v1/connections/{stale}")).await["state"], "degraded");
    assert_eq!(app.get_json(&tenant, &format!("/v1/connections/{fresh}")).await["state"], "healthy");
    assert_eq!(feedwatch::refresh::schedule::degrade_stale(&app.pool, STALE).await.unwrap(), 0, "idempotent");
}

/// The sandbox bank on its own port with a fixed clock, so the test can count its exchanges and
/// two refreshes see the same data.
async fn counting_sandbox() -> (std::sync::Arc<feedwatch::sandbox::SandboxBank>, String) {
    use feedwatch::sandbox::{Clock, ManualClock, SandboxBank, SandboxConfig};
    let clock = Clock::Manual(ManualClock::new(chrono::Utc::now()));
    let bank = std::sync::Arc::new(SandboxBank::new(SandboxConfig::default(), clock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = feedwatch::http::sandbox_bank::router(bank.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (bank, url)
}

#[tokio::test]
async fn a_known_connection_refreshes_in_one_exchange_and_still_finds_new_and_vanished_accounts() {
    let app = TestApp::spawn().await;
    let (bank, url) = counting_sandbox().await;
    let pool = app.refresh_pool_with(&url, feedwatch::incident::Rules::default());
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = connect(&app, &tenant, "healthy", "pass_good").await;
    let connection: Uuid = id.parse().unwrap();
    let refresh = || async {
        let before = bank.exchanges();
        let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
        feedwatch::refresh::enqueue(&mut tx, connection, feedwatch::refresh::Trigger::Manual).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(pool.run_until_idle().await, 1);
        let history = app.get_json(&tenant, &format!("/v1/connections/{id}/refreshes")).await;
        assert_eq!(history["items"][0]["state"], "succeeded", "{history}");
        (bank.exchanges() - before, history["items"][0]["result"].clone())
    };
    let accounts = || async {
        let rows: Vec<(String, String, bool)> = sqlx::query_as(
            "select bank_account_id, state, provider_ref is not null from account where connection_id = $1
             order by bank_account_id",
        )
        .bind(connection)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        rows
    };
    let transactions = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from feed_transaction where not removed")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };

    assert_eq!(pool.run_until_idle().await, 1);
    assert_eq!(bank.exchanges(), 2, "a first refresh lists the accounts, then asks for their statements");
    let listed = accounts().await;
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|(_, state, known)| state == "active" && *known), "{listed:?}");
    let stored = transactions().await;

    let (exchanges, result) = refresh().await;
    assert_eq!(exchanges, 1, "the list and every statement in one request");
    assert_eq!(result, json!({ "accounts": 3, "added": 0, "modified": 0, "removed": 0 }));

    // The card becomes unknown to us (as a new account would be), and an account the bank does
    // not list is known (as one closed since the last refresh would be).
    sqlx::query("update account set provider_ref = null where connection_id = $1 and kind = 'credit_card'")
        .bind(connection)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        r#"insert into account (id, connection_id, bank_account_id, kind, display_name, provider_ref)
           values ($1, $2, '3000000000', 'checking', 'Old checking',
                   '{"bank": {"bank_id": "999999999", "branch_id": null, "account_id": "3000000000",
                              "account_type": "CHECKING"}}')"#,
    )
    .bind(Uuid::new_v4())
    .bind(connection)
    .execute(&app.pool)
    .await
    .unwrap();
    let (exchanges, result) = refresh().await;
    assert_eq!(exchanges, 2, "a second request for the account the list names but we did not ask for");
    assert_eq!(result, json!({ "accounts": 3, "added": 0, "modified": 0, "removed": 0 }));
    let after = accounts().await;
    let old = after.iter().find(|(bank_id, _, _)| bank_id == "3000000000").unwrap();
    assert_eq!((old.1.as_str(), old.2), ("not_found", false), "the vanished account is marked, no longer asked for");
    assert_eq!(after.iter().filter(|(_, state, known)| state == "active" && *known).count(), 3, "{after:?}");
    assert_eq!(transactions().await, stored, "the card kept its transactions");

    assert_eq!(refresh().await.0, 1, "known again: one exchange");
}

#[tokio::test]
async fn an_account_whose_statement_fails_keeps_its_transactions() {
    let app = TestApp::spawn().await;
    let (_bank, url) = counting_sandbox().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = connect(&app, &tenant, "healthy", "pass_good").await;
    let pool = app.refresh_pool_with(&url, feedwatch::incident::Rules::default());
    pool.run_until_idle().await;
    let per_account = || async {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "select a.kind, a.state, count(t.id) filter (where not t.removed) from account a
             left join feed_transaction t on t.account_id = a.id group by a.id order by a.kind",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        rows
    };
    let before = per_account().await;
    assert!(before.iter().all(|(_, state, count)| state == "active" && *count > 0), "{before:?}");
    // The sandbox then fails the savings statement (OFX 2003) while the others succeed.
    let patched = app
        .anonymous(Method::PATCH, &format!("/v1/connections/{id}"))
        .bearer_auth(&tenant)
        .header("if-match", "*")
        .json(&json!({ "credentials": { "user_id": "user_good", "password": "error_324" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(pool.run_until_idle().await, 1);
    let after = per_account().await;
    let states: Vec<(&str, &str)> = after.iter().map(|(kind, state, _)| (kind.as_str(), state.as_str())).collect();
    assert_eq!(states, [("checking", "active"), ("credit_card", "active"), ("savings", "not_found")]);
    let counts = |rows: &[(String, String, i64)]| rows.iter().map(|(_, _, count)| *count).collect::<Vec<_>>();
    assert_eq!(counts(&after), counts(&before), "nothing removed, the savings account included");
}
