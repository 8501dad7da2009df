//! The readers measured on `corpus/`: files written after real banks' exports and the
//! defects users reported in them (sources in `corpus/README.md`), with what a person reading
//! each by hand finds in `corpus/expected.toml`. Prints one line per file and the score.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::{ReadOptions, StatementFile, read};

#[derive(Debug, Deserialize)]
struct Expected {
    file: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    transactions: Option<usize>,
    total: Option<Decimal>,
    first: Option<String>,
    last: Option<String>,
    refused_line: Option<usize>,
    without_fitid: Option<usize>,
    skipped: Option<usize>,
    accounts: Option<usize>,
    payee_contains: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/statement/corpus")
}

/// Every way the reading differs from the expectation; empty when it is right.
fn differences(case: &Case, result: &Result<StatementFile, super::Refusal>) -> Vec<String> {
    let mut wrong = Vec::new();
    let file = match (result, case.refused_line) {
        (Err(refusal), Some(line)) => {
            if refusal.line != Some(line) {
                wrong.push(format!("refused at {:?}, expected line {line}: {}", refusal.line, refusal.reason));
            }
            return wrong;
        }
        (Err(refusal), None) => return vec![format!("refused: {refusal}")],
        (Ok(_), Some(line)) => return vec![format!("read, but should be refused at line {line}")],
        (Ok(file), None) => file,
    };
    let rows: Vec<_> = file.accounts.iter().flat_map(|a| &a.rows).collect();
    let mut check = |what: &str, got: String, want: Option<String>| {
        if let Some(want) = want
            && got != want
        {
            wrong.push(format!("{what}: got {got}, expected {want}"));
        }
    };
    check("transactions", rows.len().to_string(), case.transactions.map(|n| n.to_string()));
    let total: Decimal = rows.iter().map(|r| r.amount).sum();
    check("total", total.normalize().to_string(), case.total.map(|t| t.normalize().to_string()));
    check("first", rows.iter().map(|r| r.posted).min().map(|d| d.to_string()).unwrap_or_default(), case.first.clone());
    check("last", rows.iter().map(|r| r.posted).max().map(|d| d.to_string()).unwrap_or_default(), case.last.clone());
    check(
        "without FITID",
        rows.iter().filter(|r| r.fitid.is_none()).count().to_string(),
        case.without_fitid.map(|n| n.to_string()),
    );
    let skipped: usize = file.accounts.iter().map(|a| a.skipped.len()).sum();
    check("skipped", skipped.to_string(), case.skipped.map(|n| n.to_string()));
    check("accounts", file.accounts.len().to_string(), case.accounts.map(|n| n.to_string()));
    let mentions =
        |text: &str| rows.iter().any(|r| r.payee.contains(text) || r.memo.as_deref().is_some_and(|m| m.contains(text)));
    if let Some(text) = &case.payee_contains
        && !mentions(text)
    {
        wrong.push(format!("no payee contains {text:?}"));
    }
    for code in &case.warnings {
        let reported = file.warnings.iter().any(|w| serde_json::to_value(w.code).unwrap() == code.as_str());
        if !reported {
            wrong.push(format!("warning {code} not reported"));
        }
    }
    wrong
}

#[test]
fn corpus_is_read_as_a_person_reads_it() {
    let expected: Expected = toml::from_str(&std::fs::read_to_string(corpus().join("expected.toml")).unwrap()).unwrap();
    let mut correct = 0;
    for case in &expected.file {
        let bytes = std::fs::read(corpus().join(&case.name)).unwrap();
        let result = read(&bytes, &ReadOptions::default());
        let wrong = differences(case, &result);
        if wrong.is_empty() {
            correct += 1;
            println!("ok    {}", case.name);
        } else {
            println!("WRONG {}: {}", case.name, wrong.join("; "));
        }
    }
    println!("statement corpus: {correct} of {} files read as expected", expected.file.len());
    // The floor is the score measured when the corpus was written; raise it, never lower it.
    assert!(correct >= expected.file.len(), "{correct} of {} files read as expected", expected.file.len());
}

#[test]
fn every_corpus_file_is_listed() {
    let expected: Expected = toml::from_str(&std::fs::read_to_string(corpus().join("expected.toml")).unwrap()).unwrap();
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".toml") || name.ends_with(".md") {
            continue;
        }
        assert!(expected.file.iter().any(|case| case.name == name), "{name} has no expectation");
    }
}
