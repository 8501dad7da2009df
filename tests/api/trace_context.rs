//! W3C trace context end to end: a `traceparent` sent with a request reaches the request's log
//! lines, the jobs it enqueues, the bank those jobs call and the webhook receiver that hears of
//! them, through real HTTP servers on loopback. Invalid headers are ignored, as the spec says.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, log_lines_with};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Each request's path with its `traceparent`, in arrival order.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// One server on 127.0.0.1: the sandbox bank under `/bank`, a webhook receiver answering
/// `hook_status` everywhere else; it records the `traceparent` of every request by path.
struct Recorder {
    addr: std::net::SocketAddr,
    seen: Seen,
}

impl Recorder {
    async fn start(hook_status: StatusCode) -> Self {
        let seen: Seen = Arc::default();
        let recorded = Arc::clone(&seen);
        let record = move |request: Request, next: Next| {
            let recorded = Arc::clone(&recorded);
            async move {
                let traceparent = request.headers().get("traceparent").map(|value| value.to_str().unwrap().to_owned());
                recorded.lock().unwrap().push((request.uri().path().to_owned(), traceparent));
                next.run(request).await
            }
        };
        let bank = feedwatch::sandbox::SandboxBank::new(Default::default(), feedwatch::sandbox::Clock::System);
        let router = axum::Router::new()
            .nest_service("/bank", feedwatch::http::sandbox_bank::router(Arc::new(bank)))
            .fallback(move || async move { hook_status.into_response() })
            .layer(axum::middleware::from_fn(record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The `traceparent` headers of the requests whose path starts with `prefix`.
    fn traceparents(&self, prefix: &str) -> Vec<Option<String>> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|(path, _)| path.starts_with(prefix)).map(|(_, header)| header.clone()).collect()
    }
}

/// A tenant with a webhook on the recorder and an OFX institution that is the recorder's bank.
async fn tenant_at_recorded_bank(app: &TestApp, recorder: &Recorder) -> (String, Uuid) {
    let key = app.key("tenant", Some(Uuid::new_v4())).await;
    let hook = json!({ "url": recorder.url("/hooks"), "events": ["refresh.completed"] });
    let registered = app.client.post(app.url("/v1/webhooks")).bearer_auth(&key).json(&hook).send().await.unwrap();
    assert_eq!(registered.status(), 201);
    let institution = json!({
        "slug": "traced-bank", "name": "Traced Bank", "provider": "ofx",
        "ofx": { "url": recorder.url("/bank/ofx/healthy"), "org": "FEEDWATCH-SANDBOX", "fid": "90001" }
    });
    let created = app.admin(Method::POST, "/v1/institutions").json(&institution).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();
    (key, id)
}

async fn create_connection(app: &TestApp, key: &str, institution: Uuid, traceparent: &str) -> reqwest::Response {
    let body = json!({
        "institution_id": institution,
        "display_name": "Traced",
        "credentials": { "user_id": "user_good", "password": "pass_good" }
    });
    let request = app.client.post(app.url("/v1/connections")).bearer_auth(key).header("traceparent", traceparent);
    request.json(&body).send().await.unwrap()
}

fn trace_id_of(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap()
}

#[tokio::test]
async fn a_traceparent_follows_a_new_connection_to_the_bank_and_the_webhook_receiver() {
    let app = TestApp::spawn().await;
    // A receiver answering 410 makes the delivery job log a line: the job's lines carry the trace.
    let recorder = Recorder::start(StatusCode::GONE).await;
    let (key, institution) = tenant_at_recorded_bank(&app, &recorder).await;

    let created = create_connection(&app, &key, institution, TRACEPARENT).await;
    assert_eq!(created.status(), 201);
    let connection = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let request_lines = log_lines_with(&connection);
    let created_line = request_lines.iter().find(|line| line.contains("connection created")).unwrap();
    assert!(created_line.contains(TRACE_ID), "the request's log line names the trace: {created_line}");

    // The connection's first refresh, then the delivery it enqueued (one pool runs both).
    app.refresh_pool().run_until_idle().await;
    let bank = recorder.traceparents("/bank/");
    assert!(!bank.is_empty(), "the refresh reached the bank");
    for header in &bank {
        let header = header.as_deref().expect("every bank request carries a traceparent");
        assert_eq!(trace_id_of(header), TRACE_ID, "{header}");
        assert_ne!(header, TRACEPARENT, "the call is a new span of the trace");
        assert!(header.starts_with("00-") && header.len() == 55, "{header}");
    }
    let hooks = recorder.traceparents("/hooks");
    assert_eq!(hooks.len(), 1, "refresh.completed was delivered once");
    let hook = hooks[0].as_deref().expect("the webhook delivery carries a traceparent");
    assert_eq!(trace_id_of(hook), TRACE_ID, "{hook}");
    assert!(!bank.iter().any(|header| header.as_deref() == Some(hook)), "each call has its own span id");

    let job_lines = log_lines_with("webhook endpoint disabled");
    assert!(
        job_lines.iter().any(|line| line.contains(TRACE_ID)),
        "the delivery job's line names the trace: {job_lines:?}"
    );
}

#[tokio::test]
async fn an_invalid_traceparent_is_ignored_and_the_work_gets_a_trace_of_its_own() {
    let app = TestApp::spawn().await;
    let recorder = Recorder::start(StatusCode::NO_CONTENT).await;
    let (key, institution) = tenant_at_recorded_bank(&app, &recorder).await;
    let invalid = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";

    let created = create_connection(&app, &key, institution, invalid).await;
    assert_eq!(created.status(), 201, "an invalid traceparent is not an error");
    app.refresh_pool().run_until_idle().await;

    let bank = recorder.traceparents("/bank/");
    let hooks = recorder.traceparents("/hooks");
    let first = bank.first().cloned().flatten().expect("the bank request carries a traceparent");
    let trace = trace_id_of(&first).to_owned();
    assert_eq!(trace.len(), 32);
    assert_ne!(trace, TRACE_ID, "the invalid header's trace id is not used");
    assert!(trace.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{first}");
    let hook = hooks.first().cloned().flatten().expect("the delivery carries a traceparent");
    assert_eq!(trace_id_of(&hook), trace, "the new trace still follows the work to the receiver");
}
