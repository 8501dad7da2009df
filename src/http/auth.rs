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
        let client = client_address(parts);
        if let Some(client) = client
            && let Err(wait) = state.auth_failures.check(client)
        {
            return Err(throttled(wait));
        }
        verify(parts, state).await.map_err(|failure| {
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

async fn verify(parts: &Parts, state: &AppState) -> Result<Caller, Failure> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        let error = ApiError::unauthorized("missing_credentials", "Send an API key as `Authorization: Bearer <key>`.");
        Failure::rejected(error, None)
    })?;
    let key = value
        .to_str()
        .ok()
        .and_then(|text| text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer ")))
        .and_then(|token| PresentedKey::parse(token.trim()))
        .ok_or_else(|| Failure::rejected(invalid_key(), None))?;
    let (role, tenant_id, secret_hash) = match state.keys.get(key.id) {
        Some(cached) => (cached.role, cached.tenant_id, cached.secret_hash),
        None => {
            let stored = store::find_active(&state.pool, key.id)
                .await
                .map_err(|error| Failure { error: error.into(), key_id: Some(key.id), counts: false })?
                .ok_or_else(|| Failure::rejected(invalid_key(), Some(key.id)))?;
            state.keys.put(key.id, stored.role, stored.tenant_id, stored.secret_hash.clone());
            (stored.role, stored.tenant_id, stored.secret_hash.into())
        }
    };
    if !key.matches(&secret_hash) {
        return Err(Failure::rejected(invalid_key(), Some(key.id)));
    }
    Ok(Caller(Principal { key_id: key.id, role, tenant_id }))
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
        let principal = caller.require(R::ROLES)?.clone();
        Ok(Self(principal, PhantomData))
    }
}
