//! Webhook endpoints as their owners manage them: registration and its refusals, tenancy, an
//! idempotent create, edits, secret rotation and resealing. What they receive (signing, retries,
//! redirects, timeouts, 410) is in `webhooks`, with the receiver and helpers both files use.

use chrono::{DateTime, Utc};
use feedwatch::webhook::{self, EventKind};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, assert_problem};
use crate::webhook_signatures::verify_with_standardwebhooks;
use crate::webhooks::{
    Endpoint, Receiver, Reply, deliveries, delivery_job, emit, endpoint_of_a_tenant, get, patch, register, registered,
    rotate, tenant_event,
};

#[tokio::test]
async fn registration_refuses_hosts_outside_the_allow_list_and_bad_input() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    for url in ["https://example.com/hook", "http://127.0.0.2/hook", "http://localhost/hook", "http://[::1]/hook"] {
        let response = register(&app, &key, json!({ "url": url, "events": ["refresh.completed"] })).await;
        let problem = assert_problem(response, 422, "webhook_url_not_allowed").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
    }
    let cases = [
        (json!({ "url": "ftp://127.0.0.1/x", "events": ["refresh.completed"] }), "url"),
        (json!({ "url": "http://user:pw@127.0.0.1/x", "events": ["refresh.completed"] }), "url"),
        (json!({ "url": "not a url", "events": ["refresh.completed"] }), "url"),
        (json!({ "url": format!("http://127.0.0.1/{}", "a".repeat(2000)), "events": ["refresh.completed"] }), "url"),
        (json!({ "url": "http://127.0.0.1/x", "events": [] }), "events"),
        (json!({ "url": "http://127.0.0.1/x", "events": ["connection.deleted"] }), "events[0]"),
        (json!({ "url": "http://127.0.0.1/x" }), "events"),
        (json!({ "events": ["refresh.completed"] }), "url"),
        (json!({ "url": "http://127.0.0.1/x", "events": ["refresh.completed"], "secret": "mine" }), "secret"),
        (
            json!({ "url": "http://127.0.0.1/x", "events": ["refresh.completed"], "description": "d".repeat(501) }),
            "description",
        ),
        (
            json!({ "url": "http://127.0.0.1/x", "events": ["refresh.completed"], "tenant_id": Uuid::new_v4() }),
            "tenant_id",
        ),
    ];
    for (body, field) in cases {
        let problem = assert_problem(register(&app, &key, body.clone()).await, 422, "validation_failed").await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{body} → {problem}");
    }
    let malformed = app
        .client
        .post(app.url("/v1/webhooks"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "malformed_json").await;
    let anonymous = app.anonymous(Method::GET, "/v1/webhooks").send().await.unwrap();
    assert_problem(anonymous, 401, "missing_credentials").await;
    let count: i64 = sqlx::query_scalar("select count(*) from webhook_endpoint").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn tenants_see_and_delete_only_their_own_webhooks() {
    let app = TestApp::spawn().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (key_a, key_b) = (app.key("tenant", Some(a)).await, app.key("tenant", Some(b)).await);
    let receiver = Receiver::start(Reply::Status(200)).await;
    let own = registered(&app, &key_a, &receiver.url("/a"), &["refresh.completed"]).await;
    let own_id = own["id"].as_str().unwrap();
    let fleet = registered(&app, &app.admin_key, &receiver.url("/fleet"), &["incident.opened"]).await;
    let fleet_id = fleet["id"].as_str().unwrap();
    let for_b = register(
        &app,
        &app.admin_key,
        json!({ "url": receiver.url("/b"), "events": ["refresh.completed"], "tenant_id": b }),
    )
    .await;
    assert_eq!(for_b.status(), 201);

    for id in [own_id, fleet_id] {
        for path in [format!("/v1/webhooks/{id}"), format!("/v1/webhooks/{id}/deliveries")] {
            assert_problem(get(&app, &key_b, &path).await, 404, "not_found").await;
        }
        let delete =
            app.client.delete(app.url(&format!("/v1/webhooks/{id}"))).bearer_auth(&key_b).send().await.unwrap();
        assert_problem(delete, 404, "not_found").await;
    }
    assert_problem(get(&app, &key_a, &format!("/v1/webhooks/{fleet_id}")).await, 404, "not_found").await;
    let list_b: Value = get(&app, &key_b, "/v1/webhooks").await.json().await.unwrap();
    assert_eq!(list_b["items"].as_array().unwrap().len(), 1, "only the one registered for B: {list_b}");
    let asked_for_a: Value = get(&app, &key_b, &format!("/v1/webhooks?tenant_id={a}")).await.json().await.unwrap();
    assert!(asked_for_a["items"].as_array().unwrap().is_empty());
    let all: Value = get(&app, &app.admin_key, "/v1/webhooks").await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let only_a: Value = get(&app, &app.admin_key, &format!("/v1/webhooks?tenant_id={a}")).await.json().await.unwrap();
    assert_eq!(only_a["items"][0]["id"], own_id);
    assert_problem(get(&app, &key_a, "/v1/webhooks/not-a-uuid").await, 400, "invalid_path_parameter").await;

    // A delivery queued before the endpoint is deleted finds it gone and sends nothing.
    emit(&app, &tenant_event(EventKind::RefreshCompleted, a)).await;
    let delete =
        app.client.delete(app.url(&format!("/v1/webhooks/{own_id}"))).bearer_auth(&key_a).send().await.unwrap();
    assert_eq!(delete.status(), 204);
    assert_problem(get(&app, &key_a, &format!("/v1/webhooks/{own_id}")).await, 404, "not_found").await;
    assert_eq!(app.refresh_pool().run_until_idle().await, 1);
    assert!(receiver.received().is_empty());
    assert_eq!(delivery_job(&app).await.1, "succeeded");
}

#[tokio::test]
async fn an_idempotent_create_replays_the_first_response_with_its_secret() {
    let app = TestApp::spawn().await;
    let key = app.key("tenant", Some(Uuid::new_v4())).await;
    let body = json!({ "url": "http://127.0.0.1:9/hook", "events": ["refresh.completed"], "description": "books" });
    let send = |body: Value| {
        app.client
            .post(app.url("/v1/webhooks"))
            .bearer_auth(&key)
            .header("idempotency-key", "create-1")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"].to_str().unwrap(), location);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the same endpoint and the same secret");
    let count: i64 = sqlx::query_scalar("select count(*) from webhook_endpoint").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1);
    let secret = first["secret"].as_str().unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("select body from idempotency_record").fetch_one(&app.pool).await.unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(secret), "the replay record holds no plaintext secret");
    let other = send(json!({ "url": "http://127.0.0.1:9/other", "events": ["refresh.completed"] })).await.unwrap();
    assert_problem(other, 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn rotating_credentials_keys_reseals_webhook_secrets_too() {
    use secrecy::ExposeSecret;
    let app = TestApp::spawn().await;
    let key = app.key("tenant", Some(Uuid::new_v4())).await;
    let created = registered(&app, &key, "http://127.0.0.1:9/hook", &["refresh.completed"]).await;
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    // A rotation in its grace period: the previous secret must be re-sealed as well.
    let rotated_secret: Value = rotate(&app, &key, &id.to_string()).await.json().await.unwrap();
    let (rotated, only_new) = crate::support::rotated_sealers();
    assert_eq!(feedwatch::app::reseal_all(&app.pool, &rotated).await.unwrap(), 1);
    // Both secrets are sealed under the new key now, and it alone opens them.
    for (which, expected) in [(Sealed::Current, &rotated_secret), (Sealed::Previous, &created)] {
        let (key_id, blob) = sealed(&app, id, which).await;
        assert_eq!(key_id, "k2", "{which:?}");
        let opened = webhook::secret::open(&only_new, id, &key_id, &blob).unwrap();
        assert_eq!(opened.expose_secret(), expected["secret"].as_str().unwrap(), "{which:?}");
    }
    assert_eq!(feedwatch::app::reseal_all(&app.pool, &rotated).await.unwrap(), 0);
}

/// The endpoint's two sealed secrets: the one it signs with, and the one a rotation keeps for a day.
#[derive(Debug, Clone, Copy)]
enum Sealed {
    Current,
    Previous,
}

/// A sealed secret of the endpoint `id` as stored: the id of the key that sealed it, and the blob.
async fn sealed(app: &TestApp, id: Uuid, which: Sealed) -> (String, Vec<u8>) {
    let statement = match which {
        Sealed::Current => "select secret_key_id, secret_sealed from webhook_endpoint where id = $1",
        Sealed::Previous => "select previous_secret_key_id, previous_secret_sealed from webhook_endpoint where id = $1",
    };
    sqlx::query_as(statement).bind(id).fetch_one(&app.pool).await.unwrap()
}

fn error_fields(problem: &Value) -> Vec<&str> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_patch_changes_the_url_events_and_description_and_nothing_else() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let (old, new) = (Receiver::start(Reply::Status(204)).await, Receiver::start(Reply::Status(204)).await);
    let created = registered(&app, &key, &old.url("/old"), &["refresh.completed"]).await;
    let id = created["id"].as_str().unwrap();

    let body = json!({
        "url": new.url("/new"),
        "events": ["refresh.completed", "connection.state_changed", "refresh.completed"],
        "description": "  books v2 ",
    });
    let response = patch(&app, &key, id, body).await;
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["url"], new.url("/new"));
    assert_eq!(patched["events"], json!(["connection.state_changed", "refresh.completed"]), "each once, in order");
    assert_eq!(patched["description"], "books v2");
    assert_eq!(patched["enabled"], true);
    assert_eq!(patched["created_at"], created["created_at"]);
    let (before, after) = (created["updated_at"].as_str().unwrap(), patched["updated_at"].as_str().unwrap());
    assert!(after.parse::<DateTime<Utc>>().unwrap() > before.parse::<DateTime<Utc>>().unwrap());
    assert!(patched.get("secret").is_none(), "{patched}");
    let read: Value = get(&app, &key, &format!("/v1/webhooks/{id}")).await.json().await.unwrap();
    assert_eq!(read, patched);

    // Nothing to change: the endpoint as it is, untouched.
    for body in [json!({}), json!({ "url": new.url("/new"), "enabled": true }), json!({ "url": null, "events": null })]
    {
        let response = patch(&app, &key, id, body.clone()).await;
        assert_eq!(response.status(), 200, "{body}");
        assert_eq!(response.json::<Value>().await.unwrap(), patched, "{body}");
    }
    // As in a JSON merge patch, null clears the description.
    let cleared: Value = patch(&app, &key, id, json!({ "description": null })).await.json().await.unwrap();
    assert_eq!(cleared["description"], "");
    assert_eq!(cleared["url"], new.url("/new"));

    // Deliveries go to the new URL, for the new events, still signed with the same secret.
    assert_eq!(emit(&app, &tenant_event(EventKind::ConnectionStateChanged, tenant)).await, 1);
    assert_eq!(app.refresh_pool().run_until_idle().await, 1);
    assert!(old.received().is_empty());
    let received = new.received();
    assert_eq!(received.len(), 1);
    verify_with_standardwebhooks(created["secret"].as_str().unwrap(), &received[0]).expect("the same secret");
}

#[tokio::test]
async fn an_endpoint_disabled_by_410_gone_is_enabled_again_by_a_patch() {
    let Endpoint { app, tenant, key, receiver, created } =
        endpoint_of_a_tenant(Reply::Status(410), "/moved", &["refresh.completed"]).await;
    let id = created["id"].as_str().unwrap();
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    let pool = app.refresh_pool();
    assert_eq!(pool.run_until_idle().await, 1);
    let disabled: Value = get(&app, &key, &format!("/v1/webhooks/{id}")).await.json().await.unwrap();
    assert_eq!(disabled["enabled"], false);
    assert_eq!(emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await, 0);

    // The receiver is back: enabling clears the reason, and events reach it again.
    receiver.answer_with(Reply::Status(204));
    let enabled: Value = patch(&app, &key, id, json!({ "enabled": true })).await.json().await.unwrap();
    assert_eq!(enabled["enabled"], true, "{enabled}");
    assert_eq!(enabled["disabled_reason"], Value::Null);
    assert_eq!(emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await, 1);
    assert_eq!(pool.run_until_idle().await, 1);
    assert_eq!(receiver.received().len(), 2);
    let log = deliveries(&app, &key, id).await;
    assert_eq!(log[0]["outcome"], "delivered", "{log:?}");
    assert_eq!(log[1]["status_code"], 410);

    // Disabled through the API: said so, and no deliveries.
    let off: Value = patch(&app, &key, id, json!({ "enabled": false })).await.json().await.unwrap();
    assert_eq!(off["enabled"], false);
    assert_eq!(off["disabled_reason"], "disabled through the API");
    assert_eq!(emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await, 0);
}

#[tokio::test]
async fn a_patch_is_validated_like_a_create() {
    let app = TestApp::spawn().await;
    let key = app.key("tenant", Some(Uuid::new_v4())).await;
    let created = registered(&app, &key, "http://127.0.0.1:9/hook", &["refresh.completed"]).await;
    let id = created["id"].as_str().unwrap();
    let cases = [
        (json!({ "url": "ftp://127.0.0.1/x" }), vec!["url"]),
        (json!({ "url": "http://user:pw@127.0.0.1/x" }), vec!["url"]),
        (json!({ "url": "" }), vec!["url"]),
        (json!({ "events": [] }), vec!["events"]),
        (json!({ "events": ["connection.deleted"] }), vec!["events[0]"]),
        (json!({ "description": "d".repeat(501) }), vec!["description"]),
        (json!({ "description": "line\nbreak" }), vec!["description"]),
        (json!({ "enabled": "yes" }), vec!["enabled"]),
        (json!({ "secret": "mine" }), vec!["secret"]),
        (json!({ "tenant_id": Uuid::new_v4() }), vec!["tenant_id"]),
        (json!({ "url": "not a url", "events": [], "description": "\u{7}" }), vec!["url", "events", "description"]),
    ];
    for (body, fields) in cases {
        let problem = assert_problem(patch(&app, &key, id, body.clone()).await, 422, "validation_failed").await;
        let named = error_fields(&problem);
        assert!(fields.iter().all(|field| named.contains(field)), "{body} → {problem}");
    }
    let refused = patch(&app, &key, id, json!({ "url": "https://example.com/hook" })).await;
    let problem = assert_problem(refused, 422, "webhook_url_not_allowed").await;
    assert_eq!(error_fields(&problem), ["url"]);
    let malformed = app.client.patch(app.url(&format!("/v1/webhooks/{id}"))).bearer_auth(&key);
    let malformed = malformed.header("content-type", "application/json").body("{\"url\": ").send().await.unwrap();
    assert_problem(malformed, 400, "malformed_json").await;
    let read: Value = get(&app, &key, &format!("/v1/webhooks/{id}")).await.json().await.unwrap();
    assert_eq!(read["url"], "http://127.0.0.1:9/hook", "nothing was changed");
    assert_eq!(read["updated_at"], created["updated_at"]);
}

#[tokio::test]
async fn tenants_edit_and_rotate_only_their_own_webhooks() {
    let app = TestApp::spawn().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (key_a, key_b) = (app.key("tenant", Some(a)).await, app.key("tenant", Some(b)).await);
    let own = registered(&app, &key_a, "http://127.0.0.1:9/a", &["refresh.completed"]).await;
    let fleet = registered(&app, &app.admin_key, "http://127.0.0.1:9/fleet", &["incident.opened"]).await;
    let missing = Uuid::new_v4().to_string();
    for id in [own["id"].as_str().unwrap(), fleet["id"].as_str().unwrap(), &missing] {
        assert_problem(patch(&app, &key_b, id, json!({ "enabled": false })).await, 404, "not_found").await;
        assert_problem(patch(&app, &key_b, id, json!({})).await, 404, "not_found").await;
        assert_problem(rotate(&app, &key_b, id).await, 404, "not_found").await;
    }
    let fleet_id = fleet["id"].as_str().unwrap();
    assert_problem(patch(&app, &key_a, fleet_id, json!({ "enabled": false })).await, 404, "not_found").await;
    assert_problem(rotate(&app, &key_a, fleet_id).await, 404, "not_found").await;
    let secrets: Vec<Vec<u8>> = sqlx::query_scalar("select secret_sealed from webhook_endpoint order by created_at")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let untouched: i64 = sqlx::query_scalar(
        "select count(*) from webhook_endpoint where enabled and previous_secret_sealed is null and updated_at = created_at",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((secrets.len(), untouched), (2, 2), "nothing changed, nothing rotated");

    // Helpdesk keys manage fleet-wide endpoints and read a tenant's, but change none of a
    // tenant's (its secret signs the tenant's deliveries); admin keys manage every endpoint.
    let helpdesk = app.key("helpdesk", None).await;
    let edited: Value = patch(&app, &helpdesk, fleet_id, json!({ "description": "ops" })).await.json().await.unwrap();
    assert_eq!(edited["description"], "ops");
    let own_id = own["id"].as_str().unwrap();
    let read = app.client.get(app.url(&format!("/v1/webhooks/{own_id}"))).bearer_auth(&helpdesk).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert_problem(rotate(&app, &helpdesk, own_id).await, 403, "forbidden").await;
    assert_problem(patch(&app, &helpdesk, own_id, json!({ "enabled": false })).await, 403, "forbidden").await;
    let tenant_a = own["tenant_id"].as_str().unwrap();
    let for_tenant = app
        .client
        .post(app.url("/v1/webhooks"))
        .bearer_auth(&helpdesk)
        .json(&json!({ "url": "https://books.example/hook", "events": ["refresh.completed"], "tenant_id": tenant_a }))
        .send()
        .await
        .unwrap();
    assert_problem(for_tenant, 403, "forbidden").await;
    assert_eq!(rotate(&app, &app.admin_key, own_id).await.status(), 200);
    assert_problem(patch(&app, &key_a, "not-a-uuid", json!({})).await, 400, "invalid_path_parameter").await;
}
