//! `Idempotency-Key` on POSTs that create or trigger. Every such resource runs its work through
//! [`IdempotentPost::run`], so all of them replay, refuse a reused key and record the first
//! response the same way: in the transaction that does the work.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::problem::{ApiError, FieldError};
use crate::auth::Principal;
use crate::idempotency::{self, Claim, StoredResponse};

const HEADER: &str = "idempotency-key";

/// A POST that may carry an `Idempotency-Key`.
#[derive(Debug)]
pub struct IdempotentPost {
    /// The key and the fingerprint of the request it came with, when the client sent one.
    key: Option<(String, Vec<u8>)>,
    /// Keys belong to the API key that used them, so two callers' keys never meet.
    api_key_id: Uuid,
}

/// What [`IdempotentPost::run`] did.
#[derive(Debug)]
pub enum Outcome<T> {
    /// This request did the work: what the work returned, and the response it recorded.
    Done(T, StoredResponse),
    /// An earlier request with this key did: its response, to answer again.
    Replay(StoredResponse),
}

impl IdempotentPost {
    /// Reads the key of a POST to `path` (a malformed one is a 400) and fingerprints the request.
    pub fn read(headers: &HeaderMap, caller: &Principal, path: &str, body: &[u8]) -> Result<Self, ApiError> {
        let key = key(headers)?.map(|key| (key, idempotency::request_hash("POST", path, body)));
        Ok(Self { key, api_key_id: caller.key_id })
    }

    /// [`Self::read`] for a body fingerprinted as it arrived (`idempotency::request_hasher`).
    pub fn fingerprinted(headers: &HeaderMap, caller: &Principal, fingerprint: Vec<u8>) -> Result<Self, ApiError> {
        let key = key(headers)?.map(|key| (key, fingerprint));
        Ok(Self { key, api_key_id: caller.key_id })
    }

    /// Runs `work` in one transaction with the key's record, so a crash can never leave one
    /// without the other. The first use of a key does the work and records the response it
    /// returns; the same request again gets that response without doing it twice; the key with
    /// a different request is a 422. Without a key the work just runs.
    pub async fn run<T>(
        &self,
        pool: &PgPool,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<(T, StoredResponse), ApiError>,
    ) -> Result<Outcome<T>, ApiError> {
        let mut tx = crate::database::begin(pool).await?;
        if let Some((key, hash)) = &self.key {
            match idempotency::store::claim(&mut tx, self.api_key_id, key, hash).await? {
                Claim::New => {}
                Claim::Replay(first) => return Ok(Outcome::Replay(first)),
                Claim::Mismatch => return Err(mismatch()),
            }
        }
        let (done, response) = work(&mut tx).await?;
        if let Some((key, _)) = &self.key {
            idempotency::store::complete(&mut tx, self.api_key_id, key, &response).await?;
        }
        tx.commit().await?;
        Ok(Outcome::Done(done, response))
    }
}

fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else { return Ok(None) };
    match value.to_str() {
        Ok(key) if idempotency::valid_key(key) => Ok(Some(key.to_owned())),
        _ => Err(ApiError::bad_request("invalid_header", "Idempotency-Key must be 1 to 200 visible ASCII characters.")
            .with_errors(vec![FieldError::new("idempotency-key", "1 to 200 visible ASCII characters")])),
    }
}

fn mismatch() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request; use a new key for a new request.",
    )
}

/// A JSON body with its status and `Location`.
pub fn json_response(status: StatusCode, body: Vec<u8>, location: Option<&str>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(location) = location.and_then(|location| HeaderValue::from_str(location).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// A recorded response, as the request that recorded it answers.
pub fn respond(first: StoredResponse) -> Response {
    let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK);
    json_response(status, first.body, first.location.as_deref())
}

/// A recorded response answered again, marked as a replay.
pub fn replay(first: StoredResponse) -> Response {
    let mut response = respond(first);
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
