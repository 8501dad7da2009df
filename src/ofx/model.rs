//! The typed OFX document shared by the parser and the writers.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::date::OfxDateTime;

/// Dialect and version number: `V1` is SGML (102, 103, 151, 160), `V2` is
/// XML (200, 211, 220). A file without a VERSION reads as 102 or 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OfxVersion {
    V1(u16),
    V2(u16),
}

impl OfxVersion {
    pub const V102: Self = Self::V1(102);
    pub const V103: Self = Self::V1(103);
    pub const V220: Self = Self::V2(220);

    pub fn number(self) -> u16 {
        match self {
            Self::V1(n) | Self::V2(n) => n,
        }
    }

    pub fn is_sgml(self) -> bool {
        matches!(self, Self::V1(_))
    }
}

/// The header as found: every key (upper-cased) and the encoding actually
/// used to decode the file, which may differ from the declared one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OfxHeader {
    pub fields: BTreeMap<String, String>,
    pub encoding: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfxDocument {
    pub version: OfxVersion,
    /// Ignored by the writers, which always emit a standard header.
    pub header: OfxHeader,
    pub signon: Option<SignonResponse>,
    pub account_list: Option<AccountListResponse>,
    pub statements: Vec<Statement>,
}

impl OfxDocument {
    pub fn new(version: OfxVersion) -> Self {
        Self { version, header: OfxHeader::default(), signon: None, account_list: None, statements: Vec::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "INFO" => Some(Self::Info),
            "WARN" => Some(Self::Warn),
            "ERROR" => Some(Self::Error),
            _ => None,
        }
    }
}

/// An OFX `<STATUS>`: 0 is success; see domain.md §3.1 for the codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub code: u32,
    pub severity: Severity,
    pub message: Option<String>,
}

impl Status {
    pub fn ok() -> Self {
        Self { code: 0, severity: Severity::Info, message: None }
    }

    pub fn error(code: u32, message: impl Into<String>) -> Self {
        Self { code, severity: Severity::Error, message: Some(message.into()) }
    }

    /// Success unless the server called it an error; 1 (up to date) and
    /// informational codes such as 15000 still carry data.
    pub fn is_success(&self) -> bool {
        self.severity != Severity::Error
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinancialInstitution {
    pub org: Option<String>,
    pub fid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignonResponse {
    pub status: Status,
    pub server_date: Option<OfxDateTime>,
    pub language: Option<String>,
    pub fi: Option<FinancialInstitution>,
    /// Intuit's bank id, present in Web Connect (QFX/QBO) files.
    pub intu_bid: Option<String>,
}

// Deserialize too: a provider keeps an account's address between refreshes (`provider_ref`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    pub bank_id: String,
    pub branch_id: Option<String>,
    pub account_id: String,
    /// CHECKING, SAVINGS, MONEYMRKT, CREDITLINE or CD.
    pub account_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    Bank(BankAccount),
    CreditCard { account_id: String },
}

impl Account {
    pub fn account_id(&self) -> &str {
        match self {
            Self::Bank(bank) => &bank.account_id,
            Self::CreditCard { account_id } => account_id,
        }
    }

    pub fn kind(&self) -> StatementKind {
        match self {
            Self::Bank(_) => StatementKind::Bank,
            Self::CreditCard { .. } => StatementKind::CreditCard,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    Bank,
    CreditCard,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Balance {
    pub amount: Decimal,
    pub as_of: OfxDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrencyInfo {
    pub rate: Option<Decimal>,
    pub symbol: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transaction {
    pub fitid: String,
    pub trntype: String,
    pub posted: OfxDateTime,
    pub user_date: Option<OfxDateTime>,
    pub amount: Decimal,
    pub name: Option<String>,
    /// `<PAYEE><NAME>`, used instead of `<NAME>` by some banks.
    pub payee_name: Option<String>,
    pub memo: Option<String>,
    pub check_number: Option<String>,
    pub currency: Option<CurrencyInfo>,
    pub orig_currency: Option<CurrencyInfo>,
    /// `<FEEDWATCH.PENDING>Y`: our extension (OFX allows FI elements whose names hold a dot),
    /// since OFX 1.x/2.x statements have no notion of a pending transaction.
    pub pending: bool,
    /// `<FEEDWATCH.REPLACES>`: the FITID of the pending transaction this posted one replaces,
    /// because banks post a pending transaction under a new FITID.
    pub replaces_fitid: Option<String>,
}

/// One statement transaction (`STMTTRNRS` or `CCSTMTTRNRS`). When the bank
/// refused the statement, `status` says why and `account` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub kind: StatementKind,
    pub trnuid: Option<String>,
    pub status: Option<Status>,
    pub currency: Option<String>,
    pub account: Option<Account>,
    pub start: Option<OfxDateTime>,
    pub end: Option<OfxDateTime>,
    pub transactions: Vec<Transaction>,
    pub ledger_balance: Option<Balance>,
    pub available_balance: Option<Balance>,
}

impl Statement {
    /// A statement-level failure with no statement body.
    pub fn failed(kind: StatementKind, trnuid: impl Into<String>, status: Status) -> Self {
        Self {
            kind,
            trnuid: Some(trnuid.into()),
            status: Some(status),
            currency: None,
            account: None,
            start: None,
            end: None,
            transactions: Vec::new(),
            ledger_balance: None,
            available_balance: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountListResponse {
    pub trnuid: Option<String>,
    pub status: Option<Status>,
    pub updated: Option<OfxDateTime>,
    pub accounts: Vec<AccountInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountInfo {
    pub description: Option<String>,
    pub phone: Option<String>,
    pub account: Account,
    /// ACTIVE, PEND or AVAIL.
    pub service_status: Option<String>,
}
