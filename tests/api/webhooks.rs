//! Webhooks end to end: registration, emission in the caller's transaction, signed deliveries to
//! a real receiver on loopback, retries, redirects, timeouts, 410, tenancy. Signatures are
//! checked by the `standardwebhooks` package from PyPI, not by our own code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use feedwatch::webhook::deliver::{JITTER, SCHEDULE};
use feedwatch::webhook::{self, Event, EventKind};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, assert_problem, log_lines_with, webhook_settings};

/// How a test receiver answers.
#[derive(Debug, Clone)]
enum Reply {
    Status(u16),
    /// This status with a `Retry-After` header.
    RetryAfter(u16, &'static str),
    /// 302 to this URL.
    Redirect(String),
    /// Never answers.
    Hang,
}

#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: String,
}

/// A webhook receiver on 127.0.0.1 that records every request.
struct Receiver {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    reply: Arc<Mutex<Reply>>,
}

impl Receiver {
    async fn start(reply: Reply) -> Self {
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
    fn answer_with(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
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

async fn register(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.client.post(app.url("/v1/webhooks")).bearer_auth(key).json(&body).send().await.unwrap()
}

/// Registers an endpoint and returns its JSON (secret included).
async fn registered(app: &TestApp, key: &str, url: &str, events: &[&str]) -> Value {
    let response = register(app, key, json!({ "url": url, "events": events })).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.unwrap()
}

async fn patch(app: &TestApp, key: &str, id: &str, body: Value) -> reqwest::Response {
    app.client.patch(app.url(&format!("/v1/webhooks/{id}"))).bearer_auth(key).json(&body).send().await.unwrap()
}

async fn rotate(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.client.post(app.url(&format!("/v1/webhooks/{id}/rotate-secret"))).bearer_auth(key).send().await.unwrap()
}

async fn get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(key).send().await.unwrap()
}

async fn emit(app: &TestApp, event: &Event) -> u64 {
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    let enqueued = webhook::emit(&mut tx, event).await.unwrap();
    tx.commit().await.unwrap();
    enqueued
}

fn tenant_event(kind: EventKind, tenant: Uuid) -> Event {
    Event {
        kind,
        tenant_id: Some(tenant),
        institution_id: None,
        data: json!({ "connection_id": Uuid::new_v4(), "state": "healthy" }),
    }
}

async fn deliveries(app: &TestApp, key: &str, webhook_id: &str) -> Vec<Value> {
    let page: Value = get(app, key, &format!("/v1/webhooks/{webhook_id}/deliveries")).await.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn delivery_job(app: &TestApp) -> (i64, String, i32, DateTime<Utc>) {
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
fn verify_with_standardwebhooks(secret: &str, received: &Received) -> Result<Value, String> {
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
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let created = registered(&app, &key, &receiver.url("/hooks?token=t1"), &["refresh.completed"]).await;
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
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let created = registered(&app, &key, &receiver.url("/fail"), &["refresh.completed"]).await;
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
    let (blob, key_id): (Vec<u8>, String) =
        sqlx::query_as("select secret_sealed, secret_key_id from webhook_endpoint where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(key_id, "k2");
    let opened = webhook::secret::open(&only_new, id, &key_id, &blob).unwrap();
    assert_eq!(opened.expose_secret(), rotated_secret["secret"].as_str().unwrap(), "the old key is no longer needed");
    let (previous_blob, previous_key_id): (Vec<u8>, String) =
        sqlx::query_as("select previous_secret_sealed, previous_secret_key_id from webhook_endpoint where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(previous_key_id, "k2");
    let previous = webhook::secret::open(&only_new, id, &previous_key_id, &previous_blob).unwrap();
    assert_eq!(previous.expose_secret(), created["secret"].as_str().unwrap(), "the previous secret too");
    assert_eq!(feedwatch::app::reseal_all(&app.pool, &rotated).await.unwrap(), 0);
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
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let hook = registered(&app, &key, &receiver.url("/"), &["refresh.completed"]).await;
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
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let receiver = Receiver::start(Reply::Status(410)).await;
    let created = registered(&app, &key, &receiver.url("/moved"), &["refresh.completed"]).await;
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

/// The `v1,<signature>` entries of a delivery's `webhook-signature` header.
fn signatures(received: &Received) -> Vec<String> {
    received.headers["webhook-signature"].split(' ').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_beside_the_new_one_for_a_day() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let created = registered(&app, &key, &receiver.url("/hook"), &["refresh.completed"]).await;
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
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let receiver = Receiver::start(Reply::RetryAfter(503, "120")).await;
    let created = registered(&app, &key, &receiver.url("/busy"), &["refresh.completed"]).await;
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
