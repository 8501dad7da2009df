//! Incidents: open and resolved, each with its institution, affected connections and timeline;
//! declare (with an expected end) and resolve, through the API's own functions.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::super::AppState;
use super::super::auth::{Allowed, Operators};
use super::super::connections::views::view;
use super::super::incidents::{DeclareIncident, PatchIncident, ResolveState, declare_for, update_for};
use super::super::pagination::{Page, PageParams};
use super::super::problem::{ApiError, FieldError};
use super::page::{self, Section, when, when_or};
use super::{Agent, Refusal, charts};
use crate::auth::Role;
use crate::connection::{self, ListFilter, store as connection_store};
use crate::incident::{Incident, IncidentState, store};
use crate::institution;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: String,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    agent: Agent,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    let wanted = match query.state.as_str() {
        "" => None,
        "open" => Some(IncidentState::Open),
        "resolved" => Some(IncidentState::Resolved),
        other => {
            return Err(ApiError::bad_request(
                "invalid_query_parameter",
                format!("“{other}” is not an incident state; use open or resolved."),
            )
            .into());
        }
    };
    let page_request = PageParams { limit: Some(25), cursor: query.cursor.clone() }.validate()?;
    let rows = store::list(&state.reads, wanted, None, page_request.after, page_request.fetch_limit()).await?;
    let result = Page::of(rows, &page_request, |row| (row.opened_at, row.id));
    let may_declare = agent.caller.0.role != Role::Tenant;
    let institutions =
        if may_declare { institution::store::list(&state.reads, None, None, 500).await? } else { Vec::new() };
    let now = Utc::now();
    let body = html! {
        h1 { "Incidents" }
        form.filters method="get" action="/console/incidents" {
            label { "Show" select name="state" {
                option value="" selected[wanted.is_none()] { "Open and resolved" }
                option value="open" selected[wanted == Some(IncidentState::Open)] { "Open" }
                option value="resolved" selected[wanted == Some(IncidentState::Resolved)] { "Resolved" }
            } }
            button type="submit" { "Show" }
        }
        section.card #results aria-labelledby="incident-list" {
            h2 #incident-list { "Incidents, newest first" }
            @if result.items.is_empty() {
                (page::empty("No incidents here. When a bank fails for many connections, feedwatch opens one by itself; you can also declare one below."))
            } @else {
                table {
                    thead { tr { th { "Institution" } th { "Title" } th { "State" } th { "Opened" } th { "Expected end / resolved" } } }
                    tbody {
                        @for incident in &result.items {
                            tr {
                                td { (incident.institution.name) }
                                td { a href={ "/console/incidents/" (incident.id) } { (incident.title) } }
                                td { (incident.state.as_str()) " (" (incident.source.as_str()) ")" }
                                td { (when(incident.opened_at, now)) }
                                td { @match incident.resolved_at { Some(at) => { "resolved " (when(at, now)) }, None => (when(incident.wait_until, now)) } }
                            }
                        }
                    }
                }
            }
            (page::pager("/console/incidents", &[("state", query.state.clone())], query.cursor.is_some(), result.next_cursor.as_deref()))
        }
        @if may_declare { (declare_form(&agent, &institutions, now)) }
    };
    Ok(page::render(&agent, Section::Incidents, "Incidents", body))
}

fn declare_form(agent: &Agent, institutions: &[institution::Institution], now: DateTime<Utc>) -> Markup {
    let default_end = (now + chrono::TimeDelta::hours(2)).format("%Y-%m-%dT%H:%M").to_string();
    html! {
        section.card aria-labelledby="declare" {
            h2 #declare { "Declare an incident" }
            p.muted { "For an outage a bank has announced. Affected connections wait until the expected end instead of retrying." }
            form.stacked method="post" action="/console/incidents" {
                input type="hidden" name="csrf" value=(agent.csrf());
                label { "Institution" select name="institution_id" required {
                    @for institution in institutions { option value=(institution.id) { (institution.name) } }
                } }
                label { "Title" input type="text" name="title" required maxlength="200" placeholder="Bank down for scheduled maintenance"; }
                label { "Message for affected customers" textarea name="message" maxlength="2000" rows="3" {} }
                label { "Expected end (UTC)" input type="datetime-local" name="expected_end" value=(default_end) required; }
                div { button #declare-submit type="submit" { "Declare incident" } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DeclareForm {
    #[serde(default)]
    csrf: String,
    institution_id: String,
    title: String,
    #[serde(default)]
    message: String,
    expected_end: String,
}

pub async fn declare(
    State(state): State<AppState>,
    agent: Agent,
    Form(form): Form<DeclareForm>,
) -> Result<Response, Refusal> {
    agent.check_form(&form.csrf)?;
    let operator = Allowed::<Operators>::check(&agent.caller)?;
    let mut errors = Vec::new();
    let institution_id = Uuid::try_parse(form.institution_id.trim())
        .map_err(|_| FieldError::new("institution", "choose an institution"));
    let wait_until =
        parse_local(&form.expected_end).ok_or_else(|| FieldError::new("expected end", "give a date and time"));
    let (institution_id, wait_until) = match (institution_id, wait_until) {
        (Ok(id), Ok(until)) => (id, until),
        (first, second) => {
            errors.extend(first.err());
            errors.extend(second.err());
            return Err(ApiError::validation(errors).into());
        }
    };
    let input =
        DeclareIncident { institution_id, title: form.title, message: form.message, wait_until: Some(wait_until) };
    let opened = declare_for(&state, &operator, input).await?;
    Ok(Redirect::to(&format!("/console/incidents/{}", opened.id)).into_response())
}

/// A `datetime-local` value, read as UTC (the form says so).
fn parse_local(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|naive| naive.and_utc())
}

pub async fn detail(State(state): State<AppState>, agent: Agent, Path(id): Path<Uuid>) -> Result<Response, Refusal> {
    let incident =
        store::get(&state.reads, id).await?.ok_or_else(|| ApiError::not_found("No incident has that id."))?;
    let filter = ListFilter {
        tenant_id: agent.caller.0.scope_tenant(None),
        institution_id: Some(incident.institution.id),
        state: Some(connection::State::BankIssue),
        ..ListFilter::default()
    };
    let affected = if incident.state == IncidentState::Open {
        connection_store::list(&state.reads, &filter, None, 26).await?
    } else {
        Vec::new()
    };
    let now = Utc::now();
    let catalog = state.catalog.current();
    let body = html! {
        p { a href="/console/incidents" { "← Incidents" } }
        h1 { (incident.institution.name) ": " (incident.title) }
        div.grid {
            (facts(&incident, now))
            section.card aria-labelledby="incident-timeline" {
                h2 #incident-timeline { "Timeline" }
                (charts::incident_timeline(incident.opened_at, incident.wait_until, incident.resolved_at, now))
                ul {
                    li { "Opened " (when(incident.opened_at, now)) " (" (incident.source.as_str()) ")" }
                    li { "Expected end " (when(incident.wait_until, now)) }
                    li { "Last changed " (when(incident.updated_at, now)) }
                    @if let Some(at) = incident.resolved_at { li { "Resolved " (when(at, now)) ": " (incident.resolution) } }
                }
            }
        }
        @if incident.state == IncidentState::Open {
            section.card aria-labelledby="affected" {
                h2 #affected { "Affected connections" }
                @if affected.is_empty() {
                    (page::empty("No connection is waiting on this bank right now."))
                } @else {
                    ul {
                        @for row in affected.into_iter().take(25).map(|row| view(row, &catalog)) {
                            li { a href={ "/console/connections/" (row.id) } { (row.display_name) } " " (page::state_badge(row.state)) }
                        }
                    }
                    p { a href={ "/console/connections?state=bank_issue&institution_id=" (incident.institution.id) } { "Every affected connection" } }
                }
            }
            @if agent.caller.0.role != Role::Tenant { (resolve_form(&agent, &incident)) }
        }
    };
    Ok(page::render(&agent, Section::Incidents, &incident.title, body))
}

fn facts(incident: &Incident, now: DateTime<Utc>) -> Markup {
    html! {
        section.card #incident aria-labelledby="incident-facts" {
            h2 #incident-facts { "Incident" }
            dl.facts {
                dt { "State" } dd #incident-state { (incident.state.as_str()) }
                dt { "Institution" } dd { a href={ "/console/institutions/" (incident.institution.id) } { (incident.institution.name) } }
                dt { "Message" } dd { @if incident.message.is_empty() { span.muted { "none" } } @else { (incident.message) } }
                @if let Some(code) = incident.error_code { dt { "Error" } dd { (page::code_link(code)) } }
                @if incident.attempted_connections > 0 {
                    dt { "Evidence" } dd { (incident.failed_connections) " of " (incident.attempted_connections) " connections failed at the bank" }
                }
                dt { "Expected end" } dd { (when(incident.wait_until, now)) }
                dt { "Resolved" } dd { (when_or(incident.resolved_at, now, "not yet")) }
            }
        }
    }
}

fn resolve_form(agent: &Agent, incident: &Incident) -> Markup {
    html! {
        section.card aria-labelledby="resolve" {
            h2 #resolve { "Resolve" }
            form.stacked method="post" action={ "/console/incidents/" (incident.id) "/resolve" } {
                input type="hidden" name="csrf" value=(agent.csrf());
                label { "What happened" textarea name="resolution" maxlength="2000" rows="2" { "The bank confirmed it is back." } }
                div { button #resolve-submit type="submit" { "Resolve incident" } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    resolution: String,
}

pub async fn resolve(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<Uuid>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, Refusal> {
    agent.check_form(&form.csrf)?;
    let operator = Allowed::<Operators>::check(&agent.caller)?;
    let resolution = Some(form.resolution).filter(|text| !text.trim().is_empty());
    let input =
        PatchIncident { state: Some(ResolveState::Resolved), resolution, title: None, message: None, wait_until: None };
    update_for(&state, &operator, id, input).await?;
    Ok(Redirect::to(&format!("/console/incidents/{id}")).into_response())
}
