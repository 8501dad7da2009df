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
    /// Known words of eight letters or more, checked by edit distance for two slips.
    long_spellings: Vec<(Box<str>, TermId)>,
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
        let long_spellings = spellings.iter().filter(|(word, _)| word.chars().count() >= 8).cloned().collect();
        Self { spellings, deletions, long_words, long_spellings }
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
        // Not four letters: session 28 read four-letter words with two neighbours swapped as the
        // known word, and it corrected 15 real words of the studied questions ("hire", "lest",
        // "erst", "sono") for 6 more first places among 4,263 typed with a slip; with a
        // neighbouring key replaced too, about 70 ("exit", "wife", "auch").
        if length < 5 || !word.chars().all(char::is_alphabetic) {
            return None;
        }
        let mut candidates: Vec<u32> = self.deletions.get(word).cloned().unwrap_or_default();
        for (index, deleted) in deletions_of(word).into_iter().enumerate() {
            candidates.extend(self.deletions.get(deleted.as_str()).into_iter().flatten());
            if doubled_at(word, index)
                && let Some(term) = known_word(&deleted)
            {
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
        // Two slips in a long word ("maintanence") keep its letters in order, which trigrams,
        // cut apart by each slip, can miss: an edit distance of two finds it first.
        // A long word is rarely mistyped at its first letter, and a word that differs from a
        // known one at the start is usually another word: "undefined" is not "defined".
        let same_start = |known: &str| known.chars().next() == word.chars().next();
        let two_edits = self
            .long_spellings
            .iter()
            .filter(|(known, _)| known.chars().count().abs_diff(length) <= 2 && same_start(known))
            .filter_map(|(known, term)| Some((edit_distance_within(word, known, 2)?, *term)))
            .min_by_key(|&(distance, term)| (distance, std::cmp::Reverse(frequency(term)), term));
        if let Some((_, term)) = two_edits {
            return Some(term);
        }
        let grams = trigrams(word);
        self.long_words
            .iter()
            .filter(|(known, _)| known.first() == grams.first())
            .map(|(known, term)| (jaccard(&grams, known), *term))
            .filter(|(similarity, _)| *similarity >= 0.5)
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, term)| term)
    }
}

/// Whether the letter at `index` repeats a neighbour: a key struck twice ("passsword"). A word
/// one letter longer than a known word is otherwise usually another word: "blank" is not "bank",
/// "forum" is not "form".
fn doubled_at(word: &str, index: usize) -> bool {
    let letters: Vec<char> = word.chars().collect();
    let letter = letters.get(index);
    (index > 0 && letters.get(index - 1) == letter) || letters.get(index + 1) == letter
}

/// Whether one letter inserted, deleted, replaced, or two neighbours swapped turn the typed word
/// `a` into the known word `b`; a letter the typed word has too many only if struck twice.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    match (a.len() - prefix - suffix, b.len() - prefix - suffix) {
        (1, 0) => doubled_at(&a.iter().collect::<String>(), prefix),
        (0, 0) | (0, 1) | (1, 1) => true,
        (2, 2) => a[prefix] == b[prefix + 1] && a[prefix + 1] == b[prefix],
        _ => false,
    }
}

/// The optimal-string-alignment distance of `a` and `b` (insertions, deletions, replacements and
/// swaps of neighbours), if it is at most `bound`.
fn edit_distance_within(a: &str, b: &str, bound: usize) -> Option<usize> {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut before: Vec<usize> = Vec::new();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut current = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let replace = previous[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            current[j] = replace.min(previous[j] + 1).min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(before[j - 2] + 1);
            }
        }
        if current.iter().min().is_some_and(|&least| least > bound) {
            return None;
        }
        before = std::mem::replace(&mut previous, current);
    }
    previous.last().copied().filter(|&distance| distance <= bound)
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
