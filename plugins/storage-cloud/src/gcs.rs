//! `gcs`: Google Cloud Storage (opendal `gcs`). The block names a `bucket` and
//! `credentials` with a `service_account` key (the JSON object Google gives, or that
//! JSON as a string), or an OAuth2 access `token`; `endpoint` overrides
//! `https://storage.googleapis.com` (an emulator). Objects are at
//! `https://storage.googleapis.com/{bucket}/{key}`.

use base64::Engine;
use copra_sdk::storage::OpendalTarget;
use copra_sdk::{Error, Json};

use crate::fields::{self, option};

const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
const SERVICE_ACCOUNT: &[&str] = &["service_account", "service_account_json", "key"];

pub fn target(block: &Json) -> Result<OpendalTarget, Error> {
    let bucket = fields::required(block, &["bucket"], "gcs")?;
    if !is_bucket_name(bucket) {
        return Err(Error::storage(format!("The gcs bucket '{bucket}' is not a bucket name.")));
    }
    let creds = fields::credentials(block, "gcs", "'service_account' (the service account's JSON key)")?;
    let mut options = vec![option("bucket", bucket), option("root", "/")];
    match service_account(creds)? {
        Some(key) => options.push(option("credential", &base64::engine::general_purpose::STANDARD.encode(key))),
        None => match fields::credential(creds, &["token", "access_token"], "gcs")? {
            Some(token) => options.push(option("token", token)),
            None => {
                return Err(Error::credentials(
                    "The storage credentials are not correct: the gcs storage needs 'service_account' (the service account's JSON key).",
                ));
            }
        },
    }
    let endpoint = fields::endpoint(block, "gcs")?;
    if let Some(endpoint) = &endpoint {
        options.push(option("endpoint", endpoint));
    }
    options.push(option("disable_config_load", "true"));
    options.push(option("disable_vm_metadata", "true"));
    let base = endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    Ok(OpendalTarget { scheme: "gcs".into(), options, url_base: format!("{base}/{bucket}") })
}

/// The service account key as JSON text, checked field by field.
fn service_account(creds: &Json) -> Result<Option<String>, Error> {
    let Some((name, value)) = SERVICE_ACCOUNT.iter().find_map(|n| creds.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v))) else {
        return Ok(None);
    };
    let bad = |why: &str| Error::credentials(format!("The storage credentials are not correct: the gcs '{name}' {why}."));
    let key: Json = match value {
        Json::Object(_) => value.clone(),
        Json::String(text) => serde_json::from_str(text).map_err(|_| bad("is not a service account's JSON key"))?,
        _ => return Err(bad("must be the service account's JSON key (an object or a string)")),
    };
    if key.get("type").and_then(Json::as_str) != Some("service_account") {
        return Err(bad("must be a key of \"type\": \"service_account\""));
    }
    for field in ["client_email", "private_key"] {
        if key.get(field).and_then(Json::as_str).is_none_or(str::is_empty) {
            return Err(bad(&format!("has no '{field}'")));
        }
    }
    if !key["private_key"].as_str().unwrap_or("").contains("-----BEGIN") {
        return Err(bad("has a 'private_key' that is not a PEM key"));
    }
    Ok(Some(key.to_string()))
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
            (json!({"bucket":"media"}), "'credentials'"),
            (json!({"bucket":"media","credentials":{}}), "'service_account'"),
            (json!({"bucket":"media","credentials":{"service_account":"{not json"}}), "'service_account' is not"),
            (json!({"bucket":"media","credentials":{"service_account":{"type":"external_account"}}}), "service_account"),
            (json!({"bucket":"media","credentials":{"service_account":{"type":"service_account","private_key":PEM}}}), "'client_email'"),
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
}
