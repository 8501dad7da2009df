//! The error reference: search as you type (the API's and the CLI's ranking), and an entry with
//! its meaning, who acts, steps, causes, prevention, every provider alias and every source.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::super::AppState;
use super::super::problem::ApiError;
use super::page::{self, Section};
use super::{Agent, Refusal};
use crate::catalog::index::MatchedBy;
use crate::catalog::search::{self, HitKind};
use crate::catalog::text;
use crate::catalog::{Alias, CatalogIndex, Resolution, Source, StoredEntry};

const HITS: usize = 30;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub async fn search(
    State(state): State<AppState>,
    agent: Agent,
    Query(query): Query<SearchQuery>,
) -> Result<Response, Refusal> {
    if query.q.chars().count() > search::MAX_QUERY_CHARS {
        let detail = format!("A search is at most {} characters.", search::MAX_QUERY_CHARS);
        return Err(ApiError::bad_request("invalid_query_parameter", detail).into());
    }
    let index = state.catalog.current();
    let hits = search::search(&index, &query.q, &crate::catalog::index::Filters::default(), HITS);
    let body = html! {
        h1 { "Error reference" }
        form.filters method="get" action="/console/errors" data-live="results" role="search" {
            label { "Code, provider code or words (e.g. “password changed”, 103, ITEM_LOGIN_REQUIRED)"
                input #error-search type="search" name="q" value=(query.q) maxlength=(search::MAX_QUERY_CHARS) autocomplete="off"; }
            button type="submit" { "Search" }
        }
        section.card #results aria-live="polite" aria-labelledby="hits" {
            h2 #hits { @if query.q.trim().is_empty() { "Every entry" } @else { "Best matches for “" (query.q.trim()) "”" } }
            @if hits.is_empty() {
                (page::empty("Nothing matches. Try fewer words, the code the customer saw, or the provider's code."))
            } @else {
                ol #hit-list {
                    @for hit in &hits {
                        @if let Some(stored) = index.entry(hit.code) {
                            li data-code=(hit.code) {
                                (page::code_link(hit.code)) " " a href={ "/console/errors/" (hit.code) } { (stored.entry.title) }
                                span.muted { " · " (page::words(&stored.entry.actor)) " acts" (why(&hit.kind)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::render(&agent, Section::Errors, "Error reference", body))
}

fn why(kind: &HitKind) -> String {
    match kind {
        HitKind::Code | HitKind::Text => String::new(),
        HitKind::Reason => " · by its reason".to_owned(),
        HitKind::Alias(alias) => format!(" · {}'s code {}", alias.namespace, alias.alias.code),
        HitKind::SimilarCode(code) => format!(" · a code like {code}"),
    }
}

pub async fn entry(State(state): State<AppState>, agent: Agent, Path(text): Path<String>) -> Result<Response, Refusal> {
    let index = state.catalog.current();
    let body = match index.resolve(&text) {
        Resolution::Found { entry, matched } => entry_page(&index, entry, &matched),
        Resolution::Ambiguous(candidates) => html! {
            h1 { "“" (text) "” means different things" }
            p { "Several providers use this code. Pick the one the customer's software showed:" }
            ul { @for candidate in &candidates {
                li { (candidate.namespace) ": " (page::code_link(candidate.alias.canonical)) " " (candidate.alias.title) }
            } }
        },
        Resolution::NotFound { suggestions } => {
            let also = if suggestions.is_empty() {
                String::new()
            } else {
                format!(" Close matches: {}.", suggestions.join(", "))
            };
            return Err(ApiError::not_found(format!("No catalogue entry or provider code is “{text}”.{also}")).into());
        }
    };
    Ok(page::render(&agent, Section::Errors, &format!("Error {text}"), body))
}

fn entry_page(index: &CatalogIndex, stored: &StoredEntry, matched: &MatchedBy) -> Markup {
    let entry = &stored.entry;
    let aliases = index.aliases_of(entry.code);
    html! {
        p { a href="/console/errors" { "← Error reference" } }
        h1 { span.code { (entry.code) } " " (entry.title) }
        @if let MatchedBy::Alias(alias) = matched {
            p.notice { (alias.namespace) "'s code " strong { (alias.alias.code) } " is this entry (" (page::words(&alias.alias.match_kind)) " match)." }
        }
        div.grid {
            section.card aria-labelledby="meaning" {
                h2 #meaning { "Meaning" }
                p { (entry.meaning) }
                dl.facts {
                    dt { "Who acts" } dd #actor { (page::words(&entry.actor)) }
                    dt { "Category" } dd { (page::words(&entry.category)) }
                    dt { "Action" } dd { (page::words(&entry.action)) }
                    dt { "Retried automatically" } dd { @if entry.retryable { "yes" @if let Some(after) = &entry.retry_after { ", after " (after) } } @else { "no" } }
                    dt { "Reason" } dd { code { (entry.reason) } }
                    dt { "Reviewed" } dd { (entry.reviewed) }
                }
            }
            section.card aria-labelledby="tell-customer" {
                h2 #tell-customer { "What to tell the customer" }
                p.tell #entry-message { (entry.user_message) }
                button.secondary type="button" data-copy="entry-message" hidden { "Copy message" }
                h2 { "Notes for agents" }
                div #agent-notes {
                    @for paragraph in text::paragraphs(&entry.agent_notes) { p { (paragraph) } }
                }
            }
        }
        (list_card("steps", "Steps", &entry.steps, true))
        div.grid {
            (list_card("causes", "Causes", &entry.causes, false))
            (list_card("prevention", "Prevention", &entry.prevention, false))
            (list_card("evidence", "Evidence to escalate with", &entry.escalation_evidence, false))
        }
        @if !entry.related.is_empty() {
            section.card aria-labelledby="related" {
                h2 #related { "Related" }
                ul { @for code in &entry.related {
                    li { (page::code_link(*code)) " " (index.entry(*code).map_or("", |related| related.entry.title.as_str())) }
                } }
            }
        }
        section.card aria-labelledby="aliases" {
            h2 #aliases { "Provider codes" }
            @if aliases.is_empty() {
                (page::empty("No provider's code maps to this entry yet."))
            } @else {
                table #alias-table {
                    thead { tr { th { "Provider" } th { "Code" } th { "Their title" } th { "Match" } th { "Sources" } } }
                    tbody { @for alias in aliases { (alias_row(&alias.namespace, &alias.alias)) } }
                }
            }
        }
        section.card aria-labelledby="sources" {
            h2 #sources { "Sources" }
            (sources(&entry.sources))
        }
    }
}

fn list_card(id: &str, title: &str, items: &[String], ordered: bool) -> Markup {
    html! {
        section.card aria-labelledby=(id) {
            h2 id=(id) { (title) }
            @if items.is_empty() {
                (page::empty("None recorded."))
            } @else if ordered {
                ol { @for item in items { li { (item) } } }
            } @else {
                ul { @for item in items { li { (item) } } }
            }
        }
    }
}

fn alias_row(namespace: &str, alias: &Alias) -> Markup {
    html! {
        tr {
            td { (namespace) }
            td { code { (alias.code) } }
            td { (alias.title) @if let Some(note) = &alias.note { br; span.muted { (note) } } }
            td { (page::words(&alias.match_kind)) }
            td { (sources(&alias.sources)) }
        }
    }
}

fn sources(sources: &[Source]) -> Markup {
    html! {
        ul.sources {
            @for source in sources {
                li {
                    (source.title) " " span.muted { "(" (page::words(&source.confidence)) ")" }
                    br; a.url href=(source.url) rel="noreferrer" { (source.url) }
                }
            }
        }
    }
}
