//! Typed configs: a storage block deserialised into a provider's own struct, with
//! errors that name the field (`credentials.secret_access_key is missing`).
//!
//! Shaped like opendal's services: each provider declares a `serde` struct with a doc
//! comment on every field and [`crate::Secret`] for what must not be printed, and calls
//! [`parse`] in `resolve`. Fields the struct does not name (the block's `service`,
//! `path`, ...) are ignored.

use serde::de::DeserializeOwned;

use crate::{Error, Json, codes};

/// The top-level field whose errors are `storage_credentials_not_valid`; every other
/// field's are `storage_not_valid`.
pub const CREDENTIALS: &str = "credentials";

/// Deserialise a storage block into `T`. A missing, empty or mistyped field is an error
/// naming it by its dotted path; errors under `credentials` carry the code
/// `storage_credentials_not_valid`, the others `storage_not_valid`. Messages never
/// quote the value that was given (it may be a secret).
pub fn parse<T: DeserializeOwned>(spec: &Json) -> Result<T, Error> {
    serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        field_error(if path == "." { "" } else { &path }, &e.inner().to_string())
    })
}

/// The error for `path` (dotted, "" for the block itself) given serde's message.
fn field_error(path: &str, message: &str) -> Error {
    let join = |field: &str| if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
    let (field, what) = if let Some(name) = quoted_after(message, "missing field `") {
        (join(name), "is missing".to_string())
    } else if let Some((_, expected)) = message.split_once("expected ") {
        let expected = expected.trim_end_matches('.');
        let expected = if expected.starts_with("struct ") || expected.starts_with("a map") { "an object" } else { expected };
        (path.to_string(), format!("is not valid: expected {expected}"))
    } else {
        (path.to_string(), message.to_string())
    };
    invalid(&field, &what)
}

/// The error for a field a provider's own checks refuse after [`parse`] (a name that
/// is not a bucket name, a key that is not base64), in the same shape:
/// `The storage field {field} {what}.`, with the code of its place (`field` dotted,
/// `credentials.account_key`; "" for the block itself). Never put the value given in
/// `what` for a field under `credentials`.
pub fn invalid(field: &str, what: &str) -> Error {
    let field = if field.is_empty() { "the storage block" } else { field };
    let message = format!("The storage field {field} {what}.");
    if field == CREDENTIALS || field.starts_with(&format!("{CREDENTIALS}.")) {
        Error::new(codes::STORAGE_CREDENTIALS_NOT_VALID, message)
    } else {
        Error::new(codes::STORAGE_NOT_VALID, message)
    }
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.split_once(prefix).and_then(|(_, rest)| rest.split_once('`')).map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use serde::Deserialize;

    /// A provider's config as an author writes it.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Config {
        bucket: String,
        #[serde(default)]
        region: Option<String>,
        credentials: Credentials,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Credentials {
        access_key_id: String,
        secret_access_key: Secret,
    }

    fn parse_str(text: &str) -> Result<Config, Error> {
        parse(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn a_missing_credential_is_named_with_its_path() {
        let err = parse_str(r#"{"bucket":"b","credentials":{"access_key_id":"k"}}"#).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
        assert_eq!(err.message, "The storage field credentials.secret_access_key is missing.");
        let err = parse_str(r#"{"bucket":"b"}"#).unwrap_err();
        assert_eq!((err.code.as_str(), err.message.as_str()), (codes::STORAGE_CREDENTIALS_NOT_VALID, "The storage field credentials is missing."));
    }

    #[test]
    fn malformed_credentials_never_quote_the_value() {
        let err = parse_str(r#"{"bucket":"b","credentials":{"access_key_id":"k","secret_access_key":987654}}"#).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
        assert_eq!(err.message, "The storage field credentials.secret_access_key is not valid: expected a string.");
        let err = parse_str(r#"{"bucket":"b","credentials":{"access_key_id":"k","secret_access_key":""}}"#).unwrap_err();
        assert_eq!(err.message, "The storage field credentials.secret_access_key is empty.");
        let err = parse_str(r#"{"bucket":"b","credentials":"key:secret-value"}"#).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
        assert!(!err.message.contains("secret-value"), "{}", err.message);
        assert!(err.message.contains("credentials is not valid: expected an object"), "{}", err.message);
    }

    #[test]
    fn other_fields_are_storage_errors() {
        let err = parse_str(r#"{"credentials":{"access_key_id":"k","secret_access_key":"s"}}"#).unwrap_err();
        assert_eq!((err.code.as_str(), err.message.as_str()), (codes::STORAGE_NOT_VALID, "The storage field bucket is missing."));
        let err = parse_str(r#"{"bucket":"b","region":5,"credentials":{"access_key_id":"k","secret_access_key":"s"}}"#).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_NOT_VALID);
        assert!(err.message.starts_with("The storage field region is not valid"), "{}", err.message);
        let ok = parse_str(r#"{"service":"x","path":"/p","bucket":"b","credentials":{"access_key_id":"k","secret_access_key":"s"}}"#).unwrap();
        assert_eq!(ok.credentials.secret_access_key.expose(), "s");
    }
}
