//! What every request and response gets whatever route it takes: a bounded request id and the
//! security headers.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::middleware::REQUEST_ID;

/// The longest `X-Request-Id` kept. Longer ids, and ids with characters outside
/// [`valid_request_id`], are replaced by a generated one: they are echoed and logged, so a
/// caller must not choose their size or put control characters in a log line.
pub const MAX_REQUEST_ID: usize = 128;

/// Letters, digits and `-_.:/+=@`, 1 to [`MAX_REQUEST_ID`] of them: every UUID, ULID, trace id
/// and base64 id fits.
pub fn valid_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id.iter().all(|byte| byte.is_ascii_alphanumeric() || b"-_.:/+=@".contains(byte))
}

/// Drops an `X-Request-Id` that is too long or malformed, so the layer after this one generates
/// a fresh id in its place; the response carries the id the request was served under.
pub async fn bound_request_id(mut request: Request, next: Next) -> Response {
    let refused = request.headers().get_all(REQUEST_ID).iter().any(|id| !valid_request_id(id.as_bytes()))
        || request.headers().get_all(REQUEST_ID).iter().count() > 1;
    if refused {
        tracing::debug!("X-Request-Id replaced: longer than 128 characters, malformed, or repeated");
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

/// Headers that keep browsers from reinterpreting or framing what the service answers: no MIME
/// sniffing, and no page (the docs included) shown inside another site's frame.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    }
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `Cache-Control: no-store`, for responses that carry a secret (a new API key, a webhook's
/// signing secret): no cache between the service and the caller may keep a copy.
pub fn no_store() -> (HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_and_plain() {
        for id in ["0f8fad5b-d9cb-469f-a165-70867728950e", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "abc:1/2+3=@x"] {
            assert!(valid_request_id(id.as_bytes()), "{id}");
        }
        let long = "a".repeat(MAX_REQUEST_ID + 1);
        for id in ["", "has space", "tab\tid", "new\nline", "quote\"", long.as_str()] {
            assert!(!valid_request_id(id.as_bytes()), "{id:?}");
        }
        assert!(valid_request_id("a".repeat(MAX_REQUEST_ID).as_bytes()));
    }
}
