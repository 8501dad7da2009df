//! `Idempotency-Key` on POSTs that create or trigger: reading the header, replaying a stored
//! first response, refusing a reused key.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::problem::{ApiError, FieldError};
use crate::idempotency::{self, StoredResponse};

const HEADER: &str = "idempotency-key";

pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else { return Ok(None) };
    match value.to_str() {
        Ok(key) if idempotency::valid_key(key) => Ok(Some(key.to_owned())),
        _ => Err(ApiError::bad_request("invalid_header", "Idempotency-Key must be 1 to 200 visible ASCII characters.")
            .with_errors(vec![FieldError::new("idempotency-key", "1 to 200 visible ASCII characters")])),
    }
}

pub fn mismatch() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request; use a new key for a new request.",
    )
}

pub fn json_response(status: StatusCode, body: Vec<u8>, location: Option<&str>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(location) = location.and_then(|location| HeaderValue::from_str(location).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

pub fn replay(first: StoredResponse) -> Response {
    let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK);
    let mut response = json_response(status, first.body, first.location.as_deref());
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
