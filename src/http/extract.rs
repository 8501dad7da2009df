//! Extractors whose rejections are problem+json, so no malformed request ever meets axum's
//! plain-text errors.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::problem::{ApiError, FieldError};

mod objects;

/// A JSON body. Wrong content type → 415, malformed JSON → 400, wrong types, missing or unknown
/// fields → 422 naming the field (request types use `deny_unknown_fields`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(request, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// The raw bytes of a body sent as JSON, for handlers that fingerprint the body as sent
/// (`Idempotency-Key`) before parsing it: the content type is checked like [`Json`]'s.
#[derive(Debug, Clone, Default)]
pub struct JsonBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json_content_type(request.headers())?;
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                super::problem::problem_for_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                ApiError::bad_request("unreadable_body", "The request body could not be read.")
            }
        })?;
        Ok(Self(bytes))
    }
}

/// 415 unless the request says its body is JSON (`application/json` or `application/*+json`).
pub fn require_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    match essence {
        Some(essence)
            if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) =>
        {
            Ok(())
        }
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with `Content-Type: application/json`.",
        )),
    }
}

/// Parses a JSON body, telling apart syntax errors (400) from shape errors (422 with the path).
/// Every request body the API documents is an object, so nothing else is read as one (serde
/// would otherwise take `["a", "b"]` for a struct's fields in order), and neither is any nested
/// value that the document says is an object (`objects::ObjectsOnly`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    reject_nul(bytes)?;
    reject_non_object(bytes)?;
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(objects::ObjectsOnly(deserializer)).map_err(|error| {
        // Decide by the document, not the error category: serde_json reports some shape errors
        // (a number where an enum belongs) as syntax errors.
        if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            let inner = error.into_inner();
            return ApiError::bad_request("malformed_json", format!("The body is not valid JSON: {inner}."));
        }
        let path = error.path().to_string();
        let message = strip_position(error.inner());
        let field = match field_of(&path, &message) {
            field if field == "body" => field_holding_value(bytes, &message).unwrap_or(field),
            field => field,
        };
        ApiError::validation(vec![FieldError::new(field, message)])
    })
}

fn reject_non_object(bytes: &[u8]) -> Result<(), ApiError> {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    let is_json = || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    if first == Some(&b'{') || !is_json() {
        // Not JSON at all is the parser's 400, below.
        return Ok(());
    }
    Err(ApiError::validation(vec![FieldError::new("body", "must be a JSON object")]))
}

/// PostgreSQL text cannot hold U+0000, so no field of any body may: refused here, once, with
/// the field's path, instead of failing deep in a query.
fn reject_nul(bytes: &[u8]) -> Result<(), ApiError> {
    let escaped = bytes.windows(6).any(|window| window.eq_ignore_ascii_case(b"\\u0000"));
    if !escaped {
        return Ok(());
    }
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Ok(()) };
    let field = path_of_nul(&document, String::new()).unwrap_or_else(|| "body".to_owned());
    Err(ApiError::validation(vec![FieldError::new(field, "must not contain the NUL character")]))
}

fn path_of_nul(value: &serde_json::Value, path: String) -> Option<String> {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(path),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(index, item)| path_of_nul(item, join(&index.to_string())))
        }
        serde_json::Value::Object(map) => map
            .iter()
            .find_map(|(key, item)| if key.contains('\0') { Some(join(key)) } else { path_of_nul(item, join(key)) }),
        _ => None,
    }
}

/// The field an error is about; a missing field is named in the message, not the path.
fn field_of(path: &str, message: &str) -> String {
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    }
}

/// The top-level field an error quotes, by key or by value. Errors about an enum's tag (`"role":
/// "superuser"`) carry no path, but they quote the bad value in backticks.
fn field_holding_value(bytes: &[u8], message: &str) -> Option<String> {
    let quoted = message.split('`').nth(1)?;
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    if object.contains_key(quoted) {
        // "unknown field `x`" names the key itself.
        return Some(quoted.to_owned());
    }
    object.into_iter().find_map(|(key, value)| {
        let shown = match &value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        (shown == quoted).then_some(key)
    })
}

/// serde_json appends ` at line 1 column 17`; the field path already says where.
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_owned(),
        None => text,
    }
}

/// Path parameters; a malformed one (e.g. a bad UUID) → 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path_parameter", rejection.body_text())
    }
}

/// Query parameters; a malformed one → 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        // PostgreSQL text cannot hold U+0000: refused here, naming the parameter, like bodies.
        if let Some(name) = parts.uri.query().and_then(parameter_with_nul) {
            return Err(ApiError::bad_request("invalid_query_parameter", "A query parameter holds the NUL character.")
                .with_errors(vec![FieldError::new(name, "must not contain the NUL character")]));
        }
        // The form decoder would silently turn bytes that are not UTF-8 into U+FFFD and search
        // for that instead: refused, naming the parameter.
        if let Some(name) = parts.uri.query().and_then(parameter_not_utf8) {
            return Err(ApiError::bad_request(
                "invalid_query_parameter",
                "A query parameter is not UTF-8 once percent-decoded.",
            )
            .with_errors(vec![FieldError::new(name, "must be UTF-8 once percent-decoded")]));
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The name of the first parameter whose name or value encodes a NUL (`%00`); a raw NUL cannot
/// appear in a URI.
fn parameter_with_nul(query: &str) -> Option<String> {
    let pair = query.split('&').find(|pair| pair.as_bytes().windows(3).any(|w| w == b"%00"))?;
    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
    Some(if name.contains("%00") || name.is_empty() { "query".to_owned() } else { name.to_owned() })
}

/// The name of the first parameter whose name or value does not percent-decode to UTF-8.
fn parameter_not_utf8(query: &str) -> Option<String> {
    let pair = query.split('&').find(|pair| !decodes(pair))?;
    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
    Some(if decodes(name) && !name.is_empty() { name.to_owned() } else { "query".to_owned() })
}

/// Whether `text` percent-decodes to UTF-8 (a `%` without two hex digits stays itself, as the
/// form decoder reads it).
fn decodes(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
            .and_then(|pair| std::str::from_utf8(pair).ok());
        match (bytes[index], hex.and_then(|pair| u8::from_str_radix(pair, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let text = rejection.body_text();
        let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text).to_owned();
        let field = detail.split_once(':').map(|(field, _)| field.trim().to_owned());
        let error = ApiError::bad_request("invalid_query_parameter", format!("Invalid query string: {detail}"));
        match field {
            Some(field) if !field.contains(' ') => error.with_errors(vec![FieldError::new(field, detail.clone())]),
            _ => error,
        }
    }
}
