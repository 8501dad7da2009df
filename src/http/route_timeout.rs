//! How long a request may run, by route: statement imports read, check and write files of tens
//! of megabytes (a 50 MB file takes 25 s on a busy two-core machine), every other route answers
//! in milliseconds, so one limit for both would either cut imports or let a stuck query hold a
//! connection for minutes. Past its route's limit a request is answered 503 (`request_timeout`)
//! and its work is dropped: an import's transaction rolls back, its spooled file is removed.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::body_limit::IMPORT_ROUTES;

/// Longest time a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Every route but the statement imports.
    pub api: Duration,
    /// `POST …/imports`, from the first byte of the upload to the report.
    pub import: Duration,
}

impl Timeouts {
    fn for_route(self, route: Option<&str>) -> Duration {
        match route {
            Some(route) if IMPORT_ROUTES.contains(&route) => self.import,
            _ => self.api,
        }
    }
}

/// Runs the request under its route's limit; the empty 503 becomes a problem document in
/// `middleware::problem_details`, as `TimeoutLayer`'s did.
pub async fn limit(State(timeouts): State<Timeouts>, request: Request, next: Next) -> Response {
    let limit = timeouts.for_route(request.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_have_their_own_time_limit() {
        let timeouts = Timeouts { api: Duration::from_secs(1), import: Duration::from_secs(2) };
        assert_eq!(timeouts.for_route(Some("/v1/connections/{id}/imports")), Duration::from_secs(2));
        assert_eq!(
            timeouts.for_route(Some("/v1/connections/{id}/accounts/{account_id}/imports")),
            Duration::from_secs(2)
        );
        assert_eq!(timeouts.for_route(Some("/v1/imports/{id}")), Duration::from_secs(1));
        assert_eq!(timeouts.for_route(None), Duration::from_secs(1));
    }
}
