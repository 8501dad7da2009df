//! The readers never panic and never hang: random bytes, and real-looking files from
//! `corpus/` cut, spliced and corrupted, each read within a time budget. Whatever is read
//! points at lines that exist.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{ReadOptions, StatementFile, read};

/// 256 cases keep the suite to seconds; set PROPTEST_CASES for a deeper run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// Generous for a debug build on a shared machine; a quadratic path on these sizes takes
/// far longer.
const BUDGET: Duration = Duration::from_secs(2);

fn corpus_files() -> Vec<Vec<u8>> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/statement/corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| !matches!(path.extension().and_then(|e| e.to_str()), Some("toml" | "md")))
        .collect();
    files.sort();
    files.into_iter().map(|path| std::fs::read(path).unwrap()).collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Repeat { at: usize, len: usize, times: usize },
    Flip { at: usize, bit: u8 },
    Truncate { at: usize },
}

/// Bytes that mean something to one of the readers, so mutations hit their paths.
fn meaningful() -> impl Strategy<Value = Vec<u8>> {
    let tokens = prop_oneof![
        Just(&b"<"[..]),
        Just(&b">"[..]),
        Just(&b"</OFX>"[..]),
        Just(&b"<STMTTRN>"[..]),
        Just(&b"<FITID>"[..]),
        Just(&b"<TRNAMT>1,234"[..]),
        Just(&b"<DTPOSTED>2024-13-45"[..]),
        Just(&b"\""[..]),
        Just(&b";"[..]),
        Just(&b","[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\0"[..]),
        Just(&b"\xEF\xBB\xBF"[..]),
        Just(&b"\xFF\xFE"[..]),
        Just(&b"31/12/2024"[..]),
        Just(&b"(1.234,56)"[..]),
        Just(&b"&#"[..]),
    ];
    prop_oneof![tokens.prop_map(<[u8]>::to_vec), proptest::collection::vec(any::<u8>(), 1..16)]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), meaningful()).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..200, 2usize..50).prop_map(|(at, len, times)| Mutation::Repeat { at, len, times }),
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let within = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match mutation {
        Mutation::Delete { at, len } => {
            let start = within(*at, bytes.len());
            let end = (start + len).min(bytes.len());
            bytes.drain(start..end);
        }
        Mutation::Insert { at, bytes: inserted } => {
            let at = within(*at, bytes.len());
            bytes.splice(at..at, inserted.iter().copied());
        }
        Mutation::Repeat { at, len, times } => {
            let start = within(*at, bytes.len());
            let end = (start + len).min(bytes.len());
            let piece = bytes[start..end].to_vec();
            for _ in 1..*times {
                bytes.splice(end..end, piece.iter().copied());
            }
        }
        Mutation::Flip { at, bit } => {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] ^= 1 << bit;
            }
        }
        Mutation::Truncate { at } => {
            let at = within(*at, bytes.len());
            bytes.truncate(at);
        }
    }
}

/// Reads within the budget; whatever is read names lines the input has.
fn check(input: &[u8]) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let result = read(input, &ReadOptions::default());
    let elapsed = started.elapsed();
    prop_assert!(elapsed < BUDGET, "read took {elapsed:?} for {} bytes", input.len());
    let lines = 1 + input.iter().filter(|&&b| b == b'\n').count();
    match result {
        Ok(file) => lines_exist(&file, lines),
        Err(refusal) => {
            prop_assert!(
                refusal.line.is_none_or(|line| (1..=lines).contains(&line)),
                "refusal at {:?} of {lines}",
                refusal.line
            );
            Ok(())
        }
    }
}

fn lines_exist(file: &StatementFile, lines: usize) -> Result<(), TestCaseError> {
    let rows = file.accounts.iter().flat_map(|a| a.rows.iter().map(|r| r.line).chain(a.skipped.iter().map(|s| s.line)));
    let warned = file.warnings.iter().filter_map(|w| w.line);
    for line in rows.chain(warned) {
        prop_assert!((1..=lines).contains(&line), "line {line} of {lines}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic_or_hang(input in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check(&input)?;
    }

    #[test]
    fn random_delimited_text_never_panics(rows in proptest::collection::vec("[0-9a-zA-Z ,;.()\"/\\-]{0,40}", 0..40)) {
        check(rows.join("\n").as_bytes())?;
    }

    #[test]
    fn mutated_corpus_files_never_panic_or_hang(
        pick in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let files = corpus_files();
        let mut input = pick.get(&files).clone();
        for mutation in &mutations {
            apply(&mut input, mutation);
        }
        check(&input)?;
    }
}

/// Shapes that would be quadratic if a loop ran per cell per row: one very wide row among
/// many short ones, a long run of unclosed quotes, thousands of tags on one line.
#[test]
fn pathological_shapes_stay_within_budget() {
    let wide = format!("Date,Amount\n{}\n{}", ",".repeat(200_000), "2024-01-01,1\n".repeat(20_000));
    let quotes = "\"".repeat(300_000);
    let tags = format!("OFXHEADER:100\n<OFX>{}", "<a".repeat(100_000));
    let empties = format!("OFXHEADER:100\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS>{}", "<MEMO>\n".repeat(50_000));
    for input in [wide, quotes, tags, empties] {
        let started = Instant::now();
        let _ = read(input.as_bytes(), &ReadOptions::default());
        assert!(started.elapsed() < BUDGET * 5, "{:?} for {} bytes", started.elapsed(), input.len());
    }
}
