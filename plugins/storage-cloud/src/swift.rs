//! `rackspace` (Rackspace Cloud Files) and `swift` (OpenStack Swift), opendal `swift`.
//! The host signs in at `auth_url` (Rackspace's identity service by default; Keystone
//! v2 or, for an URL ending in `/v3`, v3) and takes the region's object-store URL from
//! the catalog; objects are at `{storage URL}/{container}/{key}`. A block may instead
//! give the storage URL as `endpoint` and a `token` in `credentials`.

use copra_sdk::config::{invalid, parse};
use copra_sdk::storage::OpendalTarget;
use copra_sdk::{Error, Json, Secret};
use serde::Deserialize;

use crate::common::{endpoint, http_url, option};

const RACKSPACE_IDENTITY: &str = "https://identity.api.rackspacecloud.com/v2.0";

/// A `rackspace` or `swift` storage block.
#[derive(Debug, Deserialize)]
struct SwiftConfig {
    /// The container files go to (`bucket` is read too); no `/`, at most 256 bytes.
    #[serde(alias = "bucket")]
    container: String,
    /// The identity service to sign in at (required for `swift`; Rackspace's own for
    /// `rackspace`).
    #[serde(default)]
    auth_url: Option<String>,
    /// The region whose object store the catalog names (`DFW`, `RegionOne`, ...).
    #[serde(default)]
    region: Option<String>,
    /// The storage URL itself, with a `token` instead of a sign-in.
    #[serde(default)]
    endpoint: Option<String>,
    /// A user and an API key or password, or a token.
    credentials: SwiftCredentials,
}

/// How to sign in: a user with an API key (Rackspace) or a password (Keystone),
/// optionally in a tenant (project); or a token, with the block's `endpoint`.
#[derive(Debug, Deserialize)]
struct SwiftCredentials {
    /// The user (`user` is read too).
    #[serde(default, alias = "user")]
    username: Option<String>,
    /// Rackspace's API key (`apikey` is read too); it wins over a password.
    #[serde(default, alias = "apikey")]
    api_key: Option<Secret>,
    /// The user's password (Keystone).
    #[serde(default)]
    password: Option<Secret>,
    /// The tenant or project (`tenant_name` and `project` are read too).
    #[serde(default, alias = "tenant_name", alias = "project")]
    tenant: Option<String>,
    /// A token already issued, used with the block's `endpoint` instead of a sign-in.
    #[serde(default)]
    token: Option<Secret>,
}

pub fn target(block: &Json, service: &str) -> Result<OpendalTarget, Error> {
    let config: SwiftConfig = parse(block)?;
    let container = config.container.as_str();
    if container.is_empty() || container.contains('/') || container.len() > 256 {
        return Err(invalid("container", "is not valid: expected a container name (no '/', at most 256 bytes)"));
    }
    let creds = &config.credentials;
    let mut options = vec![option("container", container), option("root", "/")];
    if let Some(token) = &creds.token {
        let endpoint = endpoint(config.endpoint.as_deref())?.ok_or_else(|| invalid("endpoint", "is missing (a token needs the storage URL)"))?;
        options.push(option("endpoint", &endpoint));
        options.push(option("token", token.expose()));
        return Ok(OpendalTarget { scheme: "swift".into(), options, url_base: format!("{endpoint}/{container}") });
    }
    let user = creds.username.as_deref().filter(|u| !u.is_empty()).ok_or_else(|| invalid("credentials.username", "is missing"))?;
    match (&creds.api_key, &creds.password) {
        (Some(key), _) => options.push(option("api_key", key.expose())),
        (None, Some(password)) => options.push(option("password", password.expose())),
        (None, None) => return Err(invalid("credentials.api_key", "is missing (or give credentials.password)")),
    }
    options.push(option("username", user));
    if let Some(tenant) = creds.tenant.as_deref().filter(|t| !t.is_empty()) {
        options.push(option("tenant", tenant));
    }
    let auth_url = match config.auth_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => http_url(url, "auth_url")?,
        None if service == "rackspace" => RACKSPACE_IDENTITY.to_string(),
        None => return Err(invalid("auth_url", "is missing (the identity service to sign in at)")),
    };
    options.push(option("auth_url", &auth_url));
    if let Some(region) = config.region.as_deref().filter(|r| !r.is_empty()) {
        options.push(option("region", region));
    }
    // The storage URL comes from the sign-in: the host sets the URL base then.
    Ok(OpendalTarget { scheme: "swift".into(), options, url_base: String::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;
    use serde_json::json;

    fn option<'a>(t: &'a OpendalTarget, key: &str) -> Option<&'a str> {
        t.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn rackspace_signs_in_at_its_identity_service() {
        let spec = json!({"service":"rackspace","container":"media","region":"DFW","credentials":{"username":"u","api_key":"k"}});
        let t = target(&spec, "rackspace").unwrap();
        assert_eq!(t.scheme, "swift");
        assert_eq!(option(&t, "auth_url"), Some(RACKSPACE_IDENTITY));
        assert_eq!(option(&t, "api_key"), Some("k"));
        assert_eq!(option(&t, "region"), Some("DFW"));
        assert_eq!(t.url_base, "");
    }

    #[test]
    fn swift_needs_an_auth_url_or_an_endpoint_and_token() {
        let spec = json!({"service":"swift","container":"media","credentials":{"username":"u","password":"p","tenant":"t"}});
        assert_eq!(target(&spec, "swift").unwrap_err().code, codes::STORAGE_NOT_VALID);
        let spec = json!({"service":"swift","container":"media","auth_url":"http://127.0.0.1:5000/v3/","credentials":{"username":"u","password":"p","tenant":"t"}});
        let t = target(&spec, "swift").unwrap();
        assert_eq!(option(&t, "auth_url"), Some("http://127.0.0.1:5000/v3"));
        assert_eq!(option(&t, "tenant"), Some("t"));
        let spec = json!({"service":"swift","container":"media","endpoint":"https://s/v1/AUTH_a","credentials":{"token":"tok"}});
        let t = target(&spec, "swift").unwrap();
        assert_eq!(t.url_base, "https://s/v1/AUTH_a/media");
    }

    #[test]
    fn missing_or_malformed_credentials_name_the_field() {
        let cases = [
            (json!({"container":"media"}), "credentials is missing"),
            (json!({"container":"media","credentials":{"api_key":"k"}}), "credentials.username is missing"),
            (json!({"container":"media","credentials":{"username":"u"}}), "credentials.api_key is missing"),
            (json!({"container":"media","credentials":{"username":"u","api_key":["k"]}}), "credentials.api_key is not valid: expected a string"),
        ];
        for (spec, named) in cases {
            let err = target(&spec, "rackspace").unwrap_err();
            assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID, "{spec}");
            assert!(err.message.contains(named), "{spec}: {}", err.message);
        }
    }

    #[test]
    fn the_config_prints_no_secret() {
        let config: SwiftConfig = parse(&json!({"container":"media","credentials":{"username":"u","api_key":"hunter2"}})).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
