//! Shared account names, counted on write (`account_name_use`): every change to an account or a
//! connection moves a connection's `duplicate_account_names` and its diagnosis, and the counts
//! always equal the tenant-wide group-by they replace.

use feedwatch::connection::AccountKind;
use feedwatch::connection::store::{AccountChanges, ListedAccount, ReportedAccount, update_account, upsert_account};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;

fn reported<'a>(bank_id: &'a str, name: &'a str) -> ReportedAccount<'a> {
    ReportedAccount {
        bank_account_id: bank_id,
        kind: AccountKind::Checking,
        masked_number: "****1234",
        bank_name: name,
        currency: "USD",
        balance: None,
        available: None,
        balance_as_of: None,
        error_code: None,
    }
}

async fn add(app: &TestApp, connection: Uuid, bank_id: &str, name: &str) -> Uuid {
    upsert_account(&app.pool, connection, &reported(bank_id, name)).await.unwrap()
}

async fn change(app: &TestApp, connection: Uuid, account: Uuid, changes: AccountChanges<'_>) {
    update_account(&app.pool, connection, account, &changes).await.unwrap();
}

async fn get(app: &TestApp, key: &str, path: &str) -> Value {
    let response = app.anonymous(Method::GET, path).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn shared(app: &TestApp, key: &str, connection: Uuid) -> Value {
    get(app, key, &format!("/v1/connections/{connection}")).await["duplicate_account_names"].clone()
}

/// The counts differ from the group-by they stand for: rows of (tenant, name, connection,
/// count) in one and not the other, both ways. Per connection (migration 0027), so a count kept
/// under another connection, or a row left at zero, is drift even where the tenant's sum is right.
async fn drift(pool: &sqlx::PgPool) -> Vec<(Uuid, String, Uuid, i64)> {
    sqlx::query_as(
        r#"with truth as (
               select c.tenant_id, lower(a.display_name) as name_key, c.id as connection_id, count(*) as accounts
               from account a join connection c on c.id = a.connection_id
               where a.state <> 'hidden' and c.state <> 'disconnected'
               group by 1, 2, 3),
           kept as (select tenant_id, name_key, connection_id, accounts::bigint from account_name_use)
           (select * from truth except all select * from kept)
           union all
           (select * from kept except all select * from truth)"#,
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn assert_exact(app: &TestApp, step: &str) {
    assert_eq!(drift(&app.pool).await, vec![], "after {step}");
}

#[tokio::test]
async fn renames_hides_disconnects_and_purges_move_the_shared_names_within_one_tenant() {
    let app = TestApp::spawn().await;
    let bank = app.institution("names-bank").await;
    let alice = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = |value: Value| -> Uuid { value["id"].as_str().unwrap().parse().unwrap() };
    let one = id(app.connection(&alice, bank, "One", "p").await);
    let two = id(app.connection(&alice, bank, "Two", "p").await);
    let three = id(app.connection(&alice, bank, "Three", "p").await);
    add(&app, one, "1a", "Business Checking").await;
    add(&app, one, "1b", "Savings").await;
    let two_checking = add(&app, two, "2a", "business checking").await;
    let three_savings = add(&app, three, "3a", "SAVINGS").await;
    // Another tenant with the same names: its accounts are not the first tenant's.
    let bob = app.key("tenant", Some(Uuid::new_v4())).await;
    let bobs = id(app.connection(&bob, bank, "Bob's", "p").await);
    add(&app, bobs, "b1", "Business Checking").await;
    add(&app, bobs, "b2", "Savings").await;
    assert_exact(&app, "inserts").await;

    // Each connection spells a shared name its own way.
    assert_eq!(shared(&app, &alice, one).await, json!(["Business Checking", "Savings"]));
    assert_eq!(shared(&app, &alice, two).await, json!(["business checking"]));
    assert_eq!(shared(&app, &alice, three).await, json!(["SAVINGS"]));
    assert_eq!(shared(&app, &bob, bobs).await, json!([]), "another tenant's names are not shared");

    change(&app, two, two_checking, AccountChanges { display_name: Some("Payroll"), ..Default::default() }).await;
    assert_exact(&app, "a rename away").await;
    assert_eq!(shared(&app, &alice, one).await, json!(["Savings"]));
    assert_eq!(shared(&app, &alice, two).await, json!([]));
    change(&app, two, two_checking, AccountChanges { display_name: Some("BUSINESS Checking"), ..Default::default() })
        .await;
    assert_exact(&app, "a rename back").await;
    assert_eq!(shared(&app, &alice, two).await, json!(["BUSINESS Checking"]));

    change(&app, three, three_savings, AccountChanges { hidden: Some(true), ..Default::default() }).await;
    assert_exact(&app, "a hide").await;
    assert_eq!(shared(&app, &alice, one).await, json!(["Business Checking"]));
    assert_eq!(shared(&app, &alice, three).await, json!([]));
    change(&app, three, three_savings, AccountChanges { hidden: Some(false), ..Default::default() }).await;
    assert_exact(&app, "a show").await;
    assert_eq!(shared(&app, &alice, one).await, json!(["Business Checking", "Savings"]));

    // The diagnosis names the same shared names, as this connection spells them.
    let diagnosis = get(&app, &alice, &format!("/v1/connections/{two}/diagnosis")).await;
    let finding = diagnosis["findings"].as_array().unwrap().iter().find(|f| f["check"] == "duplicate_names").unwrap();
    assert_eq!(finding["verdict"], "fail", "{finding}");
    assert!(finding["evidence"].as_str().unwrap().contains("BUSINESS Checking"), "{finding}");

    let disconnected = app
        .anonymous(Method::DELETE, &format!("/v1/connections/{two}"))
        .bearer_auth(&alice)
        .header("if-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(disconnected.status(), 204);
    assert_exact(&app, "a disconnect").await;
    assert_eq!(shared(&app, &alice, one).await, json!(["Savings"]));
    assert_eq!(shared(&app, &alice, two).await, json!([]), "its one other Business Checking is alone now");
    let diagnosis = get(&app, &alice, &format!("/v1/connections/{one}/diagnosis")).await;
    let finding = diagnosis["findings"].as_array().unwrap().iter().find(|f| f["check"] == "duplicate_names").unwrap();
    assert!(!finding["evidence"].as_str().unwrap().contains("Checking"), "{finding}");

    // A disconnected connection's accounts stay out, whatever happens to them.
    add(&app, two, "2b", "Savings").await;
    change(&app, two, two_checking, AccountChanges { display_name: Some("Savings"), ..Default::default() }).await;
    assert_exact(&app, "changes to a disconnected connection's accounts").await;
    assert_eq!(shared(&app, &alice, one).await, json!(["Savings"]));

    let purged = app.admin(Method::DELETE, &format!("/v1/connections/{three}?purge=true")).send().await.unwrap();
    assert_eq!(purged.status(), 204);
    assert_exact(&app, "a purge").await;
    assert_eq!(shared(&app, &alice, one).await, json!([]));
    let purged = app.admin(Method::DELETE, &format!("/v1/connections/{two}?purge=true")).send().await.unwrap();
    assert_eq!(purged.status(), 204);
    assert_exact(&app, "a disconnected connection's purge").await;
    sqlx::query("delete from account where connection_id = $1").bind(bobs).execute(&app.pool).await.unwrap();
    assert_exact(&app, "accounts deleted on their own").await;
}

#[tokio::test]
async fn shared_names_are_ordered_case_insensitively_and_spelt_the_least_way_this_connection_spells_them() {
    let app = TestApp::spawn().await;
    let bank = app.institution("names-order").await;
    let key = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = |value: Value| -> Uuid { value["id"].as_str().unwrap().parse().unwrap() };
    let one = id(app.connection(&key, bank, "One", "p").await);
    let two = id(app.connection(&key, bank, "Two", "p").await);
    add(&app, one, "1a", "Zeta Reserve").await;
    add(&app, one, "1b", "accounts payable").await;
    add(&app, one, "1c", "Accounts Payable").await;
    add(&app, one, "1d", "Mid Account").await;
    add(&app, two, "2a", "ZETA RESERVE").await;
    add(&app, two, "2b", "Mid account").await;

    // A byte order would put every capital first; the list reads as a person sorts it, and two
    // spellings within one connection are given once, the least of them.
    assert_eq!(shared(&app, &key, one).await, json!(["Accounts Payable", "Mid Account", "Zeta Reserve"]));
    assert_eq!(shared(&app, &key, two).await, json!(["Mid account", "ZETA RESERVE"]));
}

/// One change in a random sequence: what it does, and to which connection, account and name.
#[derive(Debug, Clone)]
enum Step {
    /// A writer batch: each connection lists these (bank id, name) pairs; unlisted ones vanish.
    Listed(Vec<(usize, Vec<(usize, usize)>)>),
    Rename(usize, usize, usize),
    Hide(usize, usize, bool),
    Disconnect(usize),
    Purge(usize),
    DeleteAccount(usize, usize),
}

/// Names that collide case-insensitively, and one that does not.
const NAMES: [&str; 5] = ["Checking", "CHECKING", "checking", "Savings", "Card"];

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let listed = proptest::collection::vec((0usize..4, proptest::collection::vec((0usize..3, 0usize..5), 0..3)), 1..4);
    prop_oneof![
        4 => listed.prop_map(Step::Listed),
        3 => (0usize..4, 0usize..3, 0usize..5).prop_map(|(c, a, n)| Step::Rename(c, a, n)),
        2 => (0usize..4, 0usize..3, any::<bool>()).prop_map(|(c, a, h)| Step::Hide(c, a, h)),
        1 => (0usize..4).prop_map(Step::Disconnect),
        1 => (0usize..4).prop_map(Step::Purge),
        1 => (0usize..4, 0usize..3).prop_map(|(c, a)| Step::DeleteAccount(c, a)),
    ]
}

/// After any sequence of inserts (the writer's batched upsert), renames, hides, disconnects,
/// purges and deletions over two tenants, the kept counts equal the group-by from scratch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_counts_equal_the_group_by_after_any_sequence_of_changes() {
    use proptest::test_runner::{Config, TestRunner};

    let app = TestApp::spawn().await;
    let bank = app.institution("names-prop").await;
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32);
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&proptest::collection::vec(step(), 1..12), |steps| {
        let drift = tokio::task::block_in_place(|| handle.block_on(apply(&app, bank, &steps)));
        proptest::prop_assert_eq!(drift, vec![]);
        Ok(())
    });
    result.unwrap();
}

/// Runs the steps on four fresh connections (two per tenant); returns the drift.
async fn apply(app: &TestApp, bank: Uuid, steps: &[Step]) -> Vec<(Uuid, String, Uuid, i64)> {
    let tenants = [Uuid::new_v4(), Uuid::new_v4()];
    let connections: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for (index, connection) in connections.iter().enumerate() {
        sqlx::query(
            "insert into connection (id, tenant_id, institution_id, display_name, credentials_sealed, credentials_key_id)
             values ($1, $2, $3, 'Prop', '\\x00', 'k')",
        )
        .bind(connection)
        .bind(tenants[index % 2])
        .bind(bank)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let bank_id = |account: usize| format!("acct-{account}");
    for step in steps {
        match step {
            Step::Listed(batch) => {
                let mut seen = std::collections::HashSet::new();
                let rows: Vec<(Uuid, Vec<(String, &str)>)> = batch
                    .iter()
                    .filter(|(connection, _)| seen.insert(*connection))
                    .map(|(connection, accounts)| {
                        let mut ids = std::collections::HashSet::new();
                        let accounts = accounts
                            .iter()
                            .filter(|(account, _)| ids.insert(*account))
                            .map(|(account, name)| (bank_id(*account), NAMES[*name]))
                            .collect();
                        (connections[*connection], accounts)
                    })
                    .collect();
                let listed: Vec<(Uuid, Vec<ListedAccount<'_>>)> = rows
                    .iter()
                    .map(|(connection, accounts)| {
                        let listed = accounts
                            .iter()
                            .map(|(id, name)| ListedAccount { reported: reported(id, name), provider_ref: None })
                            .collect();
                        (*connection, listed)
                    })
                    .collect();
                let batch: Vec<(Uuid, &[ListedAccount<'_>])> = listed.iter().map(|(c, l)| (*c, &l[..])).collect();
                // A purged connection's accounts cannot be stored (its row is gone): skip those.
                let live: Vec<(Uuid, &[ListedAccount<'_>])> = {
                    let mut live = Vec::new();
                    for (connection, listed) in batch {
                        if exists(app, connection).await {
                            live.push((connection, listed));
                        }
                    }
                    live
                };
                feedwatch::connection::store::store_listed_accounts(&app.pool, &live).await.unwrap();
            }
            Step::Rename(connection, account, name) => {
                if let Some(account) = account_id(app, connections[*connection], &bank_id(*account)).await {
                    let changes = AccountChanges { display_name: Some(NAMES[*name]), ..Default::default() };
                    change(app, connections[*connection], account, changes).await;
                }
            }
            Step::Hide(connection, account, hidden) => {
                if let Some(account) = account_id(app, connections[*connection], &bank_id(*account)).await {
                    change(
                        app,
                        connections[*connection],
                        account,
                        AccountChanges { hidden: Some(*hidden), ..Default::default() },
                    )
                    .await;
                }
            }
            Step::Disconnect(connection) => {
                sqlx::query(
                    "update connection set state = 'disconnected', disconnected_at = now()
                     where id = $1 and state <> 'disconnected'",
                )
                .bind(connections[*connection])
                .execute(&app.pool)
                .await
                .unwrap();
            }
            Step::Purge(connection) => {
                feedwatch::connection::purge(&app.pool, connections[*connection]).await.unwrap();
            }
            Step::DeleteAccount(connection, account) => {
                sqlx::query("delete from account where connection_id = $1 and bank_account_id = $2")
                    .bind(connections[*connection])
                    .bind(bank_id(*account))
                    .execute(&app.pool)
                    .await
                    .unwrap();
            }
        }
    }
    drift(&app.pool).await
}

async fn exists(app: &TestApp, connection: Uuid) -> bool {
    sqlx::query_scalar::<_, bool>("select exists (select 1 from connection where id = $1)")
        .bind(connection)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn account_id(app: &TestApp, connection: Uuid, bank_id: &str) -> Option<Uuid> {
    sqlx::query_scalar("select id from account where connection_id = $1 and bank_account_id = $2")
        .bind(connection)
        .bind(bank_id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

/// A connection's accounts come back in the order they were added, whatever their bank ids or
/// names: the page's statement leaves them unordered (a sort node on every read cost more than
/// the handful of accounts is worth) and the store orders them.
#[tokio::test]
async fn a_connections_accounts_read_back_in_the_order_they_were_added() {
    let app = TestApp::spawn().await;
    let bank = app.institution("order-bank").await;
    let key = app.key("tenant", Some(Uuid::new_v4())).await;
    let connection: Uuid = app.connection(&key, bank, "Ordered", "p").await["id"].as_str().unwrap().parse().unwrap();
    for (bank_id, name) in [("z9", "Zeta"), ("a1", "Alpha"), ("m5", "Mid"), ("b2", "Beta")] {
        add(&app, connection, bank_id, name).await;
    }
    let page = get(&app, &key, &format!("/v1/connections/{connection}")).await;
    let names: Vec<&str> =
        page["accounts"].as_array().unwrap().iter().map(|account| account["display_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Zeta", "Alpha", "Mid", "Beta"]);
}
