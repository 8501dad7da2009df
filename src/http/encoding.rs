//! Content codings a handler chooses itself: reading `Accept-Encoding` (RFC 9110 §12.5.3) and
//! marking the answer, so the compression layer leaves it as the handler made it. Routes that do
//! not choose keep the layer's per-response gzip.
//!
//! A handler chooses when it holds a body compressed once (`gzip`) that the layer would otherwise
//! compress again on every request.

pub mod gzip;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Response, header};
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};

/// The codings a handler can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
}

impl Coding {
    /// Its `Content-Encoding` token, which its representations' ETags end with too; identity
    /// has none (RFC 9110 §8.4.1: it is not a coding to send).
    pub fn token(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
        }
    }

    /// The coding `token` names, if this service produces it.
    pub fn from_token(token: &str) -> Option<Self> {
        [Coding::Gzip].into_iter().find(|coding| coding.token() == Some(token))
    }
}

/// The coding `negotiate` picks for the request, as an extractor: it reads the headers in place
/// instead of taking a copy of them all.
#[derive(Debug, Clone, Copy)]
pub struct Accepted(pub Coding);

impl<S: Send + Sync> FromRequestParts<S> for Accepted {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Accepted(negotiate(&parts.headers)))
    }
}

/// Put on a response whose coding a handler chose: `leave_alone` tells the compression layer.
#[derive(Debug, Clone, Copy)]
struct Chosen;

/// Marks `response` as being in `coding`: `Content-Encoding` for gzip, and on every coding
/// `Vary: Accept-Encoding`, since the same URL answers another body to another request.
pub fn mark<B>(coding: Coding, mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(token) = coding.token() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
    }
    response.extensions_mut().insert(Chosen);
    response
}

/// The compression layer's predicate: false for a response `mark` chose the coding of. An
/// identity answer is one the client asked for (or did not refuse in favour of gzip), so the
/// layer must not gzip it behind the handler's back, nor add a second `Vary`.
pub fn leave_alone(
    _status: axum::http::StatusCode,
    _version: axum::http::Version,
    _headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> bool {
    extensions.get::<Chosen>().is_none()
}

/// Bodies this small are sent as they are by the compression layer: under one TCP segment
/// (about 1,400 bytes), gzip saves no packet, only CPU spent on every response (about 20 µs for
/// a 540-byte search answer, bench/README.md, session 15). tower-http's own floor is 32 bytes.
pub const LAYER_MIN_BYTES: u16 = 1024;

/// When the compression layer compresses: tower-http's default rule (not gRPC, images or event
/// streams) with [`LAYER_MIN_BYTES`] as its floor, and never an answer a handler coded itself.
pub fn layer_predicate() -> impl Predicate {
    SizeAbove::new(LAYER_MIN_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
        .and(leave_alone)
}

/// Gives a body the compression layer coded an ETag of its own, as `mark`'s handlers give
/// theirs (`"v3"` sent in gzip is `"v3-gzip"`): a cache must never take one representation's
/// validator for the other's. Runs outside the layer, on every response; a handler's own coded
/// answer already carries its tag.
pub async fn tag_layer_coding<B>(mut response: Response<B>) -> Response<B> {
    if response.extensions().get::<Chosen>().is_some() {
        return response;
    }
    let headers = response.headers();
    let Some(token) = headers.get(header::CONTENT_ENCODING).and_then(|value| value.to_str().ok()) else {
        return response;
    };
    let Some(token) = Coding::from_token(token).and_then(Coding::token) else {
        return response;
    };
    let coded = headers
        .get(header::ETAG)
        .and_then(|value| value.to_str().ok())
        .and_then(|tag| tag.strip_prefix('"')?.strip_suffix('"'))
        .and_then(|opaque| HeaderValue::from_str(&format!("\"{opaque}-{token}\"")).ok());
    if let Some(coded) = coded {
        response.headers_mut().insert(header::ETAG, coded);
    }
    response
}

/// Weights in thousandths, as RFC 9110 §12.4.2 writes them (`q=0.5` is 500).
type Weight = u16;

const FULL: Weight = 1000;

/// What a request's `Accept-Encoding` says of the codings this service has, and of `*`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Preferences {
    gzip: Option<Weight>,
    identity: Option<Weight>,
    any: Option<Weight>,
}

/// The coding to answer with. No header: identity (the client stated no preference, and every
/// client reads identity). Otherwise gzip when it is acceptable (listed, or matched by `*`, with
/// a weight above 0) and weighs at least what identity weighs; identity, unlisted, is acceptable
/// but preferred last. When nothing is acceptable (`*;q=0`), identity too: RFC 9110 §12.1 lets a
/// server disregard the preference instead of answering 406, and HTTP moved away from 406 here
/// because clients handle an unencoded body better than an error.
pub fn negotiate(headers: &HeaderMap) -> Coding {
    let mut fields = headers.get_all(header::ACCEPT_ENCODING).iter().peekable();
    if fields.peek().is_none() {
        return Coding::Identity;
    }
    choose(fields.fold(Preferences::default(), read_field))
}

fn choose(preferences: Preferences) -> Coding {
    let gzip = preferences.gzip.or(preferences.any).unwrap_or(0);
    let identity = preferences.identity.or(preferences.any);
    if gzip == 0 || identity.is_some_and(|identity| identity > gzip) { Coding::Identity } else { Coding::Gzip }
}

/// One field line's elements added to `preferences`. A value that is not visible ASCII names
/// nothing; an element that does not parse is skipped, as if unsent: neither can make the answer
/// gzip, so junk costs the client at most the smaller body. A coding listed twice counts at its
/// lower weight, so a refusal anywhere holds.
fn read_field(mut preferences: Preferences, field: &HeaderValue) -> Preferences {
    let Ok(text) = field.to_str() else { return preferences };
    for (coding, weight) in text.split(',').filter_map(element) {
        let slot = match coding {
            Listed::Gzip => &mut preferences.gzip,
            Listed::Identity => &mut preferences.identity,
            Listed::Any => &mut preferences.any,
            Listed::Other => continue,
        };
        *slot = Some(slot.map_or(weight, |earlier| earlier.min(weight)));
    }
    preferences
}

/// What an element names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    Gzip,
    Identity,
    Any,
    /// A coding this service does not produce (`br`, `zstd`, `deflate`, ...).
    Other,
}

/// `codings [ OWS ";" OWS "q=" qvalue ]`, or none for an empty list element or one that does not
/// parse. Codings are case-insensitive tokens; `x-gzip` is gzip (RFC 9110 §8.4.1.3).
fn element(text: &str) -> Option<(Listed, Weight)> {
    let (coding, weight) = match text.split_once(';') {
        Some((coding, weight)) => (coding, qvalue(weight.trim_matches(is_ows))?),
        None => (text, FULL),
    };
    let coding = coding.trim_matches(is_ows);
    let listed = if coding == "*" {
        Listed::Any
    } else if !coding.is_empty() && coding.bytes().all(is_tchar) {
        match coding.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Listed::Gzip,
            "identity" => Listed::Identity,
            _ => Listed::Other,
        }
    } else {
        return None;
    };
    Some((listed, weight))
}

/// `"q=" ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, the parameter name in any case.
fn qvalue(text: &str) -> Option<Weight> {
    let value = text.strip_prefix("q=").or_else(|| text.strip_prefix("Q="))?;
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |sum, digit| sum * 10 + Weight::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(FULL),
        _ => None,
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiated(fields: &[&[u8]]) -> Coding {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(header::ACCEPT_ENCODING, HeaderValue::from_bytes(field).expect("a header value"));
        }
        negotiate(&headers)
    }

    fn one(field: &str) -> Coding {
        negotiated(&[field.as_bytes()])
    }

    #[test]
    fn browsers_get_gzip() {
        assert_eq!(one("gzip, deflate, br, zstd"), Coding::Gzip);
        assert_eq!(one("gzip"), Coding::Gzip);
        assert_eq!(one("deflate, gzip;q=1.0, *;q=0.5"), Coding::Gzip);
    }

    #[test]
    fn no_header_an_empty_one_or_only_codings_we_lack_get_identity() {
        assert_eq!(negotiated(&[]), Coding::Identity);
        assert_eq!(one(""), Coding::Identity);
        assert_eq!(one("br, zstd, deflate"), Coding::Identity);
        assert_eq!(one("identity"), Coding::Identity);
    }

    #[test]
    fn a_weight_of_zero_refuses_even_when_star_would_allow() {
        assert_eq!(one("gzip;q=0"), Coding::Identity);
        assert_eq!(one("gzip;q=0.000, identity"), Coding::Identity);
        assert_eq!(one("*, gzip;q=0"), Coding::Identity);
        assert_eq!(one("gzip;q=0, *"), Coding::Identity);
        assert_eq!(one("gzip, gzip;q=0"), Coding::Identity, "listed twice, the refusal holds");
    }

    #[test]
    fn star_stands_for_every_coding_not_listed() {
        assert_eq!(one("*"), Coding::Gzip);
        assert_eq!(one("*;q=0.1"), Coding::Gzip);
        assert_eq!(one("identity, *;q=0.5"), Coding::Identity, "identity listed at 1 outweighs gzip at 0.5");
        assert_eq!(one("*;q=0"), Coding::Identity, "nothing acceptable: identity rather than a 406");
        assert_eq!(one("identity;q=0, *;q=0"), Coding::Identity);
    }

    #[test]
    fn the_heavier_coding_wins_and_a_tie_goes_to_the_smaller_body() {
        assert_eq!(one("gzip;q=0.5, identity"), Coding::Identity);
        assert_eq!(one("gzip;q=0.5, identity;q=0.4"), Coding::Gzip);
        assert_eq!(one("gzip;q=0.5, identity;q=0.5"), Coding::Gzip);
        assert_eq!(one("gzip;q=0.001"), Coding::Gzip, "identity unlisted is preferred last");
        assert_eq!(one("identity;q=0, gzip;q=0.2"), Coding::Gzip);
    }

    #[test]
    fn tokens_and_the_weight_name_are_case_insensitive_and_x_gzip_is_gzip() {
        assert_eq!(one("GZIP"), Coding::Gzip);
        assert_eq!(one("GZip;Q=0.7"), Coding::Gzip);
        assert_eq!(one("x-gzip"), Coding::Gzip);
        assert_eq!(one("gzip;Q=0"), Coding::Identity);
        assert_eq!(one("IDENTITY, GZIP;q=0.9"), Coding::Identity);
    }

    #[test]
    fn whitespace_empty_elements_and_several_field_lines_are_one_list() {
        assert_eq!(one(" ,\tgzip ; q=1 ,, "), Coding::Gzip);
        assert_eq!(negotiated(&[b"identity;q=0.5", b"gzip;q=0.4"]), Coding::Identity);
        assert_eq!(negotiated(&[b"br", b"gzip"]), Coding::Gzip);
        assert_eq!(negotiated(&[b"gzip", b"gzip;q=0"]), Coding::Identity);
    }

    #[test]
    fn a_malformed_element_is_skipped_and_never_makes_the_answer_gzip() {
        for junk in [
            "gzip;q=2",
            "gzip;q=1.5",
            "gzip;q=1.0001",
            "gzip;q=0.1234",
            "gzip;q=",
            "gzip;q=.5",
            "gzip;q=-0",
            "gzip;q=abc",
            "gzip;level=9",
            "gzip;q=0.5;q=0.5",
            "gzip;q = 0.5",
            "gz ip",
            "\"gzip\"",
            "gzip/1",
            "*gzip",
            ";q=1",
        ] {
            assert_eq!(one(junk), Coding::Identity, "{junk}");
        }
        assert_eq!(one("gzip;q=2, gzip"), Coding::Gzip, "the element that parses still counts");
        assert_eq!(negotiated(&[b"gzip\xff", b"gzip;q=0.3"]), Coding::Gzip, "a field that is not ASCII names nothing");
        assert_eq!(negotiated(&[b"\xffgzip"]), Coding::Identity);
    }

    #[test]
    fn weights_read_up_to_three_decimals() {
        assert_eq!(qvalue("q=0"), Some(0));
        assert_eq!(qvalue("q=0."), Some(0));
        assert_eq!(qvalue("q=0.5"), Some(500));
        assert_eq!(qvalue("q=0.05"), Some(50));
        assert_eq!(qvalue("q=0.001"), Some(1));
        assert_eq!(qvalue("Q=1.000"), Some(1000));
        assert_eq!(qvalue("q=1"), Some(1000));
        assert_eq!(qvalue("q=1.001"), None);
        assert_eq!(qvalue("q=0.0000"), None);
        assert_eq!(qvalue("q=01"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_field_parses_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            near_miss in "[ \t,;=.*a-zA-Z0-9\"-]{0,40}",
        ) {
            for field in [bytes.as_slice(), near_miss.as_bytes()] {
                if let Ok(value) = HeaderValue::from_bytes(field) {
                    let mut headers = HeaderMap::new();
                    headers.insert(header::ACCEPT_ENCODING, value);
                    let _ = negotiate(&headers);
                }
            }
        }
    }

    #[test]
    fn a_marked_response_says_its_coding_and_what_it_varies_on() {
        let gzip = mark(Coding::Gzip, Response::new(()));
        assert_eq!(gzip.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gzip.headers()[header::VARY], "accept-encoding");
        let identity = mark(Coding::Identity, Response::new(()));
        assert!(!identity.headers().contains_key(header::CONTENT_ENCODING));
        assert_eq!(identity.headers()[header::VARY], "accept-encoding");
        for response in [gzip, identity] {
            let (parts, ()) = response.into_parts();
            assert!(!leave_alone(parts.status, parts.version, &parts.headers, &parts.extensions));
        }
        let other = Response::new(());
        assert!(leave_alone(other.status(), other.version(), other.headers(), other.extensions()));
    }
}
