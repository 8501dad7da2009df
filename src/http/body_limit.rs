//! The one place that decides how large a request body may be: statement imports carry whole
//! bank files (tens of megabytes for years of history), every other route a small JSON
//! document. Above its route's limit a request is answered 413 problem+json, before a handler
//! sees it when the length is declared, and when the body reaches the limit otherwise.

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest bodies accepted, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Every route but the statement imports.
    pub api: usize,
    /// `POST …/imports`: the statement file, raw or in a form.
    pub import: usize,
}

/// The routes that take a statement file.
pub(super) const IMPORT_ROUTES: [&str; 2] =
    ["/v1/connections/{id}/imports", "/v1/connections/{id}/accounts/{account_id}/imports"];

impl BodyLimits {
    fn for_route(self, route: Option<&str>) -> usize {
        match route {
            Some(route) if IMPORT_ROUTES.contains(&route) => self.import,
            _ => self.api,
        }
    }
}

/// Bounds the request body by its route's limit. Handlers' extractors answer 413 when the
/// bounded body overflows (a chunked body declares no length).
pub async fn limit(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let max = limits.for_route(request.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return super::problem::problem_for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    }
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, max)));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_have_their_own_limit() {
        let limits = BodyLimits { api: 1, import: 2 };
        assert_eq!(limits.for_route(Some("/v1/connections/{id}/imports")), 2);
        assert_eq!(limits.for_route(Some("/v1/connections/{id}/accounts/{account_id}/imports")), 2);
        assert_eq!(limits.for_route(Some("/v1/imports/{id}/duplicates/{duplicate_id}")), 1);
        assert_eq!(limits.for_route(Some("/v1/webhooks")), 1);
        assert_eq!(limits.for_route(None), 1);
    }
}
