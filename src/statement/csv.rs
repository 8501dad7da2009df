//! CSV exports: decoding, delimiter, header and columns, then dates and amounts decided over
//! the whole file before any row is read, so one row cannot be read one way and the next
//! another.

mod amounts;
mod columns;
mod dates;
mod evidence;
mod records;

use std::io::{Read, Seek};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use amounts::DecimalMark;
pub use columns::{ColumnOverrides, ColumnRef, Columns};
pub use dates::DateOrder;

use super::format::Format;
#[cfg(test)]
use super::model::{AccountRef, AccountStatement};
use super::model::{Refusal, SkippedRow, StatementFile, StatementRow};
use crate::ofx::{ReadWarning, WarningCode};
use evidence::Evidence;
use records::{Plan, Record, Records};

/// What a caller may decide instead of the reader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    #[serde(default)]
    pub columns: ColumnOverrides,
    pub date_order: Option<DateOrder>,
    pub decimal_mark: Option<DecimalMark>,
}

/// A whole file, for tests of this reader alone (`statement::read` is the reader's caller).
#[cfg(test)]
pub(crate) fn read(input: &[u8], options: &CsvOptions) -> Result<StatementFile, Refusal> {
    read_from(std::io::Cursor::new(input), options)
}

#[cfg(test)]
fn read_from(source: impl Read + Seek, options: &CsvOptions) -> Result<StatementFile, Refusal> {
    let mut stream = Stream::open(source, options)?;
    let mut account = AccountStatement::new(AccountRef(None));
    while let Some(row) = stream.next_row() {
        match row {
            Ok(row) => account.rows.push(row),
            Err(skipped) => account.skipped.push(skipped),
        }
    }
    let (mut file, tail) = stream.finish()?;
    account.currency = tail.currency;
    account.settle_period();
    file.accounts.push(account);
    Ok(file)
}

/// A CSV file read in passes over its source, a piece at a time: its bytes decide the
/// encoding; its first records the delimiter, the header and, from the header, the columns;
/// every row (a pass of its own without a header, to tell the columns by content) the date
/// order, the decimal mark and the currency, so one row cannot be read one way and the next
/// another; the last pass hands out the rows one at a time. Neither the file, its text nor
/// its records are held, only what decides and the record being read.
#[derive(Debug)]
pub(crate) struct Stream<R> {
    records: Records<R>,
    reader: Decided,
    header: bool,
    warnings: Vec<ReadWarning>,
    rows: usize,
    first_skipped: Option<SkippedRow>,
}

/// What the first passes decided.
#[derive(Debug)]
struct Decided {
    delimiter: char,
    columns: Columns,
    order: DateOrder,
    mark: DecimalMark,
    currency: Option<String>,
}

/// The account's part of a CSV file that is known once every row was read.
#[derive(Debug)]
pub(crate) struct Tail {
    pub currency: Option<String>,
}

/// The rows of a pass: past the blank records, and the `skip` first others (preamble, header).
fn rows<'r>(records: impl Iterator<Item = Record> + 'r, skip: usize) -> impl Iterator<Item = Record> + 'r {
    records.filter(|record| !record.is_blank()).skip(skip)
}

fn unreadable_file(error: std::io::Error) -> Refusal {
    Refusal::whole_file(format!("the file cannot be read: {error}"))
}

/// One pass over the whole file; `Err` when reading the source failed.
fn pass<R: Read + Seek>(
    source: &mut R,
    plan: Plan,
    delimiter: char,
    read: impl FnOnce(&mut Records<&mut R>),
) -> Result<(), Refusal> {
    let mut records = Records::start(source, plan, delimiter).map_err(unreadable_file)?;
    read(&mut records);
    records.finish().map_err(unreadable_file)
}

impl<R: Read + Seek> Stream<R> {
    pub fn open(mut source: R, options: &CsvOptions) -> Result<Self, Refusal> {
        let mut warnings = Vec::new();
        let limit = super::MAX_FILE_BYTES as u64;
        let plan = Plan::of(&mut source, limit, &mut warnings)
            .map_err(unreadable_file)?
            .ok_or_else(|| Refusal::whole_file(format!("file is over the limit of {limit} bytes")))?;
        let mut samples = Vec::new();
        for delimiter in records::DELIMITERS {
            pass(&mut source, plan, delimiter, |records| samples.push((delimiter, records::sample(records))))?;
        }
        let delimiter = records::choose_delimiter(samples);
        let mut first: Vec<Record> = Vec::new();
        pass(&mut source, plan, delimiter, |records| {
            first = records.filter(|record| !record.is_blank()).take(columns::HEADER_SEARCH_ROWS).collect();
        })?;
        let header_at = header_of(&first, &mut warnings);
        let header = header_at.map(|index| first[index].clone());
        let skip = header_at.map_or(0, |index| index + 1);
        let first_line = header.as_ref().or(first.get(skip)).map_or(1, |record| record.line);
        drop(first);
        let mut columns = match &header {
            Some(header) => columns::from_header(header),
            None => {
                let mut content = columns::Content::new();
                pass(&mut source, plan, delimiter, |records| rows(records, skip).for_each(|row| content.add(&row)))?;
                content.columns()
            }
        };
        columns::apply(&mut columns, &options.columns, header.as_ref()).map_err(Refusal::whole_file)?;
        let date_column = columns.date.ok_or_else(|| Refusal::at(first_line, "no column holds dates"))?;
        if columns.amount.is_none() && columns.debit.is_none() && columns.credit.is_none() {
            return Err(Refusal::at(first_line, "no column holds amounts"));
        }
        let mut evidence = Evidence::new(&columns, date_column);
        pass(&mut source, plan, delimiter, |records| rows(records, skip).for_each(|row| evidence.add(&row)))?;
        let order = evidence.date_order(options.date_order, &mut warnings)?;
        let mark = evidence.decimal_mark(options.decimal_mark)?;
        let currency = evidence.currency();
        let mut records = Records::start(source, plan, delimiter).map_err(unreadable_file)?;
        // Past the blank lines, preamble and header, to the first row.
        let mut skipped = 0;
        while skipped < skip {
            let Some(record) = records.next() else { break };
            if !record.is_blank() {
                skipped += 1;
            }
        }
        Ok(Self {
            records,
            reader: Decided { delimiter, columns, order, mark, currency },
            header: header.is_some(),
            warnings,
            rows: 0,
            first_skipped: None,
        })
    }

    /// The currency column's value when every row agrees.
    pub fn currency(&self) -> Option<String> {
        self.reader.currency.clone()
    }

    /// The next row, or the next row left out with why.
    pub fn next_row(&mut self) -> Option<Result<StatementRow, SkippedRow>> {
        loop {
            let record = self.records.next()?;
            if record.is_blank() {
                continue;
            }
            let reader = RowReader { columns: &self.reader.columns, order: self.reader.order, mark: self.reader.mark };
            return Some(match reader.row(&record) {
                Ok(row) => {
                    self.rows += 1;
                    Ok(row)
                }
                Err(reason) => {
                    let skipped = SkippedRow { line: record.line, reason };
                    self.first_skipped.get_or_insert_with(|| skipped.clone());
                    Err(skipped)
                }
            });
        }
    }

    /// The file without its account (the caller has its rows) and the account's tail; a file
    /// none of whose rows could be read is refused.
    pub fn finish(mut self) -> Result<(StatementFile, Tail), Refusal> {
        self.records.finish().map_err(unreadable_file)?;
        if self.rows == 0 {
            return Err(match self.first_skipped {
                Some(skipped) => {
                    Refusal::at(skipped.line, format!("no row could be read; the first: {}", skipped.reason))
                }
                None => Refusal::whole_file("the file holds no rows"),
            });
        }
        let Decided { delimiter, order, mark, currency, .. } = self.reader;
        let dialect = format!(
            "CSV, {} separated, {} header, dates {}, decimal {}",
            describe(delimiter),
            if self.header { "with" } else { "no" },
            match order {
                DateOrder::DayFirst => "day first (or year first)",
                DateOrder::MonthFirst => "month first (or year first)",
            },
            match mark {
                DecimalMark::Dot => "point",
                DecimalMark::Comma => "comma",
            }
        );
        let file = StatementFile {
            format: Format::Csv,
            dialect,
            intu_bid: None,
            accounts: Vec::new(),
            warnings: self.warnings,
        };
        Ok((file, Tail { currency }))
    }
}

fn describe(delimiter: char) -> &'static str {
    match delimiter {
        ';' => "semicolon",
        '\t' => "tab",
        '|' => "pipe",
        _ => "comma",
    }
}

/// Where the header row is among the first rows, if there is one.
fn header_of(first: &[Record], warnings: &mut Vec<ReadWarning>) -> Option<usize> {
    match columns::find_header(first) {
        Some(index) => {
            if index > 0 {
                let message = format!("{index} line(s) before the header row ignored (an account summary)");
                warnings.push(ReadWarning::at(first[0].line, WarningCode::Preamble, message));
            }
            Some(index)
        }
        None => {
            let message = "no header row found; columns were told by their content";
            warnings.push(ReadWarning::at(first.first().map_or(1, |r| r.line), WarningCode::NoHeader, message));
            None
        }
    }
}

struct RowReader<'c> {
    columns: &'c Columns,
    order: DateOrder,
    mark: DecimalMark,
}

impl RowReader<'_> {
    fn row(&self, record: &Record) -> Result<StatementRow, String> {
        let date_cell = self.columns.date.map_or("", |c| record.cell(c));
        let posted =
            dates::shape(date_cell).and_then(|shape| shape.resolve(self.order)).ok_or_else(|| match date_cell {
                "" => "no date".to_owned(),
                other => format!("{:?} is not a date", clip(other)),
            })?;
        let amount = self.amount(record)?;
        let description = self.columns.description.map_or("", |c| record.cell(c));
        let memo = self.columns.memo.map(|c| record.cell(c)).filter(|m| !m.is_empty() && *m != description);
        let payee = if description.is_empty() { memo.unwrap_or_default() } else { description };
        Ok(StatementRow {
            line: record.line,
            fitid: None,
            posted,
            amount,
            payee: payee.to_owned(),
            memo: memo.filter(|m| *m != payee).map(str::to_owned),
            reference: self.columns.reference.map(|c| record.cell(c)).filter(|r| !r.is_empty()).map(str::to_owned),
            kind: None,
            balance: self.columns.balance.and_then(|c| self.money(record.cell(c))),
        })
    }

    fn amount(&self, record: &Record) -> Result<Decimal, String> {
        if let Some(column) = self.columns.amount {
            let cell = record.cell(column);
            let value = self.money(cell).ok_or_else(|| unreadable(cell))?;
            return self.direction(record, value);
        }
        let debit = self.columns.debit.map_or("", |c| record.cell(c));
        let credit = self.columns.credit.map_or("", |c| record.cell(c));
        match (debit.is_empty(), credit.is_empty()) {
            (true, true) => Err("no amount in the debit or credit column".to_owned()),
            (false, _) if credit.is_empty() || self.money(credit) == Some(Decimal::ZERO) => {
                Ok(-self.money(debit).ok_or_else(|| unreadable(debit))?.abs())
            }
            (_, false) => {
                let credit_value = self.money(credit).ok_or_else(|| unreadable(credit))?.abs();
                let debit_value = if debit.is_empty() {
                    Decimal::ZERO
                } else {
                    self.money(debit).ok_or_else(|| unreadable(debit))?.abs()
                };
                Ok(credit_value - debit_value)
            }
            _ => Err("no amount in the debit or credit column".to_owned()),
        }
    }

    /// An unsigned amount takes its sign from the direction column, when there is one.
    fn direction(&self, record: &Record, value: Decimal) -> Result<Decimal, String> {
        let Some(column) = self.columns.direction else {
            return Ok(value);
        };
        let marker = record.cell(column).to_lowercase();
        match marker.as_str() {
            "dr" | "debit" | "d" | "af" | "s" | "soll" | "out" => Ok(-value.abs()),
            "cr" | "credit" | "c" | "bij" | "h" | "haben" | "in" => Ok(value.abs()),
            "" => Ok(value),
            other => Err(format!("direction {:?} is neither debit nor credit", clip(other))),
        }
    }

    fn money(&self, cell: &str) -> Option<Decimal> {
        amounts::parts(cell).and_then(|parts| parts.value(self.mark))
    }
}

fn unreadable(cell: &str) -> String {
    if cell.is_empty() { "no amount".to_owned() } else { format!("amount {:?} cannot be read", clip(cell)) }
}

/// Quoted cells are cut, so a hostile file cannot make a report huge.
fn clip(cell: &str) -> String {
    cell.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read_ok(text: &str) -> StatementFile {
        read(text.as_bytes(), &CsvOptions::default()).unwrap()
    }

    /// Wherever the source cuts a file (inside a character, a quoted field, between CR and
    /// LF, in the preamble or the header), every pass reads it as the whole file reads.
    #[test]
    fn a_file_cut_anywhere_reads_as_the_whole_file() {
        use records::tests::Pieces;
        let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/statement/corpus");
        let mut files: Vec<_> = std::fs::read_dir(corpus).unwrap().map(|entry| entry.unwrap().path()).collect();
        files.retain(|path| path.extension().is_some_and(|e| e == "csv"));
        files.sort();
        let mut texts: Vec<(String, Vec<u8>)> =
            files.iter().map(|path| (path.display().to_string(), std::fs::read(path).unwrap())).collect();
        texts.push((
            "quoted lines, doubled quotes, CR LF, no final newline".to_owned(),
            "\u{feff}Datum;Empf\u{e4}nger;Betrag\r\n05.01.2024;\"Caf\u{e9} \"\"Nord\"\"\r\nZeile 2\";\"-3,50\"\r\n\r\n06.01.2024;\u{1f600};1.250,00-\r\n07.01.2024;\"\"\"\";\"2,00\""
                .as_bytes()
                .to_vec(),
        ));
        assert!(texts.len() >= 15, "{} CSV files", texts.len());
        for (name, bytes) in &texts {
            let whole = read(bytes, &CsvOptions::default());
            let cuts = (0..=bytes.len()).map(|cut| (format!("cut at {cut}"), Pieces::cut_at(bytes, vec![cut])));
            let sizes = [1, 2, 3, 7, 64, 1000].map(|size| (format!("pieces of {size}"), Pieces::of_size(bytes, size)));
            for (how, source) in cuts.chain(sizes) {
                assert_eq!(read_from(source, &CsvOptions::default()), whole, "{name}, {how}");
            }
        }
    }

    /// A file of 40,000 rows (2.4 MB) is read holding a piece of its text and a record at a
    /// time, never the file.
    #[test]
    fn a_large_file_is_read_a_piece_at_a_time() {
        let mut file = String::from("Date,Description,Amount,Balance\n");
        for i in 0..40_000 {
            file.push_str(&format!("2024-01-{:02},\"Shop number {i}, with a long name\",-{i}.50,{i}.00\n", 1 + i % 28));
        }
        assert!(file.len() > 2 << 20);
        let mut stream = Stream::open(std::io::Cursor::new(file.as_bytes()), &CsvOptions::default()).unwrap();
        let (mut rows, mut largest) = (0, 0);
        while let Some(row) = stream.next_row() {
            assert_eq!(row.unwrap().amount.to_string(), format!("-{rows}.50"));
            rows += 1;
            largest = largest.max(stream.records.held());
        }
        assert_eq!(rows, 40_000);
        assert!(largest < 512 << 10, "{largest} bytes of text held");
        assert_eq!(stream.finish().unwrap().0.warnings, []);
    }

    #[test]
    fn us_debit_credit_file() {
        let file = read_ok(
            "Posting Date,Description,Debit,Credit,Balance\n12/31/2025,COFFEE,3.50,,96.50\n01/02/2026,PAYROLL,,\"1,000.00\",\"1,096.50\"\n",
        );
        let rows = &file.accounts[0].rows;
        assert_eq!(rows[0].amount.to_string(), "-3.50");
        assert_eq!(rows[1].amount.to_string(), "1000.00");
        assert_eq!(rows[1].balance.unwrap().to_string(), "1096.50");
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn german_file_with_preamble() {
        let text = "\"Kontonummer:\";\"DE12 3456\";\n\"\";\n\"Buchungstag\";\"Verwendungszweck\";\"Betrag\"\n\"05.01.2024\";\"Miete\";\"-1.250,00\"\n\"13.01.2024\";\"Gehalt\";\"2.500,00\"\n";
        let file = read_ok(text);
        let rows = &file.accounts[0].rows;
        assert_eq!(rows[0].posted.to_string(), "2024-01-05");
        assert_eq!(rows[0].amount.to_string(), "-1250.00");
        assert!(file.warnings.iter().any(|w| w.code == WarningCode::Preamble));
    }

    #[test]
    fn ambiguous_dates_are_refused_with_a_line() {
        let refusal =
            read("Date,Description,Amount\n01/02/2024,A,1.00\n01/03/2024,B,2.00\n".as_bytes(), &CsvOptions::default())
                .err()
                .unwrap();
        assert_eq!(refusal.line, Some(2));
        let options = CsvOptions { date_order: Some(DateOrder::DayFirst), ..CsvOptions::default() };
        let file =
            read("Date,Description,Amount\n01/02/2024,A,1.00\n01/03/2024,B,2.00\n".as_bytes(), &options).unwrap();
        assert_eq!(file.accounts[0].rows[1].posted.to_string(), "2024-03-01");
    }

    #[test]
    fn total_rows_are_skipped_with_reasons() {
        let file = read_ok("Date,Description,Amount\n2024-01-01,A,(1.00)\nTotal,,-1.00\n");
        assert_eq!(file.accounts[0].rows[0].amount.to_string(), "-1.00");
        assert_eq!(file.accounts[0].skipped[0].line, 3);
    }
}
