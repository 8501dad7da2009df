//! Raw provider failures to canonical catalogue codes.
//!
//! The tables here mirror `catalog/aliases/ofx.toml` and `catalog/aliases/http.toml`; a test
//! checks that every raw code produced here resolves through the shipped catalogue to the same
//! canonical entry. Classification stops at the code: whether to retry and who acts are read
//! from the live catalogue by whoever handles the failure, so an admin's edit counts at once.

use std::time::Duration;

use super::ProviderError;
use crate::catalog::Code;

/// OFX STATUS codes and their canonical entries (`ofx:<code>` aliases).
const OFX_STATUS: &[(u32, u32)] = &[
    (2000, 102),
    (2001, 324),
    (2002, 324),
    (2003, 324),
    (2004, 708),
    (2005, 709),
    (2019, 705),
    (2020, 705),
    (2021, 720),
    (2027, 720),
    (2028, 720),
    (3000, 185),
    (3001, 187),
    (6500, 720),
    (6501, 720),
    (6502, 720),
    (13000, 108),
    (13500, 709),
    (13504, 720),
    (15000, 108),
    (15500, 103),
    (15501, 715),
    (15502, 701),
    (15503, 720),
    (15505, 720),
    (15506, 720),
    (15507, 108),
    (15508, 709),
    (15510, 711),
    (15511, 108),
    (15512, 185),
    (15513, 187),
    (16500, 720),
    (16501, 720),
    (16502, 720),
    (16503, 720),
];

/// `ofx:no_accounts`: not an OFX STATUS but our name for a sign-on that lists no accounts.
const NO_ACCOUNTS: (&str, u32) = ("no_accounts", 714);

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

    fn alias(self) -> (&'static str, u32) {
        match self {
            Self::Timeout => ("timeout", 712),
            Self::Connect => ("connect", 102),
            Self::Reset => ("reset", 102),
            Self::Tls => ("tls", 718),
            Self::Malformed => ("malformed", 713),
            Self::Empty => ("empty", 713),
            Self::TooLarge => ("too_large", 713),
            Self::Truncated => ("truncated", 713),
            Self::Redirect => ("redirect", 720),
        }
    }
}

/// A failure of the HTTP exchange; `message` must already be free of credentials.
pub fn transport(kind: Transport, message: impl Into<String>) -> ProviderError {
    let (code, canonical) = kind.alias();
    error(canonical, format!("http:{code}"), message.into(), None)
}

/// A non-2xx HTTP status. `retry_after` is the server's Retry-After, already resolved.
pub fn http_status(status: u16, retry_after: Option<Duration>) -> ProviderError {
    let message = format!("the bank's OFX server answered HTTP {status}");
    let (raw, canonical) = http_alias(status, retry_after.is_some());
    if raw == "redirect" {
        return transport(Transport::Redirect, format!("{message}, a redirect we do not follow"));
    }
    error(canonical, format!("http:{raw}"), message, retry_after)
}

/// The alias a status resolves through. Statuses the catalogue does not list one by one fall
/// into their class (`4xx`, `5xx`).
fn http_alias(status: u16, has_retry_after: bool) -> (String, u32) {
    match status {
        // A 503 that says when to come back is how servers announce planned maintenance.
        503 if has_retry_after => ("maintenance".to_owned(), 707),
        429 => ("429".to_owned(), 706),
        500 | 502 | 503 | 504 => (status.to_string(), 102),
        401 | 403 | 404 => (status.to_string(), 720),
        300..=399 => ("redirect".to_owned(), 720),
        500..=599 => ("5xx".to_owned(), 102),
        _ => ("4xx".to_owned(), 720),
    }
}

/// A failing OFX STATUS, at sign-on, on the account list or on one statement.
pub fn ofx_status(code: u32, bank_message: Option<&str>) -> ProviderError {
    // The catalogue's "unclassified" entry stands for OFX codes it does not list.
    let canonical = ofx_canonical(code).unwrap_or(Code::UNCLASSIFIED.get());
    let message = match bank_message {
        Some(text) => format!("the bank answered OFX status {code}: {}", quote(text)),
        None => format!("the bank answered OFX status {code}"),
    };
    error(canonical, format!("ofx:{code}"), message, None)
}

/// Whether an OFX STATUS code means failure whatever its severity: 15000 (change password)
/// and 13000 come as INFO, yet no data follows until the user acts.
pub fn ofx_code_fails(code: u32) -> bool {
    ofx_canonical(code).is_some()
}

fn ofx_canonical(code: u32) -> Option<u32> {
    OFX_STATUS.iter().find(|(ofx, _)| *ofx == code).map(|(_, canonical)| *canonical)
}

/// A sign-on that succeeded and listed no account: the bank may have dropped Direct Connect.
pub fn no_accounts() -> ProviderError {
    let (code, canonical) = NO_ACCOUNTS;
    error(canonical, format!("ofx:{code}"), "the bank signed us on but listed no accounts".to_owned(), None)
}

fn error(code: u32, raw: String, message: String, retry_after: Option<Duration>) -> ProviderError {
    ProviderError { code: Code::new(code), raw, message, retry_after }
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
    use crate::catalog::{Catalog, Code};

    /// Every raw code this module can produce, with the canonical code it produced.
    fn produced() -> Vec<ProviderError> {
        let mut all: Vec<ProviderError> = OFX_STATUS.iter().map(|(code, _)| ofx_status(*code, None)).collect();
        all.push(no_accounts());
        all.extend(Transport::ALL.iter().map(|kind| transport(*kind, "test")));
        for status in [300, 301, 302, 307, 308, 400, 401, 403, 404, 405, 410, 418, 429, 500, 501, 502, 503, 504, 599] {
            all.push(http_status(status, None));
            all.push(http_status(status, Some(Duration::from_secs(60))));
        }
        all
    }

    #[test]
    fn every_raw_code_resolves_to_the_same_canonical_entry_in_the_catalogue() {
        let catalog = Catalog::shipped().unwrap();
        for produced in produced() {
            let (namespace, code) = produced.raw.split_once(':').unwrap();
            let alias = catalog
                .aliases
                .iter()
                .find(|a| a.namespace == namespace && a.alias.code.eq_ignore_ascii_case(code))
                .unwrap_or_else(|| panic!("{} has no alias in catalog/aliases/{namespace}.toml", produced.raw));
            assert_eq!(alias.alias.canonical, produced.code, "{}", produced.raw);
            assert!(catalog.entries.contains_key(&produced.code), "{} has no entry", produced.code);
        }
    }

    #[test]
    fn codes_the_catalogue_does_not_list_are_unclassified_and_resolve_to_nothing() {
        let catalog = Catalog::shipped().unwrap();
        let unknown = ofx_status(9999, Some("Something odd"));
        assert_eq!((unknown.code, unknown.raw.as_str()), (Code::UNCLASSIFIED, "ofx:9999"));
        assert!(catalog.entries[&Code::UNCLASSIFIED].retryable);
        assert!(!catalog.aliases.iter().any(|a| a.namespace == "ofx" && a.alias.code == "9999"));
        assert!(!ofx_code_fails(0) && !ofx_code_fails(1) && ofx_code_fails(15000));
    }

    #[test]
    fn a_503_with_retry_after_is_maintenance_and_keeps_the_delay() {
        let maintenance = http_status(503, Some(Duration::from_secs(90)));
        assert_eq!((maintenance.code, maintenance.retry_after), (Code::new(707), Some(Duration::from_secs(90))));
        assert_eq!(http_status(503, None).code, Code::new(102));
        assert_eq!((http_status(429, None).code, http_status(429, None).retry_after), (Code::new(706), None));
        assert_eq!(http_status(404, Some(Duration::from_secs(5))).code, Code::new(720));
        let redirect = http_status(302, None);
        assert_eq!((redirect.code, redirect.raw.as_str()), (Code::new(720), "http:redirect"));
    }

    #[test]
    fn bank_messages_are_quoted_short() {
        let long = "x".repeat(1000);
        assert!(ofx_status(2000, Some(&long)).message.chars().count() < 260);
    }
}
