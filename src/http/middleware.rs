//! Cross-cutting request handling: problem normalisation and request metrics.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::AppState;
use super::problem::{PROBLEM_JSON, problem_for_status};
use crate::telemetry::RequestLabels;
use crate::telemetry::trace::{self, TraceContext};

pub const REQUEST_ID: &str = "x-request-id";
/// Problem bodies are small; anything larger is not ours and is replaced wholesale.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// Makes every error response a problem+json document carrying the request id: our handlers'
/// problems get the id added, and bare statuses from routing and layers (404, 405, 408, 413,
/// panics) are replaced by the matching problem.
pub async fn problem_details(request: Request, next: Next) -> Response {
    let request_id = request.headers().get(REQUEST_ID).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let response = next.run(request).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) || is_console_page(&response) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let (mut parts, body) = response.into_parts();
    let problem = if is_problem { read_problem(body).await } else { None };
    let mut problem = match problem {
        Some(problem) => problem,
        None => {
            let fallback = problem_for_status(parts.status).into_response();
            let (fallback_parts, body) = fallback.into_parts();
            for (name, value) in &fallback_parts.headers {
                if !parts.headers.contains_key(name) {
                    parts.headers.insert(name, value.clone());
                }
            }
            read_problem(body).await.unwrap_or_default()
        }
    };
    if let Some(id) = request_id {
        problem.insert("request_id".to_owned(), serde_json::Value::String(id));
    }
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The console's error pages are HTML for people (a 404 page, a refused form), not API errors.
fn is_console_page(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"text/html"))
}

async fn read_problem(body: Body) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = http_body_util::Limited::new(body, MAX_PROBLEM_BYTES).collect().await.ok()?.to_bytes();
    serde_json::from_slice(&bytes).ok()
}

/// Counts requests and observes their latency by route template and status.
pub async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels { method, route, status: response.status().as_u16() };
    state.metrics.http_requests.get_or_create(&labels).inc();
    state.metrics.http_request_duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    response
}

/// Continues the caller's W3C trace (`traceparent`), or starts one: the request's log lines,
/// the jobs it enqueues and their calls to banks and webhook receivers share its trace id.
/// A header the specification calls invalid is ignored, as it says, not refused.
pub async fn trace_context(request: Request, next: Next) -> Response {
    let context = request
        .headers()
        .get(trace::HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::parse)
        .unwrap_or_else(TraceContext::new_root);
    context.scope(next.run(request)).await
}
