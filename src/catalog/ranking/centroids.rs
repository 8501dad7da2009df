//! Labelled examples added up per entry: each example's features weighted by their rarity among
//! the examples and scaled to length one, each entry's examples summed into one vector (its
//! centroid), and a question's likeness to every centroid (cosine), the most alike entry's 1.
//! `examples` builds two of these over the same questions, one of what the ranker reads and one
//! of their letters.

#[cfg(test)]
use std::collections::HashMap;
use std::collections::HashSet;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::Doc;
#[cfg(test)]
use super::examples::{LEFT_OUT, LeftOut, Split};

#[derive(Debug)]
pub(super) struct Centroids<F> {
    /// Every feature some example has: what it says and which centroids hold it. One lookup per
    /// feature of a question, which for runs of letters are hundreds.
    postings: FxHashMap<F, Posting>,
    /// The examples one by one, for leaving some out (`LEFT_OUT`).
    #[cfg(test)]
    each: Vec<Example<F>>,
    /// Each entry's examples added up, before scaling to length one.
    #[cfg(test)]
    sums: Vec<FxHashMap<F, f64>>,
}

/// A feature: how much it says by its rarity among the examples, and the entries whose centroid
/// has it, with its weight there.
#[derive(Debug, Default)]
struct Posting {
    idf: f64,
    entries: Vec<(Doc, f64)>,
}

impl<F> Default for Centroids<F> {
    fn default() -> Self {
        Self {
            postings: FxHashMap::default(),
            #[cfg(test)]
            each: Vec::new(),
            #[cfg(test)]
            sums: Vec::new(),
        }
    }
}

/// One labelled example, its features as they were read (not yet weighted), each once.
pub(super) struct Labelled<'a, F> {
    pub(super) features: Vec<(F, f64)>,
    /// The entries it names, as documents; it counts equally towards each.
    pub(super) labels: Vec<Doc>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) text: &'a str,
    #[cfg(test)]
    pub(super) split: Split,
}

/// One example as the centroids took it in.
#[cfg(test)]
#[derive(Debug)]
struct Example<F> {
    text: String,
    split: Split,
    vector: Vec<(F, f64)>,
    labels: Vec<Doc>,
}

impl<F: Copy + Eq + Hash> Centroids<F> {
    /// `examples` added up per entry (`entries` documents). Features in fewer than `least`
    /// examples or in more than `most`, or in `ignored`, say nothing.
    pub(super) fn build(
        examples: &[Labelled<'_, F>],
        entries: usize,
        (least, most): (u32, u32),
        ignored: &HashSet<F>,
    ) -> Self {
        let mut document_frequency: FxHashMap<F, u32> = FxHashMap::default();
        for (feature, _) in examples.iter().flat_map(|example| &example.features) {
            *document_frequency.entry(*feature).or_default() += 1;
        }
        let total = examples.len() as f64;
        let postings = document_frequency
            .into_iter()
            .filter(|(feature, count)| (least..=most).contains(count) && !ignored.contains(feature))
            .map(|(feature, count)| {
                let idf = ((total + 1.0) / (f64::from(count) + 1.0)).ln() + 1.0;
                (feature, Posting { idf, entries: Vec::new() })
            })
            .collect();
        // Test builds hold the examples one by one as well.
        #[allow(clippy::needless_update)]
        let mut built = Self { postings, ..Self::default() };
        let mut sums: Vec<FxHashMap<F, f64>> = vec![FxHashMap::default(); entries];
        for example in examples {
            let vector = built.unit(&example.features);
            for doc in &example.labels {
                for (feature, weight) in &vector {
                    *sums[*doc as usize].entry(*feature).or_default() += weight / example.labels.len() as f64;
                }
            }
            #[cfg(test)]
            built.each.push(Example {
                text: example.text.to_lowercase(),
                split: example.split,
                vector,
                labels: example.labels.clone(),
            });
        }
        for (doc, sum) in sums.iter().enumerate() {
            let norm = length(sum.values());
            for (feature, weight) in sum {
                if let Some(posting) = built.postings.get_mut(feature) {
                    posting.entries.push((doc as Doc, weight / norm));
                }
            }
        }
        #[cfg(test)]
        {
            built.sums = sums;
        }
        built
    }

    /// How alike a question with these features (each once) is to each entry's examples, the most
    /// alike 1 and entries with no example alike at all 0. The question's vector is not scaled to
    /// length one: scaling every cosine by one number changes nothing once the best is 1.
    pub(super) fn likeness(&self, features: &[(F, f64)], entries: usize) -> Vec<f32> {
        let mut alike = vec![0.0_f64; entries];
        #[cfg(test)]
        let mut question = Vec::new();
        for (feature, weight) in features {
            let Some(posting) = self.postings.get(feature) else { continue };
            let weight = weight * posting.idf;
            for (doc, theirs) in &posting.entries {
                alike[*doc as usize] += weight * theirs;
            }
            #[cfg(test)]
            question.push((*feature, weight));
        }
        #[cfg(test)]
        self.leave_out(&question, &mut alike);
        let best = alike.iter().copied().fold(0.0_f64, f64::max);
        if best > 0.0 { alike.iter().map(|alike| (alike / best) as f32).collect() } else { vec![0.0; entries] }
    }

    /// Reads the question as if the examples `LEFT_OUT` names had never been added: the
    /// centroids they were part of, without them.
    #[cfg(test)]
    fn leave_out(&self, question: &[(F, f64)], alike: &mut [f64]) {
        let left_out: Vec<&Example<F>> = LEFT_OUT.with_borrow(|left_out| {
            self.each
                .iter()
                .filter(|example| match left_out {
                    Some(LeftOut::Question(text)) => *text == example.text,
                    Some(LeftOut::Split(split)) => *split == example.split,
                    None => false,
                })
                .collect()
        });
        let mut sums: HashMap<Doc, FxHashMap<F, f64>> = HashMap::new();
        for example in left_out {
            for doc in &example.labels {
                let sum = sums.entry(*doc).or_insert_with(|| self.sums[*doc as usize].clone());
                for (feature, weight) in &example.vector {
                    *sum.entry(*feature).or_default() -= weight / example.labels.len() as f64;
                }
            }
        }
        for (doc, sum) in sums {
            let norm = length(sum.values());
            let dot: f64 = question.iter().map(|(feature, weight)| weight * sum.get(feature).unwrap_or(&0.0)).sum();
            alike[doc as usize] = if norm > 1e-9 { dot / norm } else { 0.0 };
        }
    }

    /// Rarity-weighted and scaled to length one; features no example has are dropped.
    fn unit(&self, raw: &[(F, f64)]) -> Vec<(F, f64)> {
        let weighted: Vec<(F, f64)> = raw
            .iter()
            .filter_map(|(feature, weight)| self.postings.get(feature).map(|posting| (*feature, weight * posting.idf)))
            .collect();
        let norm = length(weighted.iter().map(|(_, weight)| weight));
        weighted.into_iter().map(|(feature, weight)| (feature, weight / norm)).collect()
    }
}

/// The Euclidean length of a vector of these weights, 1 for the empty vector (nothing to scale).
fn length<'a>(weights: impl Iterator<Item = &'a f64>) -> f64 {
    let length = weights.map(|weight| weight * weight).sum::<f64>().sqrt();
    if length > 0.0 { length } else { 1.0 }
}
