//! A question as runs of letters: every run of four letters of each word, the word's start and
//! end marked ("<syn", "sync", ..., "ert>"), counted once per run with a logarithm for repeats.
//! The examples' centroids over these (`examples`) carry what the reading rules cannot name: the
//! other forms of a word ("synchronisiert" and "synchronisation" share eight runs), the compounds
//! of German and the Nordic languages ("Kontoabruf" holds "abru"), and misspellings that keep
//! most of a word.
//!
//! Chosen in session 29 on the leave-one-split-out cross-validation over the 1,902 studied
//! questions (`bench/ranking/letters.py` on the evaluation's dump, the words' centroids beside at
//! their weight 1.5): without letters 1,415 first, 1,664 in the top 3, MRR 0.822; runs of three to
//! five letters at the weights 0.25 / 0.5 / 0.75 / 1.0 / 1.5: 1,429 / 1,437 / 1,435 / 1,434 /
//! 1,430 first, MRR 0.827 / 0.831 / 0.832 / 0.832 / 0.832, the top 3 rising with the weight
//! ([`super::LETTER_WEIGHT`]). Leaving out the runs in more than a tenth of the examples, then
//! reading runs of four letters only, changed nothing beyond the noise (1,433 and 1,430 first,
//! MRR 0.833 and 0.832) and made a long question's letters several times cheaper: far fewer
//! lookups, each in a smaller table. Every run of that harness printed the held-out splits too;
//! they moved with the cross-validation (393 of 632 first without letters, 400 to 403 with) and
//! chose nothing. In the service the cross-validation went from 1,421 to 1,442 first, 1,669 to
//! 1,711 in the top 3 and MRR 0.825 to 0.837.

use std::iter::once;

use super::language::composed;

/// A run of letters, by a hash of its characters: the examples hold tens of thousands of runs,
/// and a question's are looked up on every search.
pub(super) type Gram = u64;

const SHORTEST: usize = 4;
const LONGEST: usize = 4;

/// A run that only one example has is that example's, not its entry's.
pub(super) const LEAST_EXAMPLES: u32 = 2;

/// A run in more than this share of the examples ("<the", "ing>", "ion>") says little and is in
/// nearly every entry's centroid, so a question would pay an addition per entry for it. Leaving
/// out those in more than a tenth cost the cross-validation nothing (with runs of three to five
/// letters, 1,433 first against 1,434, MRR 0.833 against 0.832; a thirtieth: 1,428 and 0.832).
pub(super) const MOST_EXAMPLES: f64 = 0.1;

/// The runs of letters of `text`, each once, weighted 1 + ln(times it occurs).
pub(super) fn grams(text: &str) -> Vec<(Gram, f64)> {
    let composed = composed(text);
    let mut runs: Vec<Gram> = Vec::with_capacity(composed.len() * 3);
    let mut word: Vec<char> = Vec::new();
    for part in composed.split(|c: char| !c.is_alphanumeric()).filter(|part| !part.is_empty()) {
        word.clear();
        word.extend(once('<').chain(part.chars().flat_map(char::to_lowercase)).chain(once('>')));
        for size in SHORTEST..=LONGEST {
            runs.extend(word.windows(size).map(hash));
        }
    }
    runs.sort_unstable();
    let mut grams: Vec<(Gram, f64)> = Vec::with_capacity(runs.len());
    for same in runs.chunk_by(|a, b| a == b) {
        grams.push((same[0], 1.0 + (same.len() as f64).ln()));
    }
    grams
}

/// FNV-1a over the characters: stable across builds and platforms, unlike the standard hasher's
/// keys, and cheap for runs this short.
fn hash(run: &[char]) -> Gram {
    run.iter().fold(0xcbf2_9ce4_8422_2325, |hash, c| (hash ^ u64::from(u32::from(*c))).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::grams;

    #[test]
    fn a_word_is_its_runs_of_four_letters_with_its_ends_marked() {
        // "<ab>" is one run; "Ab" is the same word.
        assert_eq!(grams("ab").len(), 1);
        assert_eq!(grams("abc").len(), 2);
        assert_eq!(grams("Ab"), grams("ab"));
        // Punctuation separates words; a composed and a decomposed accent are one letter.
        assert_eq!(grams("ab, ab"), grams("ab ab"));
        assert_eq!(grams("re\u{301}seau"), grams("réseau"));
        let repeated = grams("ab ab");
        assert!(repeated.iter().all(|(_, weight)| (*weight - (1.0 + 2.0_f64.ln())).abs() < 1e-9));
    }

    #[test]
    fn forms_of_one_word_share_runs() {
        let synchronised: Vec<u64> = grams("synchronisiert").into_iter().map(|(gram, _)| gram).collect();
        let shared = grams("synchronisation").iter().filter(|(gram, _)| synchronised.contains(gram)).count();
        assert_eq!(shared, 8);
    }
}
