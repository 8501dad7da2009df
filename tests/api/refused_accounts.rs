//! Error 709: the bank refuses one account's statements while the others refresh. The account
//! says so in its state, the connection in its health, and the diagnosis names it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestApp;

async fn get(app: &TestApp, path: &str) -> Value {
    let response = app.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_account_the_bank_refuses_shows_in_its_state_the_connections_health_and_the_diagnosis() {
    let app = TestApp::spawn().await;
    let tenant = uuid::Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let healthy = app.sandbox_institution("healthy").await;
    // The sandbox refuses the savings statement with OFX 2005 (709) and serves the others.
    let connection = app.connection(&key, healthy, "Refused", "error_709").await;
    let id = connection["id"].as_str().unwrap().to_owned();
    let pool = app.refresh_pool();
    assert_eq!(pool.run_until_idle().await, 1);

    let accounts = get(&app, &format!("/v1/connections/{id}/accounts")).await;
    let states: Vec<(&str, &str, &Value)> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|account| (account["kind"].as_str().unwrap(), account["state"].as_str().unwrap(), &account["error_code"]))
        .collect();
    assert!(states.contains(&("savings", "refused", &json!(709))), "{states:?}");
    assert!(
        states.iter().filter(|(kind, ..)| *kind != "savings").all(|(_, state, _)| *state == "active"),
        "{states:?}"
    );

    let view = get(&app, &format!("/v1/connections/{id}")).await;
    assert_eq!(view["state"], "degraded", "{view}");
    assert_eq!(view["health"]["error"]["code"], 709, "{view}");

    let diagnosis = get(&app, &format!("/v1/connections/{id}/diagnosis")).await;
    let answer = &diagnosis["answer"];
    assert_eq!(answer["check"], "accounts", "{diagnosis}");
    assert_eq!(answer["action"], "fix_at_bank", "{diagnosis}");
    assert!(answer["evidence"].as_str().unwrap().contains("709"), "{diagnosis}");
    let events = get(&app, &format!("/v1/connections/{id}/events")).await;
    let changed = events["items"].as_array().unwrap().iter().find(|event| event["kind"] == "connection.state_changed");
    assert_eq!(changed.map(|event| &event["detail"]["to"]), Some(&json!("degraded")), "{events}");

    // The bank enables the account: the next refresh clears it all.
    let patched = app
        .anonymous(Method::PATCH, &format!("/v1/connections/{id}"))
        .bearer_auth(&key)
        .header("if-match", "*")
        .json(&json!({ "credentials": { "user_id": "user_good", "password": "pass_good" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(pool.run_until_idle().await, 1);
    let view = get(&app, &format!("/v1/connections/{id}")).await;
    assert_eq!(view["state"], "healthy", "{view}");
    assert!(view["health"]["error"].is_null(), "{view}");
    let accounts = get(&app, &format!("/v1/connections/{id}/accounts")).await;
    assert!(accounts.as_array().unwrap().iter().all(|account| account["state"] == "active"), "{accounts}");
}
