//! What a statement file holds, whichever its format.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::format::Format;
use crate::ofx::{Account, ReadWarning};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementFile {
    pub format: Format,
    /// What the reader found, for people: `OFX 102 (SGML), Web Connect`, `CSV, ';'-separated…`.
    pub dialect: String,
    /// Intuit's bank id of a Web Connect (QFX/QBO) file.
    pub intu_bid: Option<String>,
    pub accounts: Vec<AccountStatement>,
    pub warnings: Vec<ReadWarning>,
}

impl StatementFile {
    pub fn transaction_count(&self) -> usize {
        self.accounts.iter().map(|account| account.rows.len()).sum()
    }
}

/// The account a statement is for, as the file names it; CSV exports name none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AccountRef(pub Option<Account>);

impl AccountRef {
    pub fn account_id(&self) -> Option<&str> {
        self.0.as_ref().map(Account::account_id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountStatement {
    pub account: AccountRef,
    /// ISO 4217 code when the file states one.
    pub currency: Option<String>,
    /// The period the file says it covers (OFX `DTSTART`/`DTEND`), else that of its rows.
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub rows: Vec<StatementRow>,
    pub skipped: Vec<SkippedRow>,
    pub ledger_balance: Option<Decimal>,
}

impl AccountStatement {
    pub(crate) fn new(account: AccountRef) -> Self {
        Self {
            account,
            currency: None,
            start: None,
            end: None,
            rows: Vec::new(),
            skipped: Vec::new(),
            ledger_balance: None,
        }
    }

    /// Widens the declared period to the rows', so a file that states none still has one.
    #[cfg(test)]
    pub(crate) fn settle_period(&mut self) {
        let dates = self.rows.iter().map(|row| row.posted);
        let (first, last) = (dates.clone().min(), dates.max());
        self.start = [self.start, first].into_iter().flatten().min();
        self.end = [self.end, last].into_iter().flatten().max();
    }
}

/// One transaction as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRow {
    /// 1-based line where the row (or `<STMTTRN>`) starts.
    pub line: usize,
    /// The bank's transaction id; absent in CSV and in some banks' OFX.
    pub fitid: Option<String>,
    pub posted: NaiveDate,
    /// Signed from the account holder's side: money in is positive.
    pub amount: Decimal,
    pub payee: String,
    pub memo: Option<String>,
    /// A check number or the bank's reference column.
    pub reference: Option<String>,
    /// OFX `TRNTYPE` (upper case), when given.
    pub kind: Option<String>,
    /// The running balance after this row, when the file has that column.
    pub balance: Option<Decimal>,
}

/// A row the reader left out, and why (a total line, an unreadable amount).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedRow {
    pub line: usize,
    pub reason: String,
}

/// Why a file cannot be read at all: the line (when one is to blame) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Refusal {
    pub line: Option<usize>,
    pub reason: String,
}

impl Refusal {
    pub fn at(line: usize, reason: impl Into<String>) -> Self {
        Self { line: Some(line), reason: reason.into() }
    }

    pub fn whole_file(reason: impl Into<String>) -> Self {
        Self { line: None, reason: reason.into() }
    }

    fn describe(&self) -> String {
        match self.line {
            Some(line) => format!("line {line}: {}", self.reason),
            None => self.reason.clone(),
        }
    }
}
