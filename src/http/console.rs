//! The helpdesk console at `/console`: pages rendered on the server (maud) for the people who
//! answer "why did my bank feed stop?". Every action calls what the JSON API calls (the same
//! `http` helpers over `connection::lifecycle`, `refresh`, `incident` and the catalogue), so the
//! console cannot do what the caller's key could not.
//!
//! Sign-in exchanges an API key for a session (`crate::session`); the key is read once from the
//! sign-in form and never written to a page, URL, cookie or log line. Pages carry a strict
//! Content-Security-Policy: one same-origin script, no inline script or style, no other origin.

mod assets;
mod charts;
mod connection;
mod connections;
mod errors;
mod incidents;
mod institutions;
mod overview;
mod page;
mod sign_in;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::AppState;
use super::auth::Caller;
use super::problem::ApiError;
use crate::session::{self, Lifetimes, SessionId};

/// How the console's sessions behave.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Mark the session cookie `Secure` on every response, for a TLS proxy that does not send
    /// `X-Forwarded-Proto: https` (with it, the cookie is `Secure` anyway).
    pub secure_cookies: bool,
    pub lifetimes: Lifetimes,
}

const COOKIE: &str = "fw_console";

/// No script but the console's own file, nothing from another origin, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(settings: Settings) -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/connections", get(connections::list))
        .route("/console/connections/{id}", get(connections::detail))
        .route("/console/connections/{id}/refresh", post(connections::refresh))
        .route("/console/connections/{id}/pause", post(connections::pause))
        .route("/console/connections/{id}/resume", post(connections::resume))
        .route("/console/refreshes/{id}", get(connections::refresh_status))
        .route("/console/incidents", get(incidents::list).post(incidents::declare))
        .route("/console/incidents/{id}", get(incidents::detail))
        .route("/console/incidents/{id}/resolve", post(incidents::resolve))
        .route("/console/errors", get(errors::search))
        .route("/console/errors/{code}", get(errors::entry))
        .route("/console/institutions", get(institutions::list))
        .route("/console/institutions/{id}", get(institutions::detail))
        .route("/console/assets/console.js", get(assets::script))
        .route("/console/assets/console.css", get(assets::style))
        .route("/console/{*rest}", get(not_found))
        .method_not_allowed_fallback(not_allowed)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(Extension(Arc::new(settings)))
}

/// The console's own policy: only its script and style, nothing from elsewhere; no copies of a
/// page that shows a tenant's data. (Framing, sniffing and referrers: `hygiene`, for every response.)
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn not_found(agent: Agent) -> Refusal {
    let _ = agent;
    Refusal::Api(ApiError::not_found("There is no console page at this address."))
}

/// A form's address opened as a page (a bookmarked or reloaded action): a console page that
/// says so, not the API's JSON.
async fn not_allowed(agent: Agent) -> Refusal {
    let _ = agent;
    Refusal::Api(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This address only takes the console's own form. Go back to the page it came from and use its button.",
    ))
}

/// A signed-in agent: the caller its session stands for, and the session's form token.
#[derive(Debug)]
pub struct Agent {
    pub caller: Caller,
    session: SessionId,
}

impl Agent {
    pub fn csrf(&self) -> String {
        self.session.csrf_token()
    }

    /// Refuses a state-changing form that does not carry this session's token.
    pub fn check_form(&self, submitted: &str) -> Result<(), Refusal> {
        if self.session.csrf_matches(submitted) {
            Ok(())
        } else {
            Err(Refusal::Api(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_token_invalid",
                "This form did not come from your console session, or the session changed since the page loaded. \
                 Reload the page and try again.",
            )))
        }
    }
}

fn settings(parts: &Parts) -> Arc<Settings> {
    parts.extensions.get::<Arc<Settings>>().cloned().unwrap_or_default()
}

fn session_cookie(parts: &Parts) -> Option<SessionId> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| SessionId::parse(value))
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let back_to = (parts.method == axum::http::Method::GET).then(|| parts.uri.to_string());
        let sign_in = || Refusal::SignIn(back_to.clone());
        let id = session_cookie(parts).ok_or_else(sign_in)?;
        let live = session::resume(&state.pool, &id, settings(parts).lifetimes).await.map_err(ApiError::from)?;
        let live = live.ok_or_else(sign_in)?;
        Ok(Agent { caller: Caller(live.principal), session: id })
    }
}

/// Why a console request did not get its page.
#[derive(Debug)]
pub enum Refusal {
    /// No live session: to the sign-in page, then back to this address.
    SignIn(Option<String>),
    /// What the API would have answered, shown as a page with its sentence.
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(error: sqlx::Error) -> Self {
        Self::Api(ApiError::from(error))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn(back_to) => {
                let target = match back_to.filter(|path| sign_in::is_console_path(path)) {
                    Some(path) => format!("/console/sign-in?next={}", page::encode_query(&path)),
                    None => "/console/sign-in".to_owned(),
                };
                Redirect::to(&target).into_response()
            }
            Refusal::Api(error) => page::error_page(&error),
        }
    }
}
