//! ETags and `If-Match`: every resource that guards its writes against lost updates reads the
//! header here, so all of them accept the same forms and refuse the rest in the same words.
//!
//! An ETag names a counter the resource keeps: a connection's version (`"v3"`) or a catalogue
//! entry's revision (`"r3"`). A body a handler sends in a content coding has an ETag of its own,
//! the coding after a dash (`"r3-gzip"`), so no cache takes one representation's validator for
//! the other's; as an `If-Match` it names the same counter, since the client that read either
//! body saw that revision. A malformed `If-Match` is a 400, a missing one where it is required a
//! 428; a well-formed one that names an old counter is the 412 the write finds.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::encoding::Coding;
use super::problem::{ApiError, FieldError};

/// What an ETag counts, which fixes its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A resource's version: `"v3"`.
    Version,
    /// A catalogue entry's revision: `"r3"`.
    Revision,
}

impl Counter {
    fn prefix(self) -> char {
        match self {
            Counter::Version => 'v',
            Counter::Revision => 'r',
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Counter::Version => "version",
            Counter::Revision => "revision",
        }
    }
}

/// The ETag of a resource at `value`.
pub fn etag(counter: Counter, value: i32) -> HeaderValue {
    coded_etag(counter, value, Coding::Identity)
}

/// The ETag of a resource at `value` sent in `coding`.
pub fn coded_etag(counter: Counter, value: i32, coding: Coding) -> HeaderValue {
    let fallback = match counter {
        Counter::Version => "\"v0\"",
        Counter::Revision => "\"r0\"",
    };
    let tag = match coding.token() {
        Some(token) => format!("\"{}{value}-{token}\"", counter.prefix()),
        None => format!("\"{}{value}\"", counter.prefix()),
    };
    HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static(fallback))
}

/// What an `If-Match` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: whatever is current.
    Any,
    /// This version (or revision) and no other.
    Exactly(i32),
}

impl IfMatch {
    /// The counter a conditional write expects: the one named, or for `*` the current one.
    pub fn version_or(self, current: i32) -> i32 {
        self.named().unwrap_or(current)
    }

    /// The counter named; none for `*`.
    pub fn named(self) -> Option<i32> {
        match self {
            IfMatch::Any => None,
            IfMatch::Exactly(value) => Some(value),
        }
    }
}

/// The `If-Match` of a request, if it sent one.
pub fn if_match(headers: &HeaderMap, counter: Counter) -> Result<Option<IfMatch>, ApiError> {
    headers.get(header::IF_MATCH).map(|value| parse(value, counter)).transpose()
}

/// The `If-Match` of a write that must not overwrite a change the caller has not seen: 428
/// without one.
pub fn required_if_match(headers: &HeaderMap, counter: Counter) -> Result<IfMatch, ApiError> {
    if_match(headers, counter)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "if_match_required",
            "Send If-Match with the ETag from your last GET, so you cannot overwrite a change you have not seen.",
        )
    })
}

/// 412: the resource changed since the caller read it.
pub fn failed(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PRECONDITION_FAILED, code, detail)
}

fn parse(value: &HeaderValue, counter: Counter) -> Result<IfMatch, ApiError> {
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(IfMatch::Any);
    }
    let prefix = counter.prefix();
    text.strip_prefix('"')
        .and_then(|rest| rest.strip_prefix(prefix))
        .and_then(|rest| rest.strip_suffix('"'))
        .map(without_coding)
        .filter(|digits| (1..=9).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .map(IfMatch::Exactly)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_header",
                format!("If-Match must be an ETag of this API, such as \"{prefix}3\", or *."),
            )
            .with_errors(vec![FieldError::new("if-match", format!("must be \"{prefix}<{}>\" or *", counter.noun()))])
        })
}

/// `3-gzip` is `3`; a dash before anything but a coding this service produces is left for the
/// digits check to refuse.
fn without_coding(tag: &str) -> &str {
    match tag.split_once('-') {
        Some((counter, token)) if Coding::from_token(token).is_some() => counter,
        _ => tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, HeaderValue::from_str(value).expect("a header value"));
        headers
    }

    #[test]
    fn an_etag_names_its_counter_with_its_prefix() {
        assert_eq!(etag(Counter::Version, 3), "\"v3\"");
        assert_eq!(etag(Counter::Revision, 12), "\"r12\"");
    }

    #[test]
    fn a_coded_representation_has_its_own_etag_naming_the_same_counter() {
        assert_eq!(coded_etag(Counter::Revision, 12, Coding::Gzip), "\"r12-gzip\"");
        assert_eq!(coded_etag(Counter::Revision, 12, Coding::Identity), etag(Counter::Revision, 12));
        let coded = coded_etag(Counter::Revision, 12, Coding::Gzip);
        assert_eq!(
            if_match(&headers(coded.to_str().expect("ASCII")), Counter::Revision).expect("well-formed"),
            Some(IfMatch::Exactly(12))
        );
    }

    #[test]
    fn if_match_reads_the_etag_of_its_counter_or_a_star() {
        assert_eq!(if_match(&headers("\"v7\""), Counter::Version).expect("well-formed"), Some(IfMatch::Exactly(7)));
        assert_eq!(if_match(&headers(" \"r2\" "), Counter::Revision).expect("well-formed"), Some(IfMatch::Exactly(2)));
        assert_eq!(if_match(&headers("*"), Counter::Version).expect("well-formed"), Some(IfMatch::Any));
        assert_eq!(if_match(&HeaderMap::new(), Counter::Version).expect("well-formed"), None);
    }

    #[test]
    fn a_malformed_if_match_is_a_bad_request_naming_the_form() {
        for value in [
            "\"r7\"",
            "v7",
            "\"v\"",
            "\"v1234567890\"",
            "W/\"v1\"",
            "\"v-1\"",
            "\"v1-br\"",
            "\"v1-gzip-gzip\"",
            "\"v-gzip\"",
            "\"v1-GZIP\"",
            "\"v1gzip\"",
        ] {
            let error = if_match(&headers(value), Counter::Version).expect_err("malformed");
            assert_eq!((error.status(), error.code()), (StatusCode::BAD_REQUEST, "invalid_header"), "{value}");
        }
    }

    #[test]
    fn a_required_if_match_that_is_missing_is_a_428() {
        let error = required_if_match(&HeaderMap::new(), Counter::Version).expect_err("malformed");
        assert_eq!((error.status(), error.code()), (StatusCode::PRECONDITION_REQUIRED, "if_match_required"));
        assert_eq!(IfMatch::Any.version_or(4), 4);
        assert_eq!(IfMatch::Exactly(2).version_or(4), 2);
    }
}
