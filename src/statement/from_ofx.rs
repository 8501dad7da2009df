//! OFX, QFX and QBO files into a [`StatementFile`], through the one OFX reader.

use std::collections::{HashSet, VecDeque};
use std::io::{Read, Seek};

use super::format::Format;
use super::model::{AccountRef, AccountStatement, Refusal, SkippedRow, StatementRow};
use super::stream::{Ending, Event};
use crate::ofx::{
    self, LenientStream, OfxError, ParseOptions, ReadWarning, Statement, StatementKey, StatementKind, Transaction,
    WarningCode,
};

/// An OFX file read through [`ofx::LenientStream`]: its statements and transactions as
/// [`Event`]s. Statements the stream could only read at the end (their account after their
/// transactions, or no transactions at all) are told then.
pub(crate) struct Stream<R> {
    ofx: Option<LenientStream<R>>,
    ending: Option<ofx::Ending>,
    told: HashSet<usize>,
    queued: VecDeque<Event>,
}

impl<R> std::fmt::Debug for Stream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("told", &self.told.len()).finish_non_exhaustive()
    }
}

/// Bank and card statements are counted apart by the OFX reader; events number them together.
fn key_of(key: StatementKey) -> usize {
    key.ordinal * 2 + usize::from(key.kind == StatementKind::CreditCard)
}

impl<R: Read + Seek> Stream<R> {
    pub fn open(source: R) -> Result<Self, Refusal> {
        let options = ParseOptions { max_bytes: super::MAX_FILE_BYTES, ..ParseOptions::default() };
        let ofx = LenientStream::open(source, &options).map_err(refusal)?;
        Ok(Self { ofx: Some(ofx), ending: None, told: HashSet::new(), queued: VecDeque::new() })
    }

    pub fn next_event(&mut self) -> Result<Option<Event>, Refusal> {
        if let Some(event) = self.queued.pop_front() {
            return Ok(Some(event));
        }
        let Some(stream) = self.ofx.as_mut() else { return Ok(None) };
        match stream.next_item().map_err(refusal)? {
            Some(ofx::Item::Statement { key, account, currency }) => {
                let key = key_of(key);
                self.told.insert(key);
                Ok(Some(Event::Account { key, account: AccountRef(Some(account)), currency }))
            }
            Some(ofx::Item::Transaction { key, line, transaction }) => Ok(Some(event(key_of(key), &transaction, line))),
            None => {
                let stream = self.ofx.take().ok_or_else(|| Refusal::whole_file("read twice"))?;
                let ending = stream.finish().map_err(refusal)?;
                self.queue_the_rest(&ending);
                self.ending = Some(ending);
                Ok(self.queued.pop_front())
            }
        }
    }

    /// Statements read only at the end, told now with their transactions.
    fn queue_the_rest(&mut self, ending: &ofx::Ending) {
        for ((statement, key), lines) in
            ending.document.statements.iter().zip(&ending.keys).zip(&ending.transaction_lines)
        {
            let (Some(account), key) = (statement.account.clone(), key_of(*key)) else { continue };
            if self.told.insert(key) {
                let currency = statement.currency.clone();
                self.queued.push_back(Event::Account { key, account: AccountRef(Some(account)), currency });
            }
            for (transaction, &line) in statement.transactions.iter().zip(lines) {
                self.queued.push_back(event(key, transaction, line));
            }
        }
    }

    pub fn finish(mut self) -> Result<Ending, Refusal> {
        while self.next_event()?.is_some() {}
        let ending = self.ending.take().ok_or_else(|| Refusal::whole_file("the file was not read to its end"))?;
        let mut warnings = ending.warnings;
        let document = ending.document;
        let intu_bid = document.signon.as_ref().and_then(|signon| signon.intu_bid.clone());
        let mut accounts = Vec::new();
        for (statement, key) in document.statements.iter().zip(&ending.keys) {
            match tail(statement) {
                Some(account) => accounts.push((key_of(*key), account)),
                None => warnings.push(failed_statement(statement)),
            }
        }
        if document.statements.is_empty() {
            warnings.push(ReadWarning {
                line: None,
                code: WarningCode::EmptyElement,
                message: "file holds no statement".to_owned(),
            });
        }
        let dialect = format!(
            "OFX {} ({}){}",
            document.version.number(),
            if document.version.is_sgml() { "SGML" } else { "XML" },
            if intu_bid.is_some() { ", Web Connect (QFX/QBO)" } else { "" }
        );
        Ok(Ending {
            format: Format::Ofx,
            dialect,
            intu_bid,
            accounts,
            warnings,
            omitted_warnings: ending.omitted_warnings,
        })
    }
}

fn event(key: usize, transaction: &Transaction, line: usize) -> Event {
    match row(transaction, line) {
        Ok(row) => Event::Row { key, row },
        Err(skipped) => Event::Skipped { key, skipped },
    }
}

fn refusal(error: OfxError) -> Refusal {
    let reason = match &error {
        OfxError::Header { message, .. } => format!("bad OFX header: {message}"),
        OfxError::Syntax { message, .. } => format!("malformed markup: {message}"),
        OfxError::TooDeep { limit, .. } => format!("elements nested deeper than {limit}"),
        OfxError::NoOfx { .. } => "no <OFX> element".to_owned(),
        OfxError::Missing { element, child, .. } => format!("<{element}> lacks required <{child}>"),
        OfxError::InvalidValue { element, value, message, .. } => format!("<{element}> {value:?}: {message}"),
        OfxError::TooLarge { .. } => error.to_string(),
    };
    Refusal { line: error.line(), reason }
}

/// A statement's account, currency, period and balance; `None` for a statement the bank
/// refused (no body).
fn tail(statement: &Statement) -> Option<AccountStatement> {
    let account = statement.account.clone()?;
    let mut out = AccountStatement::new(AccountRef(Some(account)));
    out.currency = statement.currency.clone();
    out.start = statement.start.map(|start| start.date_naive());
    out.end = statement.end.map(|end| end.date_naive());
    out.ledger_balance = statement.ledger_balance.as_ref().map(|balance| balance.amount);
    Some(out)
}

fn row(transaction: &Transaction, line: usize) -> Result<StatementRow, SkippedRow> {
    let payee = [&transaction.name, &transaction.payee_name, &transaction.memo]
        .into_iter()
        .flatten()
        .next()
        .cloned()
        .unwrap_or_default();
    if transaction.fitid.is_empty() && is_balance_line(&payee) {
        return Err(SkippedRow { line, reason: format!("{payee:?} is a balance line, not a transaction") });
    }
    if transaction.pending {
        return Err(SkippedRow { line, reason: "pending transaction: it is imported once posted".to_owned() });
    }
    Ok(StatementRow {
        line,
        fitid: Some(transaction.fitid.clone()).filter(|fitid| !fitid.is_empty()),
        posted: transaction.posted.date_naive(),
        amount: transaction.amount,
        memo: transaction.memo.clone().filter(|memo| *memo != payee),
        payee,
        reference: transaction.check_number.clone(),
        kind: Some(transaction.trntype.clone()),
        balance: None,
    })
}

/// Some banks (Banco do Brasil among them) list the opening and daily balances as
/// transactions without a FITID; importing them would add the balance as money.
fn is_balance_line(payee: &str) -> bool {
    let letters: String = payee.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect();
    ["saldo", "openingbalance", "closingbalance", "balanceforward", "solde", "kontostand"]
        .iter()
        .any(|label| letters.starts_with(label))
}

fn failed_statement(statement: &Statement) -> ReadWarning {
    let status = statement.status.as_ref();
    let message = format!(
        "a statement was refused by the bank (status {}{}); it holds no transactions",
        status.map_or(0, |s| s.code),
        status.and_then(|s| s.message.as_deref()).map(|m| format!(": {m}")).unwrap_or_default()
    );
    ReadWarning { line: None, code: WarningCode::EmptyElement, message }
}
