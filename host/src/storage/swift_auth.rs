//! OpenStack Swift (and Rackspace Cloud Files) sign-in: a `swift` target may name an
//! identity service (`auth_url`) and a user's credentials instead of a storage URL and
//! a token. The host exchanges them through the policy's HTTP client (Keystone v2, with
//! Rackspace's API-key credentials or a password; or Keystone v3 with a password) and
//! takes the object-store endpoint of the target's region from the service catalog.
//! That endpoint is checked against the outbound policy like any other.

use serde_json::{Value, json};

use crate::net::{BodyError, BodyLimits, Failure, HttpClient, SIGN_IN_CAP, UrlRefused};

/// The longest a sign-in may take, answer included: it runs inside a dry run's API
/// request and before each upload, so it is held far below `transfer_total_secs`.
const SIGN_IN_TIME: std::time::Duration = std::time::Duration::from_secs(60);
use crate::secret::Secret;

/// Why a swift sign-in failed. Each is a sentence for the user; the identity service
/// is named by its URL without a query or user info.
#[derive(Debug, thiserror::Error)]
pub enum SwiftAuthError {
    /// Refused before any request (`check`).
    #[error("The swift storage sign-in needs a username and an api_key or password.")]
    NoCredentials,
    /// The policy refuses the `auth_url` itself.
    #[error("The swift auth_url '{auth_url}' cannot be used: {source}.")]
    AuthUrl { auth_url: String, source: UrlRefused },
    /// The policy refused the `auth_url`'s resolved addresses or a redirect.
    #[error("The swift auth_url '{auth_url}' cannot be used: {why}.")]
    AuthUrlRefused { auth_url: String, why: String },
    #[error("The swift identity service at '{auth_url}' did not answer within {secs} s.")]
    NoAnswer { auth_url: String, secs: u64 },
    #[error("The swift identity service at '{auth_url}' could not be reached: {failure}.")]
    Unreachable { auth_url: String, failure: Failure },
    #[error("The swift identity service at '{auth_url}' refused the credentials (HTTP {status}).")]
    CredentialsRefused { auth_url: String, status: reqwest::StatusCode },
    #[error("The swift identity service at '{auth_url}' answered HTTP {status}.")]
    Status { auth_url: String, status: reqwest::StatusCode },
    /// The answer could not be read within its bounds (size, idle and total time).
    #[error("The swift sign-in at '{auth_url}' failed: {source}.")]
    Answer { auth_url: String, source: BodyError },
    #[error("The swift identity service's answer is not JSON: {0}.")]
    NotJson(#[source] serde_json::Error),
    #[error("The swift identity service at '{auth_url}' gave no object-store endpoint{}.", in_region(.region.as_deref()))]
    NoEndpoint { auth_url: String, region: Option<String> },
    /// The catalog's storage URL is one the policy refuses.
    #[error("The swift storage URL '{endpoint}' cannot be used: {source}.")]
    StorageUrl { endpoint: String, source: UrlRefused },
}

/// Options that name a sign-in rather than a ready target; none of them reach opendal.
pub const AUTH_KEYS: &[&str] = &["auth_url", "username", "api_key", "password", "tenant", "region"];

/// What a sign-in gives: the account's storage URL and a token for it.
pub struct Session {
    pub endpoint: String,
    pub token: Secret<String>,
}

fn get<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
    options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// Whether a swift target signs in (names an `auth_url`) rather than giving a token.
pub fn signs_in(options: &[(String, String)]) -> bool {
    get(options, "auth_url").is_some()
}

/// The target's sign-in options, checked before any request: the identity URL is an
/// http(s) URL the policy allows, and there are a user name and an API key or password.
pub fn check(options: &[(String, String)]) -> Result<(), SwiftAuthError> {
    if get(options, "username").is_none() || (get(options, "api_key").is_none() && get(options, "password").is_none()) {
        return Err(SwiftAuthError::NoCredentials);
    }
    Ok(())
}

/// Sign in and return the target's options for opendal: the sign-in options replaced
/// by the `endpoint` and `token` the identity service gave.
pub async fn sign_in(http: &HttpClient, options: &[(String, String)]) -> Result<Vec<(String, String)>, SwiftAuthError> {
    check(options)?;
    let auth_url = get(options, "auth_url").unwrap_or_default().trim_end_matches('/');
    let user = get(options, "username").unwrap_or_default();
    let region = get(options, "region");
    let v3 = auth_url.ends_with("/v3");
    let (url, body) = if v3 {
        (format!("{auth_url}/auth/tokens"), v3_body(user, get(options, "password").unwrap_or_default(), get(options, "tenant")))
    } else {
        (format!("{auth_url}/tokens"), v2_body(user, get(options, "api_key"), get(options, "password"), get(options, "tenant")))
    };
    let shown_url = crate::secret::redact_url(auth_url);
    let auth_url = shown_url.trim_end_matches("?***");
    let named = || auth_url.to_string();
    let request = http.request(reqwest::Method::POST, &url).map_err(|source| SwiftAuthError::AuthUrl { auth_url: named(), source })?;
    let started = tokio::time::Instant::now();
    let sent = tokio::time::timeout(SIGN_IN_TIME, request.timeout(SIGN_IN_TIME).json(&body).send()).await;
    let response = sent
        .map_err(|_| SwiftAuthError::NoAnswer { auth_url: named(), secs: SIGN_IN_TIME.as_secs() })?
        .map_err(|e| match Failure::of(&e) {
            Failure::Refused(why) => SwiftAuthError::AuthUrlRefused { auth_url: named(), why },
            failure => SwiftAuthError::Unreachable { auth_url: named(), failure },
        })?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(SwiftAuthError::CredentialsRefused { auth_url: named(), status });
    }
    if !status.is_success() {
        return Err(SwiftAuthError::Status { auth_url: named(), status });
    }
    let header_token = response.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let timeouts = http.timeouts();
    let limits = BodyLimits::new(SIGN_IN_CAP, timeouts.idle, SIGN_IN_TIME.saturating_sub(started.elapsed()));
    let bytes = crate::net::read_response(response, "the swift identity service's answer", limits)
        .await
        .map_err(|source| SwiftAuthError::Answer { auth_url: named(), source })?;
    let answer: Value = serde_json::from_slice(&bytes).map_err(SwiftAuthError::NotJson)?;
    let session = if v3 { v3_session(&answer, header_token, region) } else { v2_session(&answer, region) }
        .ok_or_else(|| SwiftAuthError::NoEndpoint { auth_url: named(), region: region.map(str::to_string) })?;
    if let Err(source) = http.check_url(&session.endpoint) {
        return Err(SwiftAuthError::StorageUrl { endpoint: session.endpoint, source });
    }
    let mut out: Vec<(String, String)> = options.iter().filter(|(k, _)| !AUTH_KEYS.contains(&k.as_str()) && k != "endpoint" && k != "token").cloned().collect();
    out.push(("endpoint".into(), session.endpoint));
    out.push(("token".into(), session.token.expose().clone()));
    Ok(out)
}

fn in_region(region: Option<&str>) -> String {
    region.map(|r| format!(" in the region '{r}'")).unwrap_or_default()
}

fn v2_body(user: &str, api_key: Option<&str>, password: Option<&str>, tenant: Option<&str>) -> Value {
    let mut auth = match api_key {
        Some(key) => json!({"RAX-KSKEY:apiKeyCredentials": {"username": user, "apiKey": key}}),
        None => json!({"passwordCredentials": {"username": user, "password": password.unwrap_or_default()}}),
    };
    if let Some(tenant) = tenant {
        auth["tenantName"] = json!(tenant);
    }
    json!({ "auth": auth })
}

fn v3_body(user: &str, password: &str, project: Option<&str>) -> Value {
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}}});
    if let Some(project) = project {
        auth["scope"] = json!({"project": {"name": project, "domain": {"id": "default"}}});
    }
    json!({ "auth": auth })
}

/// The first object-store entry of `catalog` (in `region` if given), with `url_of`
/// picking each endpoint's public URL.
fn object_store<'a>(catalog: &'a Value, region: Option<&str>, url_of: impl Fn(&'a Value) -> Option<&'a str>) -> Option<String> {
    let services = catalog.as_array()?;
    let store = services.iter().find(|s| s["type"] == "object-store")?;
    store["endpoints"].as_array()?.iter().filter(|e| region.is_none_or(|r| e["region"].as_str().is_some_and(|er| er.eq_ignore_ascii_case(r)))).find_map(url_of).map(|u| u.trim_end_matches('/').to_string())
}

fn v2_session(answer: &Value, region: Option<&str>) -> Option<Session> {
    let token = answer["access"]["token"]["id"].as_str()?.to_string();
    let endpoint = object_store(&answer["access"]["serviceCatalog"], region, |e| e["publicURL"].as_str())?;
    Some(Session { endpoint, token: Secret::new(token) })
}

fn v3_session(answer: &Value, token: Option<String>, region: Option<&str>) -> Option<Session> {
    let endpoint = object_store(&answer["token"]["catalog"], region, |e| (e["interface"] == "public").then(|| e["url"].as_str()).flatten())?;
    Some(Session { endpoint, token: Secret::new(token?) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = r#"{"access":{"token":{"id":"tok"},"serviceCatalog":[
        {"type":"compute","endpoints":[{"region":"DFW","publicURL":"https://c"}]},
        {"type":"object-store","name":"cloudFiles","endpoints":[
            {"region":"DFW","publicURL":"https://storage101.dfw1.clouddrive.com/v1/MossoCloudFS_1"},
            {"region":"ORD","publicURL":"https://storage101.ord1.clouddrive.com/v1/MossoCloudFS_1/"}]}]}}"#;

    #[test]
    fn the_catalog_gives_the_regions_object_store() {
        let answer: Value = serde_json::from_str(V2).unwrap();
        let s = v2_session(&answer, Some("ord")).unwrap();
        assert_eq!(s.endpoint, "https://storage101.ord1.clouddrive.com/v1/MossoCloudFS_1");
        assert_eq!(s.token.expose(), "tok");
        assert_eq!(v2_session(&answer, None).unwrap().endpoint, "https://storage101.dfw1.clouddrive.com/v1/MossoCloudFS_1");
        assert!(v2_session(&answer, Some("SYD")).is_none());
        let v3: Value = serde_json::from_str(r#"{"token":{"catalog":[{"type":"object-store","endpoints":[
            {"interface":"internal","region":"RegionOne","url":"http://10.0.0.1/v1/AUTH_p"},
            {"interface":"public","region":"RegionOne","url":"https://swift.example/v1/AUTH_p"}]}]}}"#).unwrap();
        assert_eq!(v3_session(&v3, Some("tok".into()), Some("RegionOne")).unwrap().endpoint, "https://swift.example/v1/AUTH_p");
        assert!(v3_session(&v3, None, None).is_none(), "v3 tokens come in a header");
    }

    #[test]
    fn rackspace_signs_in_with_an_api_key() {
        let body = v2_body("u", Some("k"), None, None);
        assert_eq!(body["auth"]["RAX-KSKEY:apiKeyCredentials"]["apiKey"], "k");
        let body = v2_body("u", None, Some("p"), Some("t"));
        assert_eq!(body["auth"]["passwordCredentials"]["password"], "p");
        assert_eq!(body["auth"]["tenantName"], "t");
        let opts = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let err = check(&opts(&[("auth_url", "https://id"), ("username", "u")])).unwrap_err();
        assert!(matches!(err, SwiftAuthError::NoCredentials), "{err}");
        assert_eq!(err.to_string(), "The swift storage sign-in needs a username and an api_key or password.");
        assert!(check(&opts(&[("auth_url", "https://id"), ("username", "u"), ("api_key", "k")])).is_ok());
    }

    /// An identity service on loopback whose `/v2.0/tokens` answers `status` and `body`.
    async fn identity(status: u16, body: &'static str) -> String {
        let answer = move || async move { (axum::http::StatusCode::from_u16(status).unwrap(), body) };
        let app = axum::Router::new().route("/v2.0/tokens", axum::routing::post(answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2.0", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    #[tokio::test]
    async fn a_failed_sign_in_is_a_sentence_naming_the_identity_service() {
        let client = |allow: &str| {
            let timeouts = crate::net::Timeouts { connect: std::time::Duration::from_secs(2), idle: std::time::Duration::from_secs(5), total: None };
            crate::net::Outbound::new(crate::net::Policy::parse(allow).unwrap()).client(timeouts).unwrap()
        };
        let http = client("127.0.0.1/32");
        let target = |auth_url: &str| {
            [("auth_url", auth_url), ("container", "c"), ("username", "u"), ("api_key", "k"), ("region", "ORD")].map(|(k, v)| (k.to_string(), v.to_string()))
        };

        let refused = identity(401, "").await;
        let err = sign_in(&http, &target(&refused)).await.unwrap_err();
        assert!(matches!(err, SwiftAuthError::CredentialsRefused { .. }), "{err}");
        assert_eq!(err.to_string(), format!("The swift identity service at '{refused}' refused the credentials (HTTP 401 Unauthorized)."));

        let err = sign_in(&client(""), &target(&refused)).await.unwrap_err();
        assert!(matches!(err, SwiftAuthError::AuthUrl { .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("The swift auth_url '{refused}' cannot be used: ")), "{err}");
        assert!(err.to_string().contains("COPRA_OUTBOUND_ALLOW"), "{err}");

        let not_json = identity(200, "<html>").await;
        let err = sign_in(&http, &target(&not_json)).await.unwrap_err();
        assert!(err.to_string().starts_with("The swift identity service's answer is not JSON: "), "{err}");

        let no_store = identity(200, r#"{"access":{"token":{"id":"t"},"serviceCatalog":[]}}"#).await;
        let err = sign_in(&http, &target(&no_store)).await.unwrap_err();
        assert_eq!(err.to_string(), format!("The swift identity service at '{no_store}' gave no object-store endpoint in the region 'ORD'."));

        let private = r#"{"access":{"token":{"id":"t"},"serviceCatalog":[{"type":"object-store","endpoints":[{"region":"ORD","publicURL":"http://10.0.0.1/v1/AUTH_a"}]}]}}"#;
        let err = sign_in(&http, &target(&identity(200, private).await)).await.unwrap_err();
        assert!(matches!(err, SwiftAuthError::StorageUrl { .. }), "{err}");
        assert!(err.to_string().starts_with("The swift storage URL 'http://10.0.0.1/v1/AUTH_a' cannot be used: "), "{err}");
    }
}
