//! Where accounts and transactions come from, and how a provider's failures become canonical
//! catalogue codes.
//!
//! A provider answers one question: "what does the bank say about this connection since
//! then?". It either returns the data or one classified [`ProviderError`]; a failure that hits
//! only some accounts (OFX statement 2003 on one of three) rides on that account instead.

pub mod classify;
pub mod direct_connect;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use secrecy::SecretString;

use crate::catalog::Code;
use crate::ofx::OfxVersion;

pub use direct_connect::{DirectConnect, DirectConnectOptions};

/// A source of bank-feed data. Static dispatch: the worker is generic over its provider.
pub trait FeedProvider {
    /// Fetches every account the credentials reach, with transactions posted since
    /// `request.since`.
    fn fetch(&self, request: &FetchRequest<'_>) -> impl Future<Output = Result<FeedData, ProviderError>> + Send;

    /// [`fetch`](Self::fetch), plus how to address each account in a later request
    /// ([`FetchRequest::known_accounts`]), so a provider able to ask for known accounts along
    /// with the account list saves a round trip to the bank. The default addresses none: every
    /// fetch then discovers the accounts anew.
    fn fetch_with_references(
        &self,
        request: &FetchRequest<'_>,
    ) -> impl Future<Output = Result<Fetched, ProviderError>> + Send
    where
        Self: Sync,
    {
        async move {
            let data = self.fetch(request).await?;
            Ok(Fetched { references: vec![None; data.accounts.len()], data })
        }
    }
}

/// Everything one fetch needs. `now` is the caller's clock, so tests can drive time.
#[derive(Debug, Clone, Copy)]
pub struct FetchRequest<'a> {
    pub institution: &'a DirectConnectSettings,
    pub credentials: &'a Credentials,
    /// Transactions posted from here on; `None` asks for the provider's default history.
    pub since: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The accounts the bank listed last time, as [`Fetched::references`] addressed them. Only
    /// a hint: the bank's account list still decides which accounts exist.
    pub known_accounts: &'a [serde_json::Value],
}

/// A fetch's data with each account's address for the next fetch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fetched {
    pub data: FeedData,
    /// One per `data.accounts`, in the same order; opaque to everyone but the provider.
    pub references: Vec<Option<serde_json::Value>>,
}

/// How to reach an institution's OFX Direct Connect server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectConnectSettings {
    pub url: String,
    pub org: Option<String>,
    pub fid: Option<String>,
    /// Many banks only answer clients they know, so these imitate one (e.g. `QWIN` / `2700`).
    pub app_id: String,
    pub app_ver: String,
    /// 102 or 103 (SGML) or 220 (XML), whichever the institution accepts.
    pub version: OfxVersion,
}

/// A user's sign-in at the bank. Debug output shows the user id only.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: String,
    pub password: SecretString,
    /// Institution-specific fields; [`CLIENT_UID`] is the one Direct Connect understands.
    pub extra: BTreeMap<String, SecretString>,
}

/// The `extra` credential field holding a CLIENTUID the bank has registered (OFX 15510).
pub const CLIENT_UID: &str = "client_uid";

impl Credentials {
    pub fn new(user_id: impl Into<String>, password: impl Into<String>) -> Self {
        Self { user_id: user_id.into(), password: SecretString::from(password.into()), extra: BTreeMap::new() }
    }
}

/// What a successful fetch returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedData {
    pub accounts: Vec<AccountFeed>,
}

/// One account: its details, its transactions, or why the bank refused its statement.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFeed {
    pub account: FeedAccount,
    pub transactions: Vec<FeedTransaction>,
    /// Set when this account failed while others succeeded; `transactions` is then empty.
    pub error: Option<ProviderError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeedAccount {
    /// The bank's account number: the identity the bank uses in every statement.
    pub id: String,
    pub kind: AccountKind,
    /// For lists: the bank's description, or the kind and masked number.
    pub name: String,
    pub description: Option<String>,
    /// The last four characters, for display; the full id never needs to be shown.
    pub masked_number: String,
    pub currency: Option<String>,
    pub ledger_balance: Option<Balance>,
    pub available_balance: Option<Balance>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Checking,
    Savings,
    MoneyMarket,
    CreditLine,
    CertificateOfDeposit,
    CreditCard,
    Other,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checking => "checking",
            Self::Savings => "savings",
            Self::MoneyMarket => "money_market",
            Self::CreditLine => "credit_line",
            Self::CertificateOfDeposit => "certificate_of_deposit",
            Self::CreditCard => "credit_card",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub amount: Decimal,
    pub as_of: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedTransaction {
    /// The bank's id for this transaction; upserts key on it.
    pub fitid: String,
    pub posted: DateTime<Utc>,
    /// Negative for money leaving the account.
    pub amount: Decimal,
    /// The payee as the bank names it (`NAME`, or `PAYEE/NAME`).
    pub name: Option<String>,
    pub memo: Option<String>,
    pub check_number: Option<String>,
    pub currency: Option<String>,
    pub pending: bool,
    /// The pending transaction this posted one replaces (banks post under a new FITID).
    pub replaces_fitid: Option<String>,
}

/// A classified failure. `message` is safe to log and show to support: it never carries
/// credentials, and quotes the bank only where the bank's words help. Whether retrying can help
/// is not said here: the live catalogue's entry for `code` says it (see `refresh::retry`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{raw} (catalogue {code}): {message}")]
pub struct ProviderError {
    /// The canonical catalogue code.
    pub code: Code,
    /// The provider's own code as `namespace:code` (`ofx:15500`, `http:503`, `http:timeout`),
    /// resolvable through the catalogue's aliases.
    pub raw: String,
    pub message: String,
    /// When the bank said to come back (`Retry-After`), if it did.
    pub retry_after: Option<Duration>,
}
