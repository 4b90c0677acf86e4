//! What the providers share: the `endpoint` override, opendal options, and checks that
//! name the field they refuse (`copra_sdk::config::invalid`).

use copra_sdk::config::invalid;
use copra_sdk::Error;

/// An http(s) URL given for `field`, without its trailing slash.
pub fn http_url(url: &str, field: &str) -> Result<String, Error> {
    url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .ok_or_else(|| invalid(field, "is not valid: expected an http(s) URL"))
}

/// The `endpoint` override, if the block has one.
pub fn endpoint(endpoint: Option<&str>) -> Result<Option<String>, Error> {
    endpoint.filter(|e| !e.is_empty()).map(|e| http_url(e, "endpoint")).transpose()
}

/// One opendal option.
pub fn option(key: &str, value: &str) -> (String, String) {
    (key.to_string(), value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;

    #[test]
    fn endpoints_are_http_urls_without_their_slash() {
        assert_eq!(endpoint(Some("http://127.0.0.1:1/a/")).unwrap().as_deref(), Some("http://127.0.0.1:1/a"));
        assert_eq!(endpoint(None).unwrap(), None);
        let err = endpoint(Some("ftp://x")).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_NOT_VALID);
        assert!(err.message.contains("endpoint"), "{}", err.message);
    }
}
