//! Connections and their accounts: tenancy, concurrency, pagination, idempotency, bad input.
//! Sealed credentials are in `credentials.rs`, institutions in `institutions.rs`.

use std::collections::HashSet;

use feedwatch::connection::AccountKind;
use feedwatch::connection::store::{ReportedAccount, upsert_account};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, assert_problem, json_of};

pub(crate) struct Tenant {
    pub id: Uuid,
    pub key: String,
}

pub(crate) async fn tenant(app: &TestApp) -> Tenant {
    let id = Uuid::new_v4();
    Tenant { id, key: app.key("tenant", Some(id)).await }
}

pub(crate) fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tenant_creates_reads_renames_and_disconnects_a_connection() {
    let app = TestApp::spawn().await;
    let bank = app.institution("first-bank").await;
    let alice = tenant(&app).await;
    let response = app
        .anonymous(Method::POST, "/v1/connections")
        .bearer_auth(&alice.key)
        .json(&json!({ "institution_id": bank, "display_name": "Operating", "refresh_every": "12h",
                       "credentials": { "user_id": "user_good", "password": "pass_good" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["etag"], "\"v1\"");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["tenant_id"], alice.id.to_string());
    assert_eq!(created["state"], "syncing");
    assert_eq!(created["refresh_every"], "12h");
    assert_eq!(created["institution"]["name"], "Bank first-bank");
    assert!(created.get("credentials").is_none());

    let get = app.anonymous(Method::GET, &location).bearer_auth(&alice.key).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let etag = get.headers()["etag"].to_str().unwrap().to_owned();
    let patch = app
        .anonymous(Method::PATCH, &location)
        .bearer_auth(&alice.key)
        .header("if-match", &etag)
        .json(&json!({ "display_name": "Main account", "paused": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(patch.headers()["etag"], "\"v2\"");
    let patched: Value = patch.json().await.unwrap();
    assert_eq!(patched["display_name"], "Main account");
    assert_eq!(patched["paused"], true);

    let delete = app.anonymous(Method::DELETE, &location).bearer_auth(&alice.key).send().await.unwrap();
    assert_eq!(delete.status(), 204);
    let after: Value =
        app.anonymous(Method::GET, &location).bearer_auth(&alice.key).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["state"], "disconnected");
    assert!(after["disconnected_at"].is_string(), "data is kept after a disconnect");

    let events = app.get_json(&alice.key, &format!("{location}/events")).await;
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["connection.created", "connection.renamed", "connection.paused", "connection.disconnected"]);
    assert!(events["items"].as_array().unwrap().iter().all(|e| e["actor_role"] == "tenant"));
}

#[tokio::test]
async fn another_tenants_connection_answers_404_on_every_route_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let bank = app.institution("iso-bank").await;
    let owner = tenant(&app).await;
    let intruder = tenant(&app).await;
    let connection = app.connection(&owner.key, bank, "Owner's account", "pass_good").await;
    let id = id_of(&connection);
    let account = add_account(&app, &id, "acct-1", "Checking").await;
    let routes = [
        (Method::GET, format!("/v1/connections/{id}"), None),
        (Method::PATCH, format!("/v1/connections/{id}"), Some(json!({ "display_name": "mine now" }))),
        (Method::DELETE, format!("/v1/connections/{id}"), None),
        (Method::GET, format!("/v1/connections/{id}/accounts"), None),
        (Method::PATCH, format!("/v1/connections/{id}/accounts/{account}"), Some(json!({ "hidden": true }))),
        (Method::GET, format!("/v1/connections/{id}/events"), None),
    ];
    for (method, path, body) in routes {
        let mut request = app.anonymous(method.clone(), &path).bearer_auth(&intruder.key).header("if-match", "*");
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_problem(request.send().await.unwrap(), 404, "not_found").await;
    }
    let list = app.get_json(&intruder.key, "/v1/connections").await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let asked = app.get_json(&intruder.key, &format!("/v1/connections?tenant_id={}", owner.id)).await;
    assert!(asked["items"].as_array().unwrap().is_empty(), "a tenant filter cannot widen a tenant key");

    let unchanged = app.get_json(&owner.key, &format!("/v1/connections/{id}")).await;
    assert_eq!(unchanged["display_name"], "Owner's account");
    assert_eq!(unchanged["version"], 1);
    assert_eq!(unchanged["accounts"][0]["state"], "active");

    let helpdesk = app.key("helpdesk", None).await;
    let read =
        app.anonymous(Method::GET, &format!("/v1/connections/{id}")).bearer_auth(&helpdesk).send().await.unwrap();
    assert_eq!(read.status(), 200, "helpdesk reads every tenant");
    let write = app
        .anonymous(Method::PATCH, &format!("/v1/connections/{id}"))
        .bearer_auth(&helpdesk)
        .header("if-match", "*")
        .json(&json!({ "display_name": "x" }))
        .send()
        .await
        .unwrap();
    assert_problem(write, 403, "forbidden").await;
}

async fn add_account(app: &TestApp, connection: &str, bank_id: &str, name: &str) -> Uuid {
    let reported = ReportedAccount {
        bank_account_id: bank_id,
        kind: AccountKind::Checking,
        masked_number: "****1234",
        bank_name: name,
        currency: "USD",
        balance: Some("100.50".parse().unwrap()),
        available: None,
        balance_as_of: Some(chrono::Utc::now()),
        error_code: None,
    };
    upsert_account(&app.pool, connection.parse().unwrap(), &reported).await.unwrap()
}

#[tokio::test]
async fn two_concurrent_patches_with_one_etag_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let bank = app.institution("race-bank").await;
    let alice = tenant(&app).await;
    let id = id_of(&app.connection(&alice.key, bank, "Race", "pass_good").await);
    let path = format!("/v1/connections/{id}");
    let send = |name: &'static str| {
        app.anonymous(Method::PATCH, &path)
            .bearer_auth(&alice.key)
            .header("if-match", "\"v1\"")
            .json(&json!({ "display_name": name }))
            .send()
    };
    let (first, second) = tokio::join!(send("first"), send("second"));
    let mut statuses = vec![first.unwrap().status().as_u16(), second.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 412]);
    let after: Value =
        app.anonymous(Method::GET, &path).bearer_auth(&alice.key).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["version"], 2);
}

#[tokio::test]
async fn writes_without_if_match_are_428_and_stale_ones_412() {
    let app = TestApp::spawn().await;
    let bank = app.institution("etag-bank").await;
    let alice = tenant(&app).await;
    let path = format!("/v1/connections/{}", id_of(&app.connection(&alice.key, bank, "Tagged", "pass_good").await));
    let missing = app
        .anonymous(Method::PATCH, &path)
        .bearer_auth(&alice.key)
        .json(&json!({ "paused": true }))
        .send()
        .await
        .unwrap();
    assert_problem(missing, 428, "if_match_required").await;
    let stale = app
        .anonymous(Method::PATCH, &path)
        .bearer_auth(&alice.key)
        .header("if-match", "\"v7\"")
        .json(&json!({ "paused": true }))
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412, "stale_etag").await;
    let malformed = app
        .anonymous(Method::PATCH, &path)
        .bearer_auth(&alice.key)
        .header("if-match", "v1")
        .json(&json!({ "paused": true }))
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "invalid_header").await;
    let stale_delete =
        app.anonymous(Method::DELETE, &path).bearer_auth(&alice.key).header("if-match", "\"v9\"").send().await.unwrap();
    assert_problem(stale_delete, 412, "stale_etag").await;
}

#[tokio::test]
async fn pagination_visits_every_connection_once_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    let bank = app.institution("page-bank").await;
    let alice = tenant(&app).await;
    let mut expected = HashSet::new();
    for index in 0..12 {
        expected.insert(id_of(&app.connection(&alice.key, bank, &format!("c{index}"), "pass_good").await));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut inserted = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/connections?limit=5&cursor={cursor}"),
            None => "/v1/connections?limit=5".to_owned(),
        };
        let page: Value =
            app.anonymous(Method::GET, &path).bearer_auth(&alice.key).send().await.unwrap().json().await.unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(id_of));
        let Some(next) = page["next_cursor"].as_str() else { break };
        cursor = Some(next.to_owned());
        // Rows created mid-walk sort after every cursor handed out, so they are seen once too.
        if inserted < 3 {
            expected.insert(id_of(&app.connection(&alice.key, bank, &format!("late{inserted}"), "pass_good").await));
            inserted += 1;
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert_eq!(unique, expected, "every row, including those added during the walk");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let app = TestApp::spawn().await;
    let bank = app.institution("idem-bank").await;
    let alice = tenant(&app).await;
    let body =
        json!({ "institution_id": bank, "display_name": "Once", "credentials": { "user_id": "u", "password": "p" } });
    let send = |body: Value| {
        app.anonymous(Method::POST, "/v1/connections")
            .bearer_auth(&alice.key)
            .header("idempotency-key", "abc-123")
            .json(&body)
            .send()
    };
    let (first, second) = tokio::join!(send(body.clone()), send(body.clone()));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.status(), 201);
    assert_eq!(second.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"], "one connection for both");
    let count: i64 = sqlx::query_scalar("select count(*) from connection").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1);
    let mut other = body.clone();
    other["display_name"] = json!("Twice");
    assert_problem(send(other).await.unwrap(), 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let bank = app.institution("bad-bank").await;
    let alice = tenant(&app).await;
    let long = "x".repeat(201);
    let cases = [
        (
            json!({ "institution_id": Uuid::new_v4(), "display_name": "a", "credentials": { "user_id": "u", "password": "p" } }),
            "institution_id",
        ),
        (
            json!({ "institution_id": bank, "display_name": "  ", "credentials": { "user_id": "u", "password": "p" } }),
            "display_name",
        ),
        (
            json!({ "institution_id": bank, "display_name": long, "credentials": { "user_id": "u", "password": "p" } }),
            "display_name",
        ),
        (
            json!({ "institution_id": bank, "display_name": "a", "credentials": { "user_id": "u" } }),
            "credentials.password",
        ),
        (
            json!({ "institution_id": bank, "display_name": "a", "credentials": { "user_id": "u", "password": "" } }),
            "credentials.password",
        ),
        (
            json!({ "institution_id": bank, "display_name": "a", "refresh_every": "5m", "credentials": { "user_id": "u", "password": "p" } }),
            "refresh_every",
        ),
        (
            json!({ "institution_id": bank, "display_name": "a", "tenant_id": Uuid::new_v4(), "credentials": { "user_id": "u", "password": "p" } }),
            "tenant_id",
        ),
    ];
    for (body, field) in cases {
        let response =
            app.anonymous(Method::POST, "/v1/connections").bearer_auth(&alice.key).json(&body).send().await.unwrap();
        let problem = assert_problem(response, 422, "validation_failed").await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{field} in {problem}");
    }
    let count: i64 = sqlx::query_scalar("select count(*) from connection").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0, "nothing partially written");
    for query in
        ["stale_for=abc", "stale_for=-1h", "limit=-1", "cursor=nope", "state=broken", "institution_id=not-a-uuid"]
    {
        let response = app
            .anonymous(Method::GET, &format!("/v1/connections?{query}"))
            .bearer_auth(&alice.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
    assert_problem(
        app.anonymous(Method::GET, "/v1/connections/12345").bearer_auth(&alice.key).send().await.unwrap(),
        400,
        "invalid_path_parameter",
    )
    .await;
}

#[tokio::test]
async fn list_filters_by_state_error_staleness_institution_and_text() {
    let app = TestApp::spawn().await;
    let first = app.institution("filter-first").await;
    let second = app.institution("filter-second").await;
    let alice = tenant(&app).await;
    let broken = id_of(&app.connection(&alice.key, first, "Payroll", "p").await);
    let fine = id_of(&app.connection(&alice.key, second, "Savings", "p").await);
    sqlx::query("update connection set state = 'needs_user_action', error_code = 103, created_at = now() - interval '3 days' where id = $1")
        .bind(Uuid::parse_str(&broken).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update connection set state = 'healthy', last_success_at = now() where id = $1")
        .bind(Uuid::parse_str(&fine).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let ids = |query: String| {
        let request = app.anonymous(Method::GET, &format!("/v1/connections?{query}")).bearer_auth(&alice.key).send();
        async move {
            let page: Value = request.await.unwrap().json().await.unwrap();
            page["items"].as_array().unwrap().iter().map(id_of).collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("state=needs_user_action".into()).await, std::slice::from_ref(&broken));
    assert_eq!(ids("error_code=103".into()).await, std::slice::from_ref(&broken));
    assert_eq!(ids("stale_for=48h".into()).await, std::slice::from_ref(&broken));
    assert_eq!(ids(format!("institution_id={second}")).await, std::slice::from_ref(&fine));
    assert_eq!(ids("q=payr".into()).await, std::slice::from_ref(&broken));
    assert_eq!(ids("q=Bank%20filter-second".into()).await, [fine], "q matches institution names too");
}

#[tokio::test]
async fn accounts_are_renamed_hidden_remapped_and_duplicate_names_reported() {
    let app = TestApp::spawn().await;
    let bank = app.institution("acct-bank").await;
    let alice = tenant(&app).await;
    let first = id_of(&app.connection(&alice.key, bank, "One", "p").await);
    let second = id_of(&app.connection(&alice.key, bank, "Two", "p").await);
    let checking = add_account(&app, &first, "111", "Business Checking").await;
    add_account(&app, &second, "222", "business checking").await;
    let detail = app.get_json(&alice.key, &format!("/v1/connections/{first}")).await;
    assert_eq!(detail["duplicate_account_names"], json!(["Business Checking"]));

    let path = format!("/v1/connections/{first}/accounts/{checking}");
    let renamed = app
        .anonymous(Method::PATCH, &path)
        .bearer_auth(&alice.key)
        .json(&json!({ "display_name": "Checking (ops)" }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    let detail = app.get_json(&alice.key, &format!("/v1/connections/{first}")).await;
    assert_eq!(detail["duplicate_account_names"], json!([]));

    sqlx::query("update account set state = 'not_found', error_code = 324 where id = $1")
        .bind(checking)
        .execute(&app.pool)
        .await
        .unwrap();
    let remapped = json_of(
        app.anonymous(Method::PATCH, &path).bearer_auth(&alice.key).json(&json!({ "bank_account_id": "111-new" })),
    )
    .await;
    assert_eq!(remapped["bank_account_id"], "111-new");
    assert_eq!(remapped["state"], "active");
    assert_eq!(remapped["id"], checking.to_string(), "same account, history kept");
    let hidden =
        json_of(app.anonymous(Method::PATCH, &path).bearer_auth(&alice.key).json(&json!({ "hidden": true }))).await;
    assert_eq!(hidden["state"], "hidden");

    add_account(&app, &first, "333", "Savings").await;
    let taken = app
        .anonymous(Method::PATCH, &path)
        .bearer_auth(&alice.key)
        .json(&json!({ "bank_account_id": "333" }))
        .send()
        .await
        .unwrap();
    assert_problem(taken, 409, "bank_account_id_taken").await;
    let empty = app.anonymous(Method::PATCH, &path).bearer_auth(&alice.key).json(&json!({})).send().await.unwrap();
    assert_problem(empty, 422, "validation_failed").await;

    let events = app.get_json(&alice.key, &format!("/v1/connections/{first}/events")).await;
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"account.renamed") && kinds.contains(&"account.remapped") && kinds.contains(&"account.hidden"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn only_admins_purge_and_a_purge_removes_everything() {
    let app = TestApp::spawn().await;
    let bank = app.institution("purge-bank").await;
    let alice = tenant(&app).await;
    let id = id_of(&app.connection(&alice.key, bank, "Gone", "p").await);
    add_account(&app, &id, "999", "Card").await;
    let path = format!("/v1/connections/{id}?purge=true");
    assert_problem(
        app.anonymous(Method::DELETE, &path).bearer_auth(&alice.key).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_eq!(app.admin(Method::DELETE, &path).send().await.unwrap().status(), 204);
    let left: i64 = sqlx::query_scalar("select (select count(*) from connection) + (select count(*) from account) + (select count(*) from connection_event)")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_problem(app.admin(Method::GET, &format!("/v1/connections/{id}")).send().await.unwrap(), 404, "not_found")
        .await;
}
