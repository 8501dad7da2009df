//! Silent stalls: refreshes succeed, the bank answers with well-formed empty statements (the
//! sandbox's `error_721`), and an account that used to bring transactions daily goes quiet for
//! far longer than its rhythm. Time is not slept through: the stored history is moved back.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;

async fn get(app: &TestApp, path: &str) -> Value {
    let response = app.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// New credentials (the sandbox's password picks its behaviour) queue a refresh; runs it.
async fn refresh_with(app: &TestApp, key: &str, id: &str, password: &str) {
    let patched = app
        .anonymous(Method::PATCH, &format!("/v1/connections/{id}"))
        .bearer_auth(key)
        .header("if-match", "*")
        .json(&json!({ "credentials": { "user_id": "user_good", "password": password } }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{:?}", patched.text().await);
    app.refresh_pool().run_until_idle().await;
}

/// Moves the connection's stored history `days` back, as if that long had passed since; with
/// `renamed`, under other FITIDs, so what the bank shows again arrives as new transactions.
async fn age_history(app: &TestApp, id: &str, days: i32, renamed: bool) {
    sqlx::query(
        "update feed_transaction set posted_at = posted_at - make_interval(days => $2),
                fitid = case when $3 then 'aged-' || fitid else fitid end
         where connection_id = $1",
    )
    .bind(Uuid::parse_str(id).unwrap())
    .bind(days)
    .bind(renamed)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn messages(app: &TestApp, kind: &str) -> Vec<Value> {
    let bodies: Vec<String> =
        sqlx::query_scalar("select body from webhook_message where event_type = $1 order by created_at")
            .bind(kind)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    bodies.iter().map(|body| serde_json::from_str(body).unwrap()).collect()
}

async fn setup(app: &TestApp) -> (String, String) {
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let events = ["connection.stalled", "connection.repaired", "connection.state_changed"];
    let hook = app
        .anonymous(Method::POST, "/v1/webhooks")
        .bearer_auth(&key)
        .json(&json!({ "url": "http://127.0.0.1:9/hooks", "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 201, "{:?}", hook.text().await);
    let healthy = app.sandbox_institution("healthy").await;
    let connection = app.connection(&key, healthy, "Operating", "pass_good").await;
    let id = connection["id"].as_str().unwrap().to_owned();
    app.refresh_pool().run_until_idle().await;
    let view = get(app, &format!("/v1/connections/{id}")).await;
    assert_eq!(view["state"], "healthy", "{view}");
    (key, id)
}

fn stalled_count(summary: &Value) -> &Value {
    &summary["stalled"]["connections"]
}

#[tokio::test]
async fn empty_statements_for_weeks_stall_a_daily_account_and_new_transactions_clear_it() {
    let app = TestApp::spawn().await;
    let (key, id) = setup(&app).await;
    // Three months of near-daily checking and card history, the newest 40 days ago.
    age_history(&app, &id, 40, true).await;

    refresh_with(&app, &key, &id, "error_721").await;
    let view = get(&app, &format!("/v1/connections/{id}")).await;
    assert_eq!(view["state"], "degraded", "{view}");
    assert_eq!(view["health"]["error"]["code"], 721, "{view}");
    assert_eq!(view["health"]["failure_streak"], 0, "the refreshes themselves succeed: {view}");

    let events = get(&app, &format!("/v1/connections/{id}/events")).await;
    let stalled = events["items"].as_array().unwrap().iter().find(|event| event["kind"] == "connection.stalled");
    let detail = &stalled.unwrap_or_else(|| panic!("a connection.stalled event: {events}"))["detail"];
    let accounts = detail["accounts"].as_array().unwrap();
    let names: Vec<&str> = accounts.iter().map(|account| account["account_name"].as_str().unwrap()).collect();
    assert!(names.contains(&"Everyday Checking"), "{detail}");
    let checking = accounts.iter().find(|account| account["account_name"] == "Everyday Checking").unwrap();
    assert!(checking["silent_days"].as_i64().unwrap() >= 40, "{checking}");
    assert!(checking["usual_gap_days"].as_i64().unwrap() <= 3, "checking is near daily: {checking}");
    assert_eq!(checking["limit_days"], 14, "the floor: {checking}");

    let hooks = messages(&app, "connection.stalled").await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["data"]["connection_id"], id);
    assert_eq!(hooks[0]["data"]["error_code"], 721);
    assert!(!hooks[0]["data"]["accounts"].as_array().unwrap().is_empty());

    let fleet = get(&app, "/v1/health/summary").await;
    assert_eq!(stalled_count(&fleet), 1, "{fleet}");
    assert_eq!(fleet["by_state"]["degraded"], 1, "{fleet}");
    let tenant = app.anonymous(Method::GET, "/v1/health/summary").bearer_auth(&key).send().await.unwrap();
    assert_eq!(stalled_count(&tenant.json::<Value>().await.unwrap()), 1);

    let diagnosis = get(&app, &format!("/v1/connections/{id}/diagnosis")).await;
    let answer = &diagnosis["answer"];
    assert_eq!(answer["check"], "feed_activity", "{diagnosis}");
    assert_eq!(answer["action"], "upload_file", "{diagnosis}");
    assert!(answer["evidence"].as_str().unwrap().contains("Everyday Checking"), "{diagnosis}");
    let accounts_rung = diagnosis["findings"].as_array().unwrap().iter().find(|f| f["check"] == "accounts").unwrap();
    assert_eq!(accounts_rung["verdict"], "pass", "a stall is not a missing account: {diagnosis}");

    // Still silent: still stalled, and the onset is announced once.
    refresh_with(&app, &key, &id, "error_721").await;
    let view = get(&app, &format!("/v1/connections/{id}")).await;
    assert_eq!((view["state"].as_str(), &view["health"]["error"]["code"]), (Some("degraded"), &json!(721)));
    assert_eq!(messages(&app, "connection.stalled").await.len(), 1);

    // The bank sends transactions again: the last two weeks arrive as new rows.
    refresh_with(&app, &key, &id, "pass_good").await;
    let view = get(&app, &format!("/v1/connections/{id}")).await;
    assert_eq!(view["state"], "healthy", "{view}");
    assert!(view["health"]["error"].is_null(), "{view}");
    let repaired = messages(&app, "connection.repaired").await;
    assert_eq!(repaired.len(), 1, "{repaired:?}");
    assert_eq!(repaired[0]["data"]["from"], "degraded");
    let changes = messages(&app, "connection.state_changed").await;
    let last = &changes.last().unwrap()["data"];
    assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some("degraded"), Some("healthy")), "{changes:?}");
    assert_eq!(stalled_count(&get(&app, "/v1/health/summary").await), 0);
    let diagnosis = get(&app, &format!("/v1/connections/{id}/diagnosis")).await;
    let rung = diagnosis["findings"].as_array().unwrap().iter().find(|f| f["check"] == "feed_activity").unwrap();
    assert_eq!(rung["verdict"], "pass", "{diagnosis}");
}

#[tokio::test]
async fn silence_under_the_floor_or_with_too_little_history_is_not_a_stall() {
    let app = TestApp::spawn().await;
    let (key, id) = setup(&app).await;
    // Ten quiet days: a lull for a daily account, under the 14-day floor.
    age_history(&app, &id, 10, false).await;
    refresh_with(&app, &key, &id, "error_721").await;
    let view = get(&app, &format!("/v1/connections/{id}")).await;
    assert_eq!(view["state"], "healthy", "{view}");
    assert!(view["health"]["error"].is_null(), "{view}");

    // An account with three active days has no rhythm to fall behind, however long it is quiet.
    sqlx::query(
        "delete from feed_transaction t where connection_id = $1
           and (posted_at at time zone 'UTC')::date not in (
               select distinct (posted_at at time zone 'UTC')::date from feed_transaction
               where account_id = t.account_id order by 1 desc limit 3)",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    age_history(&app, &id, 120, false).await;
    refresh_with(&app, &key, &id, "error_721").await;
    let view = get(&app, &format!("/v1/connections/{id}")).await;
    assert_eq!(view["state"], "healthy", "{view}");
    assert!(messages(&app, "connection.stalled").await.is_empty());
    assert_eq!(stalled_count(&get(&app, "/v1/health/summary").await), 0);
}
