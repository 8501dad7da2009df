//! Connections: the searchable list, the actions (refresh now, pause, resume) and a refresh's
//! progress. The detail page is `connection`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::AppState;
use super::super::connections::requests::ConnectionFilters;
use super::super::connections::views::{ConnectionView, view};
use super::super::connections::{list_filter, set_paused};
use super::super::pagination::PageParams;
use super::super::problem::{ApiError, FieldError};
use super::super::refreshes::{self, may_refresh};
use super::page::{self, Section};
use super::{Agent, Refusal};
use crate::auth::Role;
use crate::catalog::{Action, Code};
use crate::connection::{self, store as connection_store};
use crate::jobs::{self, JobState};
use crate::refresh::{self, Trigger};

pub use super::connection::detail;

const PAGE_SIZE: u32 = 25;

/// The list's query as typed in the form: empty fields mean "any".
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    stale_for: String,
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    institution_id: String,
    cursor: Option<String>,
}

impl ListQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("q", self.q.clone()),
            ("state", self.state.clone()),
            ("error_code", self.error_code.clone()),
            ("stale_for", self.stale_for.clone()),
            ("tenant_id", self.tenant_id.clone()),
            ("institution_id", self.institution_id.clone()),
        ]
    }

    /// The API's filters, so the list means what `GET /v1/connections` means.
    fn filters(&self) -> Result<ConnectionFilters, ApiError> {
        let mut errors = Vec::new();
        let mut field = |name: &str, text: &str, message: &str| {
            errors.push(FieldError::new(name, format!("“{text}” {message}")));
        };
        fn some(text: &str) -> Option<&str> {
            Some(text.trim()).filter(|text| !text.is_empty())
        }
        let state = some(&self.state).and_then(|text| {
            connection::State::parse(text).or_else(|| {
                field("state", text, "is not a health state");
                None
            })
        });
        let error_code = some(&self.error_code).and_then(|text| {
            text.parse::<u32>().ok().or_else(|| {
                field("error_code", text, "is not an error code");
                None
            })
        });
        let mut uuid = |name: &str, text: &str| {
            some(text).and_then(|text| {
                Uuid::try_parse(text).ok().or_else(|| {
                    field(name, text, "is not an id");
                    None
                })
            })
        };
        let tenant_id = uuid("tenant_id", &self.tenant_id);
        let institution_id = uuid("institution_id", &self.institution_id);
        if !errors.is_empty() {
            let detail = errors.iter().map(|error| error.message.clone()).collect::<Vec<_>>().join("; ");
            return Err(ApiError::bad_request(
                "invalid_query_parameter",
                format!("Some filters are not valid: {detail}."),
            ));
        }
        Ok(ConnectionFilters {
            tenant_id,
            state,
            institution_id,
            error_code,
            stale_for: some(&self.stale_for).map(str::to_owned),
            q: some(&self.q).map(str::to_owned),
        })
    }
}

pub async fn list(
    State(state): State<AppState>,
    agent: Agent,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    let page = PageParams { limit: Some(PAGE_SIZE), cursor: query.cursor.clone() }.validate()?;
    let filter = list_filter(&agent.caller.0, query.filters()?)?;
    let rows = connection_store::list(&state.reads, &filter, page.after, page.fetch_limit()).await?;
    let catalog = state.catalog.current();
    let result = super::super::pagination::Page::from_rows(
        rows,
        &page,
        |row| (row.created_at, row.id),
        |row| view(row, &catalog),
    );
    let fleet_wide = agent.caller.0.role != Role::Tenant;
    let now = Utc::now();
    let body = html! {
        h1 { "Connections" }
        form.filters method="get" action="/console/connections" data-live="results" role="search" {
            label { "Search name or institution" input type="search" name="q" value=(query.q) maxlength="200"; }
            label { "State" select name="state" {
                option value="" { "Any state" }
                @for each in connection::State::ALL {
                    option value=(each.as_str()) selected[query.state == each.as_str()] { (page::words(&each)) }
                }
            } }
            label { "Error code" input type="text" inputmode="numeric" name="error_code" value=(query.error_code) size="6"; }
            label { "No success for" select name="stale_for" {
                option value="" { "Any time" }
                @for (value, label) in [("24h", "a day or more"), ("48h", "2 days or more"), ("7d", "a week or more")] {
                    option value=(value) selected[query.stale_for == value] { (label) }
                }
            } }
            @if fleet_wide { label { "Tenant id" input type="text" name="tenant_id" value=(query.tenant_id) size="36"; } }
            @if !query.institution_id.is_empty() { input type="hidden" name="institution_id" value=(query.institution_id); }
            button type="submit" { "Filter" }
        }
        div #results {
            @if result.items.is_empty() {
                (page::empty("No connection matches these filters. Clear a filter, or search for part of a name."))
            } @else {
                table {
                    thead { tr {
                        th { "State" } th { "Connection" } @if fleet_wide { th class="hide-narrow" { "Tenant" } }
                        th { "Error" } th { "Last success" } th { "Next step" }
                    } }
                    tbody { @for row in &result.items { (list_row(row, fleet_wide, now)) } }
                }
            }
            (page::pager("/console/connections", &query.pairs(), query.cursor.is_some(), result.next_cursor.as_deref()))
        }
    };
    Ok(page::render(&agent, Section::Connections, "Connections", body))
}

fn list_row(row: &ConnectionView, fleet_wide: bool, now: chrono::DateTime<Utc>) -> Markup {
    html! {
        tr {
            td { (page::state_badge(row.state)) @if row.paused { " " span.badge { "paused" } } }
            td { a href={ "/console/connections/" (row.id) } { (row.display_name) } br; span.muted { (row.institution.name) } }
            @if fleet_wide { td class="hide-narrow" { a.muted href={ "/console/connections?tenant_id=" (row.tenant_id) } { (page::short_id(row.tenant_id)) } } }
            td { @match &row.health.error {
                Some(error) => { (page::code_link(error.code)) " " (error.title) },
                None => span.muted { "none" },
            } }
            td { @match row.health.last_success_at {
                Some(at) => { "last success " (page::when(at, now)) },
                None => span.muted { "never succeeded" },
            } }
            td { (next_step(row)) }
        }
    }
}

/// The one thing to do about a connection, in words.
pub fn next_step(view: &ConnectionView) -> &'static str {
    if view.state == connection::State::Disconnected {
        return "Disconnected: the customer connects the bank again";
    }
    if view.paused {
        return "Paused: resume to refresh again";
    }
    match view.health.error.as_ref().and_then(|error| error.action) {
        Some(Action::Reconnect) => "Customer signs in again with new credentials",
        Some(Action::AnswerMfa) => "Customer answers the bank's security check",
        Some(Action::FixAtBank) => "Customer fixes it at the bank",
        Some(Action::RemapAccount) => "Remap the account",
        Some(Action::WaitUntil) => "Wait: we retry automatically",
        Some(Action::UploadFile) => "Customer uploads a statement file",
        Some(Action::ContactSupport) => "Escalate to support",
        Some(Action::Nothing) | None => "Nothing to do",
    }
}

#[derive(Debug, Deserialize)]
pub struct Guarded {
    #[serde(default)]
    csrf: String,
}

/// Refresh now: helpdesk and admin force it (past pauses, cooldown and waiting for the user),
/// as the API's `{"force": true}`; a tenant asks plainly.
pub async fn refresh(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<Uuid>,
    Form(form): Form<Guarded>,
) -> Result<Response, Refusal> {
    agent.check_form(&form.csrf)?;
    let force = agent.caller.0.role != Role::Tenant;
    may_refresh(&state, &agent.caller, id, force).await?;
    let mut tx = crate::database::begin(&state.pool).await?;
    let enqueued = refresh::enqueue(&mut tx, id, Trigger::Manual).await?;
    tx.commit().await?;
    tracing::info!(connection_id = %id, refresh_id = enqueued.job_id, "console refresh");
    Ok(Redirect::to(&format!("/console/connections/{id}?refresh={}", enqueued.job_id)).into_response())
}

pub async fn pause(
    state: State<AppState>,
    agent: Agent,
    path: Path<Uuid>,
    form: Form<Guarded>,
) -> Result<Response, Refusal> {
    paused(state, agent, path, form, true).await
}

pub async fn resume(
    state: State<AppState>,
    agent: Agent,
    path: Path<Uuid>,
    form: Form<Guarded>,
) -> Result<Response, Refusal> {
    paused(state, agent, path, form, false).await
}

async fn paused(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<Uuid>,
    Form(form): Form<Guarded>,
    paused: bool,
) -> Result<Response, Refusal> {
    agent.check_form(&form.csrf)?;
    set_paused(&state, &agent.caller, id, paused).await?;
    Ok(Redirect::to(&format!("/console/connections/{id}")).into_response())
}

/// A refresh's progress, for the page's script.
#[derive(Debug, Serialize)]
pub struct Progress {
    done: bool,
    succeeded: bool,
    text: String,
}

pub async fn refresh_status(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
) -> Result<axum::Json<Progress>, Refusal> {
    let job = jobs::store::get(&state.reads, id).await?.filter(|job| job.kind == refresh::KIND);
    let job = match job {
        Some(job) if refreshes::visible(&state, &agent.caller.0, job.connection_id).await? => job,
        _ => return Err(ApiError::not_found("No refresh has that id.").into()),
    };
    Ok(axum::Json(progress(&job)))
}

pub fn progress(job: &jobs::store::JobRecord) -> Progress {
    let attempt = format!("attempt {} of {}", job.attempt.max(1), job.max_attempts);
    let (done, succeeded, text) = match job.state {
        JobState::Available if job.attempt == 0 => (false, false, "Refresh queued; waiting for a worker…".to_owned()),
        JobState::Available => (false, false, format!("Retrying after a failure ({attempt})…")),
        JobState::Running => (false, false, format!("Talking to the bank ({attempt})…")),
        JobState::Succeeded => (true, true, "Refresh finished: the connection is up to date.".to_owned()),
        JobState::Failed => {
            let code = failure_code(job).map(|code| format!(" with error {code}")).unwrap_or_default();
            (true, false, format!("Refresh failed{code}; see the health card below."))
        }
        JobState::Cancelled => (true, false, "Refresh cancelled: a newer one took its place.".to_owned()),
    };
    Progress { done, succeeded, text }
}

/// The catalogue code a failed refresh ended with, from its result.
pub fn failure_code(job: &jobs::store::JobRecord) -> Option<Code> {
    let code = job.result.as_ref()?.get("code")?.as_u64()?;
    u32::try_from(code).ok().map(Code::new)
}
