//! `/v1/errors`: the error-code reference. Reads come from the in-memory index; edits go to
//! PostgreSQL as revisions and every replica reloads. The entry as the API shows it
//! (`ErrorEntry`) is defined here; `rendered` holds each entry's bodies rendered once per index,
//! and `views` the other answers.

pub mod export;
mod rendered;
pub mod views;

pub use rendered::RenderedEntries;
use rendered::search_body;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Admins, Allowed, Caller};
use super::encoding::{self, Accepted};
use super::extract::{Json, Path, Query};
use super::precondition::{self, Counter, IfMatch, etag, if_match};
use super::problem::{ApiError, FieldError, Problem};
use crate::catalog::index::Filters;
use crate::catalog::search::search;
use crate::catalog::{
    self, Action, Actor, CatalogIndex, Category, Code, EditOutcome, Entry, NamespacedAlias, Resolution, StoredEntry,
};
use crate::duration::parse_duration;
use views::{AliasRef, AmbiguousCode, Candidate, ErrorLookup, RevisionView, SearchResults};

/// A catalogue entry with its aliases and revision. `entry` is exactly what `PUT` takes, so an
/// edit is: fetch, change `entry`, send it back with `If-Match`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEntry {
    pub entry: Entry,
    /// `entry.retry_after` in seconds, for programs.
    pub retry_after_seconds: Option<u64>,
    /// Every provider code that resolves to this entry (look one up for its title and note).
    pub aliases: Vec<AliasRef>,
    /// Increases with every edit; also the ETag.
    pub revision: i32,
    pub updated_at: DateTime<Utc>,
}

impl ErrorEntry {
    fn new(index: &CatalogIndex, stored: &StoredEntry) -> Self {
        Self {
            entry: stored.entry.clone(),
            retry_after_seconds: stored
                .entry
                .retry_after
                .as_deref()
                .and_then(|text| parse_duration(text).ok())
                .map(|d| d.as_secs()),
            aliases: index
                .aliases_of(stored.entry.code)
                .iter()
                .map(|alias| AliasRef {
                    namespace: alias.namespace.clone(),
                    code: alias.alias.code.clone(),
                    match_kind: alias.alias.match_kind,
                })
                .collect(),
            revision: stored.revision,
            updated_at: stored.updated_at,
        }
    }
}

fn ambiguous(index: &CatalogIndex, code: &str, aliases: Vec<NamespacedAlias>) -> Response {
    let candidates = aliases
        .iter()
        .filter_map(|alias| {
            let entry = &index.entry(alias.alias.canonical)?.entry;
            Some(Candidate { reason: entry.reason.clone(), entry_title: entry.title.clone(), alias: alias.into() })
        })
        .collect();
    let detail = format!("`{}` is a code of several providers; look it up as namespace:code.", code.trim());
    (StatusCode::MULTIPLE_CHOICES, axum::Json(AmbiguousCode { detail, candidates })).into_response()
}

/// Look up an error by canonical code, reason or any provider alias.
///
/// Accepts `102`, `bank_unavailable`, `plaid:ITEM_LOGIN_REQUIRED`, `ofx:15500`, `qbo:OL-301`, or a
/// bare provider code such as `ITEM_LOGIN_REQUIRED` (case-insensitive). A bare code several
/// providers use with different meanings answers 300 with every candidate. A request whose
/// `Accept-Encoding` accepts gzip gets the entry compressed, with an ETag of its own.
#[utoipa::path(get, operation_id = "lookup_error", path = "/v1/errors/{code}", tag = "errors", security(("api_key" = [])),
    params(("code" = String, Path, description = "Canonical code, reason slug, or alias with or without namespace", example = "plaid:ITEM_LOGIN_REQUIRED")),
    responses(
        (status = 200, description = "The entry", body = ErrorLookup, headers(
            ("etag" = String, description = "The entry's revision (`\"r3\"`); the gzip body's is `\"r3-gzip\"`, and either names the revision in `If-Match`"),
            ("content-encoding" = String, description = "`gzip` when `Accept-Encoding` prefers it to no coding; absent otherwise"),
            ("vary" = String, description = "`accept-encoding`: the body's coding follows that header"),
        )),
        (status = 300, description = "The bare code is ambiguous: candidates from several providers", body = AmbiguousCode),
        (status = 404, description = "Unknown code; `suggestions` lists close matches", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn lookup(
    State(state): State<AppState>,
    _caller: Caller,
    Accepted(coding): Accepted,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    state.catalog.read(|index| match index.resolve(&code) {
        Resolution::Found { entry, matched } => {
            let aliases = index.aliases_of(entry.entry.code);
            let found = state.rendered_entries.read(index, |bodies| {
                let rendered = bodies.get(&entry.entry.code)?;
                Some((rendered.body(&matched, coding, aliases)?, rendered.etag(coding)))
            });
            let Some((body, etag)) = found else {
                return Err(ApiError::internal(&"entry not rendered"));
            };
            let headers = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::ETAG, etag)];
            Ok(encoding::mark(coding, (headers, body).into_response()))
        }
        Resolution::Ambiguous(aliases) => Ok(ambiguous(index, &code, aliases)),
        Resolution::NotFound { suggestions } => Err(not_found(&code).with_suggestions(suggestions)),
    })
}

fn not_found(code: &str) -> ApiError {
    let shown: String = code.trim().chars().take(100).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_error_code",
        format!("No catalogue entry or alias matches `{shown}`."),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words, a code or an alias. Empty lists every entry that passes the filters.
    // A literal, as utoipa takes: a test keeps it equal to `search::MAX_QUERY_CHARS`.
    #[param(max_length = 500, pattern = r"^[^\x00]*$", example = "password changed")]
    pub q: Option<String>,
    pub category: Option<Category>,
    pub actor: Option<Actor>,
    pub retryable: Option<bool>,
    pub action: Option<Action>,
    /// A provider namespace (`plaid`, `mx`, `ofx`, ...): entries with an alias there.
    #[param(max_length = 40, pattern = r"^[^\x00]*$", example = "plaid")]
    pub provider: Option<String>,
    /// At most this many results, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Search the catalogue: exact codes and aliases first, then similar codes, then text relevance.
#[utoipa::path(get, operation_id = "search_errors", path = "/v1/errors", tag = "errors", security(("api_key" = [])),
    params(SearchParams),
    responses((status = 200, description = "Best matches first", body = SearchResults)))]
pub async fn search_entries(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<SearchParams>,
) -> Result<Response, ApiError> {
    let limit = params.limit.unwrap_or(crate::catalog::search::DEFAULT_LIMIT as u32);
    let mut errors = Vec::new();
    if !(1..=100).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 100"));
    }
    let query = params.q.unwrap_or_default();
    if query.chars().count() > crate::catalog::search::MAX_QUERY_CHARS {
        errors.push(FieldError::new("q", format!("at most {} characters", crate::catalog::search::MAX_QUERY_CHARS)));
    }
    if params.provider.as_ref().is_some_and(|provider| provider.chars().count() > 40) {
        errors.push(FieldError::new("provider", "at most 40 characters"));
    }
    if !errors.is_empty() {
        return Err(ApiError::bad_request("invalid_query_parameter", "Some query parameters are out of range.")
            .with_errors(errors));
    }
    let index = state.catalog.current();
    let filters = Filters {
        category: params.category,
        actor: params.actor,
        retryable: params.retryable,
        action: params.action,
        provider: params.provider,
    };
    let hits = search(&index, &query, &filters, limit as usize);
    let body = state.rendered_entries.read(&index, |bodies| search_body(bodies, &hits));
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// Replace an entry's text (admin). Stored as a new revision that wins over the shipped text
/// until a release changes the shipped text. `If-Match` with the entry's ETag guards against
/// overwriting someone else's edit.
#[utoipa::path(put, operation_id = "edit_error", path = "/v1/errors/{code}", tag = "errors", security(("api_key" = [])),
    params(
        ("code" = u32, Path, description = "Canonical code (aliases are not editable)", minimum = 1),
        ("if-match" = Option<String>, Header, nullable = false, description = "ETag of the revision being replaced, from either body of a lookup", pattern = "^(\\*|\"r[0-9]{1,9}(-gzip)?\")$", example = "\"r1\""),
    ),
    request_body = Entry,
    responses(
        (status = 200, description = "Saved as a new revision", body = ErrorEntry, headers(("etag" = String, description = "The new revision"))),
        (status = 404, description = "No entry has that code", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not name the current revision", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn edit(
    State(state): State<AppState>,
    Allowed(admin, _): Allowed<Admins>,
    Path(code): Path<Code>,
    headers: HeaderMap,
    Json(edit): Json<Entry>,
) -> Result<Response, ApiError> {
    let index = state.catalog.current();
    if index.entry(code).is_none() {
        return Err(ApiError::not_found(format!(
            "No catalogue entry has code {code}; aliases are edited in catalog/aliases."
        )));
    }
    let expected = if_match(&headers, Counter::Revision)?.and_then(IfMatch::named);
    let problems = catalog::validate_edit(&index, code, &edit);
    if !problems.is_empty() {
        return Err(ApiError::validation(
            problems.into_iter().map(|(field, message)| FieldError::new(field, message)).collect(),
        ));
    }
    match catalog::save_edit(&state.pool, &edit, expected, admin.key_id).await? {
        EditOutcome::Saved { revision } => {
            tracing::info!(code = code.get(), revision, editor = %admin.key_id, "catalogue entry edited");
            state.catalog.reload(&state.pool).await?;
            let index = state.catalog.current();
            let stored = index.entry(code).ok_or_else(|| ApiError::internal(&"edited entry vanished"))?;
            Ok((
                [(header::ETAG, etag(Counter::Revision, stored.revision))],
                axum::Json(ErrorEntry::new(&index, stored)),
            )
                .into_response())
        }
        EditOutcome::Stale { current } => Err(precondition::failed(
            "stale_revision",
            format!("The entry is at revision {current}; fetch it again and re-apply your edit."),
        )),
        EditOutcome::NotFound => Err(ApiError::not_found(format!("No catalogue entry has code {code}."))),
    }
}

/// An entry's revision history, newest first.
#[utoipa::path(get, operation_id = "list_error_revisions", path = "/v1/errors/{code}/revisions", tag = "errors", security(("api_key" = [])),
    params(("code" = String, Path, description = "Canonical code, reason or alias")),
    responses(
        (status = 200, description = "Revisions, newest first", body = Vec<RevisionView>),
        (status = 300, description = "The bare code is ambiguous: candidates from several providers", body = AmbiguousCode),
        (status = 404, description = "Unknown code", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revisions(
    State(state): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let index = state.catalog.current();
    let canonical = match index.resolve(&code) {
        Resolution::Found { entry, .. } => entry.entry.code,
        Resolution::Ambiguous(aliases) => return Ok(ambiguous(&index, &code, aliases)),
        Resolution::NotFound { suggestions } => return Err(not_found(&code).with_suggestions(suggestions)),
    };
    let revisions: Vec<RevisionView> = catalog::store::revisions(&state.reads, canonical)
        .await?
        .into_iter()
        .map(|revision| RevisionView {
            revision: revision.revision,
            origin: revision.origin,
            edited_by: revision.edited_by,
            created_at: revision.created_at,
            entry: revision.entry,
        })
        .collect();
    Ok(axum::Json(revisions).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_documented_query_limit_is_the_one_search_enforces() {
        let parameters = serde_json::to_value(SearchParams::into_params(|| None)).unwrap();
        let q = parameters.as_array().unwrap().iter().find(|parameter| parameter["name"] == "q").unwrap();
        let limit = q.pointer("/schema/maxLength").and_then(serde_json::Value::as_u64);
        assert_eq!(limit, Some(crate::catalog::search::MAX_QUERY_CHARS as u64), "{q}");
    }
}
