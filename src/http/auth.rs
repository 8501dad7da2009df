//! The `Caller` extractor: `Authorization: Bearer <key>` → a verified [`Principal`].

use axum::extract::FromRequestParts;
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
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing_credentials", "Send an API key as `Authorization: Bearer <key>`.")
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|text| text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer ")))
            .ok_or_else(invalid_key)?;
        verify(state, token.trim()).await.map(Caller)
    }
}

/// The caller a key's text stands for: the bearer header's check, and the console's sign-in.
pub(in crate::http) async fn verify(state: &AppState, text: &str) -> Result<Principal, ApiError> {
    let key = PresentedKey::parse(text).ok_or_else(invalid_key)?;
    let (role, tenant_id, secret_hash) = match state.keys.get(key.id) {
        Some(cached) => (cached.role, cached.tenant_id, cached.secret_hash),
        None => {
            let stored = store::find_active(&state.pool, key.id).await?.ok_or_else(invalid_key)?;
            state.keys.put(key.id, stored.role, stored.tenant_id, stored.secret_hash.clone());
            (stored.role, stored.tenant_id, stored.secret_hash)
        }
    };
    if !key.matches(&secret_hash) {
        return Err(invalid_key());
    }
    Ok(Principal { key_id: key.id, role, tenant_id })
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
