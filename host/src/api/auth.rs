//! Basic auth with the API key as the username (Coconut's scheme). Handlers take an
//! [`ApiKey`] argument, so a route cannot forget to check it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{AppState, error::ApiError};
use crate::secret::Secret;
use crate::tenant::Tenant;

/// The caller: the tenant its key stands for. Jobs are stored under the tenant's owner
/// id (a hash of the key), so the key itself never reaches the database.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub owner: String,
    pub tenant: Tenant,
}

/// Accepted keys, kept only as SHA-256 digests: a presented key is hashed and compared
/// with every digest in constant time, so neither the comparison nor the lookup tells an
/// attacker how close a guess was.
#[derive(Debug, Default)]
pub struct Keys {
    keys: Vec<([u8; 32], Tenant)>,
}

impl Keys {
    pub fn new(keys: &[Secret<String>]) -> Self {
        Keys { keys: keys.iter().map(|k| (digest(k.expose()), Tenant::of_key(k.expose()))).collect() }
    }

    fn find(&self, presented: &str) -> Option<&Tenant> {
        let presented = digest(presented);
        // Every digest is compared, whatever matched before.
        self.keys.iter().fold(None, |found, (key, tenant)| if constant_time_eq(key, &presented) { Some(tenant) } else { found })
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether a presented secret is the expected one: both are hashed to the same length
/// first, then compared in constant time.
pub fn key_matches(presented: &str, expected: &Secret<String>) -> bool {
    constant_time_eq(&digest(presented), &digest(expected.expose()))
}

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or(ApiError::Unauthorized)?;
        let tenant = state.keys.find(&key).ok_or(ApiError::Unauthorized)?;
        Ok(ApiKey { owner: tenant.owner().to_string(), tenant: tenant.clone() })
    }
}

/// The key a request presents: the username of `Basic` auth (Coconut's way) or a
/// `Bearer` token.
pub fn presented_key(parts: &Parts) -> Option<String> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = header.strip_prefix("Bearer ") {
        return Some(token.trim().to_string()).filter(|t| !t.is_empty());
    }
    basic_username(header)
}

/// Compare secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The username of a `Basic` authorization header.
fn basic_username(header: &str) -> Option<String> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let username = text.split_once(':').map(|(user, _)| user).unwrap_or(&text);
    (!username.is_empty()).then(|| username.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_digest_only() {
        let keys = Keys::new(&[Secret::new("key-a".to_string()), Secret::new("key-b".to_string())]);
        assert_eq!(keys.find("key-b").unwrap(), &Tenant::of_key("key-b"));
        assert!(keys.find("key-").is_none() && keys.find("").is_none() && keys.find("key-a ").is_none());
        assert!(!format!("{keys:?}").contains("key-a"), "no key in Debug output");
        assert!(key_matches("admin-1", &Secret::new("admin-1".into())) && !key_matches("admin-", &Secret::new("admin-1".into())));
    }

    #[test]
    fn username_is_read_with_or_without_password() {
        let enc = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert_eq!(basic_username(&enc("k123:")).as_deref(), Some("k123"));
        assert_eq!(basic_username(&enc("k123")).as_deref(), Some("k123"));
        assert_eq!(basic_username(&enc(":pw")), None);
        assert_eq!(basic_username("Bearer abc"), None);
    }
}
