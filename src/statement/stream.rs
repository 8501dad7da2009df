//! A statement file read as a sequence of events, so an import of tens of megabytes holds a
//! batch of rows at a time, not the file: each account as it starts, then its rows (or the
//! rows left out, with why), and at the end what describes the file and each account (period,
//! balance, warnings). [`super::read`] collects the same events into a [`StatementFile`].
//! Both formats are read from the source a piece at a time, in as many passes as the
//! decisions that need the whole file take (OFX: its encoding and which elements close; CSV:
//! its encoding, columns, date order and decimal mark).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use chrono::NaiveDate;

use super::format::{self, Format};
use super::model::{AccountRef, AccountStatement, Refusal, SkippedRow, StatementFile, StatementRow};
use super::{ReadOptions, ReadWarning, csv, from_ofx};

/// What a read hands out, in file order. `key` tells the file's accounts apart.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The rows of this account follow (an account with no rows may be told only at the end).
    Account {
        key: usize,
        account: AccountRef,
        currency: Option<String>,
    },
    Row {
        key: usize,
        row: StatementRow,
    },
    Skipped {
        key: usize,
        skipped: SkippedRow,
    },
}

/// What is known once every row was handed out.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub format: Format,
    pub dialect: String,
    pub intu_bid: Option<String>,
    /// Each account in the file's order of statements, with its period and balance; `rows`
    /// and `skipped` are empty (they were handed out).
    pub accounts: Vec<(usize, AccountStatement)>,
    pub warnings: Vec<ReadWarning>,
    /// Warnings past the readers' cap, counted but not kept.
    pub omitted_warnings: usize,
}

/// A read in progress.
#[derive(Debug)]
pub struct StatementStream<R> {
    inner: Inner<R>,
    /// Each account's first and last posting day, to widen its period to its rows'.
    days: HashMap<usize, (NaiveDate, NaiveDate)>,
}

#[derive(Debug)]
enum Inner<R> {
    Ofx(Box<from_ofx::Stream<R>>),
    /// The account is told first (a CSV file has one, named by no id).
    Csv {
        stream: Box<csv::Stream<R>>,
        told: bool,
    },
}

/// Opens `source`, recognising its format from its first bytes.
pub fn open<R: Read + Seek>(mut source: R, options: &ReadOptions) -> Result<StatementStream<R>, Refusal> {
    let unreadable = |error: std::io::Error| Refusal::whole_file(format!("the file cannot be read: {error}"));
    let mut head = Vec::with_capacity(format::SNIFF_BYTES);
    (&mut source).take(format::SNIFF_BYTES as u64).read_to_end(&mut head).map_err(unreadable)?;
    source.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let inner = match format::recognise(&head) {
        Format::Ofx => Inner::Ofx(Box::new(from_ofx::Stream::open(source)?)),
        Format::Csv => Inner::Csv { stream: Box::new(csv::Stream::open(source, &options.csv)?), told: false },
        Format::Unknown => {
            return Err(Refusal::whole_file("neither OFX (QFX, QBO) nor CSV: no <OFX> element and no delimited rows"));
        }
    };
    Ok(StatementStream { inner, days: HashMap::new() })
}

impl<R: Read + Seek> StatementStream<R> {
    /// The next event; `None` once the file is read (then [`Self::finish`]).
    pub fn next_event(&mut self) -> Result<Option<Event>, Refusal> {
        let event = match &mut self.inner {
            Inner::Ofx(stream) => stream.next_event()?,
            Inner::Csv { stream, told: told @ false } => {
                *told = true;
                Some(Event::Account { key: 0, account: AccountRef(None), currency: stream.currency() })
            }
            Inner::Csv { stream, .. } => stream.next_row().map(|row| match row {
                Ok(row) => Event::Row { key: 0, row },
                Err(skipped) => Event::Skipped { key: 0, skipped },
            }),
        };
        if let Some(Event::Row { key, row }) = &event {
            let days = self.days.entry(*key).or_insert((row.posted, row.posted));
            *days = (days.0.min(row.posted), days.1.max(row.posted));
        }
        Ok(event)
    }

    pub fn finish(self) -> Result<Ending, Refusal> {
        let mut ending = match self.inner {
            Inner::Ofx(stream) => stream.finish()?,
            Inner::Csv { stream, .. } => {
                let (file, tail) = stream.finish()?;
                let mut account = AccountStatement::new(AccountRef(None));
                account.currency = tail.currency;
                Ending {
                    format: file.format,
                    dialect: file.dialect,
                    intu_bid: file.intu_bid,
                    accounts: vec![(0, account)],
                    warnings: file.warnings,
                    omitted_warnings: 0,
                }
            }
        };
        for (key, account) in &mut ending.accounts {
            if let Some(&(first, last)) = self.days.get(key) {
                account.start = Some(account.start.map_or(first, |start| start.min(first)));
                account.end = Some(account.end.map_or(last, |end| end.max(last)));
            }
        }
        Ok(ending)
    }
}

/// Every event of `stream`, collected into the file they describe.
pub(crate) fn collect<R: Read + Seek>(mut stream: StatementStream<R>) -> Result<StatementFile, Refusal> {
    let mut rows: HashMap<usize, (Vec<StatementRow>, Vec<SkippedRow>)> = HashMap::new();
    while let Some(event) = stream.next_event()? {
        match event {
            Event::Account { .. } => {}
            Event::Row { key, row } => rows.entry(key).or_default().0.push(row),
            Event::Skipped { key, skipped } => rows.entry(key).or_default().1.push(skipped),
        }
    }
    let ending = stream.finish()?;
    let accounts = ending
        .accounts
        .into_iter()
        .map(|(key, mut account)| {
            let (taken, skipped) = rows.remove(&key).unwrap_or_default();
            account.rows = taken;
            account.skipped = skipped;
            account
        })
        .collect();
    Ok(StatementFile {
        format: ending.format,
        dialect: ending.dialect,
        intu_bid: ending.intu_bid,
        accounts,
        warnings: ending.warnings,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Files are read from an open file as from bytes, whatever their format.
    #[test]
    fn a_file_on_disk_reads_as_its_bytes() {
        let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/statement/corpus");
        for name in ["chase_checking.csv", "bb_brazil_balance_lines.ofx", "cba_cc_empty_fitid.ofx"] {
            let path = corpus.join(name);
            let bytes = std::fs::read(&path).unwrap();
            let from_file = collect(open(std::fs::File::open(&path).unwrap(), &ReadOptions::default()).unwrap());
            assert_eq!(from_file, super::super::read(&bytes, &ReadOptions::default()), "{name}");
        }
    }
}
