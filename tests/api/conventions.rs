//! Conventions every route shares: problem+json errors, request ids, limits, docs.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Options, TestApp, assert_problem, log_lines_with};

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let response = app
        .admin(Method::POST, "/v1/api-keys")
        .header("content-type", "application/json")
        .body("{\"role\": ")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "malformed_json").await;
}

#[tokio::test]
async fn wrong_types_missing_and_unknown_fields_name_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "role": 7 }), "role"),
        (json!({ "role": "superuser" }), "role"),
        (json!({ "label": "no role" }), "role"),
        (json!({ "role": "admin", "colour": "blue" }), "colour"),
        (json!({ "role": "tenant", "tenant_id": "not-a-uuid" }), "tenant_id"),
    ];
    for (body, field) in cases {
        let response = app.admin(Method::POST, "/v1/api-keys").json(&body).send().await.unwrap();
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_problem() {
    let app = TestApp::spawn().await;
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let mut request = app.admin(Method::POST, "/v1/api-keys").body("role=admin");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        assert_problem(request.send().await.unwrap(), 415, "unsupported_media_type").await;
    }
}

#[tokio::test]
async fn an_oversize_body_is_a_413_problem() {
    let app = TestApp::spawn_with(Options { max_body_bytes: 1024, ..Options::default() }).await;
    let label = "x".repeat(4096);
    let response =
        app.admin(Method::POST, "/v1/api-keys").json(&json!({ "role": "admin", "label": label })).send().await.unwrap();
    assert_problem(response, 413, "payload_too_large").await;
    let keys: Value = app.admin(Method::GET, "/v1/api-keys").send().await.unwrap().json().await.unwrap();
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "nothing was created: {keys}");
}

#[tokio::test]
async fn bad_path_and_query_parameters_are_400_problems() {
    let app = TestApp::spawn().await;
    let response = app.admin(Method::GET, "/v1/api-keys/not-a-uuid").send().await.unwrap();
    assert_problem(response, 400, "invalid_path_parameter").await;
    for query in ["limit=-1", "limit=abc", "limit=0", "limit=100000"] {
        let response = app.admin(Method::GET, &format!("/v1/api-keys?{query}")).send().await.unwrap();
        let problem = assert_problem(response, 400, "invalid_query_parameter").await;
        assert_eq!(problem["errors"][0]["field"], "limit", "{query}: {problem}");
    }
    let response = app.admin(Method::GET, "/v1/api-keys?cursor=garbage").send().await.unwrap();
    assert_problem(response, 400, "invalid_cursor").await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    assert_problem(app.anonymous(Method::GET, "/v1/nothing-here").send().await.unwrap(), 404, "route_not_found").await;
    let response = app.anonymous(Method::PUT, "/healthz").send().await.unwrap();
    assert!(response.headers().contains_key("allow") || response.status() == 405);
    assert_problem(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn request_ids_are_echoed_generated_and_logged() {
    let app = TestApp::spawn().await;
    let given = format!("trace-{}", uuid::Uuid::new_v4());
    let response = app
        .admin(Method::POST, "/v1/api-keys")
        .header("x-request-id", &given)
        .json(&json!({ "role": "helpdesk", "label": "request id test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], given.as_str());
    let lines = log_lines_with(&given);
    assert!(
        lines.iter().any(|line| line.contains("api key created")),
        "the handler's log line carries the id: {lines:?}"
    );

    let response = app.anonymous(Method::GET, "/healthz").send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::try_parse(&generated).is_ok(), "generated id {generated}");

    let response = app.anonymous(Method::GET, "/missing").header("x-request-id", &given).send().await.unwrap();
    let problem = assert_problem(response, 404, "route_not_found").await;
    assert_eq!(problem["request_id"], given.as_str());
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_a_503_problem() {
    let app = TestApp::spawn_with(Options { request_timeout: Duration::from_millis(200), ..Options::default() }).await;
    // Listing connections waits on this lock with no limit of its own, so only the request's
    // limit can end it. (Readiness, used here before, has its own half-second limit on the
    // database; on a machine busy enough to hold the request past both, that one answered.)
    let mut blocker = feedwatch::database::begin(&app.pool).await.unwrap();
    sqlx::query("lock table connection in access exclusive mode").execute(&mut *blocker).await.unwrap();
    let response = app.admin(Method::GET, "/v1/connections").send().await.unwrap();
    let problem = assert_problem(response, 503, "request_timeout").await;
    assert_eq!(problem["retryable"], true);
    blocker.rollback().await.unwrap();
    // Polled: with the limit this short, one read on a loaded machine can itself run past it.
    crate::reliability::within(Duration::from_secs(10), "answering again once the lock is gone", || async {
        app.admin(Method::GET, "/v1/connections").send().await.unwrap().status() == 200
    })
    .await;
}

#[tokio::test]
async fn responses_are_compressed_on_request() {
    let app = TestApp::spawn().await;
    let response = app.anonymous(Method::GET, "/openapi.json").header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let origin = "https://books.example";
    let app = TestApp::spawn_with(Options { cors_origins: vec![origin.to_owned()], ..Options::default() }).await;
    let allowed = app
        .anonymous(Method::OPTIONS, "/v1/api-keys")
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], origin);
    let other = app
        .anonymous(Method::OPTIONS, "/v1/api-keys")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn the_committed_openapi_document_matches_the_code() {
    let generated = feedwatch::http::openapi().to_pretty_json().unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json")).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is out of date; regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
    let app = TestApp::spawn().await;
    let served: Value = app.anonymous(Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
    assert_eq!(served, serde_json::from_str::<Value>(&generated).unwrap());
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test]
async fn every_operation_documents_its_problems_and_security() {
    let document: Value = serde_json::from_str(&feedwatch::http::openapi().to_json().unwrap()).unwrap();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("503"), "{method} {path} documents 503");
            if path.starts_with("/v1/") {
                assert!(operation["security"].is_array(), "{method} {path} declares security");
                for status in ["401", "403"] {
                    let schema = &responses[status]["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/Problem", "{method} {path} {status}");
                }
            }
        }
    }
}

#[tokio::test]
async fn the_docs_page_loads_nothing_from_the_internet() {
    let app = TestApp::spawn().await;
    let page = app.anonymous(Method::GET, "/docs/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in html.split(attribute).skip(1) {
            let target = piece.split('"').next().unwrap();
            assert!(!target.contains("//"), "the docs page references an external URL: {target}");
            assets.push(target.trim_start_matches("./").to_owned());
        }
    }
    assert!(!assets.is_empty());
    for asset in assets {
        let response = app.anonymous(Method::GET, &format!("/docs/{asset}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset} is served");
        if asset.ends_with("initializer.js") {
            let script = response.text().await.unwrap();
            assert!(script.contains("/openapi.json") && !script.contains("https://"), "{script}");
        }
    }
}

#[tokio::test]
async fn a_nul_character_in_any_field_is_a_422_naming_it() {
    let app = TestApp::spawn().await;
    let response = app
        .admin(Method::POST, "/v1/institutions")
        .header("content-type", "application/json")
        .body(r#"{"slug":"nul","name":"N","provider":"sandbox","ofx":{"url":"https://a\u0000b"}}"#)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "ofx.url");
}

#[tokio::test]
async fn a_nul_character_in_a_query_parameter_is_a_400_naming_it() {
    let app = TestApp::spawn().await;
    for path in [
        "/v1/connections?q=a%00b",
        "/v1/institutions?q=%00",
        "/v1/errors?q=pass%00word",
        "/v1/incidents?state=open&x%00=1",
    ] {
        let response = app.admin(Method::GET, path).send().await.unwrap();
        let problem = assert_problem(response, 400, "invalid_query_parameter").await;
        assert!(problem["errors"][0]["field"].is_string(), "{path}: {problem}");
    }
    let named = app.admin(Method::GET, "/v1/connections?state=healthy&q=%00").send().await.unwrap();
    assert_eq!(assert_problem(named, 400, "invalid_query_parameter").await["errors"][0]["field"], "q");
}
