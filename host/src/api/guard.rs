//! Requests that change something come from API clients or from this server's own pages.
//!
//! A browser sends a page's requests to any origin, with the credentials it holds for
//! it (a Basic login it remembers), and without asking first when the body is of a
//! type an HTML form can send (`text/plain`, `application/x-www-form-urlencoded`,
//! `multipart/form-data`). So a POST, PUT, PATCH or DELETE below `/v2`, `/v0` or
//! `/admin`:
//! - with an `Origin` (every browser sends one with such a request) must come from this
//!   server's origin (the `Host` it was sent to, or `public_url`'s), or from one of the
//!   operator's `allowed_origins`: else 403 `origin_not_allowed`;
//! - with a body must say it is JSON (`application/json`, or `…+json`), or send no
//!   `Content-Type` at all (scripts and SDKs that send raw bytes; a browser that sends a
//!   body without a type also sends its `Origin`). A plugin upload (`/admin/plugins`)
//!   may also be `application/wasm`, `application/octet-stream` or multipart. Anything
//!   else is a 415 `unsupported_media_type`.
//!
//! Refusals are in the API's error shape (Octet's under `/v0`).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// Prefixes of the routes that can change something.
const GUARDED: &[&str] = &["/v2/", "/v0/", "/admin/"];
/// Where direct uploads take their bytes (`application/offset+octet-stream`).
const UPLOADS: &str = "/v2/uploads";
/// Where a plugin is uploaded as raw bytes.
const PLUGIN_UPLOAD: &str = "/admin/plugins";

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !changes || !GUARDED.iter().any(|prefix| path.starts_with(prefix)) {
        return next.run(request).await;
    }
    let octet = path.starts_with("/v0/");
    match check(request.headers(), path, &state.config.public_url, &state.config.allowed_origins) {
        Ok(()) => next.run(request).await,
        Err(err) if octet => super::octet::error_response(err),
        Err(err) => err.into_response(),
    }
}

/// The origin and the body type of a changing request to `path`.
fn check(headers: &HeaderMap, path: &str, public_url: &str, allowed: &[String]) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("").trim().to_ascii_lowercase();
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let own = same_origin(&origin, host) || origin_of(public_url).is_some_and(|o| o == normalized(&origin));
        if !own && !allowed.iter().any(|a| normalized(a) == normalized(&origin)) {
            tracing::info!(origin = ?origin, path = ?path, "a changing request from another origin was refused");
            return Err(ApiError::ForeignOrigin { origin: origin.escape_debug().to_string() });
        }
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > 0);
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    if !has_body {
        return Ok(());
    }
    let text = content_type.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = text.split(';').next().unwrap_or("").trim();
    let json = essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    let upload = path.trim_end_matches('/') == PLUGIN_UPLOAD
        && matches!(essence, "application/wasm" | "application/octet-stream" | "multipart/form-data");
    let chunk = path.starts_with(UPLOADS) && essence == super::uploads::OFFSET_STREAM;
    if json || upload || chunk {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType { content_type: essence.escape_debug().to_string() })
}

/// Whether `origin` (`scheme://host[:port]`) names the `host` header's authority.
fn same_origin(origin: &str, host: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else { return false };
    let (Some(origin_host), Some(origin_port)) = (url.host_str(), url.port_or_known_default()) else { return false };
    let host = host.trim().to_ascii_lowercase();
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (name.to_string(), port.parse::<u16>().ok()),
        _ => (host.clone(), None),
    };
    name == origin_host && port.unwrap_or(origin_port) == origin_port
}

/// `scheme://host:port` of a URL, ports spelled out.
fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(format!("{}://{}:{}", url.scheme(), url.host_str()?, url.port_or_known_default()?).to_ascii_lowercase())
}

fn normalized(origin: &str) -> String {
    origin_of(origin.trim().trim_end_matches('/')).unwrap_or_else(|| origin.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        map
    }

    const PUBLIC: &str = "https://copra.example.com";

    #[test]
    fn browsers_of_other_origins_are_refused() {
        let ok = |pairs: &[(&str, &str)]| check(&headers(pairs), "/v2/jobs", PUBLIC, &[]).is_ok();
        let json = [("content-type", "application/json"), ("content-length", "2"), ("host", "127.0.0.1:8080")];
        assert!(ok(&json), "no Origin: an API client");
        assert!(ok(&[json[0], json[1], json[2], ("origin", "http://127.0.0.1:8080")]));
        assert!(ok(&[json[0], json[1], ("host", "copra.internal:9000"), ("origin", "https://copra.example.com")]), "public_url's origin");
        assert!(!ok(&[json[0], json[1], json[2], ("origin", "http://127.0.0.1:9999")]));
        assert!(!ok(&[json[0], json[1], json[2], ("origin", "https://evil.example")]));
        assert!(!ok(&[json[0], json[1], json[2], ("origin", "null")]));
        let allowed = ["https://dash.example.com".to_string()];
        assert!(check(&headers(&[json[0], json[1], json[2], ("origin", "https://dash.example.com")]), "/v2/jobs", PUBLIC, &allowed).is_ok());
        assert!(same_origin("https://copra.example.com", "copra.example.com") && same_origin("https://copra.example.com", "copra.example.com:443"));
        assert!(!same_origin("http://copra.example.com", "copra.example.com:443"));
    }

    #[test]
    fn bodies_must_be_json_or_untyped() {
        let code = |path: &str, pairs: &[(&str, &str)]| match check(&headers(pairs), path, PUBLIC, &[]) {
            Ok(()) => 200,
            Err(err) => err.status().as_u16(),
        };
        assert_eq!(code("/v2/jobs", &[("content-type", "text/plain"), ("content-length", "10")]), 415);
        assert_eq!(code("/v2/jobs", &[("content-type", "application/x-www-form-urlencoded"), ("content-length", "10")]), 415);
        assert_eq!(code("/v0/jobs/create", &[("content-type", "multipart/form-data; boundary=x"), ("transfer-encoding", "chunked")]), 415);
        assert_eq!(code("/v2/jobs", &[("content-type", "application/json; charset=utf-8"), ("content-length", "10")]), 200);
        assert_eq!(code("/v2/jobs", &[("content-length", "10")]), 200, "untyped bytes from a script");
        assert_eq!(code("/v2/jobs/x/webhooks/1/redeliver", &[("content-type", "text/plain")]), 200, "no body");
        assert_eq!(code("/admin/plugins", &[("content-type", "application/wasm"), ("content-length", "10")]), 200);
        assert_eq!(code("/admin/plugins/x", &[("content-type", "application/wasm"), ("content-length", "10")]), 415);
        assert_eq!(code("/v2/jobs", &[("content-type", "text/plain"), ("content-length", "10"), ("origin", "https://evil.example")]), 403);
    }
}
