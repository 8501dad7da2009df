//! The OFX Direct Connect client: the protocol QuickBooks and Quicken use to talk to banks.
//!
//! A fetch asks for the account list (ACCTINFORQ) and, in the same POST, the statement of every
//! account the caller already knows (OFX lets one request carry several message sets). Only
//! accounts the list names that were not asked for yet need a second POST, so a refresh of a
//! connection whose accounts have not changed is one round trip to the bank and a first refresh
//! two. The list alone decides which accounts exist: a known account it no longer names is left
//! out, whatever its statement said. Every way an exchange can fail becomes a classified
//! [`ProviderError`]; nothing is retried here, the job queue owns retries.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::redirect::Policy;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::classify::{Classifier, Transport};
use super::{
    AccountFeed, AccountKind, Balance, CLIENT_UID, FeedAccount, FeedData, FeedProvider, FeedTransaction, FetchRequest,
    Fetched, ProviderError,
};
use crate::catalog::CatalogHandle;
use crate::ofx::{
    self, Account, AccountInfo, OfxDocument, OfxRequest, ParseOptions, Password, RequestMessage, SignonRequest,
    Statement, Status,
};
use crate::telemetry::trace;

/// How much history a first fetch asks for when the caller gives no `since`.
const DEFAULT_HISTORY: TimeDelta = TimeDelta::days(90);

/// Limits of the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectConnectOptions {
    pub connect_timeout: Duration,
    /// Whole exchange, body included.
    pub timeout: Duration,
    /// Larger bodies are cut off and classified, never buffered.
    pub max_response_bytes: usize,
    pub user_agent: String,
}

impl Default for DirectConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_response_bytes: 16 * 1024 * 1024,
            user_agent: format!("feedwatch/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A Direct Connect client; cheap to clone (the connection pool is shared). Its failures are
/// classified by the live catalogue (`classify`).
#[derive(Debug, Clone)]
pub struct DirectConnect {
    client: reqwest::Client,
    options: DirectConnectOptions,
    catalog: CatalogHandle,
}

impl DirectConnect {
    pub fn new(options: DirectConnectOptions, catalog: CatalogHandle) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .redirect(Policy::none())
            .user_agent(options.user_agent.clone())
            .build()?;
        Ok(Self { client, options, catalog })
    }
}

impl FeedProvider for DirectConnect {
    async fn fetch(&self, request: &FetchRequest<'_>) -> Result<FeedData, ProviderError> {
        Ok(self.fetch_with_references(request).await?.data)
    }

    async fn fetch_with_references(&self, request: &FetchRequest<'_>) -> Result<Fetched, ProviderError> {
        let catalog = self.catalog.current();
        let classify = Classifier::new(&catalog);
        let known = known_accounts(request.known_accounts);
        let (listed, mut statements) = self.account_list(request, &known, classify).await?;
        let unasked: Vec<(AccountInfo, String)> = listed
            .iter()
            .filter(|(info, _)| !known.iter().any(|(account, _)| *account == info.account))
            .cloned()
            .collect();
        if !unasked.is_empty() {
            statements.extend(self.statements(request, &unasked, classify).await?);
        }
        let accounts = listed.iter().map(|(info, trnuid)| account_feed(info, trnuid, &statements, classify)).collect();
        let references = listed.iter().map(|(info, _)| serde_json::to_value(&info.account).ok()).collect();
        Ok(Fetched { data: FeedData { accounts }, references })
    }
}

/// The caller's references that are OFX accounts, each with the TRNUID of its statement request.
/// One that does not read (another provider's, or an older shape) only costs a second exchange.
fn known_accounts(references: &[serde_json::Value]) -> Vec<(Account, String)> {
    let mut known: Vec<(Account, String)> = Vec::new();
    for account in references.iter().filter_map(|reference| Account::deserialize(reference).ok()) {
        if !known.iter().any(|(seen, _)| *seen == account) {
            known.push((account, new_trnuid()));
        }
    }
    known
}

impl DirectConnect {
    /// One exchange: the account list, and the statements of the `known` accounts. Returns the
    /// listed accounts, each with the TRNUID of its statement request (the one already sent for
    /// a known account, a fresh one otherwise), and the statements that came along.
    async fn account_list(
        &self,
        request: &FetchRequest<'_>,
        known: &[(Account, String)],
        classify: Classifier<'_>,
    ) -> Result<(Vec<(AccountInfo, String)>, Vec<Statement>), ProviderError> {
        let since = request.now.fixed_offset() - DEFAULT_HISTORY;
        let start = statement_start(request);
        let mut messages = vec![RequestMessage::AccountList { trnuid: new_trnuid(), since }];
        messages
            .extend(known.iter().map(|(account, trnuid)| RequestMessage::statement(account, trnuid.clone(), start)));
        let document = self.exchange(request, messages, classify).await?;
        let list = document.account_list.ok_or_else(|| missing(classify, "an account list"))?;
        if let Some(status) = list.status.as_ref().filter(|status| fails(status, classify)) {
            return Err(classify.ofx_status(status.code, status.message.as_deref()));
        }
        if list.accounts.is_empty() {
            return Err(classify.no_accounts());
        }
        let trnuid_for = |info: &AccountInfo| {
            known
                .iter()
                .find(|(account, _)| *account == info.account)
                .map_or_else(new_trnuid, |(_, trnuid)| trnuid.clone())
        };
        let listed = list.accounts.into_iter().map(|info| {
            let trnuid = trnuid_for(&info);
            (info, trnuid)
        });
        Ok((listed.collect(), document.statements))
    }

    async fn statements(
        &self,
        request: &FetchRequest<'_>,
        listed: &[(AccountInfo, String)],
        classify: Classifier<'_>,
    ) -> Result<Vec<Statement>, ProviderError> {
        let start = statement_start(request);
        let messages = listed
            .iter()
            .map(|(info, trnuid)| RequestMessage::statement(&info.account, trnuid.clone(), start))
            .collect();
        Ok(self.exchange(request, messages, classify).await?.statements)
    }

    /// One POST: writes the request, reads and parses the reply, and checks the sign-on.
    async fn exchange(
        &self,
        request: &FetchRequest<'_>,
        messages: Vec<RequestMessage>,
        classify: Classifier<'_>,
    ) -> Result<OfxDocument, ProviderError> {
        let body = ofx::write_request(&ofx_request(request, messages));
        let (bytes, content_type) = self.post(&request.institution.url, body, request.now, classify).await?;
        let document = parse_reply(&bytes, &content_type, classify)?;
        let signon = document.signon.as_ref().ok_or_else(|| missing(classify, "a sign-on response"))?;
        if fails(&signon.status, classify) {
            return Err(classify.ofx_status(signon.status.code, signon.status.message.as_deref()));
        }
        Ok(document)
    }

    async fn post(
        &self,
        url: &str,
        body: String,
        now: DateTime<Utc>,
        classify: Classifier<'_>,
    ) -> Result<(Vec<u8>, String), ProviderError> {
        let mut request = self.client.post(url).header(CONTENT_TYPE, "application/x-ofx");
        // The refresh's trace continues at the bank, for a bank (or proxy) that reads it.
        if let Some(traceparent) = trace::outbound_header() {
            request = request.header(trace::HEADER, traceparent);
        }
        let response = request.body(body).send().await.map_err(|error| send_error(&error, classify))?;
        let status = response.status();
        if !status.is_success() {
            return Err(classify.http_status(status.as_u16(), retry_after(response.headers(), now)));
        }
        let content_type = header_text(response.headers(), CONTENT_TYPE);
        let bytes = read_limited(response, self.options.max_response_bytes, classify).await?;
        Ok((bytes, content_type))
    }
}

fn ofx_request(request: &FetchRequest<'_>, messages: Vec<RequestMessage>) -> OfxRequest {
    let institution = request.institution;
    let credentials = request.credentials;
    OfxRequest {
        version: institution.version,
        client_date: request.now.fixed_offset(),
        signon: SignonRequest {
            user_id: credentials.user_id.clone(),
            password: Password::new(credentials.password.expose_secret()),
            language: "ENG".to_owned(),
            org: institution.org.clone(),
            fid: institution.fid.clone(),
            app_id: institution.app_id.clone(),
            app_ver: institution.app_ver.clone(),
            client_uid: credentials.extra.get(CLIENT_UID).map(|uid| uid.expose_secret().to_owned()),
        },
        messages,
    }
}

fn statement_start(request: &FetchRequest<'_>) -> ofx::OfxDateTime {
    request.since.unwrap_or(request.now - DEFAULT_HISTORY).fixed_offset()
}

/// Servers reject a reused TRNUID (OFX 2019), so every message gets a fresh one.
fn new_trnuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A STATUS the client must treat as failure: severity ERROR, or a code that blocks the
/// connection even when sent as INFO (15000, 13000).
fn fails(status: &Status, classify: Classifier<'_>) -> bool {
    !status.is_success() || classify.ofx_code_fails(status.code)
}

fn missing(classify: Classifier<'_>, what: &str) -> ProviderError {
    classify.transport(Transport::Malformed, format!("the bank's OFX reply lacks {what}"))
}

/// reqwest's own messages name the URL, which may carry a token; ours never do.
fn send_error(error: &reqwest::Error, classify: Classifier<'_>) -> ProviderError {
    if error.is_timeout() {
        classify.transport(Transport::Timeout, "the bank's OFX server did not answer in time")
    } else if is_tls(error) {
        classify.transport(Transport::Tls, "the secure connection to the bank's OFX server failed")
    } else if error.is_connect() {
        classify.transport(Transport::Connect, "could not connect to the bank's OFX server")
    } else {
        classify.transport(Transport::Reset, "the bank's OFX server closed the connection before answering")
    }
}

/// rustls errors travel wrapped in `io::Error`s (sometimes one inside another), whose
/// `source()` skips the wrapped error, so io errors are opened by hand.
fn is_tls(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<rustls::Error>() {
            return true;
        }
        cause = match current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    false
}

/// Retry-After as seconds or an HTTP date, relative to the caller's clock. Webhook deliveries
/// read their receivers' with it too.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> String {
    headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("none").to_owned()
}

/// Streams the body and stops as soon as it passes `limit`, so a hostile or broken server
/// cannot make the worker buffer without end.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    classify: Classifier<'_>,
) -> Result<Vec<u8>, ProviderError> {
    let too_large = || classify.transport(Transport::TooLarge, format!("the bank's OFX reply is over {limit} bytes"));
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| body_error(&error, classify))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn body_error(error: &reqwest::Error, classify: Classifier<'_>) -> ProviderError {
    if error.is_timeout() {
        return classify.transport(Transport::Timeout, "the bank's OFX reply did not finish in time");
    }
    classify.transport(Transport::Truncated, "the bank's OFX reply stopped before its end")
}

fn parse_reply(bytes: &[u8], content_type: &str, classify: Classifier<'_>) -> Result<OfxDocument, ProviderError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(classify.transport(Transport::Empty, "the bank's OFX server sent an empty reply"));
    }
    let options = ParseOptions { max_bytes: usize::MAX, ..ParseOptions::default() };
    ofx::parse(bytes, &options).map_err(|error| {
        let message = format!("the bank's reply (content type {content_type}) is not OFX: {error}");
        classify.transport(Transport::Malformed, message)
    })
}

fn account_feed(info: &AccountInfo, trnuid: &str, statements: &[Statement], classify: Classifier<'_>) -> AccountFeed {
    let account = feed_account(info, None);
    let statement = statements
        .iter()
        .find(|statement| statement.trnuid.as_deref() == Some(trnuid))
        .or_else(|| statements.iter().find(|statement| statement.account.as_ref() == Some(&info.account)));
    let Some(statement) = statement else {
        return failed(account, missing(classify, "a statement for this account"));
    };
    if let Some(status) = statement.status.as_ref().filter(|status| fails(status, classify)) {
        return failed(account, classify.ofx_status(status.code, status.message.as_deref()));
    }
    let currency = statement.currency.as_deref();
    AccountFeed {
        account: feed_account(info, Some(statement)),
        transactions: statement.transactions.iter().map(|trn| feed_transaction(trn, currency)).collect(),
        error: None,
    }
}

fn failed(account: FeedAccount, error: ProviderError) -> AccountFeed {
    AccountFeed { account, transactions: Vec::new(), error: Some(error) }
}

fn feed_account(info: &AccountInfo, statement: Option<&Statement>) -> FeedAccount {
    let id = info.account.account_id().to_owned();
    let kind = account_kind(&info.account);
    let masked_number = mask(&id);
    let balance = |value: Option<&ofx::Balance>| {
        value.map(|balance| Balance { amount: balance.amount, as_of: balance.as_of.with_timezone(&Utc) })
    };
    FeedAccount {
        name: info.description.clone().unwrap_or_else(|| format!("{} {masked_number}", kind.as_str())),
        description: info.description.clone(),
        currency: statement.and_then(|s| s.currency.clone()),
        ledger_balance: balance(statement.and_then(|s| s.ledger_balance.as_ref())),
        available_balance: balance(statement.and_then(|s| s.available_balance.as_ref())),
        id,
        kind,
        masked_number,
    }
}

fn account_kind(account: &Account) -> AccountKind {
    let Account::Bank(bank) = account else {
        return AccountKind::CreditCard;
    };
    match bank.account_type.to_ascii_uppercase().as_str() {
        "CHECKING" => AccountKind::Checking,
        "SAVINGS" => AccountKind::Savings,
        "MONEYMRKT" => AccountKind::MoneyMarket,
        "CREDITLINE" => AccountKind::CreditLine,
        "CD" => AccountKind::CertificateOfDeposit,
        _ => AccountKind::Other,
    }
}

/// The last four characters behind a fixed mask, so the length of the number leaks nothing.
fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let last: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("****{last}")
}

fn feed_transaction(trn: &ofx::Transaction, statement_currency: Option<&str>) -> FeedTransaction {
    FeedTransaction {
        fitid: trn.fitid.clone(),
        posted: trn.posted.with_timezone(&Utc),
        amount: trn.amount,
        name: trn.name.clone().or_else(|| trn.payee_name.clone()),
        memo: trn.memo.clone(),
        check_number: trn.check_number.clone(),
        currency: trn.currency.as_ref().map(|c| c.symbol.clone()).or_else(|| statement_currency.map(str::to_owned)),
        pending: trn.pending,
        replaces_fitid: trn.replaces_fitid.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn masks_keep_only_the_last_four() {
        assert_eq!(mask("1234567890"), "****7890");
        assert_eq!(mask("12"), "****12");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(RETRY_AFTER, "Sun, 01 Mar 2026 10:05:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(300)));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn blank_and_non_ofx_bodies_are_classified() {
        let catalog = crate::catalog::shipped_index().unwrap();
        let classify = Classifier::new(&catalog);
        assert_eq!(parse_reply(b" \r\n", "application/x-ofx", classify).unwrap_err().raw, "http:empty");
        let html = parse_reply(b"<html><body>Sign in</body></html>", "text/html", classify).unwrap_err();
        assert_eq!((html.code, html.raw.as_str()), (crate::catalog::Code::new(713), "http:malformed"));
        assert!(html.message.contains("text/html"), "{}", html.message);
    }
}
