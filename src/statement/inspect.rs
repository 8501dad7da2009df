//! What `feedwatch statement inspect` prints: per account its period, totals and rows left
//! out, and the rows themselves only when asked. Read as an import reads, a piece at a time:
//! each row is counted as it goes by and kept only for `with_rows`.

use std::collections::HashMap;
use std::io::{Read, Seek};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::model::{AccountStatement, Refusal, SkippedRow, StatementRow};
use super::{Event, ReadOptions, open};

/// One account's rows, as they went by.
#[derive(Debug, Default)]
struct Tally {
    transactions: usize,
    without_fitid: usize,
    total: Decimal,
    skipped: Vec<SkippedRow>,
    rows: Vec<StatementRow>,
}

impl Tally {
    fn shown(self, account: &AccountStatement, with_rows: bool) -> Value {
        let mut shown = json!({
            "account": account.account,
            "currency": account.currency,
            "start": account.start,
            "end": account.end,
            "transactions": self.transactions,
            "without_fitid": self.without_fitid,
            "total": self.total,
            "ledger_balance": account.ledger_balance,
            "skipped": self.skipped,
        });
        if with_rows {
            shown["rows"] = json!(self.rows);
        }
        shown
    }
}

/// Reads `source` and says what it holds.
pub fn inspect<R: Read + Seek>(mut source: R, options: &ReadOptions, with_rows: bool) -> Result<Value, Refusal> {
    let size = source.seek(std::io::SeekFrom::End(0)).map_err(unreadable)?;
    if let Some(refusal) = super::over_limit(size) {
        return Err(refusal);
    }
    source.rewind().map_err(unreadable)?;
    let mut stream = open(source, options)?;
    let mut tallies: HashMap<usize, Tally> = HashMap::new();
    while let Some(event) = stream.next_event()? {
        match event {
            Event::Account { .. } => {}
            Event::Row { key, row } => {
                let tally = tallies.entry(key).or_default();
                tally.transactions += 1;
                tally.without_fitid += usize::from(row.fitid.is_none());
                tally.total += row.amount;
                if with_rows {
                    tally.rows.push(row);
                }
            }
            Event::Skipped { key, skipped } => tallies.entry(key).or_default().skipped.push(skipped),
        }
    }
    let ending = stream.finish()?;
    let accounts: Vec<Value> = ending
        .accounts
        .iter()
        .map(|(key, account)| tallies.remove(key).unwrap_or_default().shown(account, with_rows))
        .collect();
    Ok(json!({
        "format": ending.format,
        "dialect": ending.dialect,
        "intu_bid": ending.intu_bid,
        "accounts": accounts,
        "warnings": ending.warnings,
    }))
}

fn unreadable(error: std::io::Error) -> Refusal {
    Refusal::whole_file(format!("the file cannot be read: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// What the command printed when it read the whole file into a `StatementFile`.
    fn from_the_whole_file(bytes: &[u8], with_rows: bool) -> Value {
        let file = super::super::read(bytes, &ReadOptions::default()).unwrap();
        let accounts: Vec<Value> = file
            .accounts
            .iter()
            .map(|account| {
                let mut shown = json!({
                    "account": account.account,
                    "currency": account.currency,
                    "start": account.start,
                    "end": account.end,
                    "transactions": account.rows.len(),
                    "without_fitid": account.rows.iter().filter(|row| row.fitid.is_none()).count(),
                    "total": account.rows.iter().map(|row| row.amount).sum::<Decimal>(),
                    "ledger_balance": account.ledger_balance,
                    "skipped": account.skipped,
                });
                if with_rows {
                    shown["rows"] = json!(account.rows);
                }
                shown
            })
            .collect();
        json!({
            "format": file.format,
            "dialect": file.dialect,
            "intu_bid": file.intu_bid,
            "accounts": accounts,
            "warnings": file.warnings,
        })
    }

    #[test]
    fn every_readable_corpus_file_inspects_as_its_whole_read() {
        let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/statement/corpus");
        let mut files: Vec<_> = std::fs::read_dir(corpus).unwrap().map(|entry| entry.unwrap().path()).collect();
        files.retain(|path| !path.extension().is_some_and(|e| e == "md" || e == "toml"));
        files.sort();
        let mut compared = 0;
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            let whole = super::super::read(&bytes, &ReadOptions::default());
            let Ok(_) = whole else {
                let refused = inspect(std::fs::File::open(path).unwrap(), &ReadOptions::default(), false);
                assert_eq!(refused.err(), whole.err(), "{}", path.display());
                continue;
            };
            for with_rows in [false, true] {
                let shown = inspect(std::fs::File::open(path).unwrap(), &ReadOptions::default(), with_rows).unwrap();
                assert_eq!(shown, from_the_whole_file(&bytes, with_rows), "{} rows: {with_rows}", path.display());
            }
            compared += 1;
        }
        assert!(compared >= 25, "{compared} files compared");
    }
}
