//! One connection, for the agent on the phone with its owner: health, what to tell the customer,
//! the diagnosis ladder, accounts, timeline, refresh history, and the actions.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::super::AppState;
use super::super::connections::views::ConnectionView;
use super::super::connections::visible_detail;
use super::super::diagnosis::{self, Diagnosis};
use super::connections::{failure_code, next_step, progress};
use super::page::{self, Section, when, when_or};
use super::{Agent, Refusal};
use crate::auth::Role;
use crate::catalog::Code;
use crate::connection::diagnosis::{Check, Verdict};
use crate::connection::{self, Event, store as connection_store};
use crate::feed::{self, coverage::Coverage};
use crate::jobs::store::JobRecord;
use crate::jobs::{self, JobState};

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    /// A refresh just asked for: the page follows it until it finishes.
    refresh: Option<i64>,
}

pub async fn detail(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<Uuid>,
    Query(query): Query<DetailQuery>,
) -> Result<Response, Refusal> {
    let view = visible_detail(&state, &agent.caller.0, id).await?;
    let diagnosis = diagnosis::build(&state, &agent.caller.0, id).await?;
    let events = connection_store::recent_events(&state.reads, id, 30).await?;
    let history = jobs::store::for_connection(&state.reads, id, None, 20).await?;
    let mut coverage = Vec::new();
    for account in view.accounts.as_deref().unwrap_or_default() {
        let ranges = feed::store::coverage(&state.reads, account.id).await?;
        coverage.push((account.display_name.clone(), feed::coverage::summarise(ranges)));
    }
    let following = query.refresh.and_then(|refresh| history.iter().find(|job| job.job_id == refresh));
    let now = Utc::now();
    let body = html! {
        p { a href="/console/connections" { "← Connections" } }
        h1 { (view.display_name) " " (page::state_badge(view.state)) }
        @if let Some(job) = following {
            @let status = progress(job);
            div.progress #progress role="status" aria-live="polite" data-refresh-status={ "/console/refreshes/" (job.job_id) } {
                span data-progress-text { (status_text(&status)) }
            }
        }
        div.grid {
            (health_card(&view, now))
            (tell_card(&view))
        }
        (actions_card(&agent, &view))
        (diagnosis_card(&diagnosis))
        (accounts_card(&view, now))
        (coverage_card(&coverage, view.id))
        div.grid {
            (history_card(&history, now))
            (timeline_card(&events, now))
        }
    };
    Ok(page::render(&agent, Section::Connections, &view.display_name, body))
}

fn status_text(progress: &super::connections::Progress) -> String {
    serde_json::to_value(progress)
        .ok()
        .and_then(|value| value.get("text").and_then(|text| text.as_str().map(str::to_owned)))
        .unwrap_or_default()
}

fn health_card(view: &ConnectionView, now: DateTime<Utc>) -> Markup {
    let health = &view.health;
    html! {
        section.card #health aria-labelledby="health-title" {
            h2 #health-title { "Health" }
            dl.facts {
                dt { "State" } dd { (page::state_badge(view.state)) @if view.paused { " " span.badge { "paused" } } }
                dt { "Institution" } dd { a href={ "/console/institutions/" (view.institution.id) } { (view.institution.name) } }
                dt { "Tenant" } dd { a href={ "/console/connections?tenant_id=" (view.tenant_id) } { (view.tenant_id) } }
                dt { "Last success" } dd #last-success { (when_or(health.last_success_at, now, "never")) }
                dt { "Last attempt" } dd { (when_or(health.last_attempt_at, now, "never")) }
                dt { "Data as of" } dd { (when_or(health.data_as_of, now, "no data yet")) }
                dt { "Failures in a row" } dd { (health.failure_streak) }
                dt { "Next refresh" } dd { (when_or(health.next_refresh_at, now, "none scheduled")) " (every " (view.refresh_every) ")" }
                @if let Some(error) = &health.error {
                    dt { "Error" } dd #error {
                        (page::code_link(error.code)) " " (error.title)
                        @if let Some(raw) = &error.raw { span.muted { " (bank said " (raw) ")" } }
                        @if let Some(since) = error.since { " since " (when(since, now)) }
                    }
                }
                @if let Some(incident) = &health.incident {
                    dt { "Incident" } dd { a href={ "/console/incidents/" (incident.id) } { (incident.title) } " · until " (when(incident.wait_until, now)) }
                }
                dt { "Next step" } dd #next-step { (next_step(view)) }
            }
        }
    }
}

fn tell_card(view: &ConnectionView) -> Markup {
    let message = match (&view.health.error, view.state) {
        (_, connection::State::Disconnected) => {
            "This bank connection was disconnected. Connect the bank again to resume your feed.".to_owned()
        }
        (Some(error), _) => error.user_message.clone(),
        (None, connection::State::Syncing) => {
            "We are fetching your latest transactions now; this usually takes a minute.".to_owned()
        }
        (None, _) => "Your bank feed is working: nothing needs to be done.".to_owned(),
    };
    html! {
        section.card #tell aria-labelledby="tell-title" {
            h2 #tell-title { "What to tell the customer" }
            p.tell #tell-text { (message) }
            button.secondary type="button" data-copy="tell-text" hidden { "Copy message" }
        }
    }
}

fn actions_card(agent: &Agent, view: &ConnectionView) -> Markup {
    let role = agent.caller.0.role;
    let may_pause = matches!(role, Role::Admin | Role::Tenant);
    let disconnected = view.state == connection::State::Disconnected;
    html! {
        section.card #actions aria-labelledby="actions-title" {
            h2 #actions-title { "Actions" }
            @if disconnected {
                (page::empty("A disconnected connection cannot be refreshed; the customer connects the bank again."))
            } @else {
                div.actions {
                    form method="post" action={ "/console/connections/" (view.id) "/refresh" } {
                        input type="hidden" name="csrf" value=(agent.csrf());
                        button #refresh-now type="submit" { "Refresh now" }
                    }
                    @if may_pause {
                        @let (verb, label) = if view.paused { ("resume", "Resume refreshes") } else { ("pause", "Pause refreshes") };
                        form method="post" action={ "/console/connections/" (view.id) "/" (verb) } {
                            input type="hidden" name="csrf" value=(agent.csrf());
                            button.secondary type="submit" { (label) }
                        }
                    }
                }
                @if role == Role::Helpdesk {
                    p.muted { "Refresh now goes past a pause and the cool-down. Pausing and resuming are for the tenant or an admin, as in the API." }
                }
            }
        }
    }
}

fn diagnosis_card(diagnosis: &Diagnosis) -> Markup {
    html! {
        section.card #diagnosis aria-labelledby="diagnosis-title" {
            h2 #diagnosis-title { "Diagnosis" }
            @match &diagnosis.answer {
                Some(answer) => p.notice.error #diagnosis-answer { strong { (check_title(answer.check)) ": " } (answer.next_step.as_deref().unwrap_or(&answer.evidence)) },
                None => p.notice.ok #diagnosis-answer { "Every check passed." },
            }
            ol.ladder {
                @for finding in &diagnosis.findings {
                    @let failed = finding.verdict == Verdict::Fail;
                    li data-check=(page::wire(&finding.check)) data-verdict=(page::wire(&finding.verdict)) {
                        strong { (check_title(finding.check)) }
                        " — " span class={ "verdict-" (page::wire(&finding.verdict)) } { @if failed { "fails" } @else { "passes" } }
                        br; span { (finding.evidence) }
                        @if let Some(step) = &finding.next_step { br; em { "Next: " (step) } }
                    }
                }
            }
        }
    }
}

/// A check's name as an agent says it.
fn check_title(check: Check) -> &'static str {
    match check {
        Check::InstitutionIncident => "Bank-wide incident",
        Check::Credentials => "Sign-in details",
        Check::Mfa => "Security code or question (MFA)",
        Check::Accounts => "Accounts at the bank",
        Check::DuplicateNames => "Duplicate account names",
        Check::OtherError => "Other errors",
        Check::FeedActivity => "New transactions arriving",
        Check::Staleness => "Fresh data",
        Check::AutomaticRefreshes => "Automatic refreshes",
    }
}

fn accounts_card(view: &ConnectionView, now: DateTime<Utc>) -> Markup {
    let accounts = view.accounts.as_deref().unwrap_or_default();
    html! {
        section.card #accounts aria-labelledby="accounts-title" {
            h2 #accounts-title { "Accounts" }
            @if accounts.is_empty() {
                (page::empty("No accounts yet: they appear after the first successful refresh."))
            } @else {
                table {
                    thead { tr { th { "Account" } th { "Kind" } th { "State" } th.num { "Balance" } th class="hide-narrow" { "As of" } } }
                    tbody {
                        @for account in accounts {
                            tr {
                                td { (account.display_name) span.muted { " " (account.masked_number) } }
                                td { (page::words(&account.kind)) }
                                td { (page::words(&account.state)) @if let Some(code) = account.error_code { " " (page::code_link(code)) } }
                                td.num { @match account.balance { Some(balance) => { (balance) " " (account.currency) }, None => span.muted { "—" } } }
                                td class="hide-narrow" { (when_or(account.balance_as_of, now, "—")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Which days each account's transactions are known for, and the holes a statement file fills.
fn coverage_card(coverage: &[(String, Coverage)], connection: Uuid) -> Markup {
    let any_gap = coverage.iter().any(|(_, coverage)| !coverage.gaps.is_empty());
    html! {
        section.card #coverage aria-labelledby="coverage-title" {
            h2 #coverage-title { "Days covered" }
            @if coverage.iter().all(|(_, coverage)| coverage.covered.is_empty()) {
                (page::empty("No days covered yet: a successful refresh or an imported statement file covers them."))
            } @else {
                table {
                    thead { tr { th { "Account" } th { "Covered" } th { "Missing" } } }
                    tbody {
                        @for (name, coverage) in coverage {
                            tr {
                                td { (name) }
                                td { @for span in &coverage.covered {
                                    div { (span.from) " – " (span.to) span.muted { " " (sources(&span.sources)) } }
                                } }
                                td { @if coverage.gaps.is_empty() { span.muted { "none" } } @else {
                                    @for gap in &coverage.gaps { div.gap { (gap.from) " – " (gap.to) } }
                                } }
                            }
                        }
                    }
                }
                @if any_gap {
                    p.muted { "A statement file from the bank's website (QFX, QBO, OFX or CSV) for the missing days fills them: POST it to " code { "/v1/connections/" (connection) "/imports" } "." }
                }
            }
        }
    }
}

fn sources(sources: &[feed::coverage::Source]) -> String {
    let names: Vec<&str> = sources.iter().map(|source| source.as_str()).collect();
    format!("({})", names.join(", "))
}

fn history_card(history: &[JobRecord], now: DateTime<Utc>) -> Markup {
    html! {
        section.card #history aria-labelledby="history-title" {
            h2 #history-title { "Refresh history" }
            @if history.is_empty() {
                (page::empty("No refresh has run yet. Use Refresh now to start one."))
            } @else {
                table {
                    thead { tr { th { "Asked" } th { "Why" } th { "Outcome" } th.num { "Took" } } }
                    tbody {
                        @for job in history {
                            tr data-refresh=(job.job_id) data-state=(job.state.as_str()) {
                                td { (when(job.created_at, now)) }
                                td { (job.trigger) }
                                td { (outcome(job)) }
                                td.num { (took(job)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn outcome(job: &JobRecord) -> Markup {
    match job.state {
        JobState::Succeeded => html! { span.verdict-pass { "succeeded" } },
        JobState::Failed => html! {
            span.verdict-fail { "failed" }
            @if let Some(code) = failure_code(job) { " " (page::code_link(code)) }
        },
        JobState::Running => html! { "running (attempt " (job.attempt) ")" },
        JobState::Available if job.attempt > 0 => html! { "retrying (" (job.attempt) " attempts so far)" },
        JobState::Available => html! { "queued" },
        JobState::Cancelled => html! { span.muted { "cancelled" } },
    }
}

fn took(job: &JobRecord) -> String {
    match (job.started_at, job.finished_at) {
        (Some(started), Some(finished)) => {
            let millis = (finished - started).num_milliseconds().max(0);
            if millis < 1000 { format!("{millis} ms") } else { format!("{:.1} s", millis as f64 / 1000.0) }
        }
        _ => "—".to_owned(),
    }
}

fn timeline_card(events: &[Event], now: DateTime<Utc>) -> Markup {
    html! {
        section.card #timeline aria-labelledby="timeline-title" {
            h2 #timeline-title { "Timeline" }
            @if events.is_empty() {
                (page::empty("Nothing has happened to this connection yet."))
            } @else {
                ul {
                    @for event in events {
                        li {
                            (when(event.occurred_at, now)) " · " strong { (event.kind) }
                            @if let Some(role) = &event.actor_role { span.muted { " by " (role) } }
                            (event_detail(&event.detail))
                        }
                    }
                }
            }
        }
    }
}

/// An event's detail as short "name: value" pairs; codes link to their entries.
fn event_detail(detail: &serde_json::Value) -> Markup {
    let Some(fields) = detail.as_object().filter(|fields| !fields.is_empty()) else { return html! {} };
    html! {
        br;
        span.muted {
            @for (index, (name, value)) in fields.iter().filter(|(_, value)| !value.is_object()).enumerate() {
                @if index > 0 { "; " }
                (name.replace('_', " ")) ": "
                @match code_of(name, value) {
                    Some(code) => (page::code_link(code)),
                    None => (value.as_str().map_or_else(|| value.to_string(), str::to_owned)),
                }
            }
        }
    }
}

fn code_of(name: &str, value: &serde_json::Value) -> Option<Code> {
    (name == "code" || name.ends_with("error_code"))
        .then(|| value.as_u64())
        .flatten()
        .and_then(|code| u32::try_from(code).ok())
        .map(Code::new)
}
