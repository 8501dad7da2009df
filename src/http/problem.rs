//! `ApiError`, the one error type of every handler, rendered as RFC 9457 problem+json.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document. `code` is stable and safe to branch on; `title` and `detail`
/// are for people and may change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:feedwatch:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:feedwatch:problem:not_found")]
    pub problem_type: String,
    #[schema(example = "Not found")]
    pub title: String,
    #[schema(example = 404, minimum = 400, maximum = 599)]
    pub status: u16,
    #[schema(example = "No connection has that id.")]
    pub detail: String,
    /// Stable snake_case code.
    #[schema(example = "not_found")]
    pub code: String,
    /// The request's `X-Request-Id`, for support tickets and log searches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Which fields were wrong, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub errors: Vec<FieldError>,
    /// Whether the same request may succeed later without change.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retryable: Option<bool>,
    /// Seconds to wait before retrying, as in the `Retry-After` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retry_after: Option<u64>,
    /// Close matches, for lookups that found nothing or more than one thing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub suggestions: Vec<String>,
}

/// One field that failed validation.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Where the field is: a JSON path (`credentials.user_id`), a query parameter or a header.
    #[schema(example = "display_name")]
    pub field: String,
    #[schema(example = "must be 1 to 200 characters")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The error every handler returns. Boxed: it travels through every `Result` in the HTTP
/// layer, and the happy path should not pay for its size.
#[derive(Debug)]
pub struct ApiError(Box<ErrorParts>);

#[derive(Debug)]
struct ErrorParts {
    status: StatusCode,
    code: Cow<'static, str>,
    title: Cow<'static, str>,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    suggestions: Vec<String>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self(Box::new(ErrorParts {
            status,
            title: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            suggestions: Vec::new(),
            headers: Vec::new(),
        }))
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422 with the fields that failed validation.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail =
            errors.iter().map(|error| format!("{}: {}", error.field, error.message)).collect::<Vec<_>>().join("; ");
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail).with_errors(errors)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// A failure the caller cannot fix. The cause is logged here and never sent: it may name
    /// internals, and a response must not carry them.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The server failed to answer; the error is logged.",
        )
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>, retry_after: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).with_retry_after(retry_after)
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    pub fn with_suggestions(mut self, suggestions: Vec<String>) -> Self {
        self.0.suggestions = suggestions;
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds);
        self.0.headers.push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// The problem document's bytes, for answers written below the router (a refused
    /// connection).
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0.problem()).unwrap_or_default()
    }

    /// The sentence for people; the console shows it as the page's message.
    pub fn detail(&self) -> &str {
        &self.0.detail
    }
}

impl ErrorParts {
    fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:feedwatch:problem:{}", self.code),
            title: self.title.clone().into_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone().into_owned(),
            // Filled in by the problem middleware, which knows the request.
            request_id: None,
            errors: self.errors.clone(),
            retryable: (self.status.is_server_error() || self.status == StatusCode::TOO_MANY_REQUESTS)
                .then_some(true)
                .or(self.retry_after.map(|_| true)),
            retry_after: self.retry_after,
            suggestions: self.suggestions.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let parts = *self.0;
        let body = serde_json::to_vec(&parts.problem()).unwrap_or_default();
        let mut response = (parts.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in parts.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if crate::database::is_unavailable(&error) {
            tracing::error!(%error, "database unavailable");
            Self::unavailable("database_unavailable", "The database is not reachable right now.", 5)
        } else if crate::database::is_conflict(&error) {
            tracing::warn!(%error, "database declined a concurrent attempt");
            Self::unavailable("database_conflict", "A concurrent change got in the way; try again.", 1)
        } else {
            Self::internal(&error)
        }
    }
}

/// Ok when no field failed; otherwise the 422 naming every field that did.
pub fn reject_invalid(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
}

/// The problem for a bare status produced outside our handlers (routing, timeouts, layers).
pub fn problem_for_status(status: StatusCode) -> ApiError {
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("route_not_found", "No route matches this path."),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "This path does not accept that method."),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is larger than the server accepts."),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            ("request_timeout", "The request took longer than the server allows; try again.")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "The request body has an unsupported content type.")
        }
        StatusCode::INTERNAL_SERVER_ERROR => ("internal_error", "The server failed to answer; the error is logged."),
        status if status.is_client_error() => ("bad_request", "The request is not valid."),
        _ => ("server_error", "The server failed to answer."),
    };
    let error = ApiError::new(status, code, detail);
    if code == "request_timeout" { error.with_retry_after(1) } else { error }
}
