//! Secrets: a wrapper whose `Debug` and `Display` never show the value, and the sealing
//! of secrets kept at rest (a job's spec holds storage credentials, webhook URLs and
//! presigned URLs) with an AEAD key from the config or generated into the data directory.

pub mod webhook;

use std::fmt;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

pub use webhook::{DerivedSecret, WebhookRoot, WebhookSecret};

/// A value that must not reach a log line or an error message by accident.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself, for the one place that needs it (a comparison, a request).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Whether an option or field name looks like it holds a credential.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "password", "passwd", "token", "credential", "private", "key", "sas", "signature", "auth"]
        .iter()
        .any(|word| name.contains(word))
        // Names of places, not secrets.
        && !matches!(name.as_str(), "key_id" | "object_key" | "bucket_key")
}

/// Where a presigned or credentialed URL points, without what grants access to it: the
/// URL with no user info, query or fragment. An output uploaded to a presigned PUT URL
/// is reported at this address, so the signature is kept nowhere.
pub fn location_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => String::new(),
    }
}

/// A URL for a log line: no user info, no query (presigned URLs carry their signature
/// there), no fragment.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let had_query = parsed.query().is_some();
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            let mut text = parsed.to_string();
            if had_query {
                text.push_str("?***");
            }
            text
        }
        Err(_) => "<not a URL>".to_string(),
    }
}

/// A JSON block (storage, notification, input) fit for a log line: fields whose names
/// look like credentials become `***`, and URLs lose their query and user info.
pub fn redact_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_name(k) && !v.is_null() { Value::String("***".into()) } else { redact_json(v) };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::String(text) if text.contains("://") => Value::String(redact_url(text)),
        other => other.clone(),
    }
}

/// Prefix of sealed text; anything else is read as it was stored (rows written before
/// sealing existed).
const SEALED: &str = "sealed:v1:";

/// Seals and opens secrets at rest with AES-256-GCM and a random nonce per value.
#[derive(Clone)]
pub struct Sealer {
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the sealed value is damaged or was sealed with another key (is COPRA_SECRET_KEY the same on every node?)")]
    Open,
    #[error("the secret key must be 32 bytes, as 64 hex digits or base64")]
    Key,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("AES-256 takes a 32-byte key");
        Sealer { key: LessSafeKey::new(unbound) }
    }

    /// Parse a key written as 64 hex digits or as base64 of 32 bytes.
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .ok_or(SealError::Key)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::Key)?;
        Ok(Sealer::new(&key))
    }

    /// A new random key, as 64 hex digits.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        SystemRandom::new().fill(&mut key).expect("the system's random source works");
        hex::encode(key)
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system's random source works");
        let mut data = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .expect("sealing a value in memory cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!("{SEALED}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(out))
    }

    /// Open a sealed value; text that was never sealed comes back as it is.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(encoded) = stored.strip_prefix(SEALED) else { return Ok(stored.to_string()) };
        let mut data = base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded).map_err(|_| SealError::Open)?;
        if data.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let nonce: [u8; NONCE_LEN] = data[..NONCE_LEN].try_into().map_err(|_| SealError::Open)?;
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data[NONCE_LEN..])
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let sealer = Sealer::from_text(&Sealer::generate_key()).unwrap();
        let sealed = sealer.seal(r#"{"secret_access_key":"abc"}"#);
        assert!(sealed.starts_with(SEALED) && !sealed.contains("abc"));
        assert_ne!(sealed, sealer.seal(r#"{"secret_access_key":"abc"}"#), "a fresh nonce every time");
        assert_eq!(sealer.open(&sealed).unwrap(), r#"{"secret_access_key":"abc"}"#);
        let other = Sealer::from_text(&Sealer::generate_key()).unwrap();
        assert!(other.open(&sealed).is_err());
        assert_eq!(sealer.open("{\"plain\":1}").unwrap(), "{\"plain\":1}", "rows from before sealing");
        let mut damaged = sealed.clone();
        damaged.pop();
        assert!(sealer.open(&damaged).is_err());
    }

    #[test]
    fn keys_are_hex_or_base64_of_32_bytes() {
        assert!(Sealer::from_text(&"ab".repeat(32)).is_ok());
        assert!(Sealer::from_text(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).is_ok());
        assert!(Sealer::from_text("short").is_err());
        assert_eq!(format!("{:?}", Sealer::from_text(&"ab".repeat(32)).unwrap()), "Sealer(***)");
    }

    #[test]
    fn secrets_and_urls_are_hidden_in_text() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(redact_url("https://u:p@bucket.s3.amazonaws.com/a.mp4?X-Amz-Signature=abc"), "https://bucket.s3.amazonaws.com/a.mp4?***");
        assert_eq!(location_of("https://u:p@b.example/a.mp4?X-Amz-Signature=abc#f"), "https://b.example/a.mp4");
        assert!(is_secret_name("secret_access_key") && is_secret_name("account_key") && is_secret_name("sas_token"));
        assert!(!is_secret_name("bucket") && !is_secret_name("region") && !is_secret_name("endpoint"));
        let block = serde_json::json!({"service": "s3", "credentials": {"access_key_id": "AK", "secret_access_key": "SK"}, "url": "https://h/x?sig=1"});
        let shown = redact_json(&block).to_string();
        assert!(!shown.contains("SK") && !shown.contains("AK") && !shown.contains("sig=1") && shown.contains("s3"), "{shown}");
    }
}
