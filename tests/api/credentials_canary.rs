//! Credentials go through real refreshes, a success and a failure, with every module logging at
//! debug level, and appear nowhere: not in a response, a log line, a timeline event, a job, or
//! any database column but the sealed one.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{LogBuffer, TestApp};

/// Every row of every table as JSON text, the sealed credentials left out.
async fn database_text(pool: &sqlx::PgPool) -> String {
    let tables: Vec<String> =
        sqlx::query_scalar("select tablename::text from pg_tables where schemaname = 'public' order by 1")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut text = String::new();
    for table in tables {
        let rows: Vec<Value> = sqlx::query_scalar(&format!("select to_jsonb(t) - 'credentials_sealed' from {table} t"))
            .fetch_all(pool)
            .await
            .unwrap();
        for row in rows {
            text.push_str(&row.to_string());
            text.push('\n');
        }
    }
    text
}

fn assert_absent(haystack: &str, canaries: &[&str], place: &str) {
    for canary in canaries {
        assert!(!haystack.contains(canary), "a credential reached {place}");
        // bytea columns show as hex in JSON.
        assert!(!haystack.contains(&hex::encode(canary)), "a credential reached {place} (as hex)");
    }
}

#[tokio::test]
async fn the_canary_goes_through_a_successful_and_a_failed_refresh_and_appears_nowhere() {
    let debug = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter("debug")
        .with_writer(debug.clone())
        .finish();
    // The test's runtime is single-threaded: the service, its workers and the sandbox bank all
    // log through this subscriber.
    let _debug = tracing::subscriber::set_default(subscriber);
    let app = TestApp::spawn().await;
    let tenant = uuid::Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let bank = app.sandbox_institution("healthy").await;
    let user = format!("user-canary-{}", uuid::Uuid::new_v4().simple());
    let password = format!("password-canary-{}", uuid::Uuid::new_v4().simple());
    let pin = format!("pin-canary-{}", uuid::Uuid::new_v4().simple());
    let canaries = [user.as_str(), password.as_str(), pin.as_str()];
    let mut seen = String::new();

    // The sandbox bank ignores the user id, so this sign-in succeeds with the canary in it.
    let created = app
        .client
        .post(app.url("/v1/connections"))
        .bearer_auth(&key)
        .json(&json!({ "institution_id": bank, "display_name": "Canary",
                       "credentials": { "user_id": user, "password": "pass_good", "extra": { "pin": pin } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    seen.push_str(&format!("{:?}", created.headers()));
    let created: Value = created.json().await.unwrap();
    seen.push_str(&created.to_string());
    let id = created["id"].as_str().unwrap().to_owned();
    let pool = app.refresh_pool();
    assert_eq!(pool.run_until_idle().await, 1);
    let view: Value =
        app.admin(Method::GET, &format!("/v1/connections/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["state"], "healthy", "the refresh with the canary succeeded: {view}");

    // Now the canary is the password: the bank refuses the sign-in.
    let patched = app
        .client
        .patch(app.url(&format!("/v1/connections/{id}")))
        .bearer_auth(&key)
        .header("if-match", "*")
        .json(&json!({ "credentials": { "user_id": user, "password": password, "extra": { "pin": pin } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    seen.push_str(&patched.text().await.unwrap());
    assert_eq!(pool.run_until_idle().await, 1);
    let view: Value =
        app.admin(Method::GET, &format!("/v1/connections/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["state"], "needs_user_action", "the refresh with the canary failed: {view}");
    assert_eq!(view["health"]["error"]["code"], 103, "{view}");

    for path in [
        format!("/v1/connections/{id}"),
        format!("/v1/connections/{id}/events"),
        format!("/v1/connections/{id}/accounts"),
        format!("/v1/connections/{id}/refreshes"),
        format!("/v1/connections/{id}/diagnosis"),
        format!("/v1/connections/{id}/transactions/sync"),
        "/v1/connections".to_owned(),
    ] {
        let response = app.admin(Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        seen.push_str(&format!("{:?}", response.headers()));
        seen.push_str(&response.text().await.unwrap());
    }
    assert_absent(&seen, &canaries, "a response");

    let logs = debug.text();
    assert!(logs.contains("\"level\":\"DEBUG\""), "debug lines were captured");
    assert!(logs.contains(&id), "the refreshes' log lines were captured");
    assert_absent(&logs, &canaries, "a debug log line");
    assert_absent(&crate::support::all_logs(), &canaries, "a log line");
    assert_absent(&database_text(&app.pool).await, &canaries, "a database column other than the sealed one");
}
