//! What every row of a CSV file says about how all of them are read (the order of day and
//! month, the decimal mark, the one currency), gathered a row at a time in one pass, so the
//! whole file decides without being held.

use super::amounts::{self, DecimalMark};
use super::columns::Columns;
use super::dates::{self, DateOrder};
use super::records::Record;
use crate::ofx::{ReadWarning, WarningCode};
use crate::statement::model::Refusal;

/// What the rows say about their dates, amounts and currency, gathered a row at a time.
pub(super) struct Evidence<'c> {
    columns: &'c Columns,
    date_column: usize,
    dates: dates::Evidence,
    marks: amounts::Marks,
    /// The first currency, and whether every row has it.
    currency: Option<(String, bool)>,
}

impl<'c> Evidence<'c> {
    pub fn new(columns: &'c Columns, date_column: usize) -> Self {
        Self { columns, date_column, dates: dates::Evidence::new(), marks: amounts::Marks::default(), currency: None }
    }

    pub fn add(&mut self, record: &Record) {
        if let Some(shape) = dates::shape(record.cell(self.date_column)) {
            self.dates.add(record.line, shape);
        }
        let money = [self.columns.amount, self.columns.debit, self.columns.credit, self.columns.balance];
        for parts in money.iter().flatten().filter_map(|&c| amounts::parts(record.cell(c))) {
            self.marks.add(record.line, &parts);
        }
        if let Some(column) = self.columns.currency {
            let value = record.cell(column).to_ascii_uppercase();
            if value.len() == 3 {
                match &mut self.currency {
                    None => self.currency = Some((value, true)),
                    Some((first, agree)) => *agree &= *first == value,
                }
            }
        }
    }

    pub fn date_order(&self, given: Option<DateOrder>, warnings: &mut Vec<ReadWarning>) -> Result<DateOrder, Refusal> {
        if let Some(order) = given {
            return Ok(order);
        }
        let first_line = self.dates.first_line().unwrap_or(1);
        match self.dates.decide().map_err(|(line, reason)| Refusal::at(line, reason))? {
            dates::Decided::Values(order) => Ok(order),
            dates::Decided::Dots => {
                let message = "every date fits both orders; dates written with dots are read day first";
                warnings.push(ReadWarning::at(first_line, WarningCode::DateOrderInferred, message));
                Ok(DateOrder::DayFirst)
            }
            dates::Decided::Sequence(order) => {
                let message = format!(
                    "every date fits both orders; {} is the only one that lists the rows in date order",
                    if order == DateOrder::DayFirst { "day first" } else { "month first" }
                );
                warnings.push(ReadWarning::at(first_line, WarningCode::DateOrderInferred, message));
                Ok(order)
            }
        }
    }

    pub fn decimal_mark(&self, given: Option<DecimalMark>) -> Result<DecimalMark, Refusal> {
        match given {
            Some(mark) => Ok(mark),
            None => self.marks.decide().map_err(|(line, reason)| Refusal::at(line, reason)),
        }
    }

    /// The currency column's value when every row agrees.
    pub fn currency(&self) -> Option<String> {
        self.currency.as_ref().filter(|(_, agree)| *agree).map(|(first, _)| first.clone())
    }
}
