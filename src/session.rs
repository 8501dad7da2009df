//! Console sessions: an API key is exchanged for a random session id that lives in an
//! `HttpOnly` cookie, so the key never reaches a cookie, a URL or a page. Only a digest of the id
//! is stored; the form token (CSRF) is derived from the id, so it needs no storage and is worth
//! nothing without the cookie it belongs to.

pub mod store;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::auth::Principal;

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Signed out after this long without a request.
    pub idle: Duration,
    /// Signed out after this long, however busy.
    pub absolute: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self { idle: Duration::from_secs(30 * 60), absolute: Duration::from_secs(12 * 3600) }
    }
}

/// A session id as the cookie carries it: 64 hex digits of 32 random bytes.
#[derive(Debug)]
pub struct SessionId(SecretString);

impl SessionId {
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(SecretString::from(hex::encode(bytes)))
    }

    /// A cookie value that is not a well-formed id is no session at all.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(SecretString::from(text.to_ascii_lowercase())))
    }

    /// What the cookie holds.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// What the database holds.
    pub fn digest(&self) -> [u8; 32] {
        tagged_digest(b"feedwatch-console-session:", self.0.expose_secret())
    }

    /// The form token of this session. A different tag from the stored digest, so the token
    /// (which appears in pages) tells nothing about the row, and the row nothing about the token.
    pub fn csrf_token(&self) -> String {
        hex::encode(tagged_digest(b"feedwatch-console-csrf:", self.0.expose_secret()))
    }

    /// Whether a submitted form token is this session's, compared in constant time.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        self.csrf_token().as_bytes().ct_eq(submitted.as_bytes()).into()
    }
}

fn tagged_digest(tag: &[u8], secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tag);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// A live session: who it stands for.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub expires_at: DateTime<Utc>,
}

/// Starts a session for a verified key.
pub async fn start(pool: &PgPool, principal: &Principal, lifetimes: Lifetimes) -> Result<SessionId, sqlx::Error> {
    let id = SessionId::generate();
    let expires_at = Utc::now() + delta(lifetimes.absolute);
    store::insert(pool, &id.digest(), principal.key_id, expires_at).await?;
    Ok(id)
}

/// The session of `id` if it is live: not expired, not idle too long, and its key not revoked.
/// A live session's idle clock restarts (at most once a minute, to keep reads cheap).
pub async fn resume(pool: &PgPool, id: &SessionId, lifetimes: Lifetimes) -> Result<Option<Session>, sqlx::Error> {
    let now = Utc::now();
    let digest = id.digest();
    let Some(found) = store::find_live(pool, &digest, now - delta(lifetimes.idle)).await? else {
        return Ok(None);
    };
    if now - found.last_seen_at > TimeDelta::minutes(1) {
        store::touch(pool, &digest).await?;
    }
    Ok(Some(Session { principal: found.principal, expires_at: found.expires_at }))
}

/// Signs out: the session row goes.
pub async fn end(pool: &PgPool, id: &SessionId) -> Result<(), sqlx::Error> {
    store::delete(pool, &id.digest()).await
}

/// Retention: expired sessions go (idle ones once their idle limit is a day old).
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    store::prune(pool, Utc::now() - TimeDelta::days(1)).await
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_as_generated() {
        let id = SessionId::generate();
        let parsed = SessionId::parse(id.expose()).expect("parses");
        assert_eq!(parsed.digest(), id.digest());
        for text in ["", "abc", &"g".repeat(64), &"a".repeat(63)] {
            assert!(SessionId::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn the_form_token_is_the_sessions_own_and_not_its_digest() {
        let id = SessionId::generate();
        let token = id.csrf_token();
        assert!(id.csrf_matches(&token));
        assert!(!SessionId::generate().csrf_matches(&token));
        assert!(!id.csrf_matches(""));
        assert_ne!(token, hex::encode(id.digest()));
    }
}
