//! The recorded labels against a second, blind labelling of the held-out questions
//! (`catalog/eval/second-labels.toml`): how often a second careful reader of the entries picks the
//! entry the questions file expects, and how often the ranking does. Issue 14 asks for 0.95 first on
//! unseen questions; this says whether the labels themselves would allow it. Totals only: the
//! held-out questions' misses stay unprinted.

use serde::Deserialize;

use super::*;

const SECOND_LABELS: &str = include_str!("../../../../catalog/eval/second-labels.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecondLabels {
    label: Vec<SecondLabel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecondLabel {
    q: String,
    first: u32,
    also: Vec<u32>,
    sure: bool,
}

/// How many of `count` agree, as a line.
fn share(name: &str, agree: usize, count: usize) -> String {
    format!("{name}: {agree} of {count} ({:.3})", agree as f64 / count.max(1) as f64)
}

#[test]
fn a_second_labelling_of_the_held_out_questions_agrees_with_the_recorded_one() {
    let labels = toml::from_str::<SecondLabels>(SECOND_LABELS).unwrap().label;
    let recorded = questions();
    let index = shipped_index().unwrap();
    let (mut agree, mut sure, mut sure_agree) = (0, 0, 0);
    // Only over the labels whose question is still held out: once a split is studied, the ranking
    // has learnt from it.
    let (mut still_held_out, mut ranked_as_recorded, mut ranked_as_second) = (0, 0, 0);
    for label in &labels {
        let question = recorded
            .iter()
            .find(|question| question.q == label.q)
            .unwrap_or_else(|| panic!("not a question of the questions file: {}", label.q));
        assert!(!label.also.contains(&label.first), "{}", label.q);
        let agrees = question.expect.contains(&label.first);
        agree += usize::from(agrees);
        sure += usize::from(label.sure);
        sure_agree += usize::from(label.sure && agrees);
        if question.set.trains() {
            continue;
        }
        still_held_out += 1;
        ranked_as_recorded += usize::from(rank(&index, question) == Some(1));
        let first = search(&index, &question.q, &Filters::default(), 1).first().map(|hit| hit.code.get());
        ranked_as_second += usize::from(first == Some(label.first));
    }
    let labelled = |question: &&Question| labels.iter().any(|label| label.q == question.q);
    let unlabelled = recorded.iter().filter(|question| !question.set.trains() && !labelled(question)).count();
    println!("{}", share("second labeller's first among the recorded entries", agree, labels.len()));
    println!("{}", share("  where it was sure", sure_agree, sure));
    println!("{}", share("ranking's first among the recorded entries", ranked_as_recorded, still_held_out));
    println!("{}", share("ranking's first the second labeller's first", ranked_as_second, still_held_out));
    println!("held-out questions without a second label: {unlabelled}");
    // Session 23: 256 of 267 (0.959), 205 of the 209 it was sure of; the ranking 180 (0.674).
    // A labelling that drifts from the entries (or questions relabelled without a reason) shows
    // here first.
    assert!(agree as f64 >= 0.95 * labels.len() as f64, "{}", share("agreement", agree, labels.len()));
}
