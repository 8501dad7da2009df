//! Bank incidents: detected from many failing connections (once, however many worker pools
//! race), slowing their retries, resolving after recovery; declared and resolved by hand; the
//! institution's success rates; the diagnosis ladder over HTTP.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, assert_problem, serve_sandbox};
use feedwatch::incident::Rules;
use feedwatch::sandbox::SandboxConfig;

async fn get(app: &TestApp, key: &str, path: &str) -> Value {
    let response = app.anonymous(Method::GET, path).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// Pretends the retries' time has come: every waiting refresh becomes due now.
async fn time_passes(app: &TestApp) {
    sqlx::query("update job set run_at = now() where state = 'available'").execute(&app.pool).await.unwrap();
}

async fn pending_run_at(app: &TestApp, connection: &str) -> DateTime<Utc> {
    sqlx::query_scalar("select run_at from job where connection_id = $1::uuid and state = 'available'")
        .bind(connection)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn rules() -> Rules {
    Rules {
        window: TimeDelta::minutes(15),
        min_failed_connections: 5,
        min_failed_share: 0.5,
        retry_every: std::time::Duration::from_secs(30 * 60),
        resolve_after_successes: 3,
    }
}

#[tokio::test]
async fn an_outage_of_the_flaky_bank_opens_one_incident_slows_retries_and_resolves_after_recovery() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let flaky = app.sandbox_institution("flaky").await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            app.connection(&tenant, flaky, &format!("Card {n}"), "pass_good").await["id"].as_str().unwrap().to_owned(),
        );
    }
    let down = serve_sandbox(SandboxConfig { flaky_rate: 1.0, ..SandboxConfig::default() }).await;
    let (first, second) = (app.refresh_pool_with(&down, rules()), app.refresh_pool_with(&down, rules()));
    // Two worker pools race through the outage: detection must still open one incident.
    tokio::join!(first.run_until_idle(), second.run_until_idle());
    time_passes(&app).await;
    tokio::join!(first.run_until_idle(), second.run_until_idle());

    let open: i64 = sqlx::query_scalar("select count(*) from incident where institution_id = $1 and state = 'open'")
        .bind(flaky)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(open, 1, "exactly one open incident");
    let incidents = get(&app, &tenant, "/v1/incidents?state=open").await;
    let incident = &incidents["items"][0];
    assert_eq!(incident["source"], "detected");
    assert_eq!(incident["institution"]["id"], flaky.to_string());
    assert!(incident["failed_connections"].as_i64().unwrap() >= 5, "{incident}");
    let slowed = Utc::now() + TimeDelta::minutes(29);
    for id in &ids {
        let connection = get(&app, &tenant, &format!("/v1/connections/{id}")).await;
        assert_eq!(connection["state"], "bank_issue", "{connection}");
        assert_eq!(connection["health"]["error"]["action"], "wait_until", "{connection}");
        let wait: DateTime<Utc> = serde_json::from_value(connection["health"]["error"]["wait_until"].clone()).unwrap();
        assert!(wait > slowed, "users are told when we retry: {connection}");
        assert_eq!(connection["health"]["incident"]["id"], incident["id"]);
        assert!(pending_run_at(&app, id).await > slowed, "no retry hammers the bank during the incident");
    }
    let institution = get(&app, &app.admin_key, &format!("/v1/institutions/{flaky}")).await;
    assert_eq!(institution["health"]["open_incident"]["id"], incident["id"]);
    assert_eq!(institution["health"]["last_hour"]["successes"], 0, "{institution}");
    assert!(institution["health"]["last_hour"]["attempts"].as_i64().unwrap() >= 10);
    let diagnosis = get(&app, &tenant, &format!("/v1/connections/{}/diagnosis", ids[0])).await;
    assert_eq!(diagnosis["answer"]["check"], "institution_incident", "{diagnosis}");

    // The bank recovers: the next refreshes succeed, the incident closes, and the connections
    // still waiting it out are refreshed at once.
    let up = serve_sandbox(SandboxConfig { flaky_rate: 0.0, ..SandboxConfig::default() }).await;
    time_passes(&app).await;
    app.refresh_pool_with(&up, rules()).run_until_idle().await;
    let resolved = get(&app, &tenant, &format!("/v1/incidents/{}", incident["id"].as_str().unwrap())).await;
    assert_eq!(resolved["state"], "resolved", "{resolved}");
    assert!(resolved["resolved_at"].is_string() && resolved["resolved_by"].is_null());
    for id in &ids {
        let connection = get(&app, &tenant, &format!("/v1/connections/{id}")).await;
        assert_eq!(connection["state"], "healthy", "{connection}");
        assert!(connection["health"]["incident"].is_null());
    }
    assert_eq!(get(&app, &tenant, "/v1/incidents?state=open").await["items"], json!([]));
    let summary = get(&app, &app.admin_key, "/v1/health/summary").await;
    assert_eq!(summary["open_incidents"], 0);
}

#[tokio::test]
async fn user_side_failures_never_open_an_incident() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let bank = app.sandbox_institution("healthy").await;
    for n in 0..8 {
        app.connection(&tenant, bank, &format!("Card {n}"), "error_103").await;
    }
    app.refresh_pool_with(&app.sandbox_url(), rules()).run_until_idle().await;
    let incidents = get(&app, &app.admin_key, "/v1/incidents").await;
    assert_eq!(incidents["items"], json!([]), "a wave of changed passwords is not a bank outage");
}

#[tokio::test]
async fn helpdesk_declares_and_resolves_an_incident_by_hand() {
    let app = TestApp::spawn().await;
    let helpdesk = app.key("helpdesk", None).await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let bank = app.sandbox_institution("healthy").await;
    let until = Utc::now() + TimeDelta::hours(2);
    let declare = json!({ "institution_id": bank, "title": "Bank down for maintenance", "message": "Back by 06:00 UTC.",
                          "wait_until": until });
    let refused =
        app.anonymous(Method::POST, "/v1/incidents").bearer_auth(&tenant).json(&declare).send().await.unwrap();
    assert_problem(refused, 403, "forbidden").await;
    let declared =
        app.anonymous(Method::POST, "/v1/incidents").bearer_auth(&helpdesk).json(&declare).send().await.unwrap();
    assert_eq!(declared.status(), 201);
    let location = declared.headers()["location"].to_str().unwrap().to_owned();
    let incident: Value = declared.json().await.unwrap();
    assert_eq!(location, format!("/v1/incidents/{}", incident["id"].as_str().unwrap()));
    assert_eq!(incident["source"], "declared");
    let again =
        app.anonymous(Method::POST, "/v1/incidents").bearer_auth(&helpdesk).json(&declare).send().await.unwrap();
    assert_problem(again, 409, "incident_already_open").await;

    // A bank-side failure during a declared incident waits until the declared time.
    let id = app.connection(&tenant, bank, "Checking", "error_102").await["id"].as_str().unwrap().to_owned();
    app.refresh_pool().run_until_idle().await;
    let connection = get(&app, &tenant, &format!("/v1/connections/{id}")).await;
    assert_eq!(connection["state"], "bank_issue");
    assert_eq!(connection["health"]["error"]["action"], "wait_until");
    assert!(pending_run_at(&app, &id).await >= until - TimeDelta::seconds(1), "retried no earlier than declared");

    let path = format!("/v1/incidents/{}", incident["id"].as_str().unwrap());
    let reopen = app.anonymous(Method::PATCH, &path).bearer_auth(&helpdesk).json(&json!({ "state": "open" })).send();
    assert_problem(reopen.await.unwrap(), 422, "validation_failed").await;
    let resolve = json!({ "state": "resolved", "resolution": "The bank confirmed it is back." });
    let resolved = app.anonymous(Method::PATCH, &path).bearer_auth(&helpdesk).json(&resolve).send().await.unwrap();
    assert_eq!(resolved.status(), 200);
    let resolved: Value = resolved.json().await.unwrap();
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["resolution"], "The bank confirmed it is back.");
    assert!(pending_run_at(&app, &id).await <= Utc::now(), "waiting refreshes run as soon as it is resolved");
    let twice = app.anonymous(Method::PATCH, &path).bearer_auth(&helpdesk).json(&resolve).send().await.unwrap();
    assert_problem(twice, 409, "incident_resolved").await;
    let missing = app.admin(Method::GET, &format!("/v1/incidents/{}", Uuid::new_v4())).send().await.unwrap();
    assert_problem(missing, 404, "not_found").await;
}

#[tokio::test]
async fn diagnosis_finds_the_changed_password_first() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let bank = app.sandbox_institution("healthy").await;
    let id = app.connection(&tenant, bank, "Checking", "error_103").await["id"].as_str().unwrap().to_owned();
    app.refresh_pool().run_until_idle().await;
    let diagnosis = get(&app, &tenant, &format!("/v1/connections/{id}/diagnosis")).await;
    assert_eq!(diagnosis["answer"]["check"], "credentials", "{diagnosis}");
    assert_eq!(diagnosis["answer"]["action"], "reconnect");
    let checks: Vec<&str> =
        diagnosis["findings"].as_array().unwrap().iter().map(|f| f["check"].as_str().unwrap()).collect();
    assert_eq!(checks[0], "institution_incident", "the ladder starts with the bank");
    assert_eq!(diagnosis["findings"][0]["verdict"], "pass");
    let other = app.key("tenant", Some(Uuid::new_v4())).await;
    let hidden = app.anonymous(Method::GET, &format!("/v1/connections/{id}/diagnosis")).bearer_auth(&other).send();
    assert_problem(hidden.await.unwrap(), 404, "not_found").await;

    let healthy = app.connection(&tenant, bank, "Savings", "pass_good").await["id"].as_str().unwrap().to_owned();
    app.refresh_pool().run_until_idle().await;
    let fine = get(&app, &tenant, &format!("/v1/connections/{healthy}/diagnosis")).await;
    assert!(fine["answer"].is_null(), "{fine}");
}
