//! Institutions: refresh success over the last hour and day, the open incident, and (for admins)
//! the Direct Connect settings.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::super::AppState;
use super::super::pagination::{Page, PageParams};
use super::super::problem::ApiError;
use super::page::{self, Section, when};
use super::{Agent, Refusal, charts};
use crate::auth::Role;
use crate::incident::store::HourlyOutcomes;
use crate::incident::{self, Incident, IncidentState};
use crate::institution::{Institution, store};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    agent: Agent,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    if query.q.chars().count() > 200 {
        return Err(ApiError::bad_request("invalid_query_parameter", "A search is at most 200 characters.").into());
    }
    let request = PageParams { limit: Some(25), cursor: query.cursor.clone() }.validate()?;
    let q = Some(query.q.trim()).filter(|q| !q.is_empty());
    let rows = store::list(&state.reads, q, request.after, request.fetch_limit()).await?;
    let result = Page::of(rows, &request, |row| (row.created_at, row.id));
    let ids: Vec<Uuid> = result.items.iter().map(|row| row.id).collect();
    let now = Utc::now();
    let hourly = incident::store::hourly_outcomes(&state.reads, &ids, now).await?;
    let open: HashMap<Uuid, Incident> =
        incident::store::list(&state.reads, Some(IncidentState::Open), None, None, 1000)
            .await?
            .into_iter()
            .map(|incident| (incident.institution.id, incident))
            .collect();
    let body = html! {
        h1 { "Institutions" }
        form.filters method="get" action="/console/institutions" data-live="results" role="search" {
            label { "Search name, slug or alias" input type="search" name="q" value=(query.q) maxlength="200"; }
            button type="submit" { "Search" }
        }
        section.card #results aria-labelledby="institution-list" {
            h2 #institution-list { "Institutions" }
            @if result.items.is_empty() {
                (page::empty("No institution matches. Search for part of the bank's name."))
            } @else {
                table {
                    thead { tr { th { "Institution" } th.num { "Success, 1 h" } th.num { "Success, 24 h" } th { "Hourly, 24 h" } th { "Incident" } } }
                    tbody { @for institution in &result.items { (row(institution, &hourly, open.get(&institution.id))) } }
                }
            }
            (page::pager("/console/institutions", &[("q", query.q.clone())], query.cursor.is_some(), result.next_cursor.as_deref()))
        }
    };
    Ok(page::render(&agent, Section::Institutions, "Institutions", body))
}

fn row(institution: &Institution, hourly: &[HourlyOutcomes], incident: Option<&Incident>) -> Markup {
    let (hour_attempts, hour_successes) = charts::totals(hourly, institution.id, 1);
    let (day_attempts, day_successes) = charts::totals(hourly, institution.id, 24);
    let rates = charts::hourly_rates(hourly, institution.id);
    html! {
        tr {
            td { a href={ "/console/institutions/" (institution.id) } { (institution.name) }
                 @if !institution.active { " " span.badge { "inactive" } } }
            td.num { (charts::percent(hour_successes, hour_attempts)) }
            td.num { (charts::percent(day_successes, day_attempts)) }
            td { (charts::sparkline(&rates, &format!("Hourly success rate of {} over 24 hours", institution.name))) }
            td { @match incident {
                Some(incident) => a href={ "/console/incidents/" (incident.id) } { (incident.title) },
                None => span.muted { "none" },
            } }
        }
    }
}

pub async fn detail(State(state): State<AppState>, agent: Agent, Path(id): Path<Uuid>) -> Result<Response, Refusal> {
    let institution =
        store::get(&state.reads, id).await?.ok_or_else(|| ApiError::not_found("No institution has that id."))?;
    let counts = store::connection_counts(&state.reads, id, agent.caller.0.tenant_id).await?;
    let now = Utc::now();
    let hourly = incident::store::hourly_outcomes(&state.reads, &[id], now).await?;
    let open_incident = incident::store::open_for(&state.reads, id).await?;
    let (hour_attempts, hour_successes) = charts::totals(&hourly, id, 1);
    let (day_attempts, day_successes) = charts::totals(&hourly, id, 24);
    let rates = charts::hourly_rates(&hourly, id);
    let body = html! {
        p { a href="/console/institutions" { "← Institutions" } }
        h1 { (institution.name) }
        div.grid {
            section.card aria-labelledby="rates" {
                h2 #rates { "Refresh success" }
                dl.facts {
                    dt { "Last hour" } dd #rate-1h { (charts::percent(hour_successes, hour_attempts)) span.muted { " of " (hour_attempts) " refreshes" } }
                    dt { "Last 24 hours" } dd #rate-24h { (charts::percent(day_successes, day_attempts)) span.muted { " of " (day_attempts) " refreshes" } }
                }
                (charts::sparkline(&rates, "Hourly success rate over 24 hours"))
            }
            section.card aria-labelledby="incident" {
                h2 #incident { "Incident" }
                @match &open_incident {
                    Some(incident) => p { a href={ "/console/incidents/" (incident.id) } { (incident.title) } " · expected end " (when(incident.wait_until, now)) },
                    None => (page::empty("No open incident. Declare one on the Incidents page if the bank has announced an outage.")),
                }
            }
            section.card aria-labelledby="by-state" {
                h2 #by-state { "Connections by state" }
                @if counts.is_empty() {
                    (page::empty("No connections use this institution."))
                } @else {
                    ul { @for (state, count) in &counts {
                        li { a href={ "/console/connections?institution_id=" (id) "&state=" (state) } { (count) " " (state.replace('_', " ")) } }
                    } }
                }
            }
        }
        @if agent.caller.0.role == Role::Admin {
            section.card aria-labelledby="direct-connect" {
                h2 #direct-connect { "Direct Connect settings" }
                dl.facts {
                    dt { "Provider" } dd { (page::words(&institution.provider)) }
                    dt { "OFX server" } dd { (institution.ofx.url.as_deref().unwrap_or("not set")) }
                    dt { "ORG" } dd { (institution.ofx.org) }
                    dt { "FID" } dd { (institution.ofx.fid) }
                    dt { "App id / version" } dd { (institution.ofx.app_id) " / " (institution.ofx.app_version) }
                    dt { "OFX version" } dd { (institution.ofx.version) }
                    dt { "Slug" } dd { code { (institution.slug) } }
                    dt { "Aliases" } dd { @if institution.aliases.is_empty() { span.muted { "none" } } @else { (institution.aliases.join(", ")) } }
                }
                p.muted { "Change these with PUT /v1/institutions/" (institution.id) " (admin)." }
            }
        }
    };
    Ok(page::render(&agent, Section::Institutions, &institution.name, body))
}
