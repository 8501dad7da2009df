//! `/v1/errors`: the error-code reference. Reads come from the in-memory index; edits go to
//! PostgreSQL as revisions and every replica reloads. The entry as the API shows it
//! (`ErrorEntry`) is rendered here, beside the cache of rendered bodies; the other answers are in
//! `views`.

pub mod export;
pub mod views;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Admins, Allowed, Caller};
use super::encoding::gzip::{self, Closing, Opening};
use super::encoding::{self, Accepted, Coding};
use super::extract::{Json, Path, Query};
use super::precondition::{self, Counter, IfMatch, coded_etag, etag, if_match};
use super::problem::{ApiError, FieldError, Problem};
use crate::catalog::index::{Filters, MatchedBy};
use crate::catalog::search::{Hit, HitKind, search};
use crate::catalog::{
    self, Action, Actor, CatalogHandle, CatalogIndex, Category, Code, EditOutcome, Entry, NamespacedAlias, Resolution,
    StoredEntry,
};
use crate::duration::parse_duration;
use views::{
    AliasRef, AmbiguousCode, Candidate, ErrorLookup, HitEntry, HitMatch, Matched, RevisionView, SearchResults,
};

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

/// Each entry's `ErrorEntry` JSON, rendered once per catalogue index: a lookup then copies
/// bytes instead of cloning and serialising ten kilobytes of text and aliases per request.
#[derive(Debug, Default)]
pub struct RenderedEntries {
    /// The index the bodies were rendered from (its generation), and the bodies by code.
    cache: std::sync::RwLock<Option<(u64, Bodies)>>,
}

type Bodies = Arc<HashMap<Code, Rendered>>;

/// One entry rendered once per index: the entry object, whole lookup responses for the two
/// matches that need no alias (those lookups answer with a shared buffer and copy nothing), its
/// ETags, its fields as a search hit, without braces (a search copies them and adds how it
/// matched), and its lookup bodies in gzip.
#[derive(Debug)]
struct Rendered {
    entry: Vec<u8>,
    by_code: Bytes,
    by_reason: Bytes,
    etag: HeaderValue,
    gzip_etag: HeaderValue,
    hit: Vec<u8>,
    /// Compressed by the first lookup of this entry that accepts gzip, not when the index is
    /// rendered: compressing every entry there would hold up the first lookups after each
    /// reload by milliseconds (bench/README, session 15), and most entries are seldom looked up.
    gzip: OnceLock<Gzipped>,
}

/// An entry's lookup bodies in gzip. The entry's fields are compressed once and each body's own
/// `matched` put before them (`encoding::gzip`). An alias's `matched` carries its title, note and
/// sources, hundreds of bytes, so it is compressed too rather than sent as it is; that is done
/// the first time the alias is looked up in gzip, since an entry has up to 33 aliases and a
/// lookup by code should not wait for them all.
#[derive(Debug)]
struct Gzipped {
    fields: Closing,
    by_code: Bytes,
    by_reason: Bytes,
    /// In the order of the entry's aliases in the index.
    by_alias: Box<[OnceLock<Bytes>]>,
}

impl Gzipped {
    fn new(entry: &[u8], aliases: usize) -> Self {
        let fields = Closing::new(after_brace(entry));
        Self {
            by_code: member(&BY_CODE, &fields),
            by_reason: member(&BY_REASON, &fields),
            by_alias: (0..aliases).map(|_| OnceLock::new()).collect(),
            fields,
        }
    }

    /// None for an alias not among `aliases`, the entry's in the index it was rendered from.
    fn by_alias(&self, aliases: &[NamespacedAlias], alias: &NamespacedAlias) -> Option<Bytes> {
        let same = |known: &NamespacedAlias| known.namespace == alias.namespace && known.alias.code == alias.alias.code;
        let cell = self.by_alias.get(aliases.iter().position(same)?)?;
        Some(cell.get_or_init(|| member(&by_alias(alias), &self.fields)).clone())
    }
}

fn member(matched: &Matched, fields: &Closing) -> Bytes {
    gzip::member(&Opening::new(&prefix(matched)), fields).into()
}

const BY_CODE: Matched = Matched { by: "code", alias: None };
const BY_REASON: Matched = Matched { by: "reason", alias: None };

impl Rendered {
    fn new(entry: Vec<u8>, hit: &[u8], revision: i32) -> Self {
        let by_code = splice(&BY_CODE, &entry).into();
        let by_reason = splice(&BY_REASON, &entry).into();
        let hit = hit.get(1..hit.len().saturating_sub(1)).unwrap_or_default().to_vec();
        Self {
            entry,
            by_code,
            by_reason,
            etag: coded_etag(Counter::Revision, revision, Coding::Identity),
            gzip_etag: coded_etag(Counter::Revision, revision, Coding::Gzip),
            hit,
            gzip: OnceLock::new(),
        }
    }

    /// The body of a lookup that matched this entry so, in `coding`; `aliases` are the entry's
    /// in the index it was rendered from. None for an alias that is not among them.
    fn body(&self, matched: &MatchedBy, coding: Coding, aliases: &[NamespacedAlias]) -> Option<Bytes> {
        let gzipped = || self.gzip.get_or_init(|| Gzipped::new(&self.entry, aliases.len()));
        match (coding, matched) {
            (Coding::Identity, MatchedBy::Code) => Some(self.by_code.clone()),
            (Coding::Identity, MatchedBy::Reason) => Some(self.by_reason.clone()),
            (Coding::Identity, MatchedBy::Alias(alias)) => Some(splice(&by_alias(alias), &self.entry).into()),
            (Coding::Gzip, MatchedBy::Code) => Some(gzipped().by_code.clone()),
            (Coding::Gzip, MatchedBy::Reason) => Some(gzipped().by_reason.clone()),
            (Coding::Gzip, MatchedBy::Alias(alias)) => gzipped().by_alias(aliases, alias),
        }
    }

    fn etag(&self, coding: Coding) -> HeaderValue {
        match coding {
            Coding::Identity => self.etag.clone(),
            Coding::Gzip => self.gzip_etag.clone(),
        }
    }
}

fn by_alias(alias: &NamespacedAlias) -> Matched {
    Matched { by: "alias", alias: Some(alias.into()) }
}

// A lookup takes only the two handles it reads, not a clone of the whole `AppState`: every
// handle cloned and dropped is an atomic count that the request threads pass between them.
impl FromRef<AppState> for CatalogHandle {
    fn from_ref(state: &AppState) -> Self {
        state.catalog.clone()
    }
}

impl FromRef<AppState> for Arc<RenderedEntries> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.rendered_entries)
    }
}

/// `ErrorLookup` is `matched` followed by the flattened `ErrorEntry`: the cached object spliced.
fn splice(matched: &Matched, entry: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(PREFIX_CAPACITY + entry.len());
    write_prefix(&mut body, matched);
    body.extend_from_slice(after_brace(entry));
    body
}

/// What a lookup's body has before the entry's fields, for a gzip member to write as it is.
fn prefix(matched: &Matched) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(PREFIX_CAPACITY);
    write_prefix(&mut prefix, matched);
    prefix
}

/// Room for `matched` with an alias and its note, so writing it seldom grows the buffer.
const PREFIX_CAPACITY: usize = 256;

/// `{"matched":…,`
fn write_prefix(body: &mut Vec<u8>, matched: &Matched) {
    body.extend_from_slice(b"{\"matched\":");
    // Serialising this small struct of strings into memory cannot fail.
    serde_json::to_writer(&mut *body, matched).unwrap_or(());
    body.push(b',');
}

/// The entry object's fields: what follows its opening brace.
fn after_brace(entry: &[u8]) -> &[u8] {
    entry.get(1..).unwrap_or_default()
}

impl RenderedEntries {
    fn get(&self, index: &Arc<CatalogIndex>) -> Bodies {
        let generation = index.generation();
        if let Some((cached, bodies)) = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
            && *cached == generation
        {
            return Arc::clone(bodies);
        }
        let bodies: HashMap<Code, Rendered> = index
            .entries()
            .filter_map(|stored| {
                let body = serde_json::to_vec(&ErrorEntry::new(index, stored)).ok()?;
                let hit = serde_json::to_vec(&HitEntry::new(&stored.entry)).ok()?;
                Some((stored.entry.code, Rendered::new(body, &hit, stored.revision)))
            })
            .collect();
        let bodies = Arc::new(bodies);
        *self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((generation, Arc::clone(&bodies)));
        bodies
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
    State(catalog): State<CatalogHandle>,
    State(rendered_entries): State<Arc<RenderedEntries>>,
    _caller: Caller,
    Accepted(coding): Accepted,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let index = catalog.current();
    match index.resolve(&code) {
        Resolution::Found { entry, matched } => {
            let bodies = rendered_entries.get(&index);
            let rendered = bodies.get(&entry.entry.code);
            let body =
                rendered.and_then(|rendered| rendered.body(&matched, coding, index.aliases_of(entry.entry.code)));
            let (Some(rendered), Some(body)) = (rendered, body) else {
                return Err(ApiError::internal(&"entry not rendered"));
            };
            let headers = [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (header::ETAG, rendered.etag(coding)),
            ];
            Ok(encoding::mark(coding, (headers, body).into_response()))
        }
        Resolution::Ambiguous(aliases) => Ok(ambiguous(&index, &code, aliases)),
        Resolution::NotFound { suggestions } => Err(not_found(&code).with_suggestions(suggestions)),
    }
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
    let body = search_body(&state.rendered_entries.get(&index), &hits);
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// `SearchResults` for these hits, from the entries' pre-rendered hit fields: a search copies
/// bytes and serialises only how each hit matched.
fn search_body(bodies: &HashMap<Code, Rendered>, hits: &[Hit]) -> Vec<u8> {
    let mut body = Vec::with_capacity(
        16 + hits.iter().filter_map(|hit| bodies.get(&hit.code)).map(|r| r.hit.len() + 64).sum::<usize>(),
    );
    body.extend_from_slice(b"{\"items\":[");
    for hit in hits {
        let Some(rendered) = bodies.get(&hit.code) else { continue };
        if body.last() == Some(&b'}') {
            body.push(b',');
        }
        body.push(b'{');
        body.extend_from_slice(&rendered.hit);
        let (matched_by, matched) = how_matched(&hit.kind);
        // Serialising this small struct of strings and a number cannot fail.
        let how = serde_json::to_vec(&HitMatch { matched_by, matched: matched.as_deref(), score: hit.score })
            .unwrap_or_default();
        body.push(b',');
        body.extend_from_slice(how.get(1..).unwrap_or_default());
    }
    body.extend_from_slice(b"]}");
    body
}

fn how_matched(kind: &HitKind) -> (&'static str, Option<String>) {
    match kind {
        HitKind::Code => ("code", None),
        HitKind::Reason => ("reason", None),
        HitKind::Alias(alias) => ("alias", Some(format!("{}:{}", alias.namespace, alias.alias.code))),
        HitKind::SimilarCode(code) => ("similar_code", Some(code.clone())),
        HitKind::Text => ("text", None),
    }
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
    let revisions: Vec<RevisionView> = catalog::store::revisions(&state.pool, canonical)
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

    use super::views::SearchHit;
    use super::*;

    #[test]
    fn a_spliced_search_body_is_what_serialising_the_hits_gives() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let bodies = RenderedEntries::default().get(&index);
        for query in ["password changed", "102", "plaid:ITEM_LOGIN_REQUIRED", "ITEM_LOGIN_REQIRED", "", "402", "zzzz"] {
            let hits = search(&index, query, &Filters::default(), 100);
            let items = hits
                .iter()
                .map(|hit| {
                    let entry = &index.entry(hit.code).unwrap().entry;
                    let (matched_by, matched) = how_matched(&hit.kind);
                    SearchHit {
                        code: entry.code,
                        reason: entry.reason.clone(),
                        title: entry.title.clone(),
                        category: entry.category,
                        actor: entry.actor,
                        retryable: entry.retryable,
                        action: entry.action,
                        user_message: entry.user_message.clone(),
                        matched_by,
                        matched,
                        score: hit.score,
                    }
                })
                .collect();
            // Compared as the bytes on the wire read back: f32 scores print in their shortest form.
            let expected: serde_json::Value =
                serde_json::from_slice(&serde_json::to_vec(&SearchResults { items }).unwrap()).unwrap();
            let spliced: serde_json::Value = serde_json::from_slice(&search_body(&bodies, &hits)).unwrap();
            assert_eq!(spliced, expected, "{query}");
        }
    }

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut text).unwrap();
        text
    }

    /// Every way a lookup can match each shipped entry.
    fn every_match(index: &CatalogIndex, code: Code) -> Vec<MatchedBy> {
        let aliases = index.aliases_of(code).iter().cloned().map(MatchedBy::Alias);
        [MatchedBy::Code, MatchedBy::Reason].into_iter().chain(aliases).collect()
    }

    #[test]
    fn every_gzip_lookup_body_is_its_identity_body_compressed() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let bodies = RenderedEntries::default().get(&index);
        for (code, rendered) in bodies.iter() {
            let aliases = index.aliases_of(*code);
            for matched in every_match(&index, *code) {
                let identity = rendered.body(&matched, Coding::Identity, aliases).unwrap();
                let gzip = rendered.body(&matched, Coding::Gzip, aliases).unwrap();
                assert!(
                    gzip.len() < identity.len() * 3 / 5,
                    "{code} {matched:?}: {} of {}",
                    gzip.len(),
                    identity.len()
                );
                assert_eq!(gunzip(&gzip), identity, "{code} {matched:?}");
            }
            let lookup: serde_json::Value = serde_json::from_slice(&rendered.by_code).unwrap();
            assert_eq!(lookup["matched"]["by"], "code");
            assert_eq!(lookup["entry"]["code"], code.get());
        }
    }

    #[test]
    fn an_alias_the_entry_was_not_rendered_with_has_no_gzip_body() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let bodies = RenderedEntries::default().get(&index);
        let (code, other) = (Code::new(102), Code::new(103));
        let stranger = MatchedBy::Alias(index.aliases_of(other)[0].clone());
        assert_eq!(bodies[&code].body(&stranger, Coding::Gzip, index.aliases_of(code)), None);
    }

    #[test]
    fn the_two_representations_have_different_etags_naming_one_revision() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let bodies = RenderedEntries::default().get(&index);
        let rendered = &bodies[&Code::new(102)];
        assert_eq!(rendered.etag(Coding::Identity), "\"r1\"");
        assert_eq!(rendered.etag(Coding::Gzip), "\"r1-gzip\"");
    }

    /// The figures behind `Rendered::gzip` (bench/README, session 15): rendering the shipped
    /// catalogue, what compressing there would add, and what the first gzip lookups cost. In
    /// release: `cargo test --release --lib rendering_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn rendering_cost() {
        let index = Arc::new(catalog::shipped_index().unwrap());
        let rounds = 20;
        let time = |work: &dyn Fn()| {
            work();
            let start = std::time::Instant::now();
            (0..rounds).for_each(|_| work());
            start.elapsed() / rounds
        };
        let render = || RenderedEntries::default().get(&index);
        let every_body = |compress: &dyn Fn(&Rendered, &MatchedBy, &[NamespacedAlias])| {
            for (code, rendered) in render().iter() {
                every_match(&index, *code)
                    .iter()
                    .for_each(|matched| compress(rendered, matched, index.aliases_of(*code)));
            }
        };
        let aliases: usize = index.codes().map(|code| index.aliases_of(code).len()).sum();
        println!("{} entries, {aliases} aliases", index.codes().count());
        println!("render (identity, as every reload does): {:?}", time(&|| drop(render())));
        let spliced =
            time(&|| every_body(&|rendered, matched, aliases| drop(rendered.body(matched, Coding::Gzip, aliases))));
        println!("render + every body in gzip as built here (eager): {spliced:?}");
        let whole = time(&|| {
            every_body(&|rendered, matched, aliases| {
                drop(Closing::new(&rendered.body(matched, Coding::Identity, aliases).unwrap()));
            });
        });
        println!("render + every body compressed whole (eager): {whole:?}");
        let bodies = render();
        let largest = bodies.iter().max_by_key(|(_, rendered)| rendered.by_code.len()).map(|(code, _)| *code).unwrap();
        println!("largest entry: {largest}");
        let code = Code::new(102);
        let (rendered, aliases) = (&bodies[&code], index.aliases_of(code));
        let first = time(&|| drop(Gzipped::new(&rendered.entry, aliases.len())));
        let alias = &aliases[0];
        let first_alias = time(&|| drop(Gzipped::new(&rendered.entry, aliases.len()).by_alias(aliases, alias)));
        let matches = every_match(&index, code);
        let sizes = |body: &dyn Fn(&MatchedBy) -> usize| matches.iter().map(body).sum::<usize>();
        println!(
            "entry {code}: {} B identity, {} B gzip ({} B compressed whole); first gzip lookup {first:?}, \
             by alias {first_alias:?}; its {} bodies: {} B identity, {} B gzip ({} B compressed whole)",
            rendered.by_code.len(),
            rendered.body(&MatchedBy::Code, Coding::Gzip, aliases).unwrap().len(),
            gzip_whole(&rendered.by_code).len(),
            matches.len(),
            sizes(&|matched| rendered.body(matched, Coding::Identity, aliases).unwrap().len()),
            sizes(&|matched| rendered.body(matched, Coding::Gzip, aliases).unwrap().len()),
            sizes(&|matched| gzip_whole(&rendered.body(matched, Coding::Identity, aliases).unwrap()).len()),
        );
    }

    fn gzip_whole(body: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, body).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn the_documented_query_limit_is_the_one_search_enforces() {
        let parameters = serde_json::to_value(SearchParams::into_params(|| None)).unwrap();
        let q = parameters.as_array().unwrap().iter().find(|parameter| parameter["name"] == "q").unwrap();
        let limit = q.pointer("/schema/maxLength").and_then(serde_json::Value::as_u64);
        assert_eq!(limit, Some(crate::catalog::search::MAX_QUERY_CHARS as u64), "{q}");
    }
}
