//! CSV exports: decoding, delimiter, header and columns, then dates and amounts decided over
//! the whole file before any row is read, so one row cannot be read one way and the next
//! another.

mod amounts;
mod columns;
mod dates;
mod records;

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
use records::Record;

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
    let mut stream = Stream::open(input, options)?;
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

/// A CSV file read in two passes over its decoded text: the first decides the header, the
/// columns, the date order and the decimal mark from every row (so one row cannot be read one
/// way and the next another), the second hands out the rows one at a time. The text is held,
/// its records are not.
#[derive(Debug)]
pub(crate) struct Stream {
    text: String,
    delimiter: char,
    cursor: records::Cursor,
    reader: Decided,
    header: bool,
    warnings: Vec<ReadWarning>,
    rows: usize,
    first_skipped: Option<SkippedRow>,
}

/// What the first pass decided.
#[derive(Debug)]
struct Decided {
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

impl Stream {
    pub fn open(input: &[u8], options: &CsvOptions) -> Result<Self, Refusal> {
        let mut warnings = Vec::new();
        let text = records::decode(input, &mut warnings);
        let delimiter = records::choose_delimiter(&text);
        let body = || records::split(&text, delimiter).filter(|record| !record.is_blank());
        let first: Vec<Record> = body().take(columns::HEADER_SEARCH_ROWS).collect();
        let header_at = header_of(&first, &mut warnings);
        let header = header_at.map(|index| first[index].clone());
        let skip = header_at.map_or(0, |index| index + 1);
        let rows = || body().skip(skip);
        let first_line = header.as_ref().or(first.get(skip)).map_or(1, |record| record.line);
        drop(first);
        let mut columns = match &header {
            Some(header) => columns::from_header(header),
            None => columns::from_content(&rows().collect::<Vec<_>>()),
        };
        columns::apply(&mut columns, &options.columns, header.as_ref()).map_err(Refusal::whole_file)?;
        let date_column = columns.date.ok_or_else(|| Refusal::at(first_line, "no column holds dates"))?;
        if columns.amount.is_none() && columns.debit.is_none() && columns.credit.is_none() {
            return Err(Refusal::at(first_line, "no column holds amounts"));
        }
        let order = date_order(rows(), date_column, options.date_order, &mut warnings)?;
        let mark = decimal_mark(rows(), &columns, options.decimal_mark)?;
        let currency = currency(rows(), &columns);
        let mut cursor = records::Cursor::default();
        let mut skipped = 0;
        // Past the blank lines, preamble and header, to the first row.
        while skipped < skip {
            let Some(record) = cursor.next(&text, delimiter) else { break };
            if !record.is_blank() {
                skipped += 1;
            }
        }
        Ok(Self {
            text,
            delimiter,
            cursor,
            reader: Decided { columns, order, mark, currency },
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
            let record = self.cursor.next(&self.text, self.delimiter)?;
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
    pub fn finish(self) -> Result<(StatementFile, Tail), Refusal> {
        if self.rows == 0 {
            return Err(match self.first_skipped {
                Some(skipped) => {
                    Refusal::at(skipped.line, format!("no row could be read; the first: {}", skipped.reason))
                }
                None => Refusal::whole_file("the file holds no rows"),
            });
        }
        let Decided { order, mark, currency, .. } = self.reader;
        let dialect = format!(
            "CSV, {} separated, {} header, dates {}, decimal {}",
            describe(self.delimiter),
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

fn date_order(
    body: impl Iterator<Item = Record>,
    column: usize,
    given: Option<DateOrder>,
    warnings: &mut Vec<ReadWarning>,
) -> Result<DateOrder, Refusal> {
    let shapes: Vec<(usize, dates::Shape)> =
        body.filter_map(|record| dates::shape(record.cell(column)).map(|shape| (record.line, shape))).collect();
    if let Some(order) = given {
        return Ok(order);
    }
    match dates::decide(&shapes).map_err(|(line, reason)| Refusal::at(line, reason))? {
        dates::Decided::Values(order) => Ok(order),
        dates::Decided::Dots => {
            let message = "every date fits both orders; dates written with dots are read day first";
            warnings.push(ReadWarning::at(shapes.first().map_or(1, |s| s.0), WarningCode::DateOrderInferred, message));
            Ok(DateOrder::DayFirst)
        }
        dates::Decided::Sequence(order) => {
            let message = format!(
                "every date fits both orders; {} is the only one that lists the rows in date order",
                if order == DateOrder::DayFirst { "day first" } else { "month first" }
            );
            warnings.push(ReadWarning::at(shapes.first().map_or(1, |s| s.0), WarningCode::DateOrderInferred, message));
            Ok(order)
        }
    }
}

fn decimal_mark(
    body: impl Iterator<Item = Record>,
    columns: &Columns,
    given: Option<DecimalMark>,
) -> Result<DecimalMark, Refusal> {
    if let Some(mark) = given {
        return Ok(mark);
    }
    let money = [columns.amount, columns.debit, columns.credit, columns.balance];
    let cells: Vec<(usize, amounts::Parts)> = body
        .flat_map(|record| {
            money
                .iter()
                .flatten()
                .filter_map(|&c| amounts::parts(record.cell(c)).map(|p| (record.line, p)))
                .collect::<Vec<_>>()
        })
        .collect();
    amounts::decide(&cells).map_err(|(line, reason)| Refusal::at(line, reason))
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

/// The currency column's value when every row agrees.
fn currency(body: impl Iterator<Item = Record>, columns: &Columns) -> Option<String> {
    let column = columns.currency?;
    let mut values = body.map(|r| r.cell(column).to_ascii_uppercase()).filter(|v| v.len() == 3);
    let first = values.next()?;
    values.all(|v| v == first).then_some(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read_ok(text: &str) -> StatementFile {
        read(text.as_bytes(), &CsvOptions::default()).unwrap()
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
