//! What starts a refresh: a person's "refresh now" (coalesced, cooled down, per tenant, with an
//! idempotency key), a bulk refresh (a dry run first), and the scheduler (each connection taken
//! once, those waiting for their user left alone).

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::refreshes::connect;
use crate::support::{Options, TestApp, assert_problem};

#[tokio::test]
async fn triggers_coalesce_cool_down_and_respect_tenancy() {
    let app =
        TestApp::spawn_with(Options { refresh_cooldown: std::time::Duration::from_secs(300), ..Options::default() })
            .await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let other = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = connect(&app, &tenant, "healthy", "pass_good").await;
    let path = format!("/v1/connections/{id}/refresh");
    let first = app.anonymous(Method::POST, &path).bearer_auth(&tenant).send().await.unwrap();
    assert_eq!(first.status(), 202);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["coalesced"], true, "merged into the refresh enqueued at creation");
    assert_eq!(location, format!("/v1/refreshes/{}", first["refresh_id"]));
    assert_problem(app.anonymous(Method::POST, &path).bearer_auth(&other).send().await.unwrap(), 404, "not_found")
        .await;
    assert_problem(app.anonymous(Method::GET, &location).bearer_auth(&other).send().await.unwrap(), 404, "not_found")
        .await;

    app.refresh_pool().run_until_idle().await;
    let cooled = app.anonymous(Method::POST, &path).bearer_auth(&tenant).send().await.unwrap();
    assert!(cooled.headers().contains_key("retry-after"));
    assert_problem(cooled, 429, "refresh_cooldown").await;
    let forbidden =
        app.anonymous(Method::POST, &path).bearer_auth(&tenant).json(&json!({ "force": true })).send().await.unwrap();
    assert_problem(forbidden, 403, "forbidden").await;
    let helpdesk = app.key("helpdesk", None).await;
    let forced =
        app.anonymous(Method::POST, &path).bearer_auth(&helpdesk).json(&json!({ "force": true })).send().await.unwrap();
    assert_eq!(forced.status(), 202, "helpdesk may force");
    let bad = app
        .anonymous(Method::POST, &path)
        .bearer_auth(&helpdesk)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_problem(bad, 400, "malformed_json").await;
}

#[tokio::test]
async fn bulk_refresh_counts_in_a_dry_run_and_enqueues_for_real() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    connect(&app, &tenant, "flaky", "pass_good").await;
    connect(&app, &tenant, "flaky", "pass_good").await;
    connect(&app, &tenant, "healthy", "pass_good").await;
    app.refresh_pool().run_until_idle().await;
    let flaky = app.sandbox_institution("flaky").await.to_string();
    let helpdesk = app.key("helpdesk", None).await;
    let dry = app.post_json(&helpdesk, "/v1/refreshes", &json!({ "institution_id": flaky, "dry_run": true })).await;
    assert_eq!(dry, json!({ "matched": 2, "enqueued": 0, "coalesced": 0, "dry_run": true }));
    let real = app.post_json(&helpdesk, "/v1/refreshes", &json!({ "institution_id": flaky })).await;
    assert_eq!(real["matched"], 2);
    assert_eq!(real["enqueued"].as_u64().unwrap() + real["coalesced"].as_u64().unwrap(), 2);
    let queue = app.get_json(&helpdesk, "/v1/queue").await;
    assert!(queue["by_state"]["available"].as_i64().unwrap() >= 2, "{queue}");
    let refused = app
        .anonymous(Method::POST, "/v1/refreshes")
        .bearer_auth(&tenant)
        .json(&json!({ "institution_id": flaky }))
        .send()
        .await
        .unwrap();
    assert_problem(refused, 403, "forbidden").await;
    let unfiltered =
        app.anonymous(Method::POST, "/v1/refreshes").bearer_auth(&helpdesk).json(&json!({})).send().await.unwrap();
    assert_problem(unfiltered, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_repeated_refresh_request_with_one_idempotency_key_gets_the_first_answer() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let id = connect(&app, &tenant, "healthy", "pass_good").await;
    app.refresh_pool().run_until_idle().await;
    let send = |body: &'static str| {
        app.anonymous(Method::POST, &format!("/v1/connections/{id}/refresh"))
            .bearer_auth(&tenant)
            .header("idempotency-key", "retry-1")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let first = send("").await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    app.refresh_pool().run_until_idle().await;
    let again = send("").await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first, "the first answer, not a new refresh");
    assert_problem(send(r#"{"force": false}"#).await.unwrap(), 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn scheduled_refreshes_are_taken_once_and_skip_connections_waiting_for_the_user() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let due = connect(&app, &tenant, "healthy", "pass_good").await;
    let waiting = connect(&app, &tenant, "healthy", "error_103").await;
    app.refresh_pool().run_until_idle().await;
    sqlx::query("update connection set next_refresh_at = now() - interval '1 minute'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        feedwatch::refresh::schedule::enqueue_due(&app.pool),
        feedwatch::refresh::schedule::enqueue_due(&app.pool)
    );
    assert_eq!(
        first.unwrap() + second.unwrap(),
        1,
        "two replicas take the due refresh once; the one waiting for the user is skipped"
    );
    let pending: Vec<(Uuid, String)> =
        sqlx::query_as("select connection_id, trigger from job where state = 'available'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(pending, vec![(due.parse().unwrap(), "scheduled".to_string())]);
    let next: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select next_refresh_at from connection where id = $1")
            .bind(Uuid::parse_str(&due).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(next > chrono::Utc::now() + chrono::TimeDelta::hours(23), "the next one is a day later");
    assert_eq!(feedwatch::refresh::schedule::enqueue_due(&app.pool).await.unwrap(), 0);
    let _ = waiting;
}
