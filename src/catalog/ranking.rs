//! Text relevance over the catalogue, the leaf both lookup suggestions and search stand on:
//! stemmed words weighted by field and by rarity (BM25), a bonus for adjacent word pairs, and
//! trigram similarity (the measure pg_trgm uses) for misspelt words and look-alike codes.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};

use super::code::Code;
use super::model::{NamespacedAlias, StoredEntry};

#[derive(Debug)]
struct Doc {
    code: Code,
    /// Field-weighted term frequency.
    terms: HashMap<String, f32>,
    /// Adjacent word pairs (both orders) with the weight of the best field they occur in.
    pairs: HashMap<(String, String), f32>,
    /// The title and keywords as whole stemmed phrases: typing one exactly is a strong signal.
    phrases: HashSet<Vec<String>>,
    length: f32,
}

impl Doc {
    fn new(code: Code) -> Self {
        Self { code, terms: HashMap::new(), pairs: HashMap::new(), phrases: HashSet::new(), length: 0.0 }
    }
}

#[derive(Debug, Default)]
pub(super) struct SearchIndex {
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
    pub(super) fn build<'a>(
        entries: impl Iterator<Item = &'a StoredEntry>,
        aliases_of: &HashMap<Code, Vec<NamespacedAlias>>,
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
    pub(super) fn text_scores(&self, query: &str) -> Vec<(Code, f32)> {
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

fn document(stemmer: &Stemmer, stored: &StoredEntry, aliases_of: &HashMap<Code, Vec<NamespacedAlias>>) -> Doc {
    let entry = &stored.entry;
    let alias_titles: Vec<&str> = aliases_of
        .get(&entry.code)
        .map(|aliases| aliases.iter().map(|alias| alias.alias.title.as_str()).collect())
        .unwrap_or_default();
    let reason_words = entry.reason.replace('_', " ");
    let mut doc = Doc::new(entry.code);
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

/// pg_trgm's similarity: shared trigrams of the padded words over all trigrams of both.
pub(super) fn trigram_similarity(a: &str, b: &str) -> f32 {
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
    use super::*;

    #[test]
    fn trigram_similarity_matches_pg_trgm_on_simple_words() {
        // pg_trgm: similarity('word', 'two words') = 0.36363637
        assert!((trigram_similarity("word", "two words") - 0.363_636_37).abs() < 1e-6);
        assert_eq!(trigram_similarity("bank", "bank"), 1.0);
        assert_eq!(trigram_similarity("", "bank"), 0.0);
    }
}
