//! API keys: roles, 401/403, creation shown once, listing, revocation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

#[tokio::test]
async fn requests_without_a_valid_key_are_401_problems() {
    let app = TestApp::spawn().await;
    let missing = app.anonymous(Method::GET, "/v1/api-keys").send().await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_problem(missing, 401, "missing_credentials").await;
    let well_formed_but_unknown = feedwatch::auth::NewKey::generate();
    let unknown = secrecy::ExposeSecret::expose_secret(&well_formed_but_unknown.text).to_owned();
    for header in ["Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer", &format!("Bearer {unknown}")] {
        let response = app.anonymous(Method::GET, "/v1/api-keys").header("authorization", header).send().await.unwrap();
        assert_problem(response, 401, "invalid_credentials").await;
    }
    // The right id with the wrong secret is as unknown as any other key.
    let forged = format!("{}{}", &app.admin_key[..app.admin_key.len() - 4], "0000");
    let response = app.anonymous(Method::GET, "/v1/api-keys").bearer_auth(forged).send().await.unwrap();
    assert_problem(response, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn only_admins_manage_keys() {
    let app = TestApp::spawn().await;
    let helpdesk = app.key("helpdesk", None).await;
    let tenant = app.key("tenant", Some(uuid::Uuid::new_v4())).await;
    for key in [&helpdesk, &tenant] {
        let list = app.anonymous(Method::GET, "/v1/api-keys").bearer_auth(key).send().await.unwrap();
        assert_problem(list, 403, "forbidden").await;
        let create = app
            .anonymous(Method::POST, "/v1/api-keys")
            .bearer_auth(key)
            .json(&json!({ "role": "admin" }))
            .send()
            .await
            .unwrap();
        assert_problem(create, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn a_created_key_works_is_listed_without_its_secret_and_stops_working_when_revoked() {
    let app = TestApp::spawn().await;
    let response = app
        .admin(Method::POST, "/v1/api-keys")
        .json(&json!({ "role": "admin", "label": "second admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/api-keys/{}", created["id"].as_str().unwrap()));

    let fetched = app.anonymous(Method::GET, &location).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(fetched.status(), 200, "the new key authenticates");
    let listed = app.admin(Method::GET, "/v1/api-keys").send().await.unwrap().text().await.unwrap();
    assert!(listed.contains("second admin"));
    assert!(!listed.contains(&secret[secret.len() - 64..]), "no secret in listings");

    let stored: Vec<u8> = sqlx::query_scalar("select secret_hash from api_key where label = 'second admin'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32, "only a digest is stored");

    assert_eq!(app.admin(Method::DELETE, &location).send().await.unwrap().status(), 204);
    assert_problem(app.admin(Method::GET, &location).send().await.unwrap(), 404, "not_found").await;
    let active = app.admin(Method::GET, "/v1/api-keys").send().await.unwrap().text().await.unwrap();
    assert!(!active.contains("second admin"), "revoked keys leave the default listing");
    let all = app.admin(Method::GET, "/v1/api-keys?include_revoked=true").send().await.unwrap().text().await.unwrap();
    assert!(all.contains("second admin") && all.contains("revoked_at\":\"20"), "and stay for the audit trail: {all}");
    let after = app.anonymous(Method::GET, "/v1/api-keys").bearer_auth(&secret).send().await.unwrap();
    assert_problem(after, 401, "invalid_credentials").await;
    assert_problem(app.admin(Method::DELETE, &location).send().await.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn an_admin_cannot_revoke_its_own_key() {
    let app = TestApp::spawn().await;
    let keys: Value = app.admin(Method::GET, "/v1/api-keys").send().await.unwrap().json().await.unwrap();
    let own = keys["items"][0]["id"].as_str().unwrap().to_owned();
    let response = app.admin(Method::DELETE, &format!("/v1/api-keys/{own}")).send().await.unwrap();
    assert_problem(response, 409, "cannot_revoke_own_key").await;
}

#[tokio::test]
async fn tenant_keys_need_a_tenant_and_other_keys_refuse_one() {
    let app = TestApp::spawn().await;
    let cases = [json!({ "role": "tenant" }), json!({ "role": "helpdesk", "tenant_id": uuid::Uuid::new_v4() })];
    for body in cases {
        let response = app.admin(Method::POST, "/v1/api-keys").json(&body).send().await.unwrap();
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "tenant_id");
    }
}

#[tokio::test]
async fn key_listing_pages_visit_every_key_once() {
    let app = TestApp::spawn().await;
    for _ in 0..6 {
        app.key("helpdesk", None).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/api-keys?limit=2&cursor={cursor}"),
            None => "/v1/api-keys?limit=2".to_owned(),
        };
        let page: Value = app.admin(Method::GET, &path).send().await.unwrap().json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|item| item["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len(), 7, "bootstrap admin + 6");
    assert_eq!(unique.len(), 7);
}
