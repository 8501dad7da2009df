//! Sealed credentials: they never leave sealed (responses, logs, the database's plain columns),
//! new ones clear the sign-in error they fix, and rotating the sealing key reseals them all.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::connections::{id_of, tenant};
use crate::support::{TestApp, all_logs, json_of};

#[tokio::test]
async fn credentials_never_leave_sealed() {
    let app = TestApp::spawn().await;
    let bank = app.institution("secret-bank").await;
    let alice = tenant(&app).await;
    let canary = format!("Canary-{}", Uuid::new_v4().simple());
    let user_canary = format!("user-{}", Uuid::new_v4().simple());
    let mut seen = String::new();
    let mut record = |response_text: String| seen.push_str(&response_text);

    let response = app
        .anonymous(Method::POST, "/v1/connections")
        .bearer_auth(&alice.key)
        .json(&json!({ "institution_id": bank, "display_name": "Books",
                       "credentials": { "user_id": user_canary, "password": canary, "extra": { "pin": canary } } }))
        .send()
        .await
        .unwrap();
    record(format!("{:?}", response.headers()));
    let created: Value = response.json().await.unwrap();
    record(created.to_string());
    let id = id_of(&created);
    let path = format!("/v1/connections/{id}");
    let requests = [
        (Method::GET, path.clone(), None, None),
        (
            Method::PATCH,
            path.clone(),
            Some("\"v1\""),
            Some(json!({ "credentials": { "user_id": user_canary, "password": canary } })),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some("\"v1\""),
            Some(json!({ "credentials": { "user_id": user_canary, "password": canary } })),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some("\"v2\""),
            Some(json!({ "credentials": { "user_id": "", "password": canary } })),
        ),
        (Method::PATCH, path.clone(), Some("\"v2\""), Some(json!({ "credentials": { "password": canary } }))),
        (
            Method::PATCH,
            path.clone(),
            None,
            Some(json!({ "credentials": { "user_id": user_canary, "password": canary } })),
        ),
        (
            Method::POST,
            "/v1/connections".to_owned(),
            None,
            Some(json!({ "institution_id": Uuid::new_v4(), "display_name": "x",
            "credentials": { "user_id": user_canary, "password": canary } })),
        ),
        (Method::GET, format!("{path}/events"), None, None),
        (Method::GET, format!("{path}/accounts"), None, None),
        (Method::GET, "/v1/connections".to_owned(), None, None),
    ];
    for (method, path, if_match, body) in requests {
        let mut request = app.anonymous(method, &path).bearer_auth(&alice.key);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        record(format!("{:?}", response.headers()));
        record(response.text().await.unwrap());
    }
    assert!(!seen.contains(&canary), "a response carried the password");
    assert!(!seen.contains(&user_canary), "a response carried the user id");
    let logs = all_logs();
    assert!(!logs.contains(&canary) && !logs.contains(&user_canary), "a log line carried a credential");
    let events: Vec<Value> =
        sqlx::query_scalar("select detail from connection_event").fetch_all(&app.pool).await.unwrap();
    assert!(!events.iter().any(|detail| detail.to_string().contains(&canary)));
    let stored: Vec<u8> = sqlx::query_scalar("select credentials_sealed from connection where id = $1")
        .bind(Uuid::parse_str(&id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!stored.windows(canary.len()).any(|window| window == canary.as_bytes()), "stored sealed, not plain");
    let opened = crate::support::sealer()
        .open(id.parse().unwrap(), "test", &stored)
        .expect("the stored blob opens with the configured key");
    assert_eq!(opened.password, canary);
}

#[tokio::test]
async fn new_credentials_clear_a_sign_in_error() {
    let app = TestApp::spawn().await;
    let bank = app.institution("fix-bank").await;
    let alice = tenant(&app).await;
    let id = id_of(&app.connection(&alice.key, bank, "Locked out", "old").await);
    sqlx::query("update connection set state = 'needs_user_action', error_code = 103, error_raw = 'ofx:15500', failure_streak = 3 where id = $1")
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let before = app.get_json(&alice.key, &format!("/v1/connections/{id}")).await;
    assert_eq!(before["health"]["error"]["code"], 103);
    assert_eq!(before["health"]["error"]["action"], "reconnect");
    assert!(before["health"]["error"]["user_message"].as_str().unwrap().len() > 20);
    assert!(before["health"]["next_refresh_at"].is_null(), "nothing refreshes on its own while the user must act");
    let response = app
        .anonymous(Method::PATCH, &format!("/v1/connections/{id}"))
        .bearer_auth(&alice.key)
        .header("if-match", "*")
        .json(&json!({ "credentials": { "user_id": "user_good", "password": "new" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let after: Value = response.json().await.unwrap();
    assert_eq!(after["state"], "syncing");
    assert!(after["health"]["error"].is_null());
    assert_eq!(after["health"]["failure_streak"], 3, "only a successful refresh ends the streak");
    assert!(after["health"]["next_refresh_at"].is_string(), "the schedule resumes with new credentials: {after}");
    let paused = json_of(
        app.anonymous(Method::PATCH, &format!("/v1/connections/{id}"))
            .bearer_auth(&alice.key)
            .header("if-match", "*")
            .json(&json!({ "paused": true })),
    )
    .await;
    assert!(paused["health"]["next_refresh_at"].is_null(), "a paused connection has no next refresh: {paused}");
}

#[tokio::test]
async fn rotating_credentials_keys_reseals_everything_under_the_new_key() {
    let app = TestApp::spawn().await;
    let bank = app.institution("rotate-bank").await;
    let alice = tenant(&app).await;
    let id: Uuid = id_of(&app.connection(&alice.key, bank, "Rotated", "secret-before").await).parse().unwrap();
    let (rotated, only_new) = crate::support::rotated_sealers();
    let resealed = feedwatch::app::reseal_all(&app.pool, &rotated).await.unwrap();
    assert_eq!(resealed, 1);
    let (blob, key_id): (Vec<u8>, String) =
        sqlx::query_as("select credentials_sealed, credentials_key_id from connection where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(key_id, "k2");
    assert_eq!(only_new.open(id, &key_id, &blob).unwrap().password, "secret-before", "the old key is no longer needed");
    assert_eq!(feedwatch::app::reseal_all(&app.pool, &rotated).await.unwrap(), 0, "a second run has nothing to do");
}
