//! Webhooks end to end: emission in the caller's transaction, deliveries to a real receiver on
//! loopback, retries, redirects, timeouts, 410, what a connection's and a bank's events send.
//! Their signatures, checked by the `standardwebhooks` package, are in `webhook_signatures`; how
//! owners register and edit their endpoints is in `webhook_endpoints`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use feedwatch::webhook::deliver::{JITTER, SCHEDULE};
use feedwatch::webhook::{self, Event, EventKind};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, webhook_settings};

/// How a test receiver answers.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Status(u16),
    /// This status with a `Retry-After` header.
    RetryAfter(u16, &'static str),
    /// 302 to this URL.
    Redirect(String),
    /// Never answers.
    Hang,
}

#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

/// A webhook receiver on 127.0.0.1 that records every request.
pub(crate) struct Receiver {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    reply: Arc<Mutex<Reply>>,
}

impl Receiver {
    pub(crate) async fn start(reply: Reply) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&received);
        let reply = Arc::new(Mutex::new(reply));
        let replies = Arc::clone(&reply);
        let handler = move |headers: HeaderMap, body: String| {
            let recorded = Arc::clone(&recorded);
            let reply = replies.lock().unwrap().clone();
            async move {
                let headers = headers
                    .iter()
                    .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
                    .collect();
                recorded.lock().unwrap().push(Received { headers, body });
                answer(reply).await
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, received, reply }
    }

    /// Answers the requests from now on with `reply`.
    pub(crate) fn answer_with(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn answer(reply: Reply) -> Response {
    match reply {
        Reply::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Reply::RetryAfter(status, after) => {
            (StatusCode::from_u16(status).unwrap(), [("retry-after", after)]).into_response()
        }
        Reply::Redirect(to) => (StatusCode::FOUND, [("location", to)]).into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

/// A new app with one tenant and its endpoint at a receiver answering `reply`, subscribed to
/// `events`: where most webhook tests begin.
pub(crate) struct Endpoint {
    pub app: TestApp,
    pub tenant: Uuid,
    pub key: String,
    pub receiver: Receiver,
    /// The endpoint as created, secret included.
    pub created: Value,
}

pub(crate) async fn endpoint_of_a_tenant(reply: Reply, path: &str, events: &[&str]) -> Endpoint {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let receiver = Receiver::start(reply).await;
    let created = registered(&app, &key, &receiver.url(path), events).await;
    Endpoint { app, tenant, key, receiver, created }
}

pub(crate) async fn register(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.client.post(app.url("/v1/webhooks")).bearer_auth(key).json(&body).send().await.unwrap()
}

/// Registers an endpoint and returns its JSON (secret included).
pub(crate) async fn registered(app: &TestApp, key: &str, url: &str, events: &[&str]) -> Value {
    let response = register(app, key, json!({ "url": url, "events": events })).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.unwrap()
}

pub(crate) async fn patch(app: &TestApp, key: &str, id: &str, body: Value) -> reqwest::Response {
    app.client.patch(app.url(&format!("/v1/webhooks/{id}"))).bearer_auth(key).json(&body).send().await.unwrap()
}

pub(crate) async fn rotate(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.client.post(app.url(&format!("/v1/webhooks/{id}/rotate-secret"))).bearer_auth(key).send().await.unwrap()
}

pub(crate) async fn get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(key).send().await.unwrap()
}

pub(crate) async fn emit(app: &TestApp, event: &Event) -> u64 {
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    let enqueued = webhook::emit(&mut tx, event).await.unwrap();
    tx.commit().await.unwrap();
    enqueued
}

pub(crate) fn tenant_event(kind: EventKind, tenant: Uuid) -> Event {
    Event {
        kind,
        tenant_id: Some(tenant),
        institution_id: None,
        data: json!({ "connection_id": Uuid::new_v4(), "state": "healthy" }),
    }
}

pub(crate) async fn deliveries(app: &TestApp, key: &str, webhook_id: &str) -> Vec<Value> {
    let page: Value = get(app, key, &format!("/v1/webhooks/{webhook_id}/deliveries")).await.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

pub(crate) async fn delivery_job(app: &TestApp) -> (i64, String, i32, DateTime<Utc>) {
    sqlx::query_as("select job_id, state, attempt, run_at from job where kind = 'webhook.deliver'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn events_reach_the_tenants_endpoints_the_fleet_wide_ones_and_no_others() {
    let app = TestApp::spawn().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (key_a, key_b) = (app.key("tenant", Some(a)).await, app.key("tenant", Some(b)).await);
    let receiver = Receiver::start(Reply::Status(200)).await;
    let url = receiver.url("/");
    registered(&app, &key_a, &url, &["refresh.completed", "connection.state_changed"]).await;
    registered(&app, &key_a, &url, &["incident.opened"]).await;
    registered(&app, &key_b, &url, &["refresh.completed", "incident.opened"]).await;
    let helpdesk = app.key("helpdesk", None).await;
    let fleet = registered(&app, &helpdesk, &url, &["refresh.completed", "incident.opened"]).await;
    assert_eq!(fleet["tenant_id"], Value::Null, "no tenant_id: fleet-wide");

    assert_eq!(emit(&app, &tenant_event(EventKind::RefreshCompleted, a)).await, 2, "A's and the fleet-wide one");
    assert_eq!(emit(&app, &tenant_event(EventKind::ConnectionStateChanged, a)).await, 1);
    assert_eq!(emit(&app, &tenant_event(EventKind::IncidentResolved, a)).await, 0, "nobody subscribed");
    let messages: i64 = sqlx::query_scalar("select count(*) from webhook_message").fetch_one(&app.pool).await.unwrap();
    assert_eq!(messages, 2, "an event nobody listens to leaves no message");

    // A fleet event reaches tenants with a connection at the institution: A here, not B.
    let bank = app.institution("webhook-bank").await;
    app.connection(&key_a, bank, "Operating", "pass_good").await;
    let incident = Event {
        kind: EventKind::IncidentOpened,
        tenant_id: None,
        institution_id: Some(bank),
        data: json!({ "institution_id": bank }),
    };
    assert_eq!(emit(&app, &incident).await, 2, "A's incident endpoint and the fleet-wide one");
    let elsewhere = Event { institution_id: Some(Uuid::new_v4()), ..incident.clone() };
    assert_eq!(emit(&app, &elsewhere).await, 1, "only the fleet-wide one");

    // Emitted in a transaction that rolls back: no message, no delivery.
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    assert_eq!(webhook::emit(&mut tx, &tenant_event(EventKind::RefreshCompleted, b)).await.unwrap(), 2);
    tx.rollback().await.unwrap();

    let pool = app.refresh_pool();
    // The connection's first refresh runs too, and announces itself to A's endpoints and the
    // fleet-wide one: refresh.completed twice, connection.state_changed once.
    assert_eq!(pool.run_until_idle().await, 2 + 1 + 2 + 1 + 1 + 3);
    assert_eq!(receiver.received().len(), 6 + 3);
    let types: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types.iter().filter(|t| *t == "incident.opened").count(), 3, "{types:?}");
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_on_the_schedule_until_the_delivery_fails() {
    let Endpoint { app, tenant, key, receiver, created } =
        endpoint_of_a_tenant(Reply::Status(500), "/fail", &["refresh.completed"]).await;
    let id = created["id"].as_str().unwrap();
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    let pool = app.refresh_pool();

    for attempt in 1..=8 {
        let started = Utc::now();
        assert_eq!(pool.run_until_idle().await, 1, "attempt {attempt}");
        let finished = Utc::now();
        let (job_id, state, recorded_attempt, run_at) = delivery_job(&app).await;
        assert_eq!(recorded_attempt, attempt);
        let log = deliveries(&app, &key, id).await;
        assert_eq!(log.len(), attempt as usize);
        assert_eq!(log[0]["attempt"], attempt, "newest first");
        assert_eq!(log[0]["status_code"], 500);
        assert_eq!(log[0]["error"], "HTTP 500 Internal Server Error");
        if attempt == 8 {
            assert_eq!(state, "failed", "eight attempts, then the delivery fails");
            assert_eq!(log[0]["outcome"], "failed");
            assert_eq!(log[0]["next_attempt_at"], Value::Null);
            break;
        }
        assert_eq!(state, "available", "attempt {attempt} goes back to the queue");
        assert_eq!(log[0]["outcome"], "retrying");
        let nominal = SCHEDULE[attempt as usize - 1];
        let earliest = started + chrono::TimeDelta::from_std(nominal).unwrap();
        let latest = finished + chrono::TimeDelta::from_std(nominal.mul_f64(1.0 + JITTER)).unwrap();
        assert!(run_at >= earliest && run_at <= latest, "attempt {attempt}: {run_at} not in {earliest}..{latest}");
        let next: DateTime<Utc> = log[0]["next_attempt_at"].as_str().unwrap().parse().unwrap();
        assert!((next - run_at).num_seconds().abs() <= 1, "the log says when the queue retries");
        assert_eq!(pool.run_until_idle().await, 0, "nothing runs before the backoff");
        sqlx::query("update job set run_at = now() where job_id = $1").bind(job_id).execute(&app.pool).await.unwrap();
    }
    let received = receiver.received();
    assert_eq!(received.len(), 8);
    let ids: Vec<&String> = received.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one webhook-id across retries");

    // The log pages newest first.
    let page: Value = get(&app, &key, &format!("/v1/webhooks/{id}/deliveries?limit=5")).await.json().await.unwrap();
    let attempts: Vec<i64> = page["items"].as_array().unwrap().iter().map(|d| d["attempt"].as_i64().unwrap()).collect();
    assert_eq!(attempts, [8, 7, 6, 5, 4]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value =
        get(&app, &key, &format!("/v1/webhooks/{id}/deliveries?limit=5&cursor={cursor}")).await.json().await.unwrap();
    let attempts: Vec<i64> = rest["items"].as_array().unwrap().iter().map(|d| d["attempt"].as_i64().unwrap()).collect();
    assert_eq!(attempts, [3, 2, 1]);
    assert_eq!(rest["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let elsewhere = Receiver::start(Reply::Status(200)).await;
    let to = format!("http://localhost:{}/stolen", elsewhere.addr.port());
    let redirecting = Receiver::start(Reply::Redirect(to.clone())).await;
    let created = registered(&app, &key, &redirecting.url("/hook"), &["refresh.completed"]).await;
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    assert_eq!(app.refresh_pool().run_until_idle().await, 1);
    assert_eq!(redirecting.received().len(), 1);
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
    let log = deliveries(&app, &key, created["id"].as_str().unwrap()).await;
    assert_eq!(log[0]["status_code"], 302);
    assert_eq!(log[0]["outcome"], "retrying", "a redirect is a failed attempt");
    let error = log[0]["error"].as_str().unwrap();
    assert!(error.contains("redirect") && error.contains(&to), "{error}");
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_in_time_is_a_failed_attempt() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let hanging = Receiver::start(Reply::Hang).await;
    let created = registered(&app, &key, &hanging.url("/slow"), &["refresh.completed"]).await;
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    let settings = webhook::Settings { timeout: Duration::from_millis(300), ..webhook_settings() };
    assert_eq!(app.webhook_pool(&settings).run_until_idle().await, 1);
    assert_eq!(hanging.received().len(), 1, "the request was sent");
    let log = deliveries(&app, &key, created["id"].as_str().unwrap()).await;
    assert_eq!(log[0]["outcome"], "retrying");
    assert_eq!(log[0]["status_code"], Value::Null);
    assert!(log[0]["error"].as_str().unwrap().contains("timed out"), "{}", log[0]);
    assert!(log[0]["duration_ms"].as_i64().unwrap() >= 300);
    assert_eq!(delivery_job(&app).await.1, "available");
}

#[tokio::test]
async fn a_receiver_answering_410_gone_disables_its_endpoint() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let gone = Receiver::start(Reply::Status(410)).await;
    let created = registered(&app, &key, &gone.url("/old"), &["refresh.completed"]).await;
    let id = created["id"].as_str().unwrap();
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    assert_eq!(app.refresh_pool().run_until_idle().await, 1);
    assert_eq!(delivery_job(&app).await.1, "failed", "no retry after 410");
    let endpoint: Value = get(&app, &key, &format!("/v1/webhooks/{id}")).await.json().await.unwrap();
    assert_eq!(endpoint["enabled"], false);
    assert!(endpoint["disabled_reason"].as_str().unwrap().contains("410"));
    assert_eq!(deliveries(&app, &key, id).await[0]["outcome"], "failed");
    assert_eq!(emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await, 0, "disabled: no more deliveries");
}

fn events_of(receiver: &Receiver) -> Vec<Value> {
    receiver.received().iter().map(|request| serde_json::from_str(&request.body).unwrap()).collect()
}

/// The life of a connection against the sandbox bank, as its tenant's webhook sees it.
#[tokio::test]
async fn a_connection_breaks_and_is_repaired_and_its_tenant_hears_each_step() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let all = ["connection.state_changed", "connection.repaired", "refresh.completed", "transactions.sync_available"];
    let hook = registered(&app, &key, &receiver.url("/events"), &all).await;
    let page: Value = get(&app, &key, "/v1/institutions?q=sandbox-healthy").await.json().await.unwrap();
    let bank: Uuid = page["items"][0]["id"].as_str().unwrap().parse().unwrap();
    let id = app.connection(&key, bank, "Operating", "pass_good").await["id"].as_str().unwrap().to_owned();
    let pool = app.refresh_pool();
    // Refreshes and deliveries share the pool: idle means both are done.
    pool.run_until_idle().await;
    let first = events_of(&receiver);
    let types: Vec<&str> = first.iter().map(|event| event["type"].as_str().unwrap()).collect();
    assert!(types.contains(&"refresh.completed") && types.contains(&"transactions.sync_available"), "{types:?}");
    assert!(first.iter().any(|e| e["type"] == "connection.state_changed" && e["data"]["to"] == "healthy"), "{first:?}");

    // The password changes at the bank: the connection needs its user, with one action.
    let path = format!("/v1/connections/{id}");
    let patched = app.client.patch(app.url(&path)).bearer_auth(&key).header("if-match", "*");
    let patched = patched.json(&json!({ "credentials": { "user_id": "user_good", "password": "error_103" } }));
    assert_eq!(patched.send().await.unwrap().status(), 200);
    pool.run_until_idle().await;
    let broken: Value = get(&app, &key, &path).await.json().await.unwrap();
    assert_eq!(broken["state"], "needs_user_action", "{broken}");
    assert_eq!(broken["health"]["error"]["code"], 103);
    assert_eq!(broken["health"]["error"]["action"], "reconnect");
    let events = events_of(&receiver);
    assert!(
        events.iter().any(|e| e["type"] == "connection.state_changed" && e["data"]["to"] == "needs_user_action"),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["type"] == "refresh.completed" && e["data"]["outcome"] == "failed"));

    // The user types the right password: a refresh is enqueued at once and the connection heals.
    let fixed = app.client.patch(app.url(&path)).bearer_auth(&key).header("if-match", "*");
    let fixed = fixed.json(&json!({ "credentials": { "user_id": "user_good", "password": "pass_good" } }));
    assert_eq!(fixed.send().await.unwrap().status(), 200);
    let queued: i64 =
        sqlx::query_scalar("select count(*) from job where connection_id = $1::uuid and state = 'available'")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(queued, 1, "new credentials enqueue a refresh");
    pool.run_until_idle().await;
    let healed: Value = get(&app, &key, &path).await.json().await.unwrap();
    assert_eq!(healed["state"], "healthy", "{healed}");
    let events = events_of(&receiver);
    let repaired: Vec<&Value> = events.iter().filter(|e| e["type"] == "connection.repaired").collect();
    assert_eq!(repaired.len(), 1, "{events:?}");
    assert_eq!(repaired[0]["data"]["connection_id"], id.as_str());
    let log = deliveries(&app, &key, hook["id"].as_str().unwrap()).await;
    assert!(log.iter().all(|delivery| delivery["outcome"] == "delivered"), "{log:?}");
    assert_eq!(log.len(), events.len(), "one logged attempt per event");
}

/// Bank incidents reach every tenant with a connection at the bank.
#[tokio::test]
async fn incidents_are_announced_to_tenants_with_connections_at_the_bank() {
    let app = TestApp::spawn().await;
    let (near, far) = (Uuid::new_v4(), Uuid::new_v4());
    let (near_key, far_key) = (app.key("tenant", Some(near)).await, app.key("tenant", Some(far)).await);
    let (near_hook, far_hook) = (Receiver::start(Reply::Status(200)).await, Receiver::start(Reply::Status(200)).await);
    registered(&app, &near_key, &near_hook.url("/"), &["incident.opened", "incident.resolved"]).await;
    registered(&app, &far_key, &far_hook.url("/"), &["incident.opened", "incident.resolved"]).await;
    let page: Value = get(&app, &near_key, "/v1/institutions?q=sandbox-healthy").await.json().await.unwrap();
    let bank = page["items"][0]["id"].as_str().unwrap().to_owned();
    app.connection(&near_key, bank.parse().unwrap(), "Operating", "pass_good").await;
    let helpdesk = app.key("helpdesk", None).await;
    let declared = app.client.post(app.url("/v1/incidents")).bearer_auth(&helpdesk);
    let declared = declared.json(&json!({ "institution_id": bank, "title": "Bank down" })).send().await.unwrap();
    assert_eq!(declared.status(), 201);
    let incident: Value = declared.json().await.unwrap();
    let resolve = app.client.patch(app.url(&format!("/v1/incidents/{}", incident["id"].as_str().unwrap())));
    let resolved = resolve.bearer_auth(&helpdesk).json(&json!({ "state": "resolved" })).send().await.unwrap();
    assert_eq!(resolved.status(), 200);
    app.refresh_pool().run_until_idle().await;
    // Deliveries run concurrently, so they may arrive in any order (receivers order by timestamp).
    let heard = events_of(&near_hook);
    let mut types: Vec<&str> = heard.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort_unstable();
    assert_eq!(types, ["incident.opened", "incident.resolved"]);
    assert!(heard.iter().all(|event| event["data"]["incident_id"] == incident["id"]), "{heard:?}");
    assert!(far_hook.received().is_empty(), "a tenant without a connection at the bank hears nothing");
}

#[tokio::test]
async fn maintenance_drops_messages_and_their_delivery_log_after_a_month() {
    let Endpoint { app, tenant, key, receiver: _receiver, created: hook } =
        endpoint_of_a_tenant(Reply::Status(204), "/", &["refresh.completed"]).await;
    assert_eq!(emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await, 1);
    assert_eq!(emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await, 1);
    app.refresh_pool().run_until_idle().await;
    assert_eq!(deliveries(&app, &key, hook["id"].as_str().unwrap()).await.len(), 2);
    sqlx::query(
        "update webhook_message set created_at = now() - interval '31 days'
         where id = (select id from webhook_message order by created_at limit 1)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    feedwatch::housekeeping::run_once(&app.pool).await.unwrap();
    let messages: i64 = sqlx::query_scalar("select count(*) from webhook_message").fetch_one(&app.pool).await.unwrap();
    assert_eq!(messages, 1, "the month-old message went, the recent one stayed");
    assert_eq!(deliveries(&app, &key, hook["id"].as_str().unwrap()).await.len(), 1, "and its log with it");
}

#[tokio::test]
async fn a_receivers_retry_after_postpones_the_next_attempt() {
    let Endpoint { app, tenant, key, receiver, created } =
        endpoint_of_a_tenant(Reply::RetryAfter(503, "120"), "/busy", &["refresh.completed"]).await;
    let id = created["id"].as_str().unwrap();
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    let started = Utc::now();
    let pool = app.refresh_pool();
    assert_eq!(pool.run_until_idle().await, 1);
    let log = deliveries(&app, &key, id).await;
    assert_eq!(log[0]["outcome"], "retrying");
    assert_eq!(log[0]["status_code"], 503);
    let next: DateTime<Utc> = log[0]["next_attempt_at"].as_str().unwrap().parse().unwrap();
    assert!(next >= started + chrono::TimeDelta::seconds(119), "not the 5 s of the schedule: {next}");
    assert!(next <= Utc::now() + chrono::TimeDelta::seconds(121), "{next}");
    let (job_id, state, _, run_at) = delivery_job(&app).await;
    assert_eq!(state, "available");
    assert!((run_at - next).num_seconds().abs() <= 1, "the queue waits as the log says: {run_at}");

    // A Retry-After of days is capped at the schedule's longest delay (10 h).
    receiver.answer_with(Reply::RetryAfter(429, "864000"));
    sqlx::query("update job set run_at = now() where job_id = $1").bind(job_id).execute(&app.pool).await.unwrap();
    assert_eq!(pool.run_until_idle().await, 1);
    let log = deliveries(&app, &key, id).await;
    assert_eq!(log[0]["status_code"], 429);
    let next: DateTime<Utc> = log[0]["next_attempt_at"].as_str().unwrap().parse().unwrap();
    let longest = chrono::TimeDelta::from_std(SCHEDULE[SCHEDULE.len() - 1]).unwrap();
    assert!(next <= Utc::now() + longest && next >= Utc::now() + longest - chrono::TimeDelta::minutes(1), "{next}");
}
