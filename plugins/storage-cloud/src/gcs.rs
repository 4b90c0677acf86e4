//! `gcs`: Google Cloud Storage (opendal `gcs`). Objects are at
//! `https://storage.googleapis.com/{bucket}/{key}`.

use base64::Engine;
use copra_sdk::config::{invalid, parse};
use copra_sdk::storage::OpendalTarget;
use copra_sdk::{Error, Json, Secret};
use serde::{Deserialize, Deserializer};

use crate::common::{endpoint, option};

const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// A `gcs` storage block.
#[derive(Debug, Deserialize)]
struct GcsConfig {
    /// The bucket files go to: 3 to 222 lowercase letters, digits, dashes, underscores
    /// and dots.
    bucket: String,
    /// Replaces `https://storage.googleapis.com` (an emulator).
    #[serde(default)]
    endpoint: Option<String>,
    /// A service account's key, or an access token.
    credentials: GcsCredentials,
}

/// How to sign in: a service account's key (the host signs its own tokens with it) or
/// an OAuth2 access token. Nothing else: no credential file, no external or
/// impersonated account, no instance metadata.
#[derive(Debug, Deserialize)]
struct GcsCredentials {
    /// The service account's JSON key as Google gives it, as an object or as that JSON
    /// in a string (`service_account_json` and `key` are read too).
    #[serde(default, alias = "service_account_json", alias = "key")]
    service_account: Option<ServiceAccountKey>,
    /// An OAuth2 access token (`access_token` is read too), when there is no key.
    #[serde(default, alias = "access_token")]
    token: Option<Secret>,
}

/// A service account's JSON key, checked (`"type": "service_account"`, a client email,
/// a PEM private key) and kept as JSON text that `Debug` does not show.
#[derive(Debug)]
struct ServiceAccountKey(Secret);

impl<'de> Deserialize<'de> for ServiceAccountKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let key = match Json::deserialize(deserializer)? {
            Json::String(text) => serde_json::from_str::<Json>(&text).map_err(|_| D::Error::custom("is not valid: expected a service account's JSON key"))?,
            object @ Json::Object(_) => object,
            _ => return Err(D::Error::custom("is not valid: expected a service account's JSON key (an object or a string)")),
        };
        if key.get("type").and_then(Json::as_str) != Some("service_account") {
            return Err(D::Error::custom("is not valid: expected a key of \"type\": \"service_account\""));
        }
        for field in ["client_email", "private_key"] {
            if key.get(field).and_then(Json::as_str).is_none_or(str::is_empty) {
                return Err(D::Error::custom(format!("is not valid: it has no {field}")));
            }
        }
        if !key["private_key"].as_str().unwrap_or_default().contains("-----BEGIN") {
            return Err(D::Error::custom("is not valid: its private_key is not a PEM key"));
        }
        Ok(ServiceAccountKey(Secret::new(key.to_string())))
    }
}

pub fn target(block: &Json) -> Result<OpendalTarget, Error> {
    let config: GcsConfig = parse(block)?;
    let bucket = config.bucket.as_str();
    if !is_bucket_name(bucket) {
        return Err(invalid("bucket", "is not valid: expected 3 to 222 lowercase letters, digits, dashes, underscores and dots"));
    }
    let mut options = vec![option("bucket", bucket), option("root", "/")];
    match (&config.credentials.service_account, &config.credentials.token) {
        (Some(ServiceAccountKey(key)), _) => options.push(option("credential", &base64::engine::general_purpose::STANDARD.encode(key.expose()))),
        (None, Some(token)) => options.push(option("token", token.expose())),
        (None, None) => return Err(invalid("credentials.service_account", "is missing (the service account's JSON key)")),
    }
    let endpoint = endpoint(config.endpoint.as_deref())?;
    if let Some(endpoint) = &endpoint {
        options.push(option("endpoint", endpoint));
    }
    options.push(option("disable_config_load", "true"));
    options.push(option("disable_vm_metadata", "true"));
    let base = endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    Ok(OpendalTarget { scheme: "gcs".into(), options, url_base: format!("{base}/{bucket}") })
}

/// Bucket names: 3-222 lowercase letters, digits, dashes, underscores and dots.
fn is_bucket_name(name: &str) -> bool {
    (3..=222).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;
    use serde_json::json;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n";

    fn option<'a>(t: &'a OpendalTarget, key: &str) -> Option<&'a str> {
        t.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_service_account_object_or_string_is_the_credential() {
        let key = json!({"type":"service_account","client_email":"a@p.iam.gserviceaccount.com","private_key":PEM});
        for sa in [key.clone(), Json::String(key.to_string())] {
            let t = target(&json!({"service":"gcs","bucket":"media","credentials":{"service_account":sa}})).unwrap();
            assert_eq!(t.scheme, "gcs");
            assert_eq!(t.url_base, "https://storage.googleapis.com/media");
            let decoded = base64::engine::general_purpose::STANDARD.decode(option(&t, "credential").unwrap()).unwrap();
            assert_eq!(serde_json::from_slice::<Json>(&decoded).unwrap(), key);
            assert_eq!(option(&t, "disable_vm_metadata"), Some("true"));
            assert_eq!(option(&t, "endpoint"), None);
        }
    }

    #[test]
    fn token_and_endpoint_override() {
        let t = target(&json!({"bucket":"media","endpoint":"http://127.0.0.1:9023/","credentials":{"token":"ya29.x"}})).unwrap();
        assert_eq!(t.url_base, "http://127.0.0.1:9023/media");
        assert_eq!(option(&t, "token"), Some("ya29.x"));
        assert_eq!(option(&t, "endpoint"), Some("http://127.0.0.1:9023"));
    }

    #[test]
    fn missing_or_malformed_credentials_name_the_field() {
        let cases = [
            (json!({"bucket":"media"}), "credentials is missing"),
            (json!({"bucket":"media","credentials":{}}), "credentials.service_account is missing"),
            (json!({"bucket":"media","credentials":{"service_account":"{not json"}}), "credentials.service_account is not valid"),
            (json!({"bucket":"media","credentials":{"service_account":{"type":"external_account"}}}), "service_account"),
            (json!({"bucket":"media","credentials":{"service_account":{"type":"service_account","private_key":PEM}}}), "client_email"),
            (json!({"bucket":"media","credentials":{"service_account":{"type":"service_account","client_email":"a@b","private_key":"x"}}}), "PEM"),
            (json!({"bucket":"media","credentials":{"service_account":5}}), "an object or a string"),
        ];
        for (spec, named) in cases {
            let err = target(&spec).unwrap_err();
            assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID, "{spec}");
            assert!(err.message.contains(named), "{spec}: {}", err.message);
        }
        assert_eq!(target(&json!({"credentials":{"token":"t"}})).unwrap_err().code, codes::STORAGE_NOT_VALID);
        assert_eq!(target(&json!({"bucket":"Up","credentials":{"token":"t"}})).unwrap_err().code, codes::STORAGE_NOT_VALID);
    }

    #[test]
    fn the_config_prints_no_secret() {
        let key = json!({"type":"service_account","client_email":"a@p.iam.gserviceaccount.com","private_key":PEM});
        let config: GcsConfig = parse(&json!({"bucket":"media","credentials":{"service_account":key}})).unwrap();
        assert!(!format!("{config:?}").contains("BEGIN"));
    }
}
