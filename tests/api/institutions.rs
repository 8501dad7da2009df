//! Institutions: searched by name, short name and other names, and managed by admins only.

use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::tenant;
use crate::support::{TestApp, assert_problem};

#[tokio::test]
async fn institutions_are_searchable_and_admin_managed() {
    let app = TestApp::spawn().await;
    let bank = app.institution("search-bank").await;
    let alice = tenant(&app).await;
    let found = app.get_json(&alice.key, "/v1/institutions?q=search").await;
    assert_eq!(found["items"][0]["id"], bank.to_string());
    let none = app.get_json(&alice.key, "/v1/institutions?q=%25").await;
    assert!(none["items"].as_array().unwrap().is_empty(), "% is literal");
    app.connection(&alice.key, bank, "Counted", "p").await;
    let detail = app.get_json(&alice.key, &format!("/v1/institutions/{bank}")).await;
    assert_eq!(detail["connections_by_state"]["syncing"], 1);
    let create = app
        .anonymous(Method::POST, "/v1/institutions")
        .bearer_auth(&alice.key)
        .json(&json!({ "slug": "x", "name": "X", "provider": "sandbox", "ofx": {} }))
        .send()
        .await
        .unwrap();
    assert_problem(create, 403, "forbidden").await;
    let duplicate = app
        .admin(Method::POST, "/v1/institutions")
        .json(&json!({ "slug": "search-bank", "name": "X", "provider": "sandbox", "ofx": {} }))
        .send()
        .await
        .unwrap();
    assert_problem(duplicate, 409, "slug_taken").await;
    let no_url = app
        .admin(Method::POST, "/v1/institutions")
        .json(&json!({ "slug": "ofx-bank", "name": "OFX", "provider": "ofx", "ofx": { "org": "O", "fid": "1" } }))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(no_url, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "ofx.url");
    let replaced = app
        .admin(Method::PUT, &format!("/v1/institutions/{bank}"))
        .json(&json!({ "slug": "search-bank", "name": "Renamed Bank", "provider": "ofx", "ofx": { "url": "https://ofx.example/ofx", "version": 220 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(replaced["ofx"]["version"], 220);
}
