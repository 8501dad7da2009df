//! Turns the element tree into the typed document.
//!
//! Optional elements may be missing; elements the spec requires and the
//! service relies on (STATUS CODE, FITID, TRNAMT, DTPOSTED, account ids) are
//! errors when absent, and any value present must be well-formed.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::date::{OfxDateTime, parse_date};
use super::error::OfxError;
use super::model::{
    Account, AccountInfo, AccountListResponse, Balance, BankAccount, CurrencyInfo, FinancialInstitution, OfxDocument,
    OfxHeader, OfxVersion, Severity, SignonResponse, Statement, StatementKind, Status, Transaction,
};
use super::tree::Element;
use super::write::{PENDING, REPLACES};

type Result<T> = std::result::Result<T, OfxError>;

/// Whether a transaction without a FITID is an error (Direct Connect) or is kept with an
/// empty one for the caller to identify otherwise (files from a bank's website).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fitids {
    Required,
    MayBeMissing,
}

pub(crate) fn document(version: OfxVersion, header: OfxHeader, ofx: &Element) -> Result<OfxDocument> {
    document_with(version, header, ofx, Fitids::Required)
}

pub(crate) fn document_with(
    version: OfxVersion,
    header: OfxHeader,
    ofx: &Element,
    fitids: Fitids,
) -> Result<OfxDocument> {
    Ok(OfxDocument {
        version,
        header,
        signon: ofx.path(&["SIGNONMSGSRSV1", "SONRS"]).map(signon).transpose()?,
        account_list: ofx.path(&["SIGNUPMSGSRSV1", "ACCTINFOTRNRS"]).map(account_list).transpose()?,
        statements: statements(ofx, fitids)?,
    })
}

fn signon(sonrs: &Element) -> Result<SignonResponse> {
    Ok(SignonResponse {
        status: status(required_child(sonrs, "STATUS")?)?,
        server_date: date(sonrs, "DTSERVER")?,
        language: string(sonrs, "LANGUAGE"),
        fi: sonrs.child("FI").map(|fi| FinancialInstitution { org: string(fi, "ORG"), fid: string(fi, "FID") }),
        intu_bid: string(sonrs, "INTU.BID"),
    })
}

fn status(element: &Element) -> Result<Status> {
    let code = required(element, "CODE")?;
    let severity = required(element, "SEVERITY")?;
    Ok(Status {
        code: code.parse().map_err(|_| invalid(element, "CODE", code, "not a status code"))?,
        severity: Severity::parse(severity)
            .ok_or_else(|| invalid(element, "SEVERITY", severity, "not INFO, WARN or ERROR"))?,
        message: string(element, "MESSAGE"),
    })
}

fn optional_status(parent: &Element) -> Result<Option<Status>> {
    parent.child("STATUS").map(status).transpose()
}

const STATEMENT_SETS: [(&str, &str, &str, StatementKind); 2] = [
    ("BANKMSGSRSV1", "STMTTRNRS", "STMTRS", StatementKind::Bank),
    ("CREDITCARDMSGSRSV1", "CCSTMTTRNRS", "CCSTMTRS", StatementKind::CreditCard),
];

fn statements(ofx: &Element, fitids: Fitids) -> Result<Vec<Statement>> {
    let mut found = Vec::new();
    for (set, trn, body, kind) in STATEMENT_SETS {
        for trnrs in ofx.children_named(set).flat_map(|s| s.children_named(trn)) {
            found.push(statement(trnrs, trnrs.child(body), kind, fitids)?);
        }
    }
    Ok(found)
}

/// The line of each transaction, statement by statement, in the order [`statements`] reads them.
pub(crate) fn transaction_lines(ofx: &Element) -> Vec<Vec<usize>> {
    let mut found = Vec::new();
    for (set, trn, body, _) in STATEMENT_SETS {
        for trnrs in ofx.children_named(set).flat_map(|s| s.children_named(trn)) {
            let list = trnrs.child(body).and_then(|body| body.child("BANKTRANLIST"));
            found.push(list.into_iter().flat_map(|l| l.children_named("STMTTRN")).map(|t| t.line).collect());
        }
    }
    found
}

fn statement(trnrs: &Element, body: Option<&Element>, kind: StatementKind, fitids: Fitids) -> Result<Statement> {
    let status = optional_status(trnrs)?;
    let trnuid = string(trnrs, "TRNUID");
    let Some(body) = body else {
        let mut statement = Statement::failed(kind, "", Status::ok());
        statement.trnuid = trnuid;
        statement.status = status;
        return Ok(statement);
    };
    let list = body.child("BANKTRANLIST");
    Ok(Statement {
        kind,
        trnuid,
        status,
        currency: string(body, "CURDEF"),
        account: Some(statement_account(body, kind)?),
        start: list.map(|l| date(l, "DTSTART")).transpose()?.flatten(),
        end: list.map(|l| date(l, "DTEND")).transpose()?.flatten(),
        transactions: list.map_or(Ok(Vec::new()), |list| transactions(list, fitids))?,
        ledger_balance: balance(body, "LEDGERBAL")?,
        available_balance: balance(body, "AVAILBAL")?,
    })
}

pub(crate) fn statement_account(body: &Element, kind: StatementKind) -> Result<Account> {
    match kind {
        StatementKind::Bank => Ok(Account::Bank(bank_account(required_child(body, "BANKACCTFROM")?)?)),
        StatementKind::CreditCard => card_account(required_child(body, "CCACCTFROM")?),
    }
}

fn bank_account(from: &Element) -> Result<BankAccount> {
    Ok(BankAccount {
        bank_id: required(from, "BANKID")?.to_owned(),
        branch_id: string(from, "BRANCHID"),
        account_id: required(from, "ACCTID")?.to_owned(),
        account_type: required(from, "ACCTTYPE")?.to_owned(),
    })
}

fn card_account(from: &Element) -> Result<Account> {
    Ok(Account::CreditCard { account_id: required(from, "ACCTID")?.to_owned() })
}

fn transactions(list: &Element, fitids: Fitids) -> Result<Vec<Transaction>> {
    list.children_named("STMTTRN").map(|trn| transaction(trn, fitids)).collect()
}

pub(crate) fn transaction(trn: &Element, fitids: Fitids) -> Result<Transaction> {
    let fitid = match fitids {
        Fitids::Required => required(trn, "FITID")?,
        Fitids::MayBeMissing => trn.text_of("FITID").unwrap_or_default(),
    };
    Ok(Transaction {
        fitid: fitid.to_owned(),
        trntype: required(trn, "TRNTYPE")?.to_owned(),
        posted: required_date(trn, "DTPOSTED")?,
        user_date: date(trn, "DTUSER")?,
        amount: required_amount(trn, "TRNAMT")?,
        name: string(trn, "NAME"),
        payee_name: trn.child("PAYEE").and_then(|payee| string(payee, "NAME")),
        memo: string(trn, "MEMO"),
        check_number: string(trn, "CHECKNUM"),
        currency: trn.child("CURRENCY").map(currency).transpose()?,
        orig_currency: trn.child("ORIGCURRENCY").map(currency).transpose()?,
        pending: trn.text_of(PENDING).is_some_and(|flag| flag.eq_ignore_ascii_case("Y")),
        replaces_fitid: string(trn, REPLACES),
    })
}

fn currency(element: &Element) -> Result<CurrencyInfo> {
    Ok(CurrencyInfo { rate: amount(element, "CURRATE")?, symbol: required(element, "CURSYM")?.to_owned() })
}

fn balance(body: &Element, name: &str) -> Result<Option<Balance>> {
    let Some(element) = body.child(name) else {
        return Ok(None);
    };
    Ok(Some(Balance { amount: required_amount(element, "BALAMT")?, as_of: required_date(element, "DTASOF")? }))
}

fn account_list(trnrs: &Element) -> Result<AccountListResponse> {
    let body = trnrs.child("ACCTINFORS");
    let mut accounts = Vec::new();
    for info in body.iter().flat_map(|b| b.children_named("ACCTINFO")) {
        accounts.extend(account_info(info)?);
    }
    Ok(AccountListResponse {
        trnuid: string(trnrs, "TRNUID"),
        status: optional_status(trnrs)?,
        updated: body.map(|b| date(b, "DTACCTUP")).transpose()?.flatten(),
        accounts,
    })
}

/// Services the service does not track (investment, bill pay) are skipped.
fn account_info(info: &Element) -> Result<Option<AccountInfo>> {
    let (service, account) = if let Some(bank) = info.child("BANKACCTINFO") {
        let from = required_child(bank, "BANKACCTFROM")?;
        (bank, Account::Bank(bank_account(from)?))
    } else if let Some(card) = info.child("CCACCTINFO") {
        (card, card_account(required_child(card, "CCACCTFROM")?)?)
    } else {
        return Ok(None);
    };
    Ok(Some(AccountInfo {
        description: string(info, "DESC"),
        phone: string(info, "PHONE"),
        account,
        service_status: string(service, "SVCSTATUS"),
    }))
}

pub(crate) fn string(parent: &Element, name: &str) -> Option<String> {
    parent.text_of(name).map(str::to_owned)
}

pub(crate) fn required<'a>(parent: &'a Element, name: &str) -> Result<&'a str> {
    parent.text_of(name).ok_or_else(|| missing(parent, name))
}

pub(crate) fn required_child<'a, 'x>(parent: &'a Element<'x>, name: &str) -> Result<&'a Element<'x>> {
    parent.child(name).ok_or_else(|| missing(parent, name))
}

fn missing(parent: &Element, name: &str) -> OfxError {
    OfxError::Missing { line: parent.line, element: parent.name.clone().into_owned(), child: name.to_owned() }
}

fn invalid(parent: &Element, name: &str, value: &str, message: &str) -> OfxError {
    let line = parent.child(name).map_or(parent.line, |child| child.line);
    OfxError::invalid(line, name, value, message)
}

pub(crate) fn date(parent: &Element, name: &str) -> Result<Option<OfxDateTime>> {
    let Some(raw) = parent.text_of(name) else {
        return Ok(None);
    };
    parse_date(raw).map(Some).map_err(|reason| invalid(parent, name, raw, reason))
}

pub(crate) fn required_date(parent: &Element, name: &str) -> Result<OfxDateTime> {
    date(parent, name)?.ok_or_else(|| missing(parent, name))
}

fn amount(parent: &Element, name: &str) -> Result<Option<Decimal>> {
    let Some(raw) = parent.text_of(name) else {
        return Ok(None);
    };
    parse_amount(raw).map(Some).ok_or_else(|| invalid(parent, name, raw, "not a decimal amount"))
}

fn required_amount(parent: &Element, name: &str) -> Result<Decimal> {
    amount(parent, name)?.ok_or_else(|| missing(parent, name))
}

/// Some European banks write a decimal comma (`-12,50`); a leading `+` is
/// also seen. Thousands separators are not, so a comma with no dot is the
/// decimal mark.
fn parse_amount(raw: &str) -> Option<Decimal> {
    let trimmed = raw.trim().strip_prefix('+').unwrap_or(raw.trim());
    let valid = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b','));
    if !valid {
        return None;
    }
    if trimmed.contains(',') && !trimmed.contains('.') {
        return Decimal::from_str(&trimmed.replace(',', ".")).ok();
    }
    Decimal::from_str(trimmed).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        let cases = [
            ("-12.50", Some("-12.50")),
            ("+3", Some("3")),
            ("-12,5", Some("-12.5")),
            (" 0.01 ", Some("0.01")),
            ("1,000.00", None),
            ("12x", None),
            ("", None),
            ("1e5", None),
        ];
        for (raw, expected) in cases {
            let expected = expected.map(|e| Decimal::from_str(e).unwrap_or_default());
            assert_eq!(parse_amount(raw), expected, "{raw:?}");
        }
    }
}
