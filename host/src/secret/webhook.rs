//! Webhook signing secrets in the Standard Webhooks form (`whsec_<base64 of the key>`),
//! and the signature they make: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
//! (https://www.standardwebhooks.com). A receiver verifies with the same secret, e.g.
//! `standardwebhooks.Webhook(secret).verify(body, headers)`.
//!
//! The server's own secret (`COPRA_WEBHOOK_SECRET`) is a [`WebhookRoot`]: it signs
//! nothing itself. Each tenant's signing secret is derived from it with HKDF-SHA256 and
//! the tenant's namespace and secret generation, so every node sharing the root and the
//! database signs a tenant's webhooks with the same secret, and no tenant's secret tells
//! anything about the root or another tenant's.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

/// The prefix Standard Webhooks secrets are written with.
const PREFIX: &str = "whsec_";
/// Bytes of key the specification asks for (24 to 64); a generated key has 32.
const MIN_BYTES: usize = 24;
const MAX_BYTES: usize = 64;
const GENERATED_BYTES: usize = 32;

/// A signing key. Cheap to clone; its `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Arc<hmac::Key>,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Why a written secret was refused. The message never repeats the secret.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("a webhook secret is written `whsec_` followed by base64 (e.g. `whsec_{example}`)", example = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    Form,
    #[error("a webhook secret must hold {MIN_BYTES} to {MAX_BYTES} bytes once base64-decoded; this one holds {0}")]
    Length(usize),
}

/// The bytes of a secret written `whsec_<base64>` (padded or not).
fn decode(text: &str) -> Result<Vec<u8>, WebhookSecretError> {
    let encoded = text.trim().strip_prefix(PREFIX).ok_or(WebhookSecretError::Form)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| WebhookSecretError::Form)?;
    if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
        return Err(WebhookSecretError::Length(bytes.len()));
    }
    Ok(bytes)
}

impl WebhookSecret {
    /// Parse `whsec_<base64>` (padded or not).
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        Ok(Self::from_bytes(&decode(text)?))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        WebhookSecret { key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, bytes)) }
    }

    /// A new random secret, written `whsec_<base64>`.
    pub fn generate() -> String {
        let mut key = [0u8; GENERATED_BYTES];
        SystemRandom::new().fill(&mut key).expect("the system's random source works");
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(key))
    }

    /// The `webhook-signature` header of `body` sent as message `id` at `timestamp`
    /// (Unix seconds, as sent in `webhook-timestamp`).
    pub fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.as_bytes());
        context.update(b".");
        context.update(body);
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(context.sign().as_ref()))
    }
}

/// The server's root secret. It never signs a delivery: it only derives each tenant's
/// signing secret. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct WebhookRoot {
    prk: Arc<hkdf::Prk>,
}

impl fmt::Debug for WebhookRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookRoot(***)")
    }
}

/// HKDF's salt: names what the derived keys are for, so they can never be confused
/// with keys derived from the same root for anything else.
const DERIVATION_SALT: &[u8] = b"copra webhook signing secret v1";

/// How many bytes of key HKDF is asked for.
struct KeyLength(usize);

impl hkdf::KeyType for KeyLength {
    fn len(&self) -> usize {
        self.0
    }
}

/// A tenant's signing secret: as the tenant is told it (`whsec_...`) and as the host
/// signs with it.
#[derive(Clone)]
pub struct DerivedSecret {
    pub text: super::Secret<String>,
    pub secret: WebhookSecret,
}

impl fmt::Debug for DerivedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedSecret(***)")
    }
}

impl WebhookRoot {
    /// Parse the root, written like any Standard Webhooks secret (`whsec_<base64>`).
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        let bytes = decode(text)?;
        Ok(WebhookRoot { prk: Arc::new(hkdf::Salt::new(hkdf::HKDF_SHA256, DERIVATION_SALT).extract(&bytes)) })
    }

    /// The signing secret of the tenant whose namespace is `namespace`, at `generation`
    /// (0 until its first rotation): HKDF-SHA256 of the root, with the namespace and
    /// the generation as its info. The same on every node that has the same root.
    pub fn derive(&self, namespace: &str, generation: i64) -> DerivedSecret {
        let generation = generation.to_string();
        let info: [&[u8]; 4] = [b"tenant\0", namespace.as_bytes(), b"\0", generation.as_bytes()];
        let mut key = [0u8; GENERATED_BYTES];
        self.prk
            .expand(&info, KeyLength(GENERATED_BYTES))
            .and_then(|okm| okm.fill(&mut key))
            .expect("HKDF-SHA256 gives 32 bytes");
        let text = format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(key));
        DerivedSecret { text: super::Secret::new(text), secret: WebhookSecret::from_bytes(&key) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_like_the_reference_implementations() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_checked_and_hidden() {
        let generated = WebhookSecret::generate();
        assert!(generated.starts_with("whsec_"));
        let secret = WebhookSecret::parse(&generated).unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
        assert!(matches!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(WebhookSecretError::Form)));
        assert!(matches!(WebhookSecret::parse("whsec_not base64!"), Err(WebhookSecretError::Form)));
        assert!(matches!(WebhookSecret::parse("whsec_c2hvcnQ="), Err(WebhookSecretError::Length(5))));
        let unpadded = generated.trim_end_matches('=');
        assert!(WebhookSecret::parse(unpadded).is_ok(), "unpadded base64 is accepted");
        let err = WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err().to_string();
        assert!(!err.contains("c2hvcnQ"), "{err}");
    }

    #[test]
    fn tenant_secrets_are_derived_stable_and_distinct() {
        let root = WebhookRoot::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let same_root = WebhookRoot::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let a0 = root.derive("tA", 0);
        assert_eq!(a0.text.expose(), same_root.derive("tA", 0).text.expose(), "the same on every node");
        let texts = [a0.text.expose().clone(), root.derive("tB", 0).text.expose().clone(), root.derive("tA", 1).text.expose().clone()];
        assert!(texts[0] != texts[1] && texts[0] != texts[2] && texts[1] != texts[2], "{texts:?}");
        // A derived secret is a valid Standard Webhooks secret, and signs like its text.
        let parsed = WebhookSecret::parse(a0.text.expose()).unwrap();
        assert_eq!(parsed.sign("msg_1", "1", b"{}"), a0.secret.sign("msg_1", "1", b"{}"));
        // It is not the root, nor does the root sign like it.
        assert!(!a0.text.expose().contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        let root_as_key = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_ne!(root_as_key.sign("msg_1", "1", b"{}"), a0.secret.sign("msg_1", "1", b"{}"));
        // Namespaces that run together are still told apart.
        assert_ne!(root.derive("t1", 23).text.expose(), root.derive("t12", 3).text.expose());
        let other = WebhookRoot::parse(&WebhookSecret::generate()).unwrap();
        assert_ne!(other.derive("tA", 0).text.expose(), a0.text.expose());
        assert_eq!(format!("{root:?} {a0:?}"), "WebhookRoot(***) DerivedSecret(***)");
    }
}
