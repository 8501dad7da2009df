//! Signing secrets in Standard Webhooks form (`whsec_` + base64 of random bytes), sealed at rest
//! with the credentials [`Sealer`], and the `v1` signature: base64 of HMAC-SHA256 over
//! `<webhook-id>.<webhook-timestamp>.<body>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

use crate::seal::{Credentials, SealError, Sealer};

const PREFIX: &str = "whsec_";
/// The specification allows 24 to 64 bytes; 32 is what its reference libraries generate.
const SECRET_BYTES: usize = 32;
/// Marks a sealed blob as a signing secret, not a bank login, should the two ever be confused.
const SEALED_AS: &str = "webhook-signing-secret";

/// A new random secret, in the form receivers paste into their Standard Webhooks library.
pub fn generate() -> SecretString {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    SecretString::from(format!("{PREFIX}{}", STANDARD.encode(bytes)))
}

/// The HMAC key a secret stands for; None if it is not in `whsec_<base64>` form.
pub fn key(secret: &SecretString) -> Option<Vec<u8>> {
    let encoded = secret.expose_secret().strip_prefix(PREFIX)?;
    STANDARD.decode(encoded).ok().filter(|bytes| !bytes.is_empty())
}

/// The `webhook-signature` header value for one attempt.
pub fn sign(key: &[u8], message_id: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Seals a secret for one endpoint: the endpoint id is the associated data, so the blob opens
/// on no other row. Reuses the credentials envelope rather than a second key scheme, so key
/// rotation (`feedwatch keys rotate-credentials`) has one key list to manage.
pub fn seal(sealer: &Sealer, endpoint_id: Uuid, secret: &SecretString) -> Result<(Vec<u8>, String), SealError> {
    let envelope = Credentials {
        user_id: SEALED_AS.to_owned(),
        password: secret.expose_secret().to_owned(),
        extra: Default::default(),
    };
    sealer.seal(endpoint_id, &envelope)
}

pub fn open(sealer: &Sealer, endpoint_id: Uuid, key_id: &str, blob: &[u8]) -> Result<SecretString, SealError> {
    let envelope = sealer.open(endpoint_id, key_id, blob)?;
    if envelope.user_id != SEALED_AS {
        return Err(SealError::Corrupt);
    }
    Ok(SecretString::from(envelope.password))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn generated_secrets_have_the_standard_form() {
        let secret = generate();
        assert!(secret.expose_secret().starts_with("whsec_"));
        assert_eq!(key(&secret).unwrap().len(), SECRET_BYTES);
        assert_ne!(generate().expose_secret(), secret.expose_secret());
        assert!(key(&SecretString::from("not-a-secret".to_owned())).is_none());
        assert!(key(&SecretString::from("whsec_".to_owned())).is_none());
    }

    #[test]
    fn signatures_match_the_specification_example() {
        // The example from the Standard Webhooks reference libraries' test suites.
        let key = key(&SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned())).unwrap();
        let signature = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, r#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn sealed_secrets_open_only_for_their_endpoint() {
        let sealer = Sealer::from_config(&Sealer::generate_config("k1")).unwrap();
        let (id, other) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = generate();
        let (blob, key_id) = seal(&sealer, id, &secret).unwrap();
        assert_eq!(open(&sealer, id, &key_id, &blob).unwrap().expose_secret(), secret.expose_secret());
        assert!(open(&sealer, other, &key_id, &blob).is_err());
        let credentials = Credentials { user_id: "u".into(), password: "p".into(), extra: Default::default() };
        let (login, key_id) = sealer.seal(id, &credentials).unwrap();
        assert_eq!(open(&sealer, id, &key_id, &login).unwrap_err(), SealError::Corrupt, "a bank login is no secret");
    }
}
