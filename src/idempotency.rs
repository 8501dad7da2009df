//! `Idempotency-Key`: a client that repeats a POST (a retry after a timeout, say) gets the
//! first response instead of a second resource; the same key with a different body is refused.
//!
//! The record is written in the same transaction as the resource it describes, so a crash can
//! never leave one without the other. A concurrent duplicate waits on the record's unique key
//! until the first transaction ends, then replays its response.

pub mod store;

use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// How long a response is kept for replay.
pub const RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A stored first response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub location: Option<String>,
}

/// What a request with an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use: do the work, then `store::complete` in the same transaction.
    New,
    /// Seen with the same request: answer this.
    Replay(StoredResponse),
    /// Seen with a different request.
    Mismatch,
}

/// A fingerprint of what the request asks for.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = request_hasher(method, path);
    hasher.update(body);
    hasher.finalize().to_vec()
}

/// [`request_hash`] for a body that arrives in pieces: feed it the body, then finalise.
pub fn request_hasher(method: &str, path: &str) -> Sha256 {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n"] {
        hasher.update(part);
    }
    hasher
}

/// Forgets records past their [`RETENTION`], one batch of 1000 per call: housekeeping calls it
/// every round. Returns how many went.
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    store::prune(&mut *pool.acquire().await?, 1000).await
}

/// Keys are 1 to 200 visible ASCII characters (a UUID is typical).
pub fn valid_key(key: &str) -> bool {
    (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}
