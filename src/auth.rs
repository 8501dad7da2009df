//! API keys. A key is `fw_<id>_<secret>`: the id finds the row, the secret is 32 random bytes
//! of which only a SHA-256 digest is stored and compared in constant time.

pub mod cache;
pub mod store;
pub mod throttle;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything: keys, catalogue edits, purges.
    Admin,
    /// Reads every tenant; guarded actions such as refreshes.
    Helpdesk,
    /// One tenant's data only.
    Tenant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Helpdesk => "helpdesk",
            Role::Tenant => "tenant",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "helpdesk" => Some(Role::Helpdesk),
            "tenant" => Some(Role::Tenant),
            _ => None,
        }
    }
}

/// The caller a verified key stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: Uuid,
    pub role: Role,
    /// Set iff `role` is `Tenant`.
    pub tenant_id: Option<Uuid>,
}

impl Principal {
    /// Whether this caller may see data of `tenant_id`. Callers answer 404, not 403, when it
    /// may not, so a tenant cannot probe for another tenant's resources.
    pub fn can_see_tenant(&self, tenant_id: Uuid) -> bool {
        self.role != Role::Tenant || self.tenant_id == Some(tenant_id)
    }

    /// The tenant a list or count asked for `asked` covers: a tenant key always its own, and
    /// asking for another tenant finds nothing (the nil tenant), never an error that tells.
    pub fn scope_tenant(&self, asked: Option<Uuid>) -> Option<Uuid> {
        match self.tenant_id {
            Some(own) if asked.is_some_and(|asked| asked != own) => Some(Uuid::nil()),
            Some(own) => Some(own),
            None => asked,
        }
    }
}

/// A freshly generated key: the full text is shown once and never stored.
#[derive(Debug)]
pub struct NewKey {
    pub id: Uuid,
    pub text: SecretString,
    pub secret_hash: [u8; 32],
}

const PREFIX: &str = "fw_";

impl NewKey {
    pub fn generate() -> Self {
        let id = Uuid::new_v4();
        let secret: [u8; 32] = rand::random();
        let secret_text = hex::encode(secret);
        Self {
            id,
            text: SecretString::from(format!("{PREFIX}{}_{secret_text}", id.simple())),
            secret_hash: digest(&secret_text),
        }
    }
}

/// A key as presented by a caller: its id and the digest of its secret. The secret's text is
/// digested while parsing and not kept, so nothing of it outlives the parse, and a request
/// allocates nothing for it.
#[derive(Debug)]
pub struct PresentedKey {
    pub id: Uuid,
    secret_digest: [u8; 32],
}

impl PresentedKey {
    /// Splits `fw_<id>_<secret>`; anything else is not a key.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self { id: Uuid::try_parse(id).ok()?, secret_digest: digest(secret) })
    }

    /// Whether this key's secret matches a stored digest, compared in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.secret_digest.ct_eq(stored_hash).into()
    }

    /// The digest to store when a configured key (the bootstrap key) is registered.
    pub fn secret_hash(&self) -> [u8; 32] {
        self.secret_digest
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_its_hash() {
        let key = NewKey::generate();
        let presented = PresentedKey::parse(key.text.expose_secret()).expect("parses");
        assert_eq!(presented.id, key.id);
        assert!(presented.matches(&key.secret_hash));
        assert!(!presented.matches(&[0u8; 32]));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for text in ["", "fw_", "fw_abc_def", "xx_00000000000000000000000000000000_00", "Bearer x"] {
            assert!(PresentedKey::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn tenants_see_only_their_own_tenant() {
        let tenant = Uuid::new_v4();
        let principal = Principal { key_id: Uuid::nil(), role: Role::Tenant, tenant_id: Some(tenant) };
        assert!(principal.can_see_tenant(tenant));
        assert!(!principal.can_see_tenant(Uuid::new_v4()));
        let helpdesk = Principal { key_id: Uuid::nil(), role: Role::Helpdesk, tenant_id: None };
        assert!(helpdesk.can_see_tenant(tenant));
    }

    #[test]
    fn tenant_keys_are_held_to_their_tenant() {
        let own = Uuid::new_v4();
        let tenant = Principal { key_id: Uuid::new_v4(), role: Role::Tenant, tenant_id: Some(own) };
        assert_eq!(tenant.scope_tenant(None), Some(own));
        assert_eq!(tenant.scope_tenant(Some(own)), Some(own));
        assert_eq!(tenant.scope_tenant(Some(Uuid::new_v4())), Some(Uuid::nil()));
        let helpdesk = Principal { key_id: Uuid::new_v4(), role: Role::Helpdesk, tenant_id: None };
        assert_eq!(helpdesk.scope_tenant(None), None);
        assert_eq!(helpdesk.scope_tenant(Some(own)), Some(own));
    }
}
