//! The search evaluation: questions people ask about bank-feed errors, written from forum posts,
//! support threads and agents' notes (`catalog/eval/questions.toml`), each with the entry that
//! should rank first. Every question goes through [`search`], the function the API and the CLI
//! both answer with. Half of the set ("dev") is what ranking changes may be tuned on; the other
//! half ("holdout") only measures them, so a gain that is real shows on both. A third split
//! ("fresh") was written later from threads found with their addresses, its expected entries set
//! before it was ever run: it checks that what was learnt on dev carries to questions nobody tuned
//! for. "blind" (session 7), "fresh8" (session 8) and "fresh9" (session 9) were each written
//! before their session changed the ranking, and measured only until session 10 studied their
//! failures by kind; "fresh10" (session 10) was measured only until session 11 studied its
//! failures; "fresh11" (session 11) was measured only until session 14 studied its failures and
//! made its questions examples; "fresh14" (session 14) was measured only until session 16 made its
//! questions examples, "fresh15" (session 16) until session 17 did, "fresh17" (session 18)
//! until session 19 did, "fresh18" (session 19) until session 20 did, "fresh19" (session 20)
//! until session 21 did, "fresh20" (session 21) until session 22 did, "fresh21" (session 22)
//! until session 23 did, "fresh22" (session 23) until session 24 did, and "fresh23" to "fresh34"
//! (sessions 24 and 25) until session 26 did; "fresh12" (session 12), "fresh13" (session 13),
//! "fresh16" (written after fresh14 joined the examples), "fresh35" to "fresh39" (session 26),
//! "fresh40" to "fresh42" (session 27), "fresh43" to "fresh47" (session 28) and "fresh64" and
//! "fresh65" (session 38) are the splits still never studied: only their totals are printed.
//! "fresh48" and "fresh49" (session 29) were measured only until session 31 made their questions
//! examples, "fresh50" and "fresh51" (session 31) until session 32 did, "fresh52" and "fresh53"
//! (session 32) until session 33 did, "fresh54" and "fresh55" (session 33) until session 34 did,
//! "fresh56" and "fresh57" (session 34) until session 35 did, "fresh58" and "fresh59" (session 35)
//! until session 36 did, "fresh60" and "fresh61" (session 36) until session 37 did, "fresh62" and
//! "fresh63" (session 37) until session 38 did.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use super::*;
use crate::catalog::files::QUESTIONS;
use crate::catalog::ranking::NamedReading;
use crate::catalog::ranking::examples::{LEFT_OUT, LeftOut, Question, QuestionFile, Split};
use crate::catalog::shipped_index;

mod floors;
mod second_labels;
mod slips;

/// The fixed rule for dev and holdout: FNV-1a (32-bit) of the question's text, even for dev.
fn hashed_half(text: &str) -> Split {
    let hash = text.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    if hash % 2 == 0 { Split::Dev } else { Split::Holdout }
}

/// A studied question not ranked first, as a line to read with the top three it got instead.
/// The held-out splits' misses stay unprinted, so that nobody studies them by accident.
fn miss(index: &CatalogIndex, question: &Question, rank: Option<usize>) -> Option<String> {
    if rank == Some(1) || !question.set.trains() {
        return None;
    }
    let top: Vec<u32> = search(index, &question.q, &Filters::default(), 3).iter().map(|hit| hit.code.get()).collect();
    Some(format!("  {:?} {:?} expected {:?}, got {top:?}: {}", question.set, rank, question.expect, question.q))
}

fn questions() -> Vec<Question> {
    toml::from_str::<QuestionFile>(QUESTIONS).unwrap().question
}

/// The 1-based rank of the first expected entry among the hits, if any.
fn rank(index: &CatalogIndex, question: &Question) -> Option<usize> {
    search(index, &question.q, &Filters::default(), DEFAULT_LIMIT)
        .iter()
        .position(|hit| question.expect.contains(&hit.code.get()))
        .map(|position| position + 1)
}

#[derive(Debug, Default)]
struct Scores {
    count: usize,
    first: usize,
    top3: usize,
    reciprocal: f64,
}

impl Scores {
    fn add(&mut self, rank: Option<usize>) {
        self.count += 1;
        self.first += usize::from(rank == Some(1));
        self.top3 += usize::from(rank.is_some_and(|rank| rank <= 3));
        self.reciprocal += rank.map_or(0.0, |rank| 1.0 / rank as f64);
    }

    fn line(&self, name: &str) -> String {
        let n = self.count.max(1) as f64;
        format!(
            "{name:<8} {:>4} questions  top-1 {:.3} ({})  top-3 {:.3} ({})  MRR {:.3}",
            self.count,
            self.first as f64 / n,
            self.first,
            self.top3 as f64 / n,
            self.top3,
            self.reciprocal / n
        )
    }
}

/// `EXPLAIN="a question" cargo test --lib explain_a_question -- --nocapture` shows its scores.
#[test]
fn explain_a_question() {
    if let Ok(query) = std::env::var("EXPLAIN") {
        let index = shipped_index().unwrap();
        for query in query.split('|') {
            // A studied question is read as if it were not an example of its own.
            LEFT_OUT.set(Some(LeftOut::Question(query.to_lowercase())));
            println!("{}", index.search_index().explain(query));
        }
    }
}

#[test]
fn the_question_set_is_split_by_its_fixed_rule() {
    let questions = questions();
    assert!(questions.len() >= 150, "{} questions", questions.len());
    let index = shipped_index().unwrap();
    for question in &questions {
        if matches!(question.set, Split::Dev | Split::Holdout) {
            assert_eq!(question.set, hashed_half(&question.q), "{}", question.q);
        }
        assert!(!question.source.trim().is_empty(), "{}", question.q);
        assert!(!question.expect.is_empty(), "{}", question.q);
        for code in &question.expect {
            assert!(index.entry(Code::new(*code)).is_some(), "{}: no entry {code}", question.q);
        }
    }
}

/// Every split, in the order they were written.
const SPLITS: [Split; 62] = [
    Split::Dev,
    Split::Holdout,
    Split::Fresh,
    Split::Blind,
    Split::Fresh8,
    Split::Fresh9,
    Split::Fresh10,
    Split::Fresh11,
    Split::Fresh12,
    Split::Fresh13,
    Split::Fresh14,
    Split::Fresh15,
    Split::Fresh16,
    Split::Fresh17,
    Split::Fresh18,
    Split::Fresh19,
    Split::Fresh20,
    Split::Fresh21,
    Split::Fresh22,
    Split::Fresh23,
    Split::Fresh24,
    Split::Fresh25,
    Split::Fresh26,
    Split::Fresh27,
    Split::Fresh28,
    Split::Fresh29,
    Split::Fresh30,
    Split::Fresh31,
    Split::Fresh32,
    Split::Fresh33,
    Split::Fresh34,
    Split::Fresh35,
    Split::Fresh36,
    Split::Fresh37,
    Split::Fresh38,
    Split::Fresh39,
    Split::Fresh40,
    Split::Fresh41,
    Split::Fresh42,
    Split::Fresh43,
    Split::Fresh44,
    Split::Fresh45,
    Split::Fresh46,
    Split::Fresh47,
    Split::Fresh48,
    Split::Fresh49,
    Split::Fresh50,
    Split::Fresh51,
    Split::Fresh52,
    Split::Fresh53,
    Split::Fresh54,
    Split::Fresh55,
    Split::Fresh56,
    Split::Fresh57,
    Split::Fresh58,
    Split::Fresh59,
    Split::Fresh60,
    Split::Fresh61,
    Split::Fresh62,
    Split::Fresh63,
    Split::Fresh64,
    Split::Fresh65,
];

/// Search learns from the studied splits and from nothing else: a held-out question (fresh12,
/// fresh13, fresh16, fresh35 to fresh47, fresh64, fresh65), or one that differs from a studied
/// question only in case, would be its own nearest example and stop measuring anything.
#[test]
fn search_learns_from_the_studied_splits_only() {
    // By name, written out once more here: `trains` must agree with this list, not with itself.
    let held_out = [
        "Fresh12", "Fresh13", "Fresh16", "Fresh35", "Fresh36", "Fresh37", "Fresh38", "Fresh39", "Fresh40", "Fresh41",
        "Fresh42", "Fresh43", "Fresh44", "Fresh45", "Fresh46", "Fresh47", "Fresh64", "Fresh65",
    ];
    for split in SPLITS {
        let name = format!("{split:?}");
        assert_eq!(split.trains(), !held_out.contains(&name.as_str()), "{name}");
    }
    let questions = questions();
    let studied: std::collections::HashSet<String> =
        questions.iter().filter(|question| question.set.trains()).map(|question| question.q.to_lowercase()).collect();
    for held_out in questions.iter().filter(|question| !question.set.trains()) {
        assert!(!studied.contains(&held_out.q.to_lowercase()), "held out but also studied: {}", held_out.q);
    }
}

/// Each split's top-1, top-3 and MRR, and the dev and held-out halves as they were before
/// session 6 added questions to them.
#[derive(Debug, Default)]
struct Evaluation {
    splits: std::collections::BTreeMap<Split, Scores>,
    all: Scores,
    first_dev: Scores,
    first_holdout: Scores,
}

impl Evaluation {
    fn split(&self, split: Split) -> &Scores {
        &self.splits[&split]
    }
}

/// Every split's scores, printed, with the dev half's misses.
fn evaluate() -> Evaluation {
    let index = shipped_index().unwrap();
    let started = std::time::Instant::now();
    let mut scores = Evaluation::default();
    let mut first_set = Scores::default();
    let mut misses = Vec::new();
    for question in questions() {
        let rank = rank(&index, &question);
        scores.all.add(rank);
        scores.splits.entry(question.set).or_default().add(rank);
        if matches!(question.set, Split::Dev | Split::Holdout) {
            first_set.add(rank);
        }
        match (question.set, question.batch.is_none()) {
            (Split::Dev, true) => scores.first_dev.add(rank),
            (Split::Holdout, true) => scores.first_holdout.add(rank),
            _ => {}
        }
        misses.extend(miss(&index, &question, rank));
    }
    println!(
        "{}\n{}\n{}",
        scores.first_dev.line("dev<s6"),
        scores.first_holdout.line("hold<s6"),
        first_set.line("dev+hold")
    );
    for (split, split_scores) in &scores.splits {
        println!("{}", split_scores.line(&format!("{split:?}").to_lowercase()));
    }
    println!("{}", scores.all.line("all"));
    let (training, held_out): (Vec<Split>, Vec<Split>) = SPLITS.iter().partition(|split| split.trains());
    println!(
        "training data (the studied splits; figures no longer a measure): {training:?}\n\
         measured, never studied nor trained on: {held_out:?}"
    );
    println!("ranked {} questions in {:?}", scores.all.count, started.elapsed());
    println!("questions not first (the studied splits):\n{}", misses.join("\n"));
    scores
}

/// The target of issue 14: the expected entry first for 95% of the questions, in the top 3 for
/// all, over every split. Not met yet (top-1/top-3 after session 7: dev 0.970/0.977, held-out
/// 0.853/0.946, fresh 0.720/0.860, blind 0.522/0.804, all 357 questions 0.835/0.927; after
/// session 8: held-out 0.868/0.946, fresh 0.760/0.900, blind 0.565/0.783, fresh8 0.686/0.882,
/// all 408 questions 0.831/0.924; after session 9: dev 0.977/0.985, held-out 0.930/0.961, fresh
/// 0.900/0.980, blind 0.630/0.870, fresh8 0.725/0.941, fresh9 0.738/0.902, all 469 questions
/// 0.864/0.951; after session 10: blind 0.804/0.913, fresh8 0.863/1.000, fresh9 0.836/0.967, the
/// unseen fresh10 0.618/0.842, all 545 questions 0.868/0.952; after session 11: blind
/// 0.848/0.935, fresh8 0.902/1.000, fresh10 0.645/0.855, the unseen fresh11 0.561/0.817, all 627
/// questions 0.837/0.939; after session 12, whose examples are the studied splits, the unseen
/// fresh11 0.622/0.829 and fresh12 0.597/0.887; in session 13 the new unseen fresh13
/// 0.567/0.883; after session 14, which made fresh11 a studied split, the unseen fresh12
/// 0.629/0.871 and fresh13 0.600/0.883 (75 and 107 of 122 together, 71 and 108 before it),
/// fresh11 with each question left out of the examples 0.707/0.878, all 749 questions
/// 0.873/0.969), so it runs on demand:
/// `cargo test --lib -- --ignored plain_language`.
#[test]
#[ignore = "issue 14's target is not met yet on the held-out and fresh splits; see the test's comment"]
fn plain_language_questions_find_their_entry_first() {
    let all = evaluate().all;
    assert!(all.first as f64 >= 0.95 * all.count as f64, "top-1 below 95%: {}", all.line("all"));
    assert_eq!(all.top3, all.count, "some expected entries are not in the top 3");
}

/// The studied splits read with each question left out of the examples (`LEFT_OUT`): what the
/// vote does for a question it has not seen, within the splits whose failures may be studied, and
/// those failures. The held-out splits are never examples, so their figures are the usual ones and
/// only those are printed for them. `cargo test --lib studied_splits_left_one_out -- --nocapture`;
/// with `LEAVE_OUT=split`, each question's whole split is left out (the cross-validation session 12
/// chose the vote's parameters by: a split's writer phrases alike, so one question left out still
/// has its siblings among the examples).
#[test]
fn studied_splits_left_one_out() {
    let index = shipped_index().unwrap();
    let mut splits: std::collections::BTreeMap<Split, Scores> = std::collections::BTreeMap::new();
    let mut misses = Vec::new();
    let whole_split = std::env::var("LEAVE_OUT").is_ok_and(|mode| mode == "split");
    let left_out = if whole_split { "(split left out)" } else { "(left one out)" };
    for question in questions() {
        LEFT_OUT.set(Some(if whole_split {
            LeftOut::Split(question.set)
        } else {
            LeftOut::Question(question.q.to_lowercase())
        }));
        let rank = rank(&index, &question);
        splits.entry(question.set).or_default().add(rank);
        misses.extend(miss(&index, &question, rank));
        LEFT_OUT.set(None);
    }
    let mut studied = Scores::default();
    for (split, scores) in &splits {
        println!("{} {left_out}", scores.line(&format!("{split:?}").to_lowercase()));
        if split.trains() {
            studied.count += scores.count;
            studied.first += scores.first;
            studied.top3 += scores.top3;
            studied.reciprocal += scores.reciprocal;
        }
    }
    println!("{} {left_out}", studied.line("studied"));
    println!("studied questions not first, left out:\n{}", misses.join("\n"));
}

#[test]
fn print_a_search() {
    if let Ok(query) = std::env::var("SEARCH") {
        let index = shipped_index().unwrap();
        for hit in search(&index, &query, &Filters::default(), DEFAULT_LIMIT) {
            println!("{} {:.3} {:?}", hit.code, hit.score, hit.kind);
        }
    }
}

/// `DUMP=/path cargo test --lib dump_for_experiment`: every question with its reading, its hits and
/// its scores from the words alone (without the examples' vote), one JSON object a line, for the
/// ranking experiments outside the crate (`bench/ranking/experiment.py`).
#[test]
fn dump_for_experiment() {
    let Ok(path) = std::env::var("DUMP") else { return };
    let index = shipped_index().unwrap();
    let mut out = String::new();
    for question in questions() {
        let NamedReading { terms, pairs, stems, unread } = index.search_index().reading_by_name(&question.q);
        let hits: Vec<(u32, f32, bool)> = search(&index, &question.q, &Filters::default(), 100)
            .iter()
            .map(|hit| (hit.code.get(), hit.score, hit.kind == HitKind::Text))
            .collect();
        let text: Vec<(u32, f32)> = index
            .search_index()
            .word_scores_only(&question.q)
            .into_iter()
            .map(|(code, score)| (code.get(), score))
            .collect();
        let line = serde_json::json!({
            "q": question.q, "set": format!("{:?}", question.set), "expect": question.expect,
            "terms": terms, "pairs": pairs, "stems": stems, "unread": unread, "hits": hits, "text": text,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}
