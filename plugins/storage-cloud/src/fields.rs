//! Reading a storage block's fields, with errors that name the field: a missing or
//! malformed credential is `storage_credentials_not_valid`, anything else in the block
//! is `storage_not_valid`.

use copra_sdk::{Error, Json};

/// The first of `names` present in `block` as a non-empty string. A present field of
/// another type is an error naming it (`credentials` says which code).
pub fn text<'a>(block: &'a Json, names: &[&str], what: &str, credential: bool) -> Result<Option<&'a str>, Error> {
    for name in names {
        match block.get(*name) {
            None | Some(Json::Null) => continue,
            Some(Json::String(s)) if s.is_empty() => continue,
            Some(Json::String(s)) => return Ok(Some(s)),
            Some(_) => {
                let message = format!("The {what} '{name}' must be a string.");
                return Err(if credential { Error::credentials(message) } else { Error::storage(message) });
            }
        }
    }
    Ok(None)
}

/// `names` joined for a message: `'account_name' (or 'account')`.
pub fn named(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [first] => format!("'{first}'"),
        [first, rest @ ..] => format!("'{first}' (or {})", rest.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")),
    }
}

/// A required storage field (not a credential).
pub fn required<'a>(block: &'a Json, names: &[&str], service: &str) -> Result<&'a str, Error> {
    text(block, names, &format!("{service} storage field"), false)?
        .ok_or_else(|| Error::storage(format!("The {service} storage must define {}.", named(names))))
}

/// The block's `credentials` object; absent or not an object is a credentials error.
pub fn credentials<'a>(block: &'a Json, service: &str, expected: &str) -> Result<&'a Json, Error> {
    match block.get("credentials") {
        Some(c @ Json::Object(_)) => Ok(c),
        _ => Err(Error::credentials(format!(
            "The storage credentials are not correct: the {service} storage needs a 'credentials' object with {expected}."
        ))),
    }
}

/// A credential field that may be absent.
pub fn credential<'a>(creds: &'a Json, names: &[&str], service: &str) -> Result<Option<&'a str>, Error> {
    text(creds, names, &format!("{service} storage credential"), true)
}

/// A credential field that must be present.
pub fn require_credential<'a>(creds: &'a Json, names: &[&str], service: &str) -> Result<&'a str, Error> {
    credential(creds, names, service)?.ok_or_else(|| {
        Error::credentials(format!("The storage credentials are not correct: the {service} storage needs {}.", named(names)))
    })
}

/// An `endpoint` override: an http(s) URL, without its trailing slash.
pub fn endpoint(block: &Json, service: &str) -> Result<Option<String>, Error> {
    let Some(endpoint) = text(block, &["endpoint"], &format!("{service} storage field"), false)? else { return Ok(None) };
    url::Url::parse(endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .map(|u| Some(u.as_str().trim_end_matches('/').to_string()))
        .ok_or_else(|| Error::storage(format!("The {service} storage endpoint '{endpoint}' is not an http(s) URL.")))
}

pub fn option(key: &str, value: &str) -> (String, String) {
    (key.to_string(), value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;

    #[test]
    fn errors_name_the_field_and_pick_the_code() {
        let block = serde_json::json!({"credentials": {"account": 5}});
        let creds = credentials(&block, "azure", "x").unwrap();
        let err = require_credential(creds, &["account_name", "account"], "azure").unwrap_err();
        assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
        assert!(err.message.contains("'account' must be a string"), "{}", err.message);
        let err = require_credential(creds, &["account_key", "access_key"], "azure").unwrap_err();
        assert!(err.message.contains("'account_key' (or 'access_key')"), "{}", err.message);
        let err = credentials(&serde_json::json!({"credentials": "k:s"}), "azure", "x").unwrap_err();
        assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
        let err = required(&serde_json::json!({}), &["container"], "azure").unwrap_err();
        assert_eq!(err.code, codes::STORAGE_NOT_VALID);
        assert!(endpoint(&serde_json::json!({"endpoint": "ftp://x"}), "azure").is_err());
        assert_eq!(endpoint(&serde_json::json!({"endpoint": "http://127.0.0.1:1/a/"}), "azure").unwrap().unwrap(), "http://127.0.0.1:1/a");
    }
}
