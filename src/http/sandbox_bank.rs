//! Serves the sandbox bank over HTTP: `POST /ofx/{slug}` as an OFX Direct Connect server, and
//! `GET /` listing the institutions. Demo mode serves it on a loopback listener of its own, never
//! on the API's port (it is unauthenticated, and it stalls on purpose); `feedwatch sandbox-bank`
//! serves it alone.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tower_http::timeout::TimeoutLayer;

use crate::sandbox::{Outcome, SandboxBank};

const OFX_CONTENT_TYPE: &str = "application/x-ofx";

pub fn router(bank: Arc<SandboxBank>) -> Router {
    Router::new().route("/", get(institutions)).route("/ofx/{slug}", post(exchange)).with_state(bank)
}

/// The sandbox bank as demo mode serves it: the bank's own answers (503s, 429s, stalls), not
/// problem+json, so none of the API's layers; but a stall ends at `request_timeout` with the 504
/// a bank's gateway would give, so a stalled request holds its connection no longer than an API
/// request may.
pub fn service(bank: Arc<SandboxBank>, request_timeout: Duration) -> Router {
    router(bank).layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, request_timeout))
}

#[derive(Debug, Serialize)]
struct InstitutionView {
    slug: &'static str,
    name: &'static str,
    org: &'static str,
    fid: &'static str,
    ofx_version: u16,
    /// Relative to where this router is mounted.
    path: String,
}

async fn institutions(State(bank): State<Arc<SandboxBank>>) -> Json<Vec<InstitutionView>> {
    let views = bank.institutions().iter().map(|institution| InstitutionView {
        slug: institution.slug,
        name: institution.name,
        org: institution.org,
        fid: institution.fid,
        ofx_version: institution.version.number(),
        path: institution.path(),
    });
    Json(views.collect())
}

async fn exchange(State(bank): State<Arc<SandboxBank>>, Path(slug): Path<String>, body: Bytes) -> Response {
    let reply = bank.respond(&slug, &body, bank.clock().now());
    // Closing the bank cuts delays short so shutdown is never held up by the latency dial.
    tokio::select! {
        () = tokio::time::sleep(reply.delay) => {}
        () = bank.closed() => {}
    }
    match reply.outcome {
        Outcome::Ofx(text) | Outcome::Garbled(text) => ofx_response(text),
        Outcome::Http { status, retry_after } => status_response(status, retry_after),
        Outcome::Stall => stall(&bank).await,
    }
}

fn ofx_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, OFX_CONTENT_TYPE)], text).into_response()
}

fn status_response(status: u16, retry_after: Option<Duration>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, status.canonical_reason().unwrap_or("error")).into_response();
    if let Some(delay) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(delay.as_secs()));
    }
    response
}

/// Holds the request open until the client gives up (dropping this future), the stall limit
/// passes, or the bank closes for shutdown.
async fn stall(bank: &SandboxBank) -> Response {
    tokio::select! {
        () = tokio::time::sleep(bank.config().stall_limit) => {}
        () = bank.closed() => {}
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    response
}
