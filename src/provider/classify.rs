//! Raw provider failures, named as the catalogue's aliases name them (`ofx:15500`, `http:503`,
//! `http:timeout`), and what each means, asked of the live catalogue.
//!
//! This module owns only the names: which raw code a transport failure, an HTTP status or an OFX
//! STATUS becomes. What a raw code means (its canonical entry, whether retrying helps, who acts)
//! is written once, in `catalog/aliases/` and the entries, and read here and by whoever handles
//! the failure from the same live catalogue. A raw code the catalogue does not list is
//! unclassified (799).

use std::time::Duration;

use super::ProviderError;
use crate::catalog::{CatalogIndex, Code};

/// `ofx:no_accounts`: not an OFX STATUS but our name for a sign-on that lists no accounts.
const NO_ACCOUNTS: &str = "no_accounts";

/// Failures of the HTTP exchange itself, before any OFX could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No answer within the client's timeout.
    Timeout,
    /// The connection could not be opened (refused, unreachable, DNS).
    Connect,
    /// The connection broke after it opened.
    Reset,
    /// The TLS handshake or the bank's certificate failed.
    Tls,
    /// A body that is not OFX, or OFX missing what a reply must have.
    Malformed,
    /// A success status with an empty body.
    Empty,
    /// A body over the client's size limit.
    TooLarge,
    /// The body stopped before its declared end.
    Truncated,
    /// A 3xx: OFX servers should not redirect, and following one could leak credentials.
    Redirect,
}

impl Transport {
    #[cfg(test)]
    const ALL: [Self; 9] = [
        Self::Timeout,
        Self::Connect,
        Self::Reset,
        Self::Tls,
        Self::Malformed,
        Self::Empty,
        Self::TooLarge,
        Self::Truncated,
        Self::Redirect,
    ];

    fn raw(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Reset => "reset",
            Self::Tls => "tls",
            Self::Malformed => "malformed",
            Self::Empty => "empty",
            Self::TooLarge => "too_large",
            Self::Truncated => "truncated",
            Self::Redirect => "redirect",
        }
    }
}

/// Classifies against one catalogue index: a fetch takes the index current when it starts.
#[derive(Debug, Clone, Copy)]
pub struct Classifier<'c> {
    catalog: &'c CatalogIndex,
}

impl<'c> Classifier<'c> {
    pub fn new(catalog: &'c CatalogIndex) -> Self {
        Self { catalog }
    }

    /// A failure of the HTTP exchange; `message` must already be free of credentials.
    pub fn transport(self, kind: Transport, message: impl Into<String>) -> ProviderError {
        self.error("http", kind.raw(), message.into(), None)
    }

    /// A non-2xx HTTP status. `retry_after` is the server's Retry-After, already resolved.
    pub fn http_status(self, status: u16, retry_after: Option<Duration>) -> ProviderError {
        let message = format!("the bank's OFX server answered HTTP {status}");
        if (300..400).contains(&status) {
            return self.transport(Transport::Redirect, format!("{message}, a redirect we do not follow"));
        }
        // A 503 that says when to come back is how servers announce planned maintenance.
        let raw = if status == 503 && retry_after.is_some() {
            "maintenance".to_owned()
        } else {
            self.listed_status_or_class(status)
        };
        self.error("http", &raw, message, retry_after)
    }

    /// The status itself when the catalogue lists it, its class (`4xx`, `5xx`) otherwise.
    fn listed_status_or_class(self, status: u16) -> String {
        let exact = status.to_string();
        if self.catalog.meaning_of("http", &exact).is_some() {
            return exact;
        }
        if (500..600).contains(&status) { "5xx" } else { "4xx" }.to_owned()
    }

    /// A failing OFX STATUS, at sign-on, on the account list or on one statement.
    pub fn ofx_status(self, code: u32, bank_message: Option<&str>) -> ProviderError {
        let message = match bank_message {
            Some(text) => format!("the bank answered OFX status {code}: {}", quote(text)),
            None => format!("the bank answered OFX status {code}"),
        };
        self.error("ofx", &code.to_string(), message, None)
    }

    /// Whether an OFX STATUS code means failure whatever its severity: 15000 (change password)
    /// and 13000 come as INFO, yet no data follows until the user acts. Any code the catalogue
    /// gives a failure's meaning counts, so a code added there is honoured here without a change;
    /// one it lists only as unclassified (OFX 13505, 15514-15516: no specification we could read
    /// defines them) does not overrule a bank that calls it information.
    pub fn ofx_code_fails(self, code: u32) -> bool {
        self.failure_meaning("ofx", &code.to_string()).is_some_and(|meaning| meaning != Code::UNCLASSIFIED)
    }

    /// A sign-on that succeeded and listed no account: the bank may have dropped Direct Connect.
    pub fn no_accounts(self) -> ProviderError {
        self.error("ofx", NO_ACCOUNTS, "the bank signed us on but listed no accounts".to_owned(), None)
    }

    fn error(self, namespace: &str, code: &str, message: String, retry_after: Option<Duration>) -> ProviderError {
        // The catalogue's "unclassified" entry stands for codes it does not list.
        let canonical = self.failure_meaning(namespace, code).unwrap_or(Code::UNCLASSIFIED);
        ProviderError { code: canonical, raw: format!("{namespace}:{code}"), message, retry_after }
    }

    /// The entry a raw code resolves to, when that entry is a failure: a bank that calls a code
    /// the catalogue files as "connected" or "still connecting" an error is not understood.
    fn failure_meaning(self, namespace: &str, code: &str) -> Option<Code> {
        let stored = self.catalog.meaning_of(namespace, code)?;
        stored.entry.category.is_failure().then_some(stored.entry.code)
    }
}

/// Bank messages are shown to support; a hostile server must not flood logs with them.
fn quote(text: &str) -> String {
    const LIMIT: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::catalog::{Catalog, shipped_index};

    fn shipped() -> CatalogIndex {
        shipped_index().unwrap()
    }

    #[test]
    fn every_name_the_client_gives_a_transport_failure_is_listed_in_the_catalogue() {
        let catalog = shipped();
        let classify = Classifier::new(&catalog);
        let mut produced: Vec<ProviderError> =
            Transport::ALL.iter().map(|kind| classify.transport(*kind, "test")).collect();
        produced.push(classify.no_accounts());
        for error in produced {
            let (namespace, code) = error.raw.split_once(':').unwrap();
            let stored = catalog.meaning_of(namespace, code);
            assert!(stored.is_some(), "{} has no alias in catalog/aliases/{namespace}.toml", error.raw);
            assert_eq!(Some(error.code), stored.map(|s| s.entry.code), "{}", error.raw);
        }
    }

    #[test]
    fn every_ofx_status_the_catalogue_lists_means_what_its_alias_says() {
        let catalog = shipped();
        let classify = Classifier::new(&catalog);
        let listed: Vec<(u32, Code)> = Catalog::shipped()
            .unwrap()
            .aliases
            .iter()
            .filter(|alias| alias.namespace == "ofx")
            .filter_map(|alias| Some((alias.alias.code.parse().ok()?, alias.alias.canonical)))
            .collect();
        assert!(listed.len() > 30, "{}", listed.len());
        for (code, canonical) in listed {
            let error = classify.ofx_status(code, None);
            assert_eq!((error.code, error.raw.clone()), (canonical, format!("ofx:{code}")));
            assert_eq!(classify.ofx_code_fails(code), canonical != Code::UNCLASSIFIED, "{code}");
        }
        // Listed only as unclassified: an INFO status with one of these still carries its data.
        assert!(!classify.ofx_code_fails(15514) && classify.ofx_status(15514, None).code == Code::UNCLASSIFIED);
    }

    #[test]
    fn codes_the_catalogue_does_not_list_are_unclassified_and_do_not_fail_an_info_status() {
        let catalog = shipped();
        let classify = Classifier::new(&catalog);
        let unknown = classify.ofx_status(9999, Some("Something odd"));
        assert_eq!((unknown.code, unknown.raw.as_str()), (Code::UNCLASSIFIED, "ofx:9999"));
        assert!(catalog.entry(Code::UNCLASSIFIED).unwrap().entry.retryable);
        assert!(!classify.ofx_code_fails(0) && !classify.ofx_code_fails(1) && !classify.ofx_code_fails(9999));
        assert!(classify.ofx_code_fails(15000) && classify.ofx_code_fails(13000));
    }

    #[test]
    fn an_http_status_is_named_by_itself_when_listed_and_by_its_class_otherwise() {
        let catalog = shipped();
        let classify = Classifier::new(&catalog);
        let named = |status: u16, retry_after: Option<u64>| {
            let error = classify.http_status(status, retry_after.map(Duration::from_secs));
            (error.raw, error.code.get(), error.retry_after.map(|after| after.as_secs()))
        };
        assert_eq!(named(503, Some(90)), ("http:maintenance".into(), 707, Some(90)));
        assert_eq!(named(503, None), ("http:503".into(), 102, None));
        assert_eq!(named(429, None), ("http:429".into(), 706, None));
        assert_eq!(named(404, Some(5)), ("http:404".into(), 720, Some(5)));
        assert_eq!(named(418, None), ("http:4xx".into(), 720, None));
        assert_eq!(named(599, None), ("http:5xx".into(), 102, None));
        assert_eq!(named(302, None), ("http:redirect".into(), 720, None));
    }

    /// The shipped catalogue with `ofx:<code>` pointing at `canonical`.
    fn with_ofx_alias(code: &str, canonical: u32) -> CatalogIndex {
        let mut catalog = Catalog::shipped().unwrap();
        for alias in catalog.aliases.iter_mut().filter(|alias| alias.namespace == "ofx" && alias.alias.code == code) {
            alias.alias.canonical = Code::new(canonical);
        }
        catalog.into_index()
    }

    /// The one owner: an alias moved in the catalogue moves what the client reports, with no
    /// change here.
    #[test]
    fn an_alias_moved_in_the_catalogue_changes_the_classification() {
        let moved = with_ofx_alias("15500", 102);
        assert_eq!(Classifier::new(&shipped()).ofx_status(15500, None).code, Code::new(103));
        assert_eq!(Classifier::new(&moved).ofx_status(15500, None).code, Code::new(102));
    }

    /// A code the catalogue files as a status that means "working" neither fails an INFO
    /// STATUS nor becomes a failure's entry when a bank sends it as an error.
    #[test]
    fn a_code_filed_as_a_working_status_is_no_failure_meaning() {
        let as_status = with_ofx_alias("15500", 600);
        let classify = Classifier::new(&as_status);
        assert!(!classify.ofx_code_fails(15500));
        assert_eq!(classify.ofx_status(15500, None).code, Code::UNCLASSIFIED);
    }

    #[test]
    fn bank_messages_are_quoted_short() {
        let catalog = shipped();
        let long = "x".repeat(1000);
        assert!(Classifier::new(&catalog).ofx_status(2000, Some(&long)).message.chars().count() < 260);
    }
}
