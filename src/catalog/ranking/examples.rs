//! What search learns from labelled questions (the studied splits of `catalog/eval/questions.toml`,
//! one file for learning and measuring, so a held-out split cannot leak into a copy): a question is compared
//! with every example as the ranker reads both (terms and concepts with their weights, adjacent
//! word pairs, weighted by rarity among the examples), and the ten most alike vote for the
//! entries they were labelled with, each by its share of their similarity (since session 14; by
//! its similarity itself before).
//!
//! Hand-written reading rules lifted the studied questions far more than unseen ones; an example
//! carries a phrasing to its entry without anyone writing a rule for it. Measured in session 12
//! (`bench/ranking/experiment.py`): leave-one-split-out over the seven studied splits, 479 to 491
//! of 545 first, 522 to 527 in the top three; on fresh11 and fresh12 (then never studied), trained on
//! all studied splits, 80 to 88 of 144 first and 120 to 123 in the top three; on fresh13, written
//! in session 13 after the vote was chosen, 31 to 34 of 60 first and 48 to 53 in the top three.
//! Ten neighbours and the vote's weight were chosen on the cross-validation alone.

use std::collections::HashMap;

use serde::Deserialize;

use super::Doc;
use super::language::{Lexicon, Reading, TermId};
use crate::catalog::code::Code;

/// How many of the most alike examples vote.
const NEIGHBOURS: usize = 10;

/// A question's read features: its terms (best weight each) and its adjacent word pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Feature {
    Term(TermId),
    Pair(TermId, TermId),
}

/// `catalog/eval/questions.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::catalog) struct QuestionFile {
    pub(in crate::catalog) question: Vec<Question>,
}

/// A question people ask, labelled with the entry or entries that should come first. Search reads
/// only the text, the labels and the split; the source and batch are the evaluation's, but the file
/// is read whole so that a misspelt field is an error in the service too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(test), allow(dead_code))]
pub(in crate::catalog) struct Question {
    pub(in crate::catalog) q: String,
    /// Any of these first is right; more than one only where the question is honestly ambiguous.
    pub(in crate::catalog) expect: Vec<u32>,
    pub(in crate::catalog) source: String,
    pub(in crate::catalog) set: Split,
    /// Questions added after a split's floor was set carry their batch ("s6"), so the floors of
    /// the earlier questions stay what they were.
    #[serde(default)]
    pub(in crate::catalog) batch: Option<String>,
}

/// The evaluation's splits, in the order they were written (`search/evaluation.rs` says what
/// each one measured and when it was studied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(in crate::catalog) enum Split {
    Dev,
    Holdout,
    Fresh,
    Blind,
    Fresh8,
    Fresh9,
    Fresh10,
    Fresh11,
    Fresh12,
    Fresh13,
    Fresh14,
    Fresh15,
    Fresh16,
    Fresh17,
    /// Written in session 19 before that session's ranking changes; held out.
    Fresh18,
}

impl Split {
    /// Whether search learns from this split's questions. Only the studied splits: a held-out
    /// question among the examples would be its own nearest neighbour and stop measuring anything.
    /// Fresh11 has been studied since session 14, fresh14 since session 16, fresh15 since
    /// session 17 and fresh17 since session 19; fresh12, fresh13, fresh16 and fresh18 are still
    /// held out.
    pub(in crate::catalog) fn trains(self) -> bool {
        !matches!(self, Self::Fresh12 | Self::Fresh13 | Self::Fresh16 | Self::Fresh18)
    }
}

/// Examples left out of the vote, for the evaluation: one question (lowercased), read as if it
/// were not an example, or a whole split, read as if it had never been written.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq)]
pub(in crate::catalog) enum LeftOut {
    Question(String),
    Split(Split),
}

#[cfg(test)]
thread_local! {
    /// What this thread's searches leave out of the vote: the evaluation reads each studied
    /// question as if it were not an example, the nearest a studied split comes to unseen.
    pub(in crate::catalog) static LEFT_OUT: std::cell::RefCell<Option<LeftOut>> =
        const { std::cell::RefCell::new(None) };
}

#[derive(Debug, Default)]
pub(super) struct Examples {
    /// How much each feature says, by its rarity among the examples.
    idf: HashMap<Feature, f64>,
    /// For every feature, the examples it occurs in with its weight in their unit vector.
    postings: HashMap<Feature, Vec<(usize, f64)>>,
    /// Each example's entries, a vote shared between them.
    labels: Vec<Vec<Doc>>,
    /// Each example's text, lowercased, and split, for leaving some out (`LEFT_OUT`).
    #[cfg(test)]
    texts: Vec<(String, Split)>,
}

impl Examples {
    /// The examples as `lexicon` reads them; a label naming no entry of `codes` is left out.
    pub(super) fn build(lexicon: &Lexicon, questions: &[Question], codes: &[Code]) -> Self {
        let examples: Vec<&Question> = questions.iter().filter(|question| question.set.trains()).collect();
        let features: Vec<HashMap<Feature, f64>> =
            examples.iter().map(|example| features(&lexicon.read(&lexicon.look_up(&example.q)))).collect();
        let mut document_frequency: HashMap<Feature, u32> = HashMap::new();
        for feature in features.iter().flat_map(HashMap::keys) {
            *document_frequency.entry(*feature).or_default() += 1;
        }
        let total = examples.len() as f64;
        let idf = document_frequency
            .into_iter()
            .map(|(feature, count)| (feature, ((total + 1.0) / (f64::from(count) + 1.0)).ln() + 1.0))
            .collect();
        let mut built = Self { idf, ..Self::default() };
        for (index, raw) in features.iter().enumerate() {
            for (feature, weight) in built.unit(raw) {
                built.postings.entry(feature).or_default().push((index, weight));
            }
        }
        built.labels = examples
            .iter()
            .map(|example| {
                example
                    .expect
                    .iter()
                    .filter_map(|code| codes.iter().position(|known| known.get() == *code))
                    .map(|doc| doc as Doc)
                    .collect()
            })
            .collect();
        #[cfg(test)]
        {
            built.texts = examples.iter().map(|example| (example.q.to_lowercase(), example.set)).collect();
        }
        built
    }

    /// Each entry's vote from the examples most like the question read as `reading`: the votes
    /// add up to one when any example is alike at all.
    pub(super) fn votes(&self, reading: &Reading, entries: usize) -> Vec<f32> {
        let mut votes = vec![0.0_f32; entries];
        let mut similarity = vec![0.0_f64; self.labels.len()];
        for (feature, weight) in self.unit(&features(reading)) {
            for (example, theirs) in self.postings.get(&feature).map(Vec::as_slice).unwrap_or_default() {
                similarity[*example] += weight * theirs;
            }
        }
        #[cfg(test)]
        LEFT_OUT.with_borrow(|left_out| {
            for ((text, split), similarity) in self.texts.iter().zip(similarity.iter_mut()) {
                let out = match left_out {
                    Some(LeftOut::Question(question)) => question == text,
                    Some(LeftOut::Split(left_out)) => left_out == split,
                    None => false,
                };
                if out {
                    *similarity = 0.0;
                }
            }
        });
        let mut nearest: Vec<(usize, f64)> =
            similarity.into_iter().enumerate().filter(|(_, similarity)| *similarity > 0.0).collect();
        // Ties go to the later example, as in the experiment that chose the parameters; only the
        // nearest are needed, in no order (their votes add up).
        let nearer = |a: &(usize, f64), b: &(usize, f64)| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0));
        if nearest.len() > NEIGHBOURS {
            nearest.select_nth_unstable_by(NEIGHBOURS - 1, nearer);
            nearest.truncate(NEIGHBOURS);
        }
        // Each neighbour's share of their similarity: the votes add up to one however alike the
        // neighbours are, so that near-duplicates of other questions do not drown the text.
        let total: f64 = nearest.iter().map(|(_, similarity)| similarity).sum();
        for (example, similarity) in nearest {
            let labels = &self.labels[example];
            for doc in labels {
                votes[*doc as usize] += (similarity / total / labels.len() as f64) as f32;
            }
        }
        votes
    }

    /// Rarity-weighted and scaled to length one; features no example has are dropped.
    fn unit(&self, raw: &HashMap<Feature, f64>) -> Vec<(Feature, f64)> {
        let weighted: Vec<(Feature, f64)> = raw
            .iter()
            .filter_map(|(feature, weight)| self.idf.get(feature).map(|idf| (*feature, weight * idf)))
            .collect();
        let norm = weighted.iter().map(|(_, weight)| weight * weight).sum::<f64>().sqrt();
        let norm = if norm > 0.0 { norm } else { 1.0 };
        weighted.into_iter().map(|(feature, weight)| (feature, weight / norm)).collect()
    }
}

fn features(reading: &Reading) -> HashMap<Feature, f64> {
    let mut features: HashMap<Feature, f64> = HashMap::new();
    for (term, weight) in &reading.terms {
        let best = features.entry(Feature::Term(*term)).or_default();
        *best = best.max(f64::from(*weight));
    }
    for pair in reading.words.windows(2) {
        features.insert(Feature::Pair(pair[0], pair[1]), 1.0);
    }
    features
}
