//! OFX, QFX and QBO files into a [`StatementFile`], through the one OFX reader.

use super::format::Format;
use super::model::{AccountRef, AccountStatement, Refusal, SkippedRow, StatementFile, StatementRow};
use crate::ofx::{self, OfxError, ParseOptions, ReadWarning, Statement, Transaction, WarningCode};

pub(crate) fn read(input: &[u8]) -> Result<StatementFile, Refusal> {
    let options = ParseOptions { max_bytes: super::MAX_FILE_BYTES, ..ParseOptions::default() };
    let reading = ofx::read_lenient(input, &options).map_err(refusal)?;
    let mut warnings = reading.warnings;
    let document = reading.document;
    let intu_bid = document.signon.as_ref().and_then(|signon| signon.intu_bid.clone());
    let mut accounts = Vec::new();
    for (statement, lines) in document.statements.iter().zip(&reading.transaction_lines) {
        match account_statement(statement, lines) {
            Some(account) => accounts.push(account),
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
    Ok(StatementFile { format: Format::Ofx, dialect, intu_bid, accounts, warnings })
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

/// `None` for a statement the bank refused (no body).
fn account_statement(statement: &Statement, lines: &[usize]) -> Option<AccountStatement> {
    let account = statement.account.clone()?;
    let mut out = AccountStatement::new(AccountRef(Some(account)));
    out.currency = statement.currency.clone();
    out.start = statement.start.map(|start| start.date_naive());
    out.end = statement.end.map(|end| end.date_naive());
    out.ledger_balance = statement.ledger_balance.as_ref().map(|balance| balance.amount);
    for (transaction, &line) in statement.transactions.iter().zip(lines) {
        match row(transaction, line) {
            Ok(row) => out.rows.push(row),
            Err(skipped) => out.skipped.push(skipped),
        }
    }
    out.settle_period();
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
