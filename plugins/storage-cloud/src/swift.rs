//! `rackspace` (Rackspace Cloud Files) and `swift` (OpenStack Swift), opendal `swift`.
//! The block names a `container` (or `bucket`), a `region`, and `credentials` with a
//! `username` and an `api_key` (Rackspace) or `password`, optionally a `tenant`
//! (project). The host signs in at `auth_url` (Rackspace's identity service by
//! default; Keystone v2 or, for an URL ending in `/v3`, v3) and takes the region's
//! object-store URL from the catalog; objects are at `{storage URL}/{container}/{key}`.
//! A block may instead give the storage URL as `endpoint` and a `token` in `credentials`.

use copra_sdk::storage::OpendalTarget;
use copra_sdk::{Error, Json};

use crate::fields::{self, option};

const RACKSPACE_IDENTITY: &str = "https://identity.api.rackspacecloud.com/v2.0";

pub fn target(block: &Json, service: &str) -> Result<OpendalTarget, Error> {
    let container = fields::required(block, &["container", "bucket"], service)?;
    if container.contains('/') || container.len() > 256 {
        return Err(Error::storage(format!("The {service} container '{container}' is not a container name.")));
    }
    let creds = fields::credentials(block, service, "'username' and 'api_key' (or 'password')")?;
    let mut options = vec![option("container", container), option("root", "/")];
    if let Some(token) = fields::credential(creds, &["token"], service)? {
        let endpoint = fields::endpoint(block, service)?
            .ok_or_else(|| Error::storage(format!("The {service} storage with a 'token' must give its storage URL as 'endpoint'.")))?;
        options.push(option("endpoint", &endpoint));
        options.push(option("token", token));
        return Ok(OpendalTarget { scheme: "swift".into(), options, url_base: format!("{endpoint}/{container}") });
    }
    let user = fields::require_credential(creds, &["username", "user"], service)?;
    let api_key = fields::credential(creds, &["api_key", "apikey"], service)?;
    let password = fields::credential(creds, &["password"], service)?;
    match (api_key, password) {
        (Some(key), _) => options.push(option("api_key", key)),
        (None, Some(password)) => options.push(option("password", password)),
        (None, None) => {
            return Err(Error::credentials(format!(
                "The storage credentials are not correct: the {service} storage needs 'api_key' (or 'password')."
            )));
        }
    }
    options.push(option("username", user));
    if let Some(tenant) = fields::credential(creds, &["tenant", "tenant_name", "project"], service)? {
        options.push(option("tenant", tenant));
    }
    let auth_url = match fields::text(block, &["auth_url"], &format!("{service} storage field"), false)? {
        Some(url) => check_url(url, service)?,
        None if service == "rackspace" => RACKSPACE_IDENTITY.to_string(),
        None => return Err(Error::storage("The swift storage must define 'auth_url' (its identity service).")),
    };
    options.push(option("auth_url", &auth_url));
    if let Some(region) = fields::text(block, &["region"], &format!("{service} storage field"), false)? {
        options.push(option("region", region));
    }
    // The storage URL comes from the sign-in: the host sets the URL base then.
    Ok(OpendalTarget { scheme: "swift".into(), options, url_base: String::new() })
}

fn check_url(url: &str, service: &str) -> Result<String, Error> {
    url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .ok_or_else(|| Error::storage(format!("The {service} auth_url '{url}' is not an http(s) URL.")))
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
            (json!({"container":"media"}), "'credentials'"),
            (json!({"container":"media","credentials":{"api_key":"k"}}), "'username'"),
            (json!({"container":"media","credentials":{"username":"u"}}), "'api_key'"),
            (json!({"container":"media","credentials":{"username":"u","api_key":["k"]}}), "'api_key' must be a string"),
        ];
        for (spec, named) in cases {
            let err = target(&spec, "rackspace").unwrap_err();
            assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID, "{spec}");
            assert!(err.message.contains(named), "{spec}: {}", err.message);
        }
    }
}
