//! The console's frame and the small pieces every page shares: times, states, code links, pagers,
//! and the page that shows an error as a sentence.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;

use super::super::problem::ApiError;
use super::Agent;
use crate::auth::Role;
use crate::catalog::Code;

/// The console's sections, for the navigation's current marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Connections,
    Incidents,
    Errors,
    Institutions,
}

const SECTIONS: [(Section, &str, &str); 5] = [
    (Section::Overview, "/console", "Overview"),
    (Section::Connections, "/console/connections", "Connections"),
    (Section::Incidents, "/console/incidents", "Incidents"),
    (Section::Errors, "/console/errors", "Error reference"),
    (Section::Institutions, "/console/institutions", "Institutions"),
];

/// A whole page for a signed-in agent.
pub fn render(agent: &Agent, section: Section, title: &str, body: Markup) -> Response {
    let who = match agent.caller.0.role {
        Role::Admin => "admin".to_owned(),
        Role::Helpdesk => "helpdesk".to_owned(),
        Role::Tenant => format!("tenant {}", short_id(agent.caller.0.tenant_id.unwrap_or_default())),
    };
    let frame = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    (navigation(Some(section)))
                    form.signout method="post" action="/console/sign-out" {
                        input type="hidden" name="csrf" value=(agent.csrf());
                        span.who { "Signed in as " (who) }
                        button type="submit" { "Sign out" }
                    }
                }
                main #main { (body) }
            }
        }
    };
    html_response(StatusCode::OK, frame)
}

fn navigation(section: Option<Section>) -> Markup {
    html! {
        nav aria-label="Console" {
            a.brand href="/console" { "feedwatch" }
            ul {
                @for (each, href, label) in SECTIONS {
                    li { a href=(href) aria-current=[(Some(each) == section).then_some("page")] { (label) } }
                }
            }
        }
    }
}

/// A page without the agent's session at hand: sign-in, or an error page (whose links lead
/// back into the console, or to sign-in for someone signed out).
pub fn bare(status: StatusCode, title: &str, body: Markup) -> Response {
    let signed_out = status == StatusCode::OK || status == StatusCode::UNAUTHORIZED;
    let frame = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    @if signed_out { nav aria-label="Console" { a.brand href="/console" { "feedwatch" } } }
                    @else { (navigation(None)) }
                }
                main #main { (body) }
            }
        }
    };
    html_response(status, frame)
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · feedwatch console" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// What the API would have answered, as a page: its sentence, never its JSON.
pub fn error_page(error: &ApiError) -> Response {
    let status = error.status();
    let heading = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Not possible right now",
        StatusCode::TOO_MANY_REQUESTS => "Too soon",
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => "Please check what you entered",
        _ if status.is_server_error() => "Something went wrong on our side",
        _ => "That did not work",
    };
    let body = html! {
        h1 { (heading) }
        p.notice.error role="alert" { (error.detail()) }
        p { a href="/console" { "Back to the overview" } }
    };
    bare(status, heading, body)
}

/// A time as people say it ("3 hours ago"), the exact time on hover.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC")) { (relative(at, now)) } }
}

/// `when`, or a dash for never.
pub fn when_or(at: Option<DateTime<Utc>>, now: DateTime<Utc>, never: &str) -> Markup {
    match at {
        Some(at) => when(at, now),
        None => html! { span.muted { (never) } },
    }
}

pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let (magnitude, future) = (seconds.unsigned_abs(), seconds < 0);
    let span = match magnitude {
        0..=44 => return if future { "in a few seconds".to_owned() } else { "just now".to_owned() },
        45..=5_399 => plural(magnitude.div_ceil(60).max(1), "minute"),
        5_400..=129_599 => plural((magnitude + 1_800) / 3_600, "hour"),
        _ => plural((magnitude + 43_200) / 86_400, "day"),
    };
    if future { format!("in {span}") } else { format!("{span} ago") }
}

fn plural(count: u64, unit: &str) -> String {
    if count == 1 { format!("1 {unit}") } else { format!("{count} {unit}s") }
}

/// A seconds count as people say it: "4 minutes".
pub fn duration(seconds: f64) -> String {
    // Rounded to whole seconds for display; fractions do not matter here.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = seconds.max(0.0).round() as u64;
    match whole {
        0..=89 => plural(whole, "second"),
        90..=5_399 => plural(whole.div_ceil(60), "minute"),
        _ => plural(whole / 3_600, "hour"),
    }
}

/// An enum's wire name in words: `needs_user_action` → "needs user action".
pub fn words<T: Serialize>(value: &T) -> String {
    wire(value).replace('_', " ")
}

/// An enum's wire name: what the API and the URL queries say.
pub fn wire<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

pub fn state_badge(state: crate::connection::State) -> Markup {
    html! { span class={ "badge state-" (state.as_str()) } { (words(&state)) } }
}

/// Every error code shown anywhere links to its reference entry.
pub fn code_link(code: Code) -> Markup {
    html! { a.code href={ "/console/errors/" (code) } { (code) } }
}

pub fn short_id(id: uuid::Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// A page of a list: a link to the next page keeping every filter, and back to the first.
pub fn pager(base: &str, query: &[(&str, String)], cursor_present: bool, next: Option<&str>) -> Markup {
    let with = |cursor: Option<&str>| {
        let mut pairs: Vec<(&str, &str)> =
            query.iter().filter(|(_, value)| !value.is_empty()).map(|(name, value)| (*name, value.as_str())).collect();
        if let Some(cursor) = cursor {
            pairs.push(("cursor", cursor));
        }
        link(base, &pairs)
    };
    html! {
        nav.pager aria-label="Pages" {
            @if cursor_present { a href=(with(None)) { "← First page" } }
            @if let Some(next) = next { a rel="next" href=(with(Some(next))) { "Next page →" } }
        }
    }
}

/// `base?name=value&…` with every value encoded.
pub fn link(base: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> =
        pairs.iter().map(|(name, value)| format!("{}={}", encode_query(name), encode_query(value))).collect();
    if query.is_empty() { base.to_owned() } else { format!("{base}?{}", query.join("&")) }
}

/// Percent-encoding for a query component (RFC 3986 unreserved characters pass).
pub fn encode_query(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// An empty list's sentence: what it means, and what to do.
pub fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = Utc::now();
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - TimeDelta::minutes(1), now), "1 minute ago");
        assert_eq!(relative(now - TimeDelta::hours(3), now), "3 hours ago");
        assert_eq!(relative(now - TimeDelta::days(2), now), "2 days ago");
        assert_eq!(relative(now + TimeDelta::minutes(30), now), "in 30 minutes");
    }

    #[test]
    fn links_keep_filters_encoded() {
        assert_eq!(
            link("/console/connections", &[("q", "a b&c"), ("state", "healthy")]),
            "/console/connections?q=a%20b%26c&state=healthy"
        );
        assert_eq!(link("/x", &[]), "/x");
    }
}
