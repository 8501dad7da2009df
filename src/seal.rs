//! Secrets at rest (bank credentials, and webhook signing secrets in the same envelope):
//! AES-256-GCM under a key from configuration, with key ids so keys can rotate. The owning row's
//! id (a connection's, an endpoint's) is the associated data: a sealed blob copied onto another
//! row fails to open. A leaf: connections and webhooks both use it, neither through the other.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const NONCE_BYTES: usize = 12;

/// What a bank needs to sign a connection in. Never serialised into a response or log: its
/// Debug output is redacted and it only leaves this module sealed.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub user_id: String,
    pub password: String,
    /// Extra fields some banks ask for (a branch code, a second identifier).
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("FEEDWATCH_CREDENTIALS_KEYS is malformed: {0}")]
    BadConfiguration(String),
    #[error("no credentials key `{0}` is configured; it is needed to open stored credentials")]
    UnknownKey(String),
    #[error("stored credentials failed to open (wrong key, or the data was altered)")]
    Corrupt,
}

/// The configured keys: the first seals, all of them open.
#[derive(Clone)]
pub struct Sealer {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("current", &self.current).finish_non_exhaustive()
    }
}

impl Sealer {
    /// Parses `id:base64key[,id:base64key...]`, newest first. Keys are 32 random bytes.
    pub fn from_config(text: &SecretString) -> Result<Self, SealError> {
        let mut keys = HashMap::new();
        let mut current = None;
        for item in text.expose_secret().split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (id, encoded) = item
                .split_once(':')
                .ok_or_else(|| SealError::BadConfiguration("each key is written id:base64".into()))?;
            let id = id.trim();
            if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(SealError::BadConfiguration(format!("key id `{id}` must be 1-32 letters, digits, - or _")));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| SealError::BadConfiguration(format!("key `{id}` is not base64")))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| SealError::BadConfiguration(format!("key `{id}` must be 32 bytes")))?;
            current.get_or_insert_with(|| id.to_owned());
            keys.insert(id.to_owned(), cipher);
        }
        let current = current.ok_or_else(|| SealError::BadConfiguration("no key given".into()))?;
        Ok(Self { current, keys })
    }

    /// A new random key in the configuration format, for first starts and `keys` tooling.
    pub fn generate_config(id: &str) -> SecretString {
        let key: [u8; 32] = rand::random();
        SecretString::from(format!("{id}:{}", base64::engine::general_purpose::STANDARD.encode(key)))
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Seals credentials for one connection; returns the blob and the key id to store.
    pub fn seal(&self, connection_id: Uuid, credentials: &Credentials) -> Result<(Vec<u8>, String), SealError> {
        let cipher = self.keys.get(&self.current).ok_or_else(|| SealError::UnknownKey(self.current.clone()))?;
        let plaintext = serde_json::to_vec(credentials).map_err(|_| SealError::Corrupt)?;
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: &plaintext, aad: connection_id.as_bytes() })
            .map_err(|_| SealError::Corrupt)?;
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&sealed);
        Ok((blob, self.current.clone()))
    }

    pub fn open(&self, connection_id: Uuid, key_id: &str, blob: &[u8]) -> Result<Credentials, SealError> {
        let cipher = self.keys.get(key_id).ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        if blob.len() <= NONCE_BYTES {
            return Err(SealError::Corrupt);
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        let plaintext = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: connection_id.as_bytes() })
            .map_err(|_| SealError::Corrupt)?;
        serde_json::from_slice(&plaintext).map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn credentials() -> Credentials {
        Credentials { user_id: "user_good".into(), password: "pass_good".into(), extra: Default::default() }
    }

    #[test]
    fn sealed_credentials_open_only_for_their_connection() {
        let sealer = Sealer::from_config(&Sealer::generate_config("k1")).unwrap();
        let id = Uuid::new_v4();
        let (blob, key_id) = sealer.seal(id, &credentials()).unwrap();
        assert_eq!(key_id, "k1");
        assert!(!blob.windows(9).any(|window| window == b"pass_good"), "ciphertext hides the password");
        assert_eq!(sealer.open(id, &key_id, &blob).unwrap().password, "pass_good");
        assert_eq!(sealer.open(Uuid::new_v4(), &key_id, &blob).unwrap_err(), SealError::Corrupt);
        let mut tampered = blob.clone();
        tampered[20] ^= 1;
        assert_eq!(sealer.open(id, &key_id, &tampered).unwrap_err(), SealError::Corrupt);
    }

    #[test]
    fn an_old_key_still_opens_after_rotation() {
        let old = Sealer::generate_config("old");
        let new = Sealer::generate_config("new");
        let before = Sealer::from_config(&old).unwrap();
        let id = Uuid::new_v4();
        let (blob, key_id) = before.seal(id, &credentials()).unwrap();
        let rotated =
            Sealer::from_config(&SecretString::from(format!("{},{}", new.expose_secret(), old.expose_secret())))
                .unwrap();
        assert_eq!(rotated.current_key_id(), "new");
        assert_eq!(rotated.open(id, &key_id, &blob).unwrap().user_id, "user_good");
    }

    #[test]
    fn malformed_configuration_is_rejected_without_echoing_keys() {
        for text in ["", "nokey", "k1:not base64!", "k1:AAAA", "bad id:AAAA"] {
            let error = Sealer::from_config(&SecretString::from(text.to_owned())).unwrap_err();
            assert!(matches!(error, SealError::BadConfiguration(_)), "{text}");
        }
        assert!(!format!("{:?}", credentials()).contains("pass_good"));
    }
}
