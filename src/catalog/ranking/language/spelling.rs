//! Misspelt words in questions: one letter missing, added, replaced or two swapped (SymSpell's
//! deletion table, checked by edit distance), or for long words a close trigram match. Built
//! once from the entries' words; which word is known and how common it is, the lexicon says.

use std::collections::HashMap;

use super::super::{jaccard, trigrams};
use super::TermId;

#[derive(Debug, Default)]
pub(super) struct Spelling {
    /// Known words (of four letters or more) with their terms.
    spellings: Vec<(Box<str>, TermId)>,
    /// Each known word with one letter deleted, to the word (its index in `spellings`): the
    /// candidates for a misspelling of one letter, checked by edit distance.
    deletions: HashMap<Box<str>, Vec<u32>>,
    /// Longer known words with their trigrams, for misspellings of two letters.
    long_words: Vec<(Vec<[char; 3]>, TermId)>,
}

impl Spelling {
    pub(super) fn new(known: impl Iterator<Item = (Box<str>, TermId)>) -> Self {
        let mut spellings: Vec<(Box<str>, TermId)> = known.collect();
        spellings.sort();
        let mut deletions: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut long_words = Vec::new();
        for (index, (word, term)) in spellings.iter().enumerate() {
            for deleted in deletions_of(word) {
                deletions.entry(deleted.into()).or_default().push(index as u32);
            }
            if word.chars().count() >= 6 {
                long_words.push((trigrams(word), *term));
            }
        }
        long_words.sort_by_key(|(_, term)| *term);
        Self { spellings, deletions, long_words }
    }

    /// The known word a misspelt one stands for: one letter missing, added, replaced or two
    /// swapped (words of five letters or more), or a close trigram match (eight or more).
    /// `known_word` answers for a word spelt exactly (stop words excluded); among several
    /// candidates the one with the higher `frequency` wins.
    pub(super) fn correct(
        &self,
        word: &str,
        known_word: impl Fn(&str) -> Option<TermId>,
        frequency: impl Fn(TermId) -> u32,
    ) -> Option<TermId> {
        let length = word.chars().count();
        if length < 5 || !word.chars().all(char::is_alphabetic) {
            return None;
        }
        let mut candidates: Vec<u32> = self.deletions.get(word).cloned().unwrap_or_default();
        for deleted in deletions_of(word) {
            candidates.extend(self.deletions.get(deleted.as_str()).into_iter().flatten());
            if let Some(term) = known_word(&deleted) {
                return Some(term);
            }
        }
        let candidates = candidates
            .into_iter()
            .filter_map(|index| self.spellings.get(index as usize))
            .filter(|(known, _)| one_edit_apart(word, known))
            .map(|(_, term)| *term);
        let likeliest = candidates.into_iter().max_by_key(|&term| (frequency(term), std::cmp::Reverse(term)));
        if likeliest.is_some() || length < 8 {
            return likeliest;
        }
        let grams = trigrams(word);
        self.long_words
            .iter()
            .map(|(known, term)| (jaccard(&grams, known), *term))
            .filter(|(similarity, _)| *similarity >= 0.5)
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, term)| term)
    }
}

/// Whether one letter inserted, deleted, replaced, or two neighbours swapped turn `a` into `b`.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    match (a.len() - prefix - suffix, b.len() - prefix - suffix) {
        (0, 0) | (0, 1) | (1, 0) | (1, 1) => true,
        (2, 2) => a[prefix] == b[prefix + 1] && a[prefix + 1] == b[prefix],
        _ => false,
    }
}

fn deletions_of(word: &str) -> Vec<String> {
    word.char_indices()
        .map(|(index, c)| {
            let mut deleted = String::with_capacity(word.len());
            deleted.push_str(&word[..index]);
            deleted.push_str(&word[index + c.len_utf8()..]);
            deleted
        })
        .collect()
}
