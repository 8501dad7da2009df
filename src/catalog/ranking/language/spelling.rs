//! Misspelt words in questions: one letter missing, added, replaced or two swapped (SymSpell's
//! deletion table, checked by edit distance), or for long words a close trigram match. Built
//! once from the entries' words; which word is known and how common it is, the lexicon says.

use std::collections::HashMap;

use super::super::{Trigram, jaccard, trigrams};
use super::TermId;

/// A word as its letters, for comparing letter by letter.
type Letters = Box<[char]>;

#[derive(Debug, Default)]
pub(super) struct Spelling {
    /// Known words (of four letters or more) with their terms.
    spellings: Vec<(Box<str>, TermId)>,
    /// Each known word with one letter deleted, to the word (its index in `spellings`): the
    /// candidates for a misspelling of one letter, checked by edit distance.
    deletions: HashMap<Box<str>, Vec<u32>>,
    /// Longer known words with their trigrams, for misspellings of two letters, by their first
    /// (least) trigram: a candidate must share it, and the examples' foreign words made a scan
    /// of every long word the larger part of building the index in a debug build.
    long_words: HashMap<Trigram, Vec<(Vec<Trigram>, TermId)>>,
    /// Known words of eight letters or more as letters, checked by edit distance for two slips,
    /// by their first letter, which a candidate must share.
    long_spellings: HashMap<char, Vec<(Letters, TermId)>>,
}

impl Spelling {
    pub(super) fn new(known: impl Iterator<Item = (Box<str>, TermId)>) -> Self {
        let mut spellings: Vec<(Box<str>, TermId)> = known.collect();
        spellings.sort();
        let mut deletions: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut long_words: HashMap<Trigram, Vec<(Vec<Trigram>, TermId)>> = HashMap::new();
        let mut long_spellings: HashMap<char, Vec<(Letters, TermId)>> = HashMap::new();
        for (index, (word, term)) in spellings.iter().enumerate() {
            for deleted in deletions_of(word) {
                deletions.entry(deleted.into()).or_default().push(index as u32);
            }
            let length = word.chars().count();
            if length >= 6 {
                let grams = trigrams(word);
                if let Some(&first) = grams.first() {
                    long_words.entry(first).or_default().push((grams, *term));
                }
            }
            if length >= 8
                && let Some(first) = word.chars().next()
            {
                long_spellings.entry(first).or_default().push((word.chars().collect(), *term));
            }
        }
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
        let letters: Vec<char> = word.chars().collect();
        let same_start = self.long_spellings.get(&letters[0]);
        let mut distances = EditDistance::default();
        let two_edits = same_start
            .into_iter()
            .flatten()
            .filter_map(|(known, term)| Some((distances.within(&letters, known, 2)?, *term)))
            .min_by_key(|&(distance, term)| (distance, std::cmp::Reverse(frequency(term)), term));
        if let Some((_, term)) = two_edits {
            return Some(term);
        }
        let grams = trigrams(word);
        let same_first_trigram = grams.first().and_then(|first| self.long_words.get(first));
        same_first_trigram
            .into_iter()
            .flatten()
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

/// The optimal-string-alignment distance (insertions, deletions, replacements and swaps of
/// neighbours), computed only near the diagonal and with its rows kept between calls: a long
/// unknown word is compared with every known word of its first letter.
#[derive(Default)]
struct EditDistance {
    rows: [Vec<usize>; 3],
}

impl EditDistance {
    /// The distance of `a` and `b` if it is at most `bound`. Cells further than `bound` from the
    /// diagonal are past it whatever the letters, so they hold `bound + 1` and are not computed.
    fn within(&mut self, a: &[char], b: &[char], bound: usize) -> Option<usize> {
        if a.len().abs_diff(b.len()) > bound {
            return None;
        }
        let past = bound + 1;
        let [before, previous, current] = &mut self.rows;
        for row in [&mut *before, &mut *previous, &mut *current] {
            row.clear();
            row.resize(b.len() + 1, past);
        }
        for (j, cell) in previous.iter_mut().enumerate().take(past) {
            *cell = j;
        }
        for i in 1..=a.len() {
            current.fill(past);
            if i <= bound {
                current[0] = i;
            }
            let (first, last) = (i.saturating_sub(bound).max(1), (i + bound).min(b.len()));
            for j in first..=last {
                let replace = previous[j - 1] + usize::from(a[i - 1] != b[j - 1]);
                let mut cell = replace.min(previous[j] + 1).min(current[j - 1] + 1);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    cell = cell.min(before[j - 2] + 1);
                }
                current[j] = cell.min(past);
            }
            if current.iter().all(|&cell| cell > bound) {
                return None;
            }
            std::mem::swap(before, previous);
            std::mem::swap(previous, current);
        }
        previous.last().copied().filter(|&distance| distance <= bound)
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

#[cfg(test)]
mod tests {
    use super::EditDistance;

    /// The whole table, as the textbook computes it.
    fn full_distance(a: &[char], b: &[char]) -> usize {
        let mut table = vec![vec![0; b.len() + 1]; a.len() + 1];
        for (i, row) in table.iter_mut().enumerate() {
            row[0] = i;
        }
        table[0] = (0..=b.len()).collect();
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let replace = table[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
                table[i][j] = replace.min(table[i - 1][j] + 1).min(table[i][j - 1] + 1);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    table[i][j] = table[i][j].min(table[i - 2][j - 2] + 1);
                }
            }
        }
        table[a.len()][b.len()]
    }

    #[test]
    fn the_banded_distance_agrees_with_the_whole_table_up_to_its_bound() {
        let words = [
            "maintenance",
            "maintanence",
            "maintenence",
            "maintainance",
            "mainenance",
            "amintenance",
            "institution",
            "instituion",
            "insitution",
            "intsitution",
            "authentication",
            "authetnication",
            "authenticaton",
            "kontoabruf",
            "kontoabfrage",
            "überweisung",
            "uberweisung",
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "xyz",
        ];
        let mut distances = EditDistance::default();
        for a in words {
            for b in words {
                let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                for bound in 0..=3 {
                    let expected = Some(full_distance(&a, &b)).filter(|&distance| distance <= bound);
                    assert_eq!(distances.within(&a, &b, bound), expected, "{a:?} {b:?} within {bound}");
                }
            }
        }
    }
}
