//! The error-code reference: canonical entries, provider aliases, lookup and search.
//!
//! The shipped text lives in `catalog/` and is compiled in, so `feedwatch errors` works with no
//! server and no database. At start the service syncs it into PostgreSQL, where admin edits
//! become new revisions; every replica serves lookups from an in-memory [`CatalogIndex`] that is
//! rebuilt whenever the stored catalogue changes.

mod files;
pub mod index;
pub mod search;
pub mod store;
pub mod text;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::watch;
use utoipa::ToSchema;
use uuid::Uuid;

pub use files::SHIPPED_FILES;
pub use index::{CatalogIndex, Resolution};

/// What kind of failure an entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Credentials,
    Mfa,
    BankAction,
    Consent,
    Bank,
    Account,
    Institution,
    Provider,
}

/// Who must act for the error to go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    User,
    Bank,
    Provider,
    Support,
}

/// The one primary action a front end offers for the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Reconnect,
    AnswerMfa,
    FixAtBank,
    RemapAccount,
    WaitUntil,
    UploadFile,
    ContactSupport,
}

/// How much a source can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The vendor's own documentation.
    Vendor,
    /// Someone else's account of the vendor's behaviour.
    ThirdParty,
    /// Our inference from related facts.
    Inferred,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[schema(min_length = 1, max_length = 300)]
    pub title: String,
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "https://community.intuit.com/articles/1207317-banking-error-102"
    )]
    pub url: String,
    pub confidence: Confidence,
}

/// One item of a text list (a cause, a step, a keyword), for the document: non-empty and short.
#[derive(Debug)]
pub struct ListItem;

impl utoipa::PartialSchema for ListItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(1000))
            .into()
    }
}

impl ToSchema for ListItem {}

/// A canonical catalogue entry: the shipped data format and the body of an admin edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Stable number; the QuickBooks number where its meaning is confirmed.
    #[schema(example = 102, minimum = 1)]
    pub code: u32,
    /// Stable snake_case slug.
    #[schema(example = "bank_unavailable", pattern = "^[a-z][a-z0-9_]*$", max_length = 64)]
    pub reason: String,
    #[schema(example = "Bank not responding", min_length = 1, max_length = 120)]
    pub title: String,
    /// Phrases people type when they have this error ("password changed"); weighted high in search.
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<ListItem>)]
    pub keywords: Vec<String>,
    pub category: Category,
    pub actor: Actor,
    /// Whether retrying, with nobody acting, can help.
    pub retryable: bool,
    /// Typical delay before a retry helps (`30s`, `15m`, `4h`, `1d`); only for retryable entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "4h", pattern = "^[0-9]+(ms|s|m|h|d)$", nullable = false)]
    pub retry_after: Option<String>,
    pub action: Action,
    /// Safe to show the business owner: what happened and what to do.
    #[schema(min_length = 1, max_length = 2000)]
    pub user_message: String,
    /// For helpdesk agents: how to tell it apart from look-alikes.
    #[schema(min_length = 1, max_length = 5000)]
    pub agent_notes: String,
    #[schema(min_length = 1, max_length = 3000)]
    pub meaning: String,
    #[schema(max_items = 20, value_type = Vec<ListItem>)]
    pub causes: Vec<String>,
    /// Ordered: the cheapest step that often works first.
    #[schema(min_items = 1, max_items = 20, value_type = Vec<ListItem>)]
    pub steps: Vec<String>,
    #[schema(max_items = 20, value_type = Vec<ListItem>)]
    pub prevention: Vec<String>,
    /// What an agent collects before escalating.
    #[schema(max_items = 20, value_type = Vec<ListItem>)]
    pub escalation_evidence: Vec<String>,
    #[schema(max_items = 20)]
    pub related: Vec<u32>,
    /// When the text was last reviewed.
    pub reviewed: NaiveDate,
    #[schema(min_items = 1, max_items = 20)]
    pub sources: Vec<Source>,
}

/// Whether an alias means exactly the canonical entry or only comes closest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Exact,
    Nearest,
}

/// A provider's code and the canonical entry it resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// The provider's code as the provider writes it.
    #[schema(example = "ITEM_LOGIN_REQUIRED")]
    pub code: String,
    pub canonical: u32,
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub note: Option<String>,
}

/// One `aliases/<namespace>.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasFile {
    namespace: String,
    provider: String,
    #[serde(rename = "alias", default)]
    aliases: Vec<Alias>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    #[serde(rename = "entry", default)]
    entries: Vec<Entry>,
}

/// An alias with the namespace of its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NamespacedAlias {
    #[schema(example = "plaid")]
    pub namespace: String,
    #[serde(flatten)]
    pub alias: Alias,
}

/// A namespace and the provider it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Namespace {
    pub namespace: String,
    pub provider: String,
}

/// A problem in the catalogue data, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    pub file: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`: {}", self.file, self.field, self.message)
    }
}

/// Every problem found while loading, so a reviewer sees them all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CatalogErrors(pub Vec<CatalogError>);

impl fmt::Display for CatalogErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "the error catalogue is invalid:\n  {}", lines.join("\n  "))
    }
}

/// The validated catalogue as shipped (or as found in a directory of the same shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub entries: BTreeMap<u32, Entry>,
    pub aliases: Vec<NamespacedAlias>,
    pub namespaces: Vec<Namespace>,
}

const MAX_LIST: usize = 20;

impl Catalog {
    /// The catalogue compiled into this binary.
    pub fn shipped() -> Result<Self, CatalogErrors> {
        Self::from_files(SHIPPED_FILES)
    }

    /// Parses and validates `(path, text)` pairs under `entries/` and `aliases/`.
    pub fn from_files(files: &[(&str, &str)]) -> Result<Self, CatalogErrors> {
        let mut errors = Vec::new();
        let mut entries: BTreeMap<u32, Entry> = BTreeMap::new();
        let mut entry_files: BTreeMap<u32, String> = BTreeMap::new();
        let mut alias_files = Vec::new();
        for (path, text) in files {
            let file = format!("catalog/{path}");
            if path.starts_with("entries/") {
                match toml::from_str::<EntryFile>(text) {
                    Ok(parsed) => {
                        for entry in parsed.entries {
                            if let Some(first) = entry_files.get(&entry.code) {
                                errors.push(error(
                                    &file,
                                    &format!("entry {}.code", entry.code),
                                    format!("code {} is also used in {first}", entry.code),
                                ));
                                continue;
                            }
                            entry_files.insert(entry.code, file.clone());
                            entries.insert(entry.code, entry);
                        }
                    }
                    Err(parse) => errors.push(toml_error(&file, text, &parse)),
                }
            } else if path.starts_with("aliases/") {
                match toml::from_str::<AliasFile>(text) {
                    Ok(parsed) => alias_files.push((file, path.to_owned(), parsed)),
                    Err(parse) => errors.push(toml_error(&file, text, &parse)),
                }
            }
        }
        let codes: HashSet<u32> = entries.keys().copied().collect();
        let mut reasons: BTreeMap<&str, u32> = BTreeMap::new();
        for entry in entries.values() {
            let file = &entry_files[&entry.code];
            errors
                .extend(validate_entry(entry, &codes).into_iter().map(|(field, message)| error(file, &field, message)));
            if let Some(other) = reasons.insert(&entry.reason, entry.code) {
                errors.push(error(
                    file,
                    &format!("entry {}.reason", entry.code),
                    format!("reason `{}` is also entry {other}'s", entry.reason),
                ));
            }
        }
        let mut aliases = Vec::new();
        let mut namespaces = Vec::new();
        for (file, path, parsed) in alias_files {
            errors.extend(validate_alias_file(&file, path, &parsed, &codes));
            namespaces.push(Namespace { namespace: parsed.namespace.clone(), provider: parsed.provider.clone() });
            aliases.extend(
                parsed.aliases.into_iter().map(|alias| NamespacedAlias { namespace: parsed.namespace.clone(), alias }),
            );
        }
        if errors.is_empty() { Ok(Self { entries, aliases, namespaces }) } else { Err(CatalogErrors(errors)) }
    }
}

fn error(file: &str, field: &str, message: impl Into<String>) -> CatalogError {
    CatalogError { file: file.to_owned(), field: field.to_owned(), message: message.into() }
}

fn toml_error(file: &str, text: &str, parse: &toml::de::Error) -> CatalogError {
    let message = parse.message().trim().to_owned();
    let Some(span) = parse.span() else { return error(file, "file", message) };
    // Name the key on the offending line, so the reviewer sees `actor`, not a byte offset.
    let start = span.start.min(text.len());
    let line_number = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |index| index + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let key = line.split_once('=').map(|(key, _)| key.trim()).filter(|key| !key.is_empty() && !key.starts_with('['));
    let field = match key {
        Some(key) => format!("line {line_number}: {key}"),
        None => format!("line {line_number}"),
    };
    error(file, &field, message)
}

/// Checks one entry; returns `(field, message)` pairs. Used for shipped files and admin edits
/// alike, so an edit can never store what a reviewer could not ship.
pub fn validate_entry(entry: &Entry, known_codes: &HashSet<u32>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let field = |name: &str| format!("entry {}.{name}", entry.code);
    let mut check = |ok: bool, name: &str, message: &str| {
        if !ok {
            problems.push((field(name), message.to_owned()));
        }
    };
    check(entry.code > 0, "code", "must be a positive number");
    check(is_slug(&entry.reason), "reason", "must be a snake_case slug of at most 64 characters");
    check(is_text(&entry.title, 120), "title", "must be 1 to 120 characters");
    check(is_text(&entry.user_message, 2000), "user_message", "must be 1 to 2000 characters");
    check(is_text(&entry.agent_notes, 5000), "agent_notes", "must be 1 to 5000 characters");
    check(is_text(&entry.meaning, 3000), "meaning", "must be 1 to 3000 characters");
    check(!entry.steps.is_empty(), "steps", "needs at least one step");
    check(!entry.sources.is_empty(), "sources", "needs at least one source");
    for (name, list) in [
        ("causes", &entry.causes),
        ("steps", &entry.steps),
        ("prevention", &entry.prevention),
        ("escalation_evidence", &entry.escalation_evidence),
        ("keywords", &entry.keywords),
    ] {
        check(list.len() <= MAX_LIST, name, "at most 20 items");
        check(list.iter().all(|item| is_text(item, 1000)), name, "items must be 1 to 1000 characters");
    }
    check(entry.related.len() <= MAX_LIST, "related", "at most 20 codes");
    check(entry.sources.len() <= MAX_LIST, "sources", "at most 20 sources");
    match (&entry.retry_after, entry.retryable) {
        (Some(delay), true) => check(
            crate::duration::parse_duration(delay).is_ok(),
            "retry_after",
            "must be a duration such as 30s, 15m, 4h or 1d",
        ),
        (Some(_), false) => check(false, "retry_after", "only retryable entries have a retry delay"),
        (None, true) => check(false, "retry_after", "retryable entries need a typical retry delay"),
        (None, false) => {}
    }
    for code in &entry.related {
        check(
            known_codes.contains(code) && *code != entry.code,
            "related",
            &format!("{code} is not another catalogue entry"),
        );
    }
    for source in &entry.sources {
        check(is_text(&source.title, 300), "sources.title", "must be 1 to 300 characters");
        check(
            source.url.starts_with("https://") || source.url.starts_with("http://"),
            "sources.url",
            "must be an http(s) URL",
        );
        check(source.url.len() <= 500, "sources.url", "at most 500 characters");
    }
    problems
}

fn validate_alias_file(file: &str, path: &str, parsed: &AliasFile, codes: &HashSet<u32>) -> Vec<CatalogError> {
    let mut errors = Vec::new();
    let expected = path.trim_start_matches("aliases/").trim_end_matches(".toml");
    if parsed.namespace != expected {
        errors.push(error(file, "namespace", format!("must be `{expected}`, the file's name")));
    }
    if !is_slug(&parsed.namespace) {
        errors.push(error(file, "namespace", "must be a lowercase slug"));
    }
    let mut seen = HashSet::new();
    for alias in &parsed.aliases {
        let field = |name: &str| format!("alias {}.{name}", alias.code);
        if alias.code.trim().is_empty() || alias.code.len() > 100 {
            errors.push(error(file, &field("code"), "must be 1 to 100 characters"));
        }
        if !seen.insert(alias.code.to_lowercase()) {
            errors.push(error(file, &field("code"), "appears twice in this file"));
        }
        if !codes.contains(&alias.canonical) {
            errors.push(error(file, &field("canonical"), format!("{} is not a catalogue entry", alias.canonical)));
        }
        if alias.match_kind == MatchKind::Nearest && alias.note.as_deref().is_none_or(|note| note.trim().is_empty()) {
            errors.push(error(file, &field("note"), "a nearest match needs a note saying why"));
        }
    }
    errors
}

fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_text(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max
}

/// A fingerprint of an entry's shipped text, to notice when a release changes it.
pub fn fingerprint(entry: &Entry) -> String {
    let canonical = serde_json::to_vec(entry).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}

/// An entry as stored: its current text and which revision that is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub entry: Entry,
    pub revision: i32,
    pub updated_at: DateTime<Utc>,
}

/// The channel the stored catalogue's changes travel on.
pub const CHANGED_CHANNEL: &str = "catalog_changed";

/// Brings the stored catalogue up to the shipped one. Idempotent and safe on many replicas:
/// entries whose shipped text is unchanged keep their admin edits; a changed shipped text
/// becomes a new revision and wins. Returns whether anything changed.
pub async fn sync_shipped(pool: &PgPool, catalog: &Catalog) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    store::lock_for_sync(&mut *tx).await?;
    let mut changed = false;
    for entry in catalog.entries.values() {
        changed |= store::sync_entry(&mut tx, entry, &fingerprint(entry)).await?;
    }
    changed |= store::replace_aliases(&mut tx, &catalog.aliases, &catalog.namespaces).await?;
    if changed {
        store::notify_changed(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Who may read the current index, and who rebuilds it.
#[derive(Debug, Clone)]
pub struct CatalogHandle {
    sender: Arc<watch::Sender<Arc<CatalogIndex>>>,
}

impl CatalogHandle {
    pub fn new(index: CatalogIndex) -> Self {
        Self { sender: Arc::new(watch::channel(Arc::new(index)).0) }
    }

    /// The index as of now; cheap (an `Arc` clone under a brief read lock).
    pub fn current(&self) -> Arc<CatalogIndex> {
        self.sender.borrow().clone()
    }

    /// Rebuilds the index from the database and publishes it.
    pub async fn reload(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let index = load_index(pool).await?;
        self.sender.send_replace(Arc::new(index));
        Ok(())
    }

    /// A receiver that wakes when a new index is published (tests and diagnostics).
    pub fn subscribe(&self) -> watch::Receiver<Arc<CatalogIndex>> {
        self.sender.subscribe()
    }
}

/// Builds the in-memory index from the stored catalogue.
pub async fn load_index(pool: &PgPool) -> Result<CatalogIndex, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let entries = store::current_entries(&mut *conn).await?;
    let aliases = store::aliases(&mut *conn).await?;
    let namespaces = store::namespaces(&mut *conn).await?;
    Ok(CatalogIndex::build(entries, aliases, namespaces))
}

/// Builds an index straight from the shipped files, for the CLI.
pub fn shipped_index() -> Result<CatalogIndex, CatalogErrors> {
    let catalog = Catalog::shipped()?;
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let entries =
        catalog.entries.into_values().map(|entry| StoredEntry { entry, revision: 1, updated_at: epoch }).collect();
    Ok(CatalogIndex::build(entries, catalog.aliases, catalog.namespaces))
}

/// An admin edit, checked the way a shipped file is checked.
pub fn validate_edit(index: &CatalogIndex, code: u32, edit: &Entry) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if edit.code != code {
        problems.push(("code".to_owned(), format!("must be {code}, the code in the path")));
    }
    if let Some(current) = index.entry(code).filter(|current| current.entry.reason != edit.reason) {
        problems.push(("reason".to_owned(), format!("is stable and must stay `{}`", current.entry.reason)));
    }
    let codes: HashSet<u32> = index.codes().collect();
    problems.extend(
        validate_entry(edit, &codes).into_iter().map(|(field, message)| {
            (field.split_once('.').map_or(field.clone(), |(_, name)| name.to_owned()), message)
        }),
    );
    problems
}

/// Stores an admin edit as a new revision; `expected_revision` guards against lost updates.
pub async fn save_edit(
    pool: &PgPool,
    edit: &Entry,
    expected_revision: Option<i32>,
    editor: Uuid,
) -> Result<EditOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(current) = store::lock_entry(&mut *tx, edit.code).await? else {
        return Ok(EditOutcome::NotFound);
    };
    if expected_revision.is_some_and(|expected| expected != current) {
        return Ok(EditOutcome::Stale { current });
    }
    let revision = store::save_admin_revision(&mut tx, edit, current + 1, editor).await?;
    store::notify_changed(&mut *tx).await?;
    tx.commit().await?;
    Ok(EditOutcome::Saved { revision })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOutcome {
    Saved { revision: i32 },
    Stale { current: i32 },
    NotFound,
}

/// Keeps this replica's index current: rebuilds on every change notification, and after a lost
/// listener connection (a notification may have been missed). Runs until `shutdown`.
pub async fn follow_changes(pool: PgPool, handle: CatalogHandle, shutdown: tokio_util::sync::CancellationToken) {
    let mut listener = loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHANGED_CHANNEL).await {
                Ok(()) => break listener,
                Err(error) => tracing::warn!(%error, "catalogue listener: LISTEN failed"),
            },
            Err(error) => tracing::warn!(%error, "catalogue listener: cannot connect"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    };
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = listener.try_recv() => next,
        };
        match next {
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "catalogue listener failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        }
        // A notification, or a reconnect (Ok(None)) after which one may have been missed.
        if let Err(error) = handle.reload(&pool).await {
            tracing::warn!(%error, "catalogue reload failed; keeping the previous index");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::catalog::index::Filters;
    use crate::catalog::search::{HitKind, search};

    fn shipped() -> Catalog {
        Catalog::shipped().unwrap_or_else(|errors| panic!("{errors}"))
    }

    #[test]
    fn the_shipped_catalogue_is_valid_and_complete() {
        let catalog = shipped();
        assert!(catalog.entries.len() >= 25);
        for entry in catalog.entries.values() {
            assert!(!entry.steps.is_empty(), "{} has steps", entry.code);
            assert!(!entry.user_message.trim().is_empty(), "{} has a user message", entry.code);
            assert!(!entry.sources.is_empty(), "{} has a source", entry.code);
        }
        // The QuickBooks numbers whose meaning is confirmed, and every canonical reason.
        for code in [102, 103, 185, 187, 310, 324] {
            assert!(catalog.entries.contains_key(&code), "entry {code}");
        }
    }

    #[test]
    fn every_alias_resolves_to_an_existing_entry() {
        let catalog = shipped();
        assert!(catalog.aliases.len() > 250);
        for alias in &catalog.aliases {
            assert!(catalog.entries.contains_key(&alias.alias.canonical), "{}:{}", alias.namespace, alias.alias.code);
        }
        let namespaces: HashSet<&str> = catalog.namespaces.iter().map(|n| n.namespace.as_str()).collect();
        for expected in [
            "qbo",
            "plaid",
            "mx",
            "yodlee",
            "finicity",
            "gocardless",
            "ofx",
            "simplefin",
            "teller",
            "cloudbanking",
            "http",
        ] {
            assert!(namespaces.contains(expected), "namespace {expected}");
        }
    }

    #[test]
    fn the_embedded_file_list_matches_the_catalog_directory() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
        let mut on_disk = Vec::new();
        for folder in ["entries", "aliases"] {
            for file in std::fs::read_dir(root.join(folder)).unwrap() {
                on_disk.push(format!("{folder}/{}", file.unwrap().file_name().to_string_lossy()));
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = SHIPPED_FILES.iter().map(|(path, _)| (*path).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "update src/catalog/files.rs");
    }

    fn with_replaced(path: &str, text: &str) -> Vec<(&'static str, String)> {
        SHIPPED_FILES
            .iter()
            .map(|(name, body)| (*name, if *name == path { text.to_owned() } else { (*body).to_owned() }))
            .collect()
    }

    fn load(files: &[(&'static str, String)]) -> Result<Catalog, CatalogErrors> {
        let borrowed: Vec<(&str, &str)> = files.iter().map(|(name, text)| (*name, text.as_str())).collect();
        Catalog::from_files(&borrowed)
    }

    #[test]
    fn a_malformed_file_is_rejected_naming_the_file_and_field() {
        let bank = SHIPPED_FILES.iter().find(|(name, _)| *name == "entries/bank.toml").unwrap().1;
        let cases = [
            (bank.replacen("actor = \"bank\"", "actor = \"martians\"", 1), "actor"),
            (bank.replacen("title = \"Bank not responding\"", "titel = \"Bank not responding\"", 1), "titel"),
            (bank.replacen("reason = \"bank_unavailable\"", "reason = \"Bank Unavailable\"", 1), "reason"),
            (bank.replacen("retry_after = \"4h\"", "retry_after = \"soon\"", 1), "retry_after"),
        ];
        for (text, field) in cases {
            let errors = load(&with_replaced("entries/bank.toml", &text)).unwrap_err();
            let message = errors.to_string();
            assert!(message.contains("catalog/entries/bank.toml"), "{message}");
            assert!(message.contains(field), "names {field}: {message}");
        }
    }

    #[test]
    fn an_entry_without_steps_or_sources_and_a_dangling_alias_are_rejected() {
        let provider = SHIPPED_FILES.iter().find(|(name, _)| *name == "entries/provider.toml").unwrap().1;
        let mut catalog_text: toml::Value = toml::from_str(provider).unwrap();
        let first = &mut catalog_text["entry"].as_array_mut().unwrap()[0];
        first.as_table_mut().unwrap().insert("steps".into(), toml::Value::Array(vec![]));
        first.as_table_mut().unwrap().insert("sources".into(), toml::Value::Array(vec![]));
        let edited = toml::to_string(&catalog_text).unwrap();
        let message = load(&with_replaced("entries/provider.toml", &edited)).unwrap_err().to_string();
        assert!(message.contains(".steps") && message.contains(".sources"), "{message}");

        let mx = SHIPPED_FILES.iter().find(|(name, _)| *name == "aliases/mx.toml").unwrap().1;
        let dangling =
            format!("{mx}\n[[alias]]\ncode = \"NEW_STATUS\"\ncanonical = 4242\nmatch = \"exact\"\ntitle = \"x\"\n");
        let message = load(&with_replaced("aliases/mx.toml", &dangling)).unwrap_err().to_string();
        assert!(message.contains("catalog/aliases/mx.toml") && message.contains("4242"), "{message}");
    }

    #[test]
    fn two_entries_may_not_share_a_code() {
        let mut files: Vec<(&'static str, String)> =
            SHIPPED_FILES.iter().map(|(name, text)| (*name, (*text).to_owned())).collect();
        let bank = files.iter().find(|(name, _)| *name == "entries/bank.toml").unwrap().1.clone();
        files.push(("entries/copy.toml", bank));
        let message = load(&files).unwrap_err().to_string();
        assert!(message.contains("code 102 is also used in catalog/entries/bank.toml"), "{message}");
    }

    fn index() -> CatalogIndex {
        shipped_index().unwrap()
    }

    fn first_hit(index: &CatalogIndex, query: &str) -> (u32, HitKind) {
        let hit = search(index, query, &Filters::default(), 5).into_iter().next().unwrap();
        (hit.code, hit.kind)
    }

    #[test]
    fn what_a_helpdesk_agent_types_finds_the_right_entry_first() {
        let index = index();
        for (query, expected) in [
            ("can't connect to bank", 102),
            ("password changed", 103),
            ("account not found", 324),
            ("verification code", 185),
            ("wrong password", 103),
            ("bank maintenance", 707),
            ("account locked", 701),
        ] {
            assert_eq!(first_hit(&index, query).0, expected, "{query}");
        }
    }

    #[test]
    fn codes_and_aliases_rank_first_and_typos_are_suggested() {
        let index = index();
        assert_eq!(first_hit(&index, "102"), (102, HitKind::Code));
        assert!(matches!(first_hit(&index, "plaid:item_login_required"), (103, HitKind::Alias(_))));
        assert!(matches!(first_hit(&index, "ofx 15500"), (103, HitKind::Alias(_))));
        let (code, kind) = first_hit(&index, "ITEM_LOGIN_REQIRED");
        assert_eq!(code, 103);
        assert_eq!(kind, HitKind::SimilarCode("plaid:ITEM_LOGIN_REQUIRED".into()));
        match index.resolve("ITEM_LOGIN_REQIRED") {
            Resolution::NotFound { suggestions } => assert_eq!(suggestions[0], "plaid:ITEM_LOGIN_REQUIRED"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lookups_accept_any_case_and_bare_codes_unless_ambiguous() {
        let index = index();
        for text in
            ["plaid:ITEM_LOGIN_REQUIRED", "PLAID:item_login_required", "ITEM_LOGIN_REQUIRED", "mx:DENIED", "ofx:15500"]
        {
            match index.resolve(text) {
                Resolution::Found { entry, .. } => assert_eq!(entry.entry.code, 103, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        match index.resolve("402") {
            Resolution::Ambiguous(candidates) => {
                let namespaces: HashSet<&str> = candidates.iter().map(|c| c.namespace.as_str()).collect();
                assert!(namespaces.contains("yodlee") && namespaces.contains("cloudbanking"), "{namespaces:?}");
            }
            other => panic!("402: {other:?}"),
        }
        match index.resolve("bank_unavailable") {
            Resolution::Found { entry, .. } => assert_eq!(entry.entry.code, 102),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_narrow_searches() {
        let index = index();
        let filters = Filters { actor: Some(Actor::Bank), ..Filters::default() };
        let hits = search(&index, "", &filters, 100);
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|hit| index.entry(hit.code).unwrap().entry.actor == Actor::Bank));
        let plaid = Filters { provider: Some("plaid".into()), retryable: Some(false), ..Filters::default() };
        for hit in search(&index, "", &plaid, 100) {
            let entry = &index.entry(hit.code).unwrap().entry;
            assert!(!entry.retryable);
            assert!(index.aliases_of(entry.code).iter().any(|alias| alias.namespace == "plaid"));
        }
    }
}
