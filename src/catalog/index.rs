//! The in-memory catalogue: lookup by code, reason or alias, and the search index.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use super::code::Code;
use super::model::{Action, Actor, Category, Namespace, NamespacedAlias, StoredEntry};
use super::ranking::{SearchIndex, trigram_similarity};

/// How a lookup found its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchedBy {
    Code,
    Reason,
    Alias(NamespacedAlias),
}

/// The outcome of resolving a code the caller typed.
#[derive(Debug, Clone)]
pub enum Resolution<'a> {
    Found {
        entry: &'a StoredEntry,
        matched: MatchedBy,
    },
    /// A bare provider code that several providers use with different meanings.
    Ambiguous(Vec<NamespacedAlias>),
    NotFound {
        suggestions: Vec<String>,
    },
}

#[derive(Debug, Default)]
pub struct CatalogIndex {
    entries: BTreeMap<Code, StoredEntry>,
    by_reason: HashMap<String, Code>,
    /// `namespace:code`, lowercase.
    by_alias: HashMap<String, NamespacedAlias>,
    /// The code alone, lowercase: every namespace that uses it.
    by_bare_code: HashMap<String, Vec<NamespacedAlias>>,
    aliases_of: HashMap<Code, Vec<NamespacedAlias>>,
    namespaces: Vec<Namespace>,
    /// Built on first use, or up front by a process that searches ([`Purpose::Search`]): a
    /// worker only looks codes up, and the search index is most of the build's time and memory.
    ///
    /// [`Purpose::Search`]: super::Purpose::Search
    search: OnceLock<SearchIndex>,
    /// Which of its handle's indexes this is; 0 until a handle publishes it.
    generation: u64,
}

impl CatalogIndex {
    pub fn build(entries: Vec<StoredEntry>, aliases: Vec<NamespacedAlias>, namespaces: Vec<Namespace>) -> Self {
        let mut index = Self { namespaces, ..Self::default() };
        for alias in aliases {
            let key = format!("{}:{}", alias.namespace, alias.alias.code).to_lowercase();
            index.by_bare_code.entry(alias.alias.code.to_lowercase()).or_default().push(alias.clone());
            index.aliases_of.entry(alias.alias.canonical).or_default().push(alias.clone());
            index.by_alias.insert(key, alias);
        }
        for stored in entries {
            index.by_reason.insert(stored.entry.reason.clone(), stored.entry.code);
            index.entries.insert(stored.entry.code, stored);
        }
        index
    }

    /// Builds the search index now, if it is not built yet, so the first search does not.
    pub fn prepare_search(&self) {
        self.search_index();
    }

    /// Distinct for every index a [`CatalogHandle`](super::CatalogHandle) publishes, and growing:
    /// what caches derived from an index are keyed on (an address can be reused once freed).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn with_generation(self, generation: u64) -> Self {
        Self { generation, ..self }
    }

    pub fn entry(&self, code: Code) -> Option<&StoredEntry> {
        self.entries.get(&code)
    }

    pub fn entries(&self) -> impl Iterator<Item = &StoredEntry> {
        self.entries.values()
    }

    pub fn codes(&self) -> impl Iterator<Item = Code> + '_ {
        self.entries.keys().copied()
    }

    pub fn aliases_of(&self, code: Code) -> &[NamespacedAlias] {
        self.aliases_of.get(&code).map_or(&[], Vec::as_slice)
    }

    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }

    /// The provider a word names, by its namespace or a word it is `called`.
    pub fn namespace_named_by(&self, word: &str) -> Option<&str> {
        self.namespaces.iter().find(|n| n.is_named_by(word)).map(|n| n.namespace.as_str())
    }

    pub(super) fn search_index(&self) -> &SearchIndex {
        self.search.get_or_init(|| SearchIndex::build(self.entries.values(), &self.aliases_of))
    }

    /// The entry a provider's code (`ofx:15500`, any case) resolves to, when an alias lists it
    /// and its entry exists: what a provider's failure means is the catalogue's to say.
    pub fn meaning_of(&self, namespace: &str, code: &str) -> Option<&StoredEntry> {
        let key = format!("{namespace}:{code}").to_lowercase();
        self.by_alias.get(&key).and_then(|alias| self.entries.get(&alias.alias.canonical))
    }

    /// Resolves a canonical code (`102`), a reason (`bank_unavailable`), a namespaced alias
    /// (`plaid:ITEM_LOGIN_REQUIRED`, any case) or a bare provider code (`ITEM_LOGIN_REQUIRED`).
    pub fn resolve(&self, text: &str) -> Resolution<'_> {
        match self.resolve_without_suggestions(text) {
            Resolution::NotFound { .. } => Resolution::NotFound { suggestions: self.suggest(text.trim(), 5) },
            found => found,
        }
    }

    /// As [`resolve`](Self::resolve), without the costly "did you mean" pass: for callers (search)
    /// that only want an exact match.
    pub fn resolve_without_suggestions(&self, text: &str) -> Resolution<'_> {
        let text = text.trim();
        if let Some(found) = self.resolve_exact(text) {
            return found;
        }
        let lower = text.to_lowercase();
        let candidates = self.by_bare_code.get(&lower).map(Vec::as_slice).unwrap_or_default();
        match candidates {
            [] => Resolution::NotFound { suggestions: Vec::new() },
            [first, rest @ ..] if rest.iter().all(|alias| alias.alias.canonical == first.alias.canonical) => {
                self.found_alias(first)
            }
            many => Resolution::Ambiguous(many.to_vec()),
        }
    }

    fn resolve_exact(&self, text: &str) -> Option<Resolution<'_>> {
        if let Some(entry) = text.parse::<Code>().ok().and_then(|code| self.entries.get(&code)) {
            return Some(Resolution::Found { entry, matched: MatchedBy::Code });
        }
        let lower = text.to_lowercase();
        if let Some(entry) = self.by_reason.get(&lower).and_then(|code| self.entries.get(code)) {
            return Some(Resolution::Found { entry, matched: MatchedBy::Reason });
        }
        self.by_alias.get(&lower).map(|alias| self.found_alias(alias))
    }

    fn found_alias(&self, alias: &NamespacedAlias) -> Resolution<'_> {
        match self.entries.get(&alias.alias.canonical) {
            Some(entry) => Resolution::Found { entry, matched: MatchedBy::Alias(alias.clone()) },
            None => Resolution::NotFound { suggestions: Vec::new() },
        }
    }

    /// Codes and aliases that look like `text`, best first, as `namespace:CODE` or the number.
    pub fn suggest(&self, text: &str, limit: usize) -> Vec<String> {
        let text = text.trim();
        let bare = text.split_once(':').map_or(text, |(_, code)| code);
        let mut scored: Vec<(f32, String)> = Vec::new();
        for alias in self.by_alias.values() {
            let full = format!("{}:{}", alias.namespace, alias.alias.code);
            let score = trigram_similarity(text, &full).max(trigram_similarity(bare, &alias.alias.code));
            scored.push((score, full));
        }
        for stored in self.entries.values() {
            let score = trigram_similarity(text, &stored.entry.code.to_string())
                .max(trigram_similarity(text, &stored.entry.reason));
            scored.push((score, stored.entry.code.to_string()));
        }
        scored.retain(|(score, _)| *score >= 0.35);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored.into_iter().take(limit).map(|(_, text)| text).collect()
    }
}

/// Filters of a search.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub category: Option<Category>,
    pub actor: Option<Actor>,
    pub retryable: Option<bool>,
    pub action: Option<Action>,
    /// Entries with at least one alias in this namespace.
    pub provider: Option<String>,
}

impl Filters {
    pub fn accept(&self, index: &CatalogIndex, stored: &StoredEntry) -> bool {
        let entry = &stored.entry;
        self.category.is_none_or(|category| entry.category == category)
            && self.actor.is_none_or(|actor| entry.actor == actor)
            && self.retryable.is_none_or(|retryable| entry.retryable == retryable)
            && self.action.is_none_or(|action| entry.action == action)
            && self.provider.as_deref().is_none_or(|namespace| {
                index.aliases_of(entry.code).iter().any(|alias| alias.namespace.eq_ignore_ascii_case(namespace))
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use super::*;
    use crate::catalog::shipped_index;

    fn index() -> CatalogIndex {
        shipped_index().unwrap()
    }

    #[test]
    fn lookups_leave_the_search_index_unbuilt_until_a_search_or_a_server_asks_for_it() {
        let index = index();
        assert!(matches!(index.resolve("ofx:15500"), Resolution::Found { .. }));
        assert!(!index.suggest("plaid:ITEM_LOGIN", 3).is_empty());
        assert!(index.search.get().is_none(), "a worker's lookups build no search index");
        index.prepare_search();
        assert!(index.search.get().is_some());
        let unprepared = self::index();
        assert!(!unprepared.search_index().text_scores("password changed").is_empty(), "a first search builds it");
        assert!(unprepared.search.get().is_some());
    }

    #[test]
    fn lookups_accept_any_case_and_bare_codes_unless_ambiguous() {
        let index = index();
        for text in
            ["plaid:ITEM_LOGIN_REQUIRED", "PLAID:item_login_required", "ITEM_LOGIN_REQUIRED", "mx:DENIED", "ofx:15500"]
        {
            match index.resolve(text) {
                Resolution::Found { entry, .. } => assert_eq!(entry.entry.code.get(), 103, "{text}"),
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
            Resolution::Found { entry, .. } => assert_eq!(entry.entry.code.get(), 102),
            other => panic!("{other:?}"),
        }
    }
}
