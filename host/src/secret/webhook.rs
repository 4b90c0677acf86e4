//! Webhook signing secrets in the Standard Webhooks form (`whsec_<base64 of the key>`),
//! and the signature they make: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
//! (https://www.standardwebhooks.com). A receiver verifies with the same secret, e.g.
//! `standardwebhooks.Webhook(secret).verify(body, headers)`.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

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

impl WebhookSecret {
    /// Parse `whsec_<base64>` (padded or not).
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        let encoded = text.trim().strip_prefix(PREFIX).ok_or(WebhookSecretError::Form)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| WebhookSecretError::Form)?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
            return Err(WebhookSecretError::Length(bytes.len()));
        }
        Ok(WebhookSecret { key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, &bytes)) })
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
}
