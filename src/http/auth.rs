//! The `Caller` extractor: `Authorization: Bearer <key>` → a verified [`Principal`].

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::problem::ApiError;
use crate::auth::{PresentedKey, Principal, Role, store};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(state, client_address(parts), bearer(parts)).await.map(Caller)
    }
}

/// The console's sign-in: a key typed into a form, checked and throttled exactly as a bearer
/// header is, so guessing through the form counts against the same address.
pub(in crate::http) async fn sign_in(
    state: &AppState,
    client: Option<IpAddr>,
    text: &str,
) -> Result<Principal, ApiError> {
    authenticate(state, client, Ok(text)).await
}

async fn authenticate(
    state: &AppState,
    client: Option<IpAddr>,
    presented: Result<&str, Failure>,
) -> Result<Principal, ApiError> {
    if let Some(client) = client
        && let Err(wait) = state.auth_failures.check(client)
    {
        return Err(throttled(wait));
    }
    let verified = match presented {
        Ok(text) => verify(state, text).await,
        Err(failure) => Err(failure),
    };
    verified.map_err(|failure| {
        if failure.counts {
            if let Some(client) = client {
                state.auth_failures.failed(client);
            }
            // The client's address and, when the key parsed, its id (not secret: it only
            // finds the row); never the key's text.
            let client = client.map_or_else(|| "unknown".to_owned(), |address| address.to_string());
            tracing::warn!(%client, key_id = ?failure.key_id, reason = failure.error.code(), "authentication failed");
        }
        failure.error
    })
}

/// Why a request did not authenticate.
struct Failure {
    error: ApiError,
    /// The id part of a well-formed key.
    key_id: Option<uuid::Uuid>,
    /// Whether it is a failed attempt (a wrong key), not the database failing to answer.
    counts: bool,
}

impl Failure {
    fn rejected(error: ApiError, key_id: Option<uuid::Uuid>) -> Self {
        Self { error, key_id, counts: true }
    }
}

/// The key text of `Authorization: Bearer <key>`.
fn bearer(parts: &Parts) -> Result<&str, Failure> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        let error = ApiError::unauthorized("missing_credentials", "Send an API key as `Authorization: Bearer <key>`.");
        Failure::rejected(error, None)
    })?;
    value
        .to_str()
        .ok()
        .and_then(|text| text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer ")))
        .ok_or_else(|| Failure::rejected(invalid_key(), None))
}

async fn verify(state: &AppState, text: &str) -> Result<Principal, Failure> {
    let key = PresentedKey::parse(text.trim()).ok_or_else(|| Failure::rejected(invalid_key(), None))?;
    let (role, tenant_id, matches) = match state.keys.get(key.id) {
        Some(cached) => (cached.role, cached.tenant_id, cached.secret_hash.is_some_and(|hash| key.matches(&hash))),
        None => {
            let stored = store::find_active(&state.reads, key.id)
                .await
                .map_err(|error| Failure { error: error.into(), key_id: Some(key.id), counts: false })?
                .ok_or_else(|| Failure::rejected(invalid_key(), Some(key.id)))?;
            let matches = key.matches(&stored.secret_hash);
            state.keys.put(key.id, stored.role, stored.tenant_id, stored.secret_hash);
            (stored.role, stored.tenant_id, matches)
        }
    };
    if !matches {
        return Err(Failure::rejected(invalid_key(), Some(key.id)));
    }
    Ok(Principal { key_id: key.id, role, tenant_id })
}

fn throttled(wait: std::time::Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_attempts",
        "Too many failed authentication attempts from this address; wait before trying again.",
    )
    .with_retry_after(seconds.max(1))
}

/// The client's IP address, when the server recorded it.
pub fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip())
}

/// The client's IP address as an extractor that never fails (absent when no listener recorded
/// it, as in a router driven without one).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_address(parts)))
    }
}

fn invalid_key() -> ApiError {
    // One answer for unknown, revoked and malformed keys: nothing to learn by probing.
    ApiError::unauthorized("invalid_credentials", "The API key is not valid or has been revoked.")
}

impl Caller {
    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            let allowed = roles.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(" or ");
            Err(ApiError::forbidden(format!("This needs a key with the {allowed} role.")))
        }
    }
}

/// A set of roles an operation admits, as a type, so [`Allowed`] can check it while extracting.
pub trait Roles {
    const ROLES: &'static [Role];
}

/// Admin keys only.
#[derive(Debug)]
pub struct Admins;
impl Roles for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Admin and helpdesk keys: the fleet's operators.
#[derive(Debug)]
pub struct Operators;
impl Roles for Operators {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Helpdesk];
}

/// Admin and tenant keys: those who may change a tenant's connections.
#[derive(Debug)]
pub struct Writers;
impl Roles for Writers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Tenant];
}

/// A caller whose role is one of `R`'s. Extracted before the body, so a key that may not call an
/// operation hears 403 whatever body it sent, never a 422 about a body it may not send.
#[derive(Debug)]
pub struct Allowed<R>(pub Principal, pub PhantomData<R>);

impl<R: Roles> FromRequestParts<AppState> for Allowed<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        Self::check(&caller)
    }
}

impl<R: Roles> Allowed<R> {
    /// The caller, if its role is one of `R`'s: the extractor's check, and the console's before it
    /// acts on a session's behalf.
    pub fn check(caller: &Caller) -> Result<Self, ApiError> {
        Ok(Self(caller.require(R::ROLES)?.clone(), PhantomData))
    }
}
