//! What `/v1/errors` answers besides the entry itself (`ErrorEntry`, rendered beside its cache
//! in `errors`): how a lookup matched, ambiguous codes, search hits, revisions.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ErrorEntry;
use crate::catalog::{Action, Actor, Category, Code, Entry, MatchKind, NamespacedAlias, Source};

/// A provider code that resolves to an entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasView {
    #[schema(example = "plaid")]
    pub namespace: String,
    #[schema(example = "ITEM_LOGIN_REQUIRED")]
    pub code: String,
    /// The canonical entry it resolves to.
    #[schema(value_type = u32)]
    pub canonical: Code,
    /// `exact`, or `nearest` when no entry means exactly the same (then `note` says why).
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
    pub title: String,
    pub note: Option<String>,
    /// Where the provider's meaning comes from; `vendor` is the provider's own documentation.
    pub sources: Vec<Source>,
}

impl From<&NamespacedAlias> for AliasView {
    fn from(alias: &NamespacedAlias) -> Self {
        Self {
            namespace: alias.namespace.clone(),
            code: alias.alias.code.clone(),
            canonical: alias.alias.canonical,
            match_kind: alias.alias.match_kind,
            title: alias.alias.title.clone(),
            note: alias.alias.note.clone(),
            sources: alias.alias.sources.clone(),
        }
    }
}

/// An alias as an entry lists it: enough to look it up (`namespace:code`) for its title and note.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasRef {
    #[schema(example = "plaid")]
    pub namespace: String,
    #[schema(example = "ITEM_LOGIN_REQUIRED")]
    pub code: String,
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
}

/// How the looked-up code matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct Matched {
    /// `code`, `reason` or `alias`.
    #[schema(example = "alias")]
    pub by: &'static str,
    /// The alias that matched, when `by` is `alias`.
    pub alias: Option<AliasView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorLookup {
    pub matched: Matched,
    #[serde(flatten)]
    pub entry: ErrorEntry,
}

/// A bare code that several providers use with different meanings.
#[derive(Debug, Serialize, ToSchema)]
pub struct AmbiguousCode {
    pub detail: String,
    /// Each candidate with its namespace; look one up as `namespace:code`.
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Candidate {
    pub alias: AliasView,
    /// The canonical entry's reason and title.
    pub reason: String,
    pub entry_title: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    #[schema(value_type = u32)]
    pub code: Code,
    pub reason: String,
    pub title: String,
    pub category: Category,
    pub actor: Actor,
    pub retryable: bool,
    pub action: Action,
    pub user_message: String,
    /// `code`, `reason`, `alias`, `similar_code` or `text`.
    #[schema(example = "text")]
    pub matched_by: &'static str,
    /// The alias or similar code that matched, for code matches.
    pub matched: Option<String>,
    /// Relevance; only comparable within one response.
    pub score: f32,
}

/// A hit's entry fields, `SearchHit` up to how it matched: rendered once per catalogue index.
#[derive(Debug, Serialize)]
pub(super) struct HitEntry<'a> {
    code: Code,
    reason: &'a str,
    title: &'a str,
    category: Category,
    actor: Actor,
    retryable: bool,
    action: Action,
    user_message: &'a str,
}

impl<'a> HitEntry<'a> {
    pub(super) fn new(entry: &'a Entry) -> Self {
        Self {
            code: entry.code,
            reason: &entry.reason,
            title: &entry.title,
            category: entry.category,
            actor: entry.actor,
            retryable: entry.retryable,
            action: entry.action,
            user_message: &entry.user_message,
        }
    }
}

/// The rest of a `SearchHit`: how it matched, per request.
#[derive(Debug, Serialize)]
pub(super) struct HitMatch<'a> {
    pub(super) matched_by: &'static str,
    pub(super) matched: Option<&'a str>,
    pub(super) score: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionView {
    pub revision: i32,
    /// `shipped` (from a release) or `admin` (an edit through the API).
    #[schema(example = "admin")]
    pub origin: String,
    /// The key that made an admin edit.
    pub edited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub entry: Entry,
}
