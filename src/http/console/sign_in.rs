//! Signing in with an API key, once, for a session cookie; signing out.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::super::AppState;
use super::super::auth::{ClientAddress, sign_in};
use super::{Agent, COOKIE, Refusal, Settings, page};
use crate::session;

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only console addresses are returned to, so a crafted link cannot send an agent elsewhere.
pub fn is_console_path(path: &str) -> bool {
    (path == "/console" || path.starts_with("/console/") || path.starts_with("/console?"))
        && !path.contains("//")
        && !path.contains('\\')
}

pub async fn form(Query(next): Query<Next>) -> Response {
    page::bare(StatusCode::OK, "Sign in", sign_in_form(next.next.as_deref(), None))
}

fn sign_in_form(next: Option<&str>, problem: Option<&str>) -> Markup {
    html! {
        section.signin {
            h1 { "Sign in to the helpdesk console" }
            p { "Paste an API key. Helpdesk and admin keys see every tenant; a tenant key sees its own connections. \
                 The key is used once to start a session and is not kept in your browser." }
            @if let Some(problem) = problem { p.notice.error role="alert" #signin-error { (problem) } }
            form method="post" action="/console/sign-in" {
                @if let Some(next) = next.filter(|next| is_console_path(next)) {
                    input type="hidden" name="next" value=(next);
                }
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="off" spellcheck="false" required
                    aria-describedby=[problem.map(|_| "signin-error")];
                button type="submit" { "Sign in" }
            }
        }
    }
}

/// The sign-in form's fields. Not `Debug`-printed anywhere: it holds the key.
#[derive(Deserialize)]
pub struct SignIn {
    key: String,
    next: Option<String>,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SignIn").field("key", &"<redacted>").field("next", &self.next).finish()
    }
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(settings): Extension<Arc<Settings>>,
    headers: HeaderMap,
    ClientAddress(client): ClientAddress,
    Form(input): Form<SignIn>,
) -> Result<Response, Refusal> {
    let next = input.next.as_deref().filter(|next| is_console_path(next));
    let principal = match sign_in(&state, client, &input.key).await {
        Ok(principal) => principal,
        Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
            let form = sign_in_form(next, Some("That key is not valid or has been revoked. Check it and try again."));
            return Ok(page::bare(StatusCode::UNAUTHORIZED, "Sign in", form));
        }
        Err(error) => return Err(error.into()),
    };
    let id = session::start(&state.pool, &principal, settings.lifetimes).await?;
    tracing::info!(key_id = %principal.key_id, role = principal.role.as_str(), "console session started");
    let secure = settings.secure_cookies || behind_tls(&headers);
    let cookie = format!(
        "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict{}",
        id.expose(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to(next.unwrap_or("/console")).into_response();
    let value = HeaderValue::from_str(&cookie).map_err(|error| super::super::problem::ApiError::internal(&error))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

#[derive(Debug, Deserialize)]
pub struct Guarded {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    agent: Agent,
    Form(form): Form<Guarded>,
) -> Result<Response, Refusal> {
    agent.check_form(&form.csrf)?;
    session::end(&state.pool, &agent.session).await?;
    let mut response = Redirect::to("/console/sign-in").into_response();
    let expired = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        for good in ["/console", "/console/connections?q=x", "/console?x=1"] {
            assert!(is_console_path(good), "{good}");
        }
        for bad in ["https://evil.example/console", "//evil.example/console", "/consolex", "/console/\\evil", "/v1/x"] {
            assert!(!is_console_path(bad), "{bad}");
        }
    }
}
