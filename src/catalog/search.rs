//! Ranked search over the catalogue, in memory.
//!
//! Exact code and alias matches rank first, then codes that look like the query (typos in
//! `ITEM_LOGIN_REQIRED`), then full-text relevance: stemmed words weighted by field and by
//! rarity, a bonus for adjacent word pairs, and trigram similarity (the measure pg_trgm uses)
//! for misspelt words.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};

use super::index::{CatalogIndex, Filters, MatchedBy, Resolution};
use super::model::{NamespacedAlias, StoredEntry};

/// Why a hit matched.
#[derive(Debug, Clone, PartialEq)]
pub enum HitKind {
    Code,
    Reason,
    Alias(NamespacedAlias),
    SimilarCode(String),
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub code: u32,
    pub score: f32,
    pub kind: HitKind,
}

#[derive(Debug, Default)]
struct Doc {
    code: u32,
    /// Field-weighted term frequency.
    terms: HashMap<String, f32>,
    /// Adjacent word pairs (both orders) with the weight of the best field they occur in.
    pairs: HashMap<(String, String), f32>,
    /// The title and keywords as whole stemmed phrases: typing one exactly is a strong signal.
    phrases: HashSet<Vec<String>>,
    length: f32,
}

#[derive(Debug, Default)]
pub struct SearchIndex {
    docs: Vec<Doc>,
    average_length: f32,
    idf: HashMap<String, f32>,
    /// Every indexed stem with its trigrams, for misspelt query words.
    vocabulary: Vec<(String, Vec<[char; 3]>)>,
}

const STOPWORDS: &[&str] = &[
    "a", "an", "the", "to", "of", "in", "on", "at", "for", "and", "or", "is", "are", "was", "be", "been", "my", "i",
    "it", "its", "can", "t", "s", "do", "does", "did", "not", "no", "with", "by", "from", "this", "that", "we", "you",
    "your", "our", "me", "what", "why", "how", "when", "won", "don", "isn", "doesn", "has", "have", "had", "as", "but",
    "if",
];

fn stemmer() -> Stemmer {
    Stemmer::create(Algorithm::English)
}

/// Lowercased, stemmed words without stopwords, in order.
fn stems(stemmer: &Stemmer, text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .map(|word| stemmer.stem(&word).into_owned())
        .collect()
}

impl SearchIndex {
    pub fn build<'a>(
        entries: impl Iterator<Item = &'a StoredEntry>,
        aliases_of: &HashMap<u32, Vec<NamespacedAlias>>,
    ) -> Self {
        let stemmer = stemmer();
        let docs: Vec<Doc> = entries.map(|stored| document(&stemmer, stored, aliases_of)).collect();
        let mut document_frequency: HashMap<&str, u32> = HashMap::new();
        for doc in &docs {
            for term in doc.terms.keys() {
                *document_frequency.entry(term).or_default() += 1;
            }
        }
        let total = docs.len().max(1) as f32;
        let idf: HashMap<String, f32> = document_frequency
            .into_iter()
            .map(|(term, count)| (term.to_owned(), (1.0 + total / count as f32).ln()))
            .collect();
        let vocabulary = idf.keys().map(|term| (term.clone(), trigrams(term))).collect();
        let average_length = docs.iter().map(|doc| doc.length).sum::<f32>() / total;
        Self { docs, average_length, idf, vocabulary }
    }

    /// Text relevance of every entry with a positive score.
    fn text_scores(&self, query: &str) -> Vec<(u32, f32)> {
        let stemmer = stemmer();
        let query_terms: Vec<(String, f32)> =
            stems(&stemmer, query).into_iter().filter_map(|term| self.known_term(term)).collect();
        if query_terms.is_empty() {
            return Vec::new();
        }
        let query_phrase: Vec<String> = query_terms.iter().map(|(term, _)| term.clone()).collect();
        let mut scores = Vec::new();
        for doc in &self.docs {
            let mut score: f32 = query_terms.iter().map(|(term, weight)| weight * self.term_score(doc, term)).sum();
            for pair in query_terms.windows(2) {
                if let Some(field_weight) = doc.pairs.get(&(pair[0].0.clone(), pair[1].0.clone())) {
                    score += field_weight * (self.idf[&pair[0].0] + self.idf[&pair[1].0]) / 2.0;
                }
            }
            if doc.phrases.contains(&query_phrase) {
                score += 20.0;
            }
            if score > 0.0 {
                scores.push((doc.code, score));
            }
        }
        scores
    }

    /// BM25: frequent terms saturate, and long entries do not win by length alone.
    fn term_score(&self, doc: &Doc, term: &str) -> f32 {
        const K1: f32 = 1.2;
        const B: f32 = 0.75;
        let frequency = doc.terms.get(term).copied().unwrap_or(0.0);
        if frequency == 0.0 {
            return 0.0;
        }
        let idf = self.idf.get(term).copied().unwrap_or(0.0);
        let norm = K1 * (1.0 - B + B * doc.length / self.average_length.max(1.0));
        idf * frequency * (K1 + 1.0) / (frequency + norm)
    }

    /// The indexed term a query word stands for, with a weight below 1 when only a similar
    /// (misspelt) term matched.
    fn known_term(&self, term: String) -> Option<(String, f32)> {
        if self.idf.contains_key(&term) {
            return Some((term, 1.0));
        }
        let query = trigrams(&term);
        self.vocabulary
            .iter()
            .map(|(known, grams)| (known, jaccard(&query, grams)))
            .filter(|(_, similarity)| *similarity >= 0.45)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(known, similarity)| (known.clone(), similarity))
    }
}

fn document(stemmer: &Stemmer, stored: &StoredEntry, aliases_of: &HashMap<u32, Vec<NamespacedAlias>>) -> Doc {
    let entry = &stored.entry;
    let alias_titles: Vec<&str> = aliases_of
        .get(&entry.code)
        .map(|aliases| aliases.iter().map(|alias| alias.alias.title.as_str()).collect())
        .unwrap_or_default();
    let reason_words = entry.reason.replace('_', " ");
    let mut doc = Doc { code: entry.code, ..Doc::default() };
    let mut add = |text: &str, weight: f32, pairs: bool| {
        let words = stems(stemmer, text);
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for word in &words {
            *counts.entry(word).or_default() += 1;
        }
        for (word, count) in counts {
            *doc.terms.entry(word.to_owned()).or_default() += weight * (1.0 + (count as f32).ln());
            doc.length += weight;
        }
        if pairs {
            // Both orders: "password changed" and "changed password" mean the same.
            for pair in words.windows(2) {
                for key in [(pair[0].clone(), pair[1].clone()), (pair[1].clone(), pair[0].clone())] {
                    let best = doc.pairs.entry(key).or_default();
                    *best = best.max(weight);
                }
            }
        }
        words
    };
    let title = add(&entry.title, 4.0, true);
    doc_phrase(&mut doc.phrases, title);
    let mut keyword_phrases = Vec::new();
    for keyword in &entry.keywords {
        keyword_phrases.push(add(keyword, 3.0, true));
    }
    add(&reason_words, 3.0, true);
    add(&entry.meaning, 1.5, true);
    add(&entry.user_message, 1.0, true);
    for cause in &entry.causes {
        add(cause, 1.0, true);
    }
    for title in alias_titles {
        add(title, 1.5, true);
    }
    for step in &entry.steps {
        add(step, 0.5, false);
    }
    add(&entry.agent_notes, 0.3, false);
    for phrase in keyword_phrases {
        doc_phrase(&mut doc.phrases, phrase);
    }
    doc
}

fn doc_phrase(phrases: &mut HashSet<Vec<String>>, phrase: Vec<String>) {
    if !phrase.is_empty() {
        phrases.insert(phrase);
    }
}

/// Searches: exact code or alias first, then similar codes, then text relevance.
pub fn search(index: &CatalogIndex, query: &str, filters: &Filters, limit: usize) -> Vec<Hit> {
    let query = query.trim();
    let mut hits: Vec<Hit> = Vec::new();
    if query.is_empty() {
        hits.extend(index.entries().map(|stored| Hit { code: stored.entry.code, score: 0.0, kind: HitKind::Text }));
    } else {
        hits.extend(exact_hits(index, query));
        if looks_like_a_code(query) {
            hits.extend(similar_code_hits(index, query));
        }
        let mut text = index.search_index().text_scores(query);
        text.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.extend(text.into_iter().map(|(code, score)| Hit { code, score, kind: HitKind::Text }));
    }
    let mut seen = HashSet::new();
    hits.into_iter()
        .filter(|hit| seen.insert(hit.code))
        .filter(|hit| index.entry(hit.code).is_some_and(|stored| filters.accept(index, stored)))
        .take(limit)
        .collect()
}

fn exact_hits(index: &CatalogIndex, query: &str) -> Vec<Hit> {
    // "ofx 15500" means ofx:15500.
    let namespaced = match query.split_whitespace().collect::<Vec<_>>()[..] {
        [namespace, code] if index.namespaces().iter().any(|n| n.namespace.eq_ignore_ascii_case(namespace)) => {
            format!("{namespace}:{code}")
        }
        _ => query.to_owned(),
    };
    match index.resolve_without_suggestions(&namespaced) {
        Resolution::Found { entry, matched } => {
            let kind = match matched {
                MatchedBy::Code => HitKind::Code,
                MatchedBy::Reason => HitKind::Reason,
                MatchedBy::Alias(alias) => HitKind::Alias(alias),
            };
            vec![Hit { code: entry.entry.code, score: 1000.0, kind }]
        }
        Resolution::Ambiguous(aliases) => aliases
            .into_iter()
            .map(|alias| Hit { code: alias.alias.canonical, score: 1000.0, kind: HitKind::Alias(alias) })
            .collect(),
        Resolution::NotFound { .. } => Vec::new(),
    }
}

fn similar_code_hits(index: &CatalogIndex, query: &str) -> Vec<Hit> {
    index
        .suggest(query, 3)
        .into_iter()
        .filter_map(|suggestion| match index.resolve_without_suggestions(&suggestion) {
            Resolution::Found { entry, .. } => Some(Hit {
                code: entry.entry.code,
                score: 500.0 * trigram_similarity(query, &suggestion),
                kind: HitKind::SimilarCode(suggestion),
            }),
            _ => None,
        })
        .collect()
}

/// One token with an underscore, a digit or only capitals reads as a code, not as words.
fn looks_like_a_code(query: &str) -> bool {
    !query.contains(char::is_whitespace)
        && query.len() >= 3
        && (query.contains(['_', ':', '-'])
            || query.chars().any(|c| c.is_ascii_digit())
            || query.chars().all(|c| c.is_ascii_uppercase()))
}

/// pg_trgm's similarity: shared trigrams of the padded words over all trigrams of both.
pub fn trigram_similarity(a: &str, b: &str) -> f32 {
    jaccard(&trigrams(a), &trigrams(b))
}

fn trigrams(text: &str) -> Vec<[char; 3]> {
    let mut grams = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        let padded: Vec<char> = "  ".chars().chain(word.to_lowercase().chars()).chain(" ".chars()).collect();
        grams.extend(padded.windows(3).map(|w| [w[0], w[1], w[2]]));
    }
    grams.sort_unstable();
    grams.dedup();
    grams
}

fn jaccard(a: &[[char; 3]], b: &[[char; 3]]) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    shared as f32 / (a.len() + b.len() - shared) as f32
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::catalog::Actor;
    use crate::catalog::shipped_index;

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

    #[test]
    fn trigram_similarity_matches_pg_trgm_on_simple_words() {
        // pg_trgm: similarity('word', 'two words') = 0.36363637
        assert!((trigram_similarity("word", "two words") - 0.363_636_37).abs() < 1e-6);
        assert_eq!(trigram_similarity("bank", "bank"), 1.0);
        assert_eq!(trigram_similarity("", "bank"), 0.0);
    }

    #[test]
    fn codes_are_told_apart_from_words() {
        assert!(looks_like_a_code("ITEM_LOGIN_REQIRED"));
        assert!(looks_like_a_code("OL-301"));
        assert!(looks_like_a_code("15500"));
        assert!(!looks_like_a_code("password changed"));
        assert!(!looks_like_a_code("locked"));
    }
}
