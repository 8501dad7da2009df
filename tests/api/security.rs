//! Hardening every route shares: failed-authentication throttling, input hygiene, and the
//! security headers.

use std::time::Duration;

use feedwatch::auth::throttle::ThrottleSettings;
use reqwest::Method;

use crate::support::{Options, TestApp, assert_problem, log_lines_with};

fn wrong_key() -> String {
    secrecy::ExposeSecret::expose_secret(&feedwatch::auth::NewKey::generate().text).to_owned()
}

/// The id part of a key's text, as the logs spell a UUID.
fn key_id(key: &str) -> String {
    feedwatch::auth::PresentedKey::parse(key).unwrap().id.to_string()
}

#[tokio::test]
async fn a_burst_of_wrong_keys_is_throttled_with_retry_after_and_logged_without_the_key() {
    let throttle = ThrottleSettings { burst: 3, refill: Duration::from_secs(60) };
    let app = TestApp::spawn_with(Options { auth_throttle: throttle, ..Options::default() }).await;
    let guesses: Vec<String> = (0..3).map(|_| wrong_key()).collect();
    for guess in &guesses {
        let response = app.client.get(app.url("/v1/connections")).bearer_auth(guess).send().await.unwrap();
        assert_problem(response, 401, "invalid_credentials").await;
    }
    let next = wrong_key();
    let response = app.client.get(app.url("/v1/connections")).bearer_auth(&next).send().await.unwrap();
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let problem = assert_problem(response, 429, "too_many_failed_attempts").await;
    assert_eq!(problem["retry_after"], retry_after);
    // While throttled, keys are not even looked at, so a guess cannot succeed either.
    let response = app.admin(Method::GET, "/v1/connections").send().await.unwrap();
    assert_problem(response, 429, "too_many_failed_attempts").await;
    // Routes that need no key stay open.
    assert_eq!(app.anonymous(Method::GET, "/healthz").send().await.unwrap().status(), 200);

    let logged = log_lines_with("authentication failed");
    let ours: Vec<&String> =
        logged.iter().filter(|line| guesses.iter().any(|guess| line.contains(&key_id(guess)))).collect();
    assert_eq!(ours.len(), 3, "each failed attempt is logged once: {logged:?}");
    for line in &ours {
        assert!(line.contains("127.0.0.1"), "the client's address is logged: {line}");
    }
    for guess in guesses.iter().chain([&next]) {
        let secret = guess.rsplit('_').next().unwrap();
        assert!(crate::support::all_logs().find(secret).is_none(), "a key's secret reached the logs");
    }
}

#[tokio::test]
async fn a_missing_key_counts_as_a_failed_attempt() {
    let throttle = ThrottleSettings { burst: 2, refill: Duration::from_secs(60) };
    let app = TestApp::spawn_with(Options { auth_throttle: throttle, ..Options::default() }).await;
    for _ in 0..2 {
        assert_problem(app.anonymous(Method::GET, "/v1/connections").send().await.unwrap(), 401, "missing_credentials")
            .await;
    }
    let response = app.anonymous(Method::GET, "/v1/connections").send().await.unwrap();
    assert_problem(response, 429, "too_many_failed_attempts").await;
}

#[tokio::test]
async fn valid_keys_never_spend_the_burst() {
    let throttle = ThrottleSettings { burst: 2, refill: Duration::from_secs(60) };
    let app = TestApp::spawn_with(Options { auth_throttle: throttle, ..Options::default() }).await;
    for _ in 0..20 {
        assert_eq!(app.admin(Method::GET, "/v1/connections").send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn request_ids_that_are_too_long_or_malformed_are_replaced() {
    let app = TestApp::spawn().await;
    let echoed = |response: &reqwest::Response| response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let kept = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let response = app.anonymous(Method::GET, "/healthz").header("x-request-id", kept).send().await.unwrap();
    assert_eq!(echoed(&response), kept);
    for refused in ["x".repeat(60_000), "x".repeat(129), "two words".to_owned(), "tab\there".to_owned()] {
        let response = app.anonymous(Method::GET, "/v1/nowhere").header("x-request-id", &refused).send().await.unwrap();
        let id = echoed(&response);
        assert!(id != refused && uuid::Uuid::parse_str(&id).is_ok(), "a generated id replaced {refused:.20}: {id}");
        let problem = assert_problem(response, 404, "route_not_found").await;
        assert_eq!(problem["request_id"], id);
    }
    assert!(crate::support::all_logs().find(&"x".repeat(129)).is_none(), "an oversize id reached the logs");
}

#[tokio::test]
async fn every_write_needs_a_json_content_type() {
    let app = TestApp::spawn().await;
    let institution = app.sandbox_institution("healthy").await;
    let tenant = uuid::Uuid::new_v4();
    let connection = serde_json::json!({
        "tenant_id": tenant, "institution_id": institution, "display_name": "x",
        "credentials": { "user_id": "user_good", "password": "pass_good" }
    })
    .to_string();
    let webhook = serde_json::json!({ "url": "http://127.0.0.1:9/hook", "events": ["incident.opened"] }).to_string();
    for (path, body) in [("/v1/connections", &connection), ("/v1/webhooks", &webhook)] {
        for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
            let mut request = app.admin(Method::POST, path).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            assert_problem(request.send().await.unwrap(), 415, "unsupported_media_type").await;
        }
    }
    let listed: serde_json::Value =
        app.admin(Method::GET, "/v1/connections").send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "nothing was created: {listed}");
}

#[tokio::test]
async fn an_array_is_not_an_object() {
    let app = TestApp::spawn().await;
    let institution = app.sandbox_institution("healthy").await;
    let as_array = serde_json::json!([uuid::Uuid::new_v4(), institution, "x", { "user_id": "user_good", "password": "pass_good" }]);
    for (method, path) in
        [(Method::POST, "/v1/connections"), (Method::POST, "/v1/api-keys"), (Method::POST, "/v1/webhooks")]
    {
        let response = app.admin(method, path).json(&as_array).send().await.unwrap();
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    }
}

#[tokio::test]
async fn query_strings_that_are_not_utf8_are_refused() {
    let app = TestApp::spawn().await;
    for path in ["/v1/institutions?q=%FF%FE", "/v1/connections?q=a%C3", "/v1/errors?q=%80"] {
        let response = app.admin(Method::GET, path).send().await.unwrap();
        let problem = assert_problem(response, 400, "invalid_query_parameter").await;
        assert_eq!(problem["errors"][0]["field"], "q", "{problem}");
    }
    let fine = app.admin(Method::GET, "/v1/institutions?q=caf%C3%A9+%25").send().await.unwrap();
    assert_eq!(fine.status(), 200);
}

#[tokio::test]
async fn a_key_that_may_not_call_an_operation_hears_403_before_any_complaint_about_its_body() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(uuid::Uuid::new_v4())).await;
    let helpdesk = app.key("helpdesk", None).await;
    let nonsense = serde_json::json!({ "no such field": [1, 2, 3] });
    let id = uuid::Uuid::new_v4();
    let cases = [
        (&tenant, Method::POST, "/v1/api-keys".to_owned()),
        (&tenant, Method::POST, "/v1/institutions".to_owned()),
        (&tenant, Method::PUT, format!("/v1/institutions/{id}")),
        (&tenant, Method::POST, "/v1/incidents".to_owned()),
        (&tenant, Method::PATCH, format!("/v1/incidents/{id}")),
        (&tenant, Method::POST, "/v1/refreshes".to_owned()),
        (&tenant, Method::PUT, "/v1/errors/105".to_owned()),
        (&helpdesk, Method::POST, "/v1/connections".to_owned()),
        (&helpdesk, Method::PATCH, format!("/v1/connections/{id}")),
        (&helpdesk, Method::PATCH, format!("/v1/connections/{id}/accounts/{id}")),
        (&helpdesk, Method::POST, "/v1/api-keys".to_owned()),
    ];
    for (key, method, path) in cases {
        for request in [
            app.client.request(method.clone(), app.url(&path)).bearer_auth(key).json(&nonsense),
            app.client.request(method.clone(), app.url(&path)).bearer_auth(key).body("not json"),
        ] {
            assert_problem(request.send().await.unwrap(), 403, "forbidden").await;
        }
    }
}

#[tokio::test]
async fn the_document_excludes_exactly_the_text_the_api_refuses() {
    let app = TestApp::spawn().await;
    let document: serde_json::Value =
        app.anonymous(Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
    let label = &document["components"]["schemas"]["CreateApiKey"]["oneOf"][0]["properties"]["label"];
    assert_eq!(label["pattern"], feedwatch::http::schema::NUL_FREE, "{label}");
    // `^[^\x00]*$`: a NUL is outside it and refused; every other character is inside and accepted.
    let nul = app.admin(Method::POST, "/v1/api-keys").json(&serde_json::json!({ "role": "admin", "label": "a\u{0}b" }));
    assert_problem(nul.send().await.unwrap(), 422, "validation_failed").await;
    for label in ["bell\u{7}", "tab\there", "line\nbreak", "é"] {
        let response =
            app.admin(Method::POST, "/v1/api-keys").json(&serde_json::json!({ "role": "admin", "label": label }));
        assert_eq!(response.send().await.unwrap().status(), 201, "{label:?} matches the pattern, so it is accepted");
    }
}

#[tokio::test]
async fn every_response_forbids_sniffing_and_framing_and_secrets_are_never_stored() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/docs/", "/openapi.json", "/v1/nowhere", "/v1/connections"] {
        let response = app.anonymous(Method::GET, path).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{path}");
    }
    let created =
        app.admin(Method::POST, "/v1/api-keys").json(&serde_json::json!({ "role": "helpdesk" })).send().await.unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let hook = serde_json::json!({ "url": "http://127.0.0.1:9/hook", "events": ["incident.opened"] });
    let created =
        app.admin(Method::POST, "/v1/webhooks").header("idempotency-key", "k1").json(&hook).send().await.unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let id = created.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let replayed =
        app.admin(Method::POST, "/v1/webhooks").header("idempotency-key", "k1").json(&hook).send().await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.headers()["cache-control"], "no-store");
    let rotated = app.admin(Method::POST, &format!("/v1/webhooks/{id}/rotate-secret")).send().await.unwrap();
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.headers()["cache-control"], "no-store");
}

/// What schemathesis' use-after-free check would prove, were it not off (tests/contract/
/// schemathesis.toml says why): a deleted webhook and a purged connection are gone for good.
#[tokio::test]
async fn deleted_resources_answer_404_afterwards() {
    let app = TestApp::spawn().await;
    let hook = serde_json::json!({ "url": "http://127.0.0.1:9/hook", "events": ["incident.opened"] });
    let created: serde_json::Value =
        app.admin(Method::POST, "/v1/webhooks").json(&hook).send().await.unwrap().json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(app.admin(Method::DELETE, &format!("/v1/webhooks/{id}")).send().await.unwrap().status(), 204);
    for path in [format!("/v1/webhooks/{id}"), format!("/v1/webhooks/{id}/deliveries")] {
        assert_problem(app.admin(Method::GET, &path).send().await.unwrap(), 404, "not_found").await;
    }
    let institution = app.sandbox_institution("healthy").await;
    let tenant = app.key("tenant", Some(uuid::Uuid::new_v4())).await;
    let connection = app.connection(&tenant, institution, "Purged", "pass_good").await;
    let id = connection["id"].as_str().unwrap().to_owned();
    let purge = app.admin(Method::DELETE, &format!("/v1/connections/{id}?purge=true")).header("if-match", "*");
    assert_eq!(purge.send().await.unwrap().status(), 204);
    for path in [format!("/v1/connections/{id}"), format!("/v1/connections/{id}/events")] {
        assert_problem(app.admin(Method::GET, &path).send().await.unwrap(), 404, "not_found").await;
    }
}
