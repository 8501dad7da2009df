//! Loading the shipped catalogue, and the one validation every entry passes: a shipped file's
//! and an admin edit's alike, so an edit can never store what a reviewer could not ship.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::code::Code;
use super::files::SHIPPED_FILES;
use super::index::CatalogIndex;
use super::model::{Alias, Entry, MatchKind, Namespace, NamespacedAlias, Source, StoredEntry};

/// One `aliases/<namespace>.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasFile {
    namespace: String,
    provider: String,
    /// Other single words that name the provider and nothing else (`Namespace::called`).
    #[serde(default)]
    called: Vec<String>,
    #[serde(rename = "alias", default)]
    aliases: Vec<Alias>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    #[serde(rename = "entry", default)]
    entries: Vec<Entry>,
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
    pub entries: BTreeMap<Code, Entry>,
    pub aliases: Vec<NamespacedAlias>,
    pub namespaces: Vec<Namespace>,
}

const MAX_LIST: usize = 20;
const MAX_ALIAS_SOURCES: usize = 10;

impl Catalog {
    /// The catalogue compiled into this binary.
    pub fn shipped() -> Result<Self, CatalogErrors> {
        Self::from_files(SHIPPED_FILES)
    }

    /// The index of these files as they are, every entry at its first revision: what a process
    /// with no database (the CLI, a test that changes a file's content) reads.
    pub fn into_index(self) -> CatalogIndex {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let entries =
            self.entries.into_values().map(|entry| StoredEntry { entry, revision: 1, updated_at: epoch }).collect();
        CatalogIndex::build(entries, self.aliases, self.namespaces)
    }

    /// Parses and validates `(path, text)` pairs under `entries/` and `aliases/`.
    pub fn from_files(files: &[(&str, &str)]) -> Result<Self, CatalogErrors> {
        let mut errors = Vec::new();
        let mut entries: BTreeMap<Code, Entry> = BTreeMap::new();
        let mut entry_files: BTreeMap<Code, String> = BTreeMap::new();
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
        let codes: HashSet<Code> = entries.keys().copied().collect();
        let mut reasons: BTreeMap<&str, Code> = BTreeMap::new();
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
        errors.extend(names_used_twice(&alias_files));
        for (file, path, parsed) in alias_files {
            errors.extend(validate_alias_file(&file, path, &parsed, &codes));
            namespaces.push(Namespace {
                namespace: parsed.namespace.clone(),
                provider: parsed.provider.clone(),
                called: parsed.called.clone(),
            });
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
pub fn validate_entry(entry: &Entry, known_codes: &HashSet<Code>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let field = |name: &str| format!("entry {}.{name}", entry.code);
    let mut check = |ok: bool, name: &str, message: &str| {
        if !ok {
            problems.push((field(name), message.to_owned()));
        }
    };
    check(entry.code.get() > 0, "code", "must be a positive number");
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
    for (name, message) in entry.sources.iter().flat_map(source_problems) {
        check(false, name, message);
    }
    problems
}

fn source_problems(source: &Source) -> Vec<(&'static str, &'static str)> {
    let url_is_http = source.url.starts_with("https://") || source.url.starts_with("http://");
    [
        (is_text(&source.title, 300), "sources.title", "must be 1 to 300 characters"),
        (url_is_http, "sources.url", "must be an http(s) URL"),
        (source.url.chars().count() <= 500, "sources.url", "at most 500 characters"),
    ]
    .into_iter()
    .filter(|(ok, _, _)| !ok)
    .map(|(_, name, message)| (name, message))
    .collect()
}

/// A word that names two providers (as a namespace or in `called`) would name neither surely.
fn names_used_twice(alias_files: &[(String, &str, AliasFile)]) -> Vec<CatalogError> {
    let mut owner: HashMap<String, &str> = HashMap::new();
    let mut errors = Vec::new();
    for (_, _, parsed) in alias_files {
        owner.insert(parsed.namespace.to_lowercase(), &parsed.namespace);
    }
    for (file, _, parsed) in alias_files {
        for word in &parsed.called {
            if let Some(other) = owner.insert(word.to_lowercase(), &parsed.namespace) {
                errors.push(error(file, "called", format!("`{word}` already names `{other}`")));
            }
        }
    }
    errors
}

fn validate_alias_file(file: &str, path: &str, parsed: &AliasFile, codes: &HashSet<Code>) -> Vec<CatalogError> {
    let mut errors = Vec::new();
    for word in &parsed.called {
        if word.is_empty() || word.len() > 40 || !word.chars().all(|c| c.is_ascii_lowercase()) {
            errors.push(error(file, "called", format!("`{word}` must be one lowercase word")));
        }
    }
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
        if alias.sources.is_empty() || alias.sources.len() > MAX_ALIAS_SOURCES {
            errors.push(error(file, &field("sources"), "needs 1 to 10 sources: where the provider's meaning was read"));
        }
        for (name, message) in alias.sources.iter().flat_map(source_problems) {
            errors.push(error(file, &field(name), message));
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

/// What `is_text` asks of a text beside its length, as a pattern for the document: a character
/// that is not white space (`char::is_whitespace`, spelt out: regex engines disagree on `\s`),
/// and no NUL anywhere (`extract::parse_json` refuses it).
pub const TEXT_PATTERN: &str = concat!(
    r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
);

/// What `source_problems` asks of a source's URL beside its length: an http(s) URL, no NUL.
#[cfg(test)]
pub const SOURCE_URL_PATTERN: &str = r"^https?://[^\x00]*$";

fn is_text(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max
}

/// Builds an index straight from the shipped files, for the CLI.
pub fn shipped_index() -> Result<CatalogIndex, CatalogErrors> {
    Ok(Catalog::shipped()?.into_index())
}

/// An admin edit, checked the way a shipped file is checked.
pub fn validate_edit(index: &CatalogIndex, code: Code, edit: &Entry) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if edit.code != code {
        problems.push(("code".to_owned(), format!("must be {code}, the code in the path")));
    }
    if let Some(current) = index.entry(code).filter(|current| current.entry.reason != edit.reason) {
        problems.push(("reason".to_owned(), format!("is stable and must stay `{}`", current.entry.reason)));
    }
    let codes: HashSet<Code> = index.codes().collect();
    problems.extend(
        validate_entry(edit, &codes).into_iter().map(|(field, message)| {
            (field.split_once('.').map_or(field.clone(), |(_, name)| name.to_owned()), message)
        }),
    );
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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
        for code in [102, 103, 185, 187, 310, 324].map(Code::new) {
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
            "fints",
            "flinks",
            "gocardless",
            "ofx",
            "simplefin",
            "teller",
            "cloudbanking",
            "akahu",
            "truelayer",
            "tink",
            "basiq",
            "belvo",
            "stripe",
            "pluggy",
            "saltedge",
            "http",
        ] {
            assert!(namespaces.contains(expected), "namespace {expected}");
        }
    }

    /// A provider's status that says all is well, or that work is under way, answers that it is
    /// not an error (600, 601): an agent told "unclassified error, retry and escalate" about a
    /// connection that is fine would act on nothing (issue #14). Read from the status's own name,
    /// so a new provider's `SUCCEEDED` or `..._IN_PROGRESS` is held to it too.
    #[test]
    fn statuses_that_are_not_errors_say_so() {
        let catalog = shipped();
        let fine = ["CONNECTED", "SUCCESS", "SUCCEEDED", "ACTIVE", "READY", "LN"];
        let under_way = ["PENDING", "UPDATING", "CREATING", "AUTHENTICATING", "PROCESSING"];
        // Yodlee's site still being built is a bank not yet offered, not work on this connection.
        let not_a_state = ["BETA_SITE_DEV_IN_PROGRESS"];
        let mut checked = 0;
        for alias in &catalog.aliases {
            let status = alias.alias.code.rsplit(':').next().unwrap_or_default().to_ascii_uppercase();
            let expected = if fine.contains(&status.as_str()) {
                600
            } else if (under_way.contains(&status.as_str()) || status.ends_with("_IN_PROGRESS"))
                && !not_a_state.contains(&status.as_str())
            {
                601
            } else {
                continue;
            };
            checked += 1;
            assert_eq!(alias.alias.canonical.get(), expected, "{}:{}", alias.namespace, alias.alias.code);
        }
        assert!(checked >= 25, "{checked}");
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
        let dangling = format!(
            "{mx}\n[[alias]]\ncode = \"NEW_STATUS\"\ncanonical = 4242\nmatch = \"exact\"\ntitle = \"x\"\nsources = []\n"
        );
        let message = load(&with_replaced("aliases/mx.toml", &dangling)).unwrap_err().to_string();
        assert!(message.contains("catalog/aliases/mx.toml") && message.contains("4242"), "{message}");
        assert!(message.contains("alias NEW_STATUS.sources"), "an alias without evidence is refused: {message}");
    }

    #[test]
    fn a_word_may_name_one_provider_only() {
        let mx = SHIPPED_FILES.iter().find(|(name, _)| *name == "aliases/mx.toml").unwrap().1;
        for (called, problem) in [("plaid", "already names `plaid`"), ("Nordigen", "must be one lowercase word")] {
            let edited = mx.replacen("provider = ", &format!("called = [\"{called}\"]\nprovider = "), 1);
            let message = load(&with_replaced("aliases/mx.toml", &edited)).unwrap_err().to_string();
            assert!(message.contains("catalog/aliases/mx.toml") && message.contains(problem), "{message}");
        }
        let gocardless = shipped().namespaces.into_iter().find(|n| n.namespace == "gocardless");
        assert!(gocardless.unwrap().is_named_by("Nordigen"));
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
    /// `TEXT_PATTERN` takes exactly the texts `is_text` takes (below its length), NUL aside.
    #[test]
    fn the_text_pattern_is_what_is_text_takes() {
        let pattern = regex::Regex::new(TEXT_PATTERN).unwrap();
        // Every white space and control character is below U+3100; a few above stand for the rest.
        for c in (0..=0x3100).chain([0xfeff, 0xffff, 0x1_0000, 0x10_ffff]).filter_map(char::from_u32) {
            for text in [c.to_string(), format!(" {c}"), format!("{c}\t"), format!("x{c}")] {
                let taken = is_text(&text, 10) && !text.contains('\0');
                assert_eq!(pattern.is_match(&text), taken, "{text:?}");
            }
        }
    }

    /// The document states each text rule of an entry and its sources with the patterns the
    /// validation owns: the derive takes literals only, so they are compared here.
    #[test]
    fn the_documented_entry_patterns_are_the_validation_s() {
        use utoipa::PartialSchema;

        let entry = serde_json::to_value(Entry::schema()).unwrap();
        for name in ["title", "user_message", "agent_notes", "meaning"] {
            let documented = entry.pointer(&format!("/properties/{name}/pattern")).and_then(serde_json::Value::as_str);
            assert_eq!(documented, Some(TEXT_PATTERN), "{name}");
        }
        let item = serde_json::to_value(super::super::model::ListItem::schema()).unwrap();
        assert_eq!(item["pattern"], TEXT_PATTERN);
        let source = serde_json::to_value(Source::schema()).unwrap();
        assert_eq!(source.pointer("/properties/title/pattern").and_then(serde_json::Value::as_str), Some(TEXT_PATTERN));
        assert_eq!(
            source.pointer("/properties/url/pattern").and_then(serde_json::Value::as_str),
            Some(SOURCE_URL_PATTERN)
        );
        let url = regex::Regex::new(SOURCE_URL_PATTERN).unwrap();
        for candidate in ["https://a.example/x", "http://a", "https://", "ftp://a.example", "a.example", "https:/a"] {
            let source = Source {
                title: "t".into(),
                url: candidate.into(),
                confidence: super::super::model::Confidence::Vendor,
            };
            assert_eq!(url.is_match(candidate), source_problems(&source).is_empty(), "{candidate}");
        }
    }
}
