//! Webhooks end to end: emission in the caller's transaction, signed deliveries to a real
//! receiver on loopback, retries, redirects, timeouts, 410, what a connection's and a bank's
//! events send. Signatures are checked by the `standardwebhooks` package from PyPI, not by our
//! own code. How owners register and edit their endpoints is in `webhook_endpoints`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use feedwatch::webhook::deliver::{JITTER, SCHEDULE};
use feedwatch::webhook::{self, Event, EventKind};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, log_lines_with, webhook_settings};

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
    headers: HashMap<String, String>,
    body: String,
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

/// A Python that has the pinned `standardwebhooks`: `FEEDWATCH_WEBHOOK_PYTHON`, or a venv under
/// `.venv/webhooks` created on first use. Without it (no network to PyPI) the test fails: a
/// skipped signature check would look like a passing one.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(path) = std::env::var("FEEDWATCH_WEBHOOK_PYTHON") {
            return PathBuf::from(path);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let requirements = root.join("tests/webhooks/requirements.txt");
        let venv = root.join(".venv/webhooks");
        let python = venv.join("bin/python");
        let pinned = std::fs::read_to_string(&requirements).unwrap();
        let pin = pinned.lines().find(|line| line.starts_with("standardwebhooks==")).unwrap();
        let version = pin.trim_start_matches("standardwebhooks==").trim();
        let check = format!("import importlib.metadata as m; assert m.version('standardwebhooks') == '{version}'");
        let ready = || std::process::Command::new(&python).args(["-c", &check]).status().is_ok_and(|s| s.success());
        if !ready() {
            let made = std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
            assert!(made.is_ok_and(|s| s.success()), "python3 -m venv {} failed", venv.display());
            let installed = std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements)
                .status();
            assert!(
                installed.is_ok_and(|s| s.success()) && ready(),
                "could not install {pin} from PyPI into {}; the signature test needs it (or set FEEDWATCH_WEBHOOK_PYTHON)",
                venv.display()
            );
        }
        python
    })
}

/// Runs tests/webhooks/verify.py on one received request: the payload it verified, or its error.
pub(crate) fn verify_with_standardwebhooks(secret: &str, received: &Received) -> Result<Value, String> {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/verify.py");
    let mut child = std::process::Command::new(python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({ "secret": secret, "headers": received.headers, "body": received.body });
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test]
async fn deliveries_are_signed_so_the_standard_webhooks_library_verifies_them() {
    let Endpoint { app, tenant, key, receiver, created } =
        endpoint_of_a_tenant(Reply::Status(204), "/hooks?token=t1", &["refresh.completed"]).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["tenant_id"], tenant.to_string());
    assert_eq!(created["events"], json!(["refresh.completed"]));
    assert_eq!(created["enabled"], true);

    let event = tenant_event(EventKind::RefreshCompleted, tenant);
    assert_eq!(emit(&app, &event).await, 1);
    let before = Utc::now().timestamp();
    assert_eq!(app.refresh_pool().run_until_idle().await, 1);

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    let header = |name: &str| request.headers.get(name).map(String::as_str).unwrap_or_default();
    assert!(header("webhook-id").starts_with("msg_"), "{:?}", request.headers);
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    assert!((before - 5..=Utc::now().timestamp() + 5).contains(&timestamp));
    assert!(header("webhook-signature").starts_with("v1,"));
    assert_eq!(header("content-type"), "application/json");
    assert!(header("user-agent").starts_with("feedwatch-webhooks/"));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "refresh.completed");
    assert_eq!(body["data"], event.data);
    assert!(body["timestamp"].as_str().unwrap().parse::<DateTime<Utc>>().is_ok(), "{body}");

    let verified = verify_with_standardwebhooks(&secret, request).expect("standardwebhooks verifies the delivery");
    assert_eq!(verified, body);
    let tampered = Received { body: request.body.replace("healthy", "degraded"), ..request.clone() };
    assert!(verify_with_standardwebhooks(&secret, &tampered).is_err(), "an altered body fails");
    let other_secret = webhook::secret::generate();
    let wrong = secrecy::ExposeSecret::expose_secret(&other_secret).to_owned();
    assert!(verify_with_standardwebhooks(&wrong, request).is_err(), "another secret fails");

    let log = deliveries(&app, &key, created["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "delivered");
    assert_eq!(log[0]["status_code"], 204);
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[0]["event_type"], "refresh.completed");
    assert_eq!(log[0]["message_id"], header("webhook-id"));
    assert_eq!(delivery_job(&app).await.1, "succeeded");

    // The secret is in the create response only: not in reads, lists, the database or logs.
    let id = created["id"].as_str().unwrap();
    for path in [format!("/v1/webhooks/{id}"), "/v1/webhooks".to_owned(), format!("/v1/webhooks/{id}/deliveries")] {
        let text = get(&app, &key, &path).await.text().await.unwrap();
        assert!(!text.contains(&secret[6..]) && !text.contains("secret"), "{path}: {text}");
    }
    let sealed: Vec<u8> =
        sqlx::query_scalar("select secret_sealed from webhook_endpoint").fetch_one(&app.pool).await.unwrap();
    assert!(!sealed.windows(16).any(|window| window == &secret.as_bytes()[6..22]));
    assert!(log_lines_with(&secret[6..]).is_empty(), "the secret was logged");
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

/// The `v1,<signature>` entries of a delivery's `webhook-signature` header.
fn signatures(received: &Received) -> Vec<String> {
    received.headers["webhook-signature"].split(' ').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_beside_the_new_one_for_a_day() {
    let Endpoint { app, tenant, key, receiver, created } =
        endpoint_of_a_tenant(Reply::Status(204), "/hook", &["refresh.completed"]).await;
    let id = created["id"].as_str().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();

    let asked = Utc::now();
    let response = rotate(&app, &key, id).await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{rotated}");
    assert_eq!(rotated["id"], created["id"]);
    assert_eq!(rotated["url"], created["url"]);
    let expires: DateTime<Utc> = rotated["previous_secret_expires_at"].as_str().unwrap().parse().unwrap();
    let day = chrono::TimeDelta::hours(24);
    assert!(expires >= asked + day && expires <= Utc::now() + day, "{expires}");

    // During the grace period: two signatures, the new secret's first; either secret verifies.
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    let pool = app.refresh_pool();
    assert_eq!(pool.run_until_idle().await, 1);
    let request = receiver.received()[0].clone();
    let both = signatures(&request);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.iter().all(|signature| signature.starts_with("v1,")), "{both:?}");
    verify_with_standardwebhooks(&new, &request).expect("the new secret verifies");
    verify_with_standardwebhooks(&old, &request).expect("the previous secret still verifies");
    let only = |signature: &String| {
        let mut headers = request.headers.clone();
        headers.insert("webhook-signature".into(), signature.clone());
        Received { headers, body: request.body.clone() }
    };
    verify_with_standardwebhooks(&new, &only(&both[0])).expect("the first signature is the new secret's");
    verify_with_standardwebhooks(&old, &only(&both[1])).expect("the second is the previous secret's");
    let stranger = secrecy::ExposeSecret::expose_secret(&webhook::secret::generate()).to_owned();
    assert!(verify_with_standardwebhooks(&stranger, &request).is_err());

    // The secret shows in the rotation's response only.
    for path in [format!("/v1/webhooks/{id}"), "/v1/webhooks".to_owned()] {
        let text = get(&app, &key, &path).await.text().await.unwrap();
        assert!(!text.contains(&new[6..]) && !text.contains(&old[6..]), "{path}: {text}");
    }
    assert!(log_lines_with(&new[6..]).is_empty(), "the new secret was logged");

    // Once the grace period is over, the previous secret signs nothing.
    sqlx::query("update webhook_endpoint set previous_secret_expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    assert_eq!(pool.run_until_idle().await, 1);
    let request = receiver.received()[1].clone();
    assert_eq!(signatures(&request).len(), 1, "{:?}", request.headers);
    verify_with_standardwebhooks(&new, &request).expect("the new secret verifies");
    assert!(verify_with_standardwebhooks(&old, &request).is_err(), "the previous secret has expired");

    // And housekeeping forgets it.
    feedwatch::housekeeping::run_once(&app.pool).await.unwrap();
    let kept: i64 =
        sqlx::query_scalar("select count(*) from webhook_endpoint where previous_secret_sealed is not null")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kept, 0);
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
