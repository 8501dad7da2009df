//! The fleet at a glance: counts by state (the API's health summary, the same numbers), stale
//! connections, the queue and its workers, open incidents, and failing institutions split by who
//! must act, each with a day of hourly success rates.

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};

use super::super::AppState;
use super::super::health;
use super::page::{self, Section, when};
use super::{Agent, Refusal, charts};
use crate::auth::Role;
use crate::connection;
use crate::health::{FailingBySide, store as health_store};
use crate::incident::{self, IncidentState};
use crate::jobs;

const RANKED: i64 = 10;

pub async fn page(State(state): State<AppState>, agent: Agent) -> Result<Response, Refusal> {
    let principal = &agent.caller.0;
    let now = Utc::now();
    let summary = health::build(&state, principal, None, None, RANKED).await?;
    let fleet_wide = principal.role != Role::Tenant;
    let failing = match principal.tenant_id {
        Some(tenant) => health_store::tenant_failing_by_side(&state.reads, tenant, RANKED).await?,
        None => health_store::failing_by_side(&state.reads, RANKED).await?,
    };
    let ids: Vec<uuid::Uuid> = failing.iter().map(|row| row.institution_id).collect();
    let hourly = incident::store::hourly_outcomes(&state.reads, &ids, now).await?;
    // The summary's backlog reads the claim indexes only; counting every job by state would
    // read the retained history, which grows with the fleet.
    let workers = if fleet_wide { jobs::store::live_workers(&state.reads).await? } else { Vec::new() };
    let incidents = incident::store::list(&state.reads, Some(IncidentState::Open), None, None, 10).await?;

    let counts: Vec<(String, i64)> = connection::State::ALL
        .iter()
        .map(|state| (state.as_str().to_owned(), summary.by_state.get(state.as_str()).copied().unwrap_or(0)))
        .collect();
    let body = html! {
        h1 { "Fleet overview" }
        p.muted { "As of " (when(summary.generated_at, now)) ". "
            @if fleet_wide { "Every tenant." } @else { "Your connections only." } }
        div.grid {
            section.card aria-labelledby="by-state" {
                h2 #by-state { "Connections by health" }
                ul.counts #state-counts {
                    li data-count="connections" { span.n { (summary.connections) } "all connections" }
                    li data-count="stale" { span.n { a href={ "/console/connections?stale_for=" (summary.stale.stale_after_seconds / 3600) "h" } { (summary.stale.connections) } } "stale (no success for "
                        (page::duration(summary.stale.stale_after_seconds as f64)) ")" }
                    @for (state, count) in &counts {
                        li data-count=(state) {
                            span.n { a href={ "/console/connections?state=" (state) } { (count) } }
                            (state.replace('_', " "))
                        }
                    }
                }
                (charts::state_bars(&counts))
            }
            @if let Some(backlog) = &summary.queue { (queue_card(backlog, &workers, now)) }
            (incidents_card(&incidents, now))
        }
        (failing_card(&failing, &hourly))
        @if !summary.by_error_code.is_empty() {
            section.card aria-labelledby="by-code" {
                h2 #by-code { "Current errors" }
                table {
                    thead { tr { th { "Code" } th { "Title" } th.num { "Connections" } } }
                    tbody {
                        @for error in &summary.by_error_code {
                            tr {
                                td { (page::code_link(error.code)) }
                                td { (error.title.as_deref().unwrap_or("Not in the catalogue")) }
                                td.num { a href={ "/console/connections?error_code=" (error.code) } { (error.connections) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::render(&agent, Section::Overview, "Fleet overview", body))
}

fn queue_card(backlog: &health::Backlog, workers: &[jobs::store::LiveWorker], now: chrono::DateTime<Utc>) -> Markup {
    html! {
        section.card aria-labelledby="queue" {
            h2 #queue { "Refresh queue" }
            dl.facts {
                dt { "waiting" } dd { (backlog.available) }
                dt { "due now" } dd #queue-due { (backlog.due) }
                dt { "running" } dd { (backlog.running) }
                dt { "oldest due" } dd { @match backlog.oldest_due_seconds {
                    Some(seconds) => { (page::duration(seconds)) " waiting" },
                    None => span.muted { "nothing waiting" },
                } }
            }
            h2 { "Live worker pools" }
            @if workers.is_empty() {
                (page::empty("No worker pool has reported recently: refreshes are not running. Start `feedwatch serve` or `feedwatch worker`."))
            } @else {
                table {
                    thead { tr { th { "Pool" } th.num { "Busy" } th { "Seen" } } }
                    tbody {
                        @for worker in workers {
                            tr {
                                td { (worker.id) br; span.muted { (worker.kinds.join(", ")) } }
                                td.num { (worker.running) " / " (worker.concurrency) }
                                td { (when(worker.last_seen_at, now)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn incidents_card(incidents: &[incident::Incident], now: chrono::DateTime<Utc>) -> Markup {
    html! {
        section.card aria-labelledby="open-incidents" {
            h2 #open-incidents { "Open incidents" }
            @if incidents.is_empty() {
                (page::empty("No bank is in an incident. Declare one from the Incidents page when a bank announces an outage."))
            } @else {
                ul {
                    @for incident in incidents {
                        li {
                            a href={ "/console/incidents/" (incident.id) } { (incident.institution.name) ": " (incident.title) }
                            " · expected end " (when(incident.wait_until, now))
                        }
                    }
                }
            }
            p { a href="/console/incidents" { "All incidents" } }
        }
    }
}

fn failing_card(failing: &[FailingBySide], hourly: &[incident::store::HourlyOutcomes]) -> Markup {
    let max = failing.iter().map(|row| row.bank_side + row.user_side + row.other).max().unwrap_or(0);
    html! {
        section.card aria-labelledby="failing" {
            h2 #failing { "Failing institutions" }
            p.legend {
                span { span.swatch.sw-bank {} "bank side (the bank must act)" }
                span { span.swatch.sw-user {} "user side (the customer must act)" }
                span { span.swatch.sw-other {} "provider or stale" }
            }
            @if failing.is_empty() {
                (page::empty("No institution has failing connections."))
            } @else {
                table #failing-institutions {
                    thead { tr {
                        th { "Institution" } th.num { "Bank side" } th.num { "User side" } th.num { "Other" }
                        th class="hide-narrow" { "Failing" } th { "Success, last 24 h" }
                    } }
                    tbody {
                        @for row in failing {
                            @let rates = charts::hourly_rates(hourly, row.institution_id);
                            @let (attempts, successes) = charts::totals(hourly, row.institution_id, 24);
                            @let rate = charts::percent(successes, attempts);
                            tr {
                                td { a href={ "/console/institutions/" (row.institution_id) } { (row.name) }
                                     span.muted { " · " (row.connections) @if row.connections == 1 { " connection" } @else { " connections" } } }
                                td.num data-side="bank" { (row.bank_side) }
                                td.num data-side="user" { (row.user_side) }
                                td.num data-side="other" { (row.other) }
                                td class="hide-narrow" { (charts::side_bar(row.bank_side, row.user_side, row.other, max,
                                    &format!("{} bank side, {} user side, {} other", row.bank_side, row.user_side, row.other))) }
                                td { (charts::sparkline(&rates, &format!("Hourly success rate over 24 hours; {rate} overall"))) " " (rate) }
                            }
                        }
                    }
                }
            }
        }
    }
}
