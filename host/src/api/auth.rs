//! Basic auth with the API key as the username (Coconut's scheme). Handlers take an
//! [`ApiKey`] argument, so a route cannot forget to check it.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{AppState, error::ApiError};

/// The caller, known by a hash of their key: jobs are stored under it, so the key
/// itself never reaches the database.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub owner: String,
}

/// Accepted keys, by their owner hash.
#[derive(Debug, Default)]
pub struct Keys {
    owners: HashMap<String, String>,
}

impl Keys {
    pub fn new(keys: &[String]) -> Self {
        Keys { owners: keys.iter().map(|k| (k.clone(), owner_of(k))).collect() }
    }

    fn owner(&self, key: &str) -> Option<&str> {
        self.owners.get(key).map(String::as_str)
    }
}

pub fn owner_of(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or(ApiError::Unauthorized)?;
        let owner = state.keys.owner(&key).ok_or(ApiError::Unauthorized)?;
        Ok(ApiKey { owner: owner.to_string() })
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
    fn username_is_read_with_or_without_password() {
        let enc = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert_eq!(basic_username(&enc("k123:")).as_deref(), Some("k123"));
        assert_eq!(basic_username(&enc("k123")).as_deref(), Some("k123"));
        assert_eq!(basic_username(&enc(":pw")), None);
        assert_eq!(basic_username("Bearer abc"), None);
    }
}
