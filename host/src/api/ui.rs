//! The web dashboard: `/` is its page and `/ui/...` its assets (HTML, one small vanilla
//! JavaScript app in ES modules, CSS, and the vendored hls.js player), all embedded in the
//! binary. The page holds no data: the browser calls the API with the key the user typed
//! (kept in `sessionStorage`), so the dashboard has the same tenant rules as the API.
//!
//! Every answer carries a strict Content-Security-Policy: scripts only from this origin,
//! no inline script or style, no plugins, no framing; data is fetched only from this
//! origin. Media and images may also come from `https:` (outputs on object storage) and
//! `blob:` (outputs of the `local` storage, fetched with the key).

use copra_codes::ErrorCode;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState};

pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data: https:; media-src 'self' blob: https:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// (path below `/ui/`, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("../../ui/app.js")),
    ("api.js", JS, include_bytes!("../../ui/api.js")),
    ("dom.js", JS, include_bytes!("../../ui/dom.js")),
    ("jobs.js", JS, include_bytes!("../../ui/jobs.js")),
    ("job.js", JS, include_bytes!("../../ui/job.js")),
    ("player.js", JS, include_bytes!("../../ui/player.js")),
    ("quality.js", JS, include_bytes!("../../ui/quality.js")),
    ("submit.js", JS, include_bytes!("../../ui/submit.js")),
    ("upload.js", JS, include_bytes!("../../ui/upload.js")),
    ("webhooks.js", JS, include_bytes!("../../ui/webhooks.js")),
    ("admin.js", JS, include_bytes!("../../ui/admin.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../ui/style.css")),
    ("vendor/hls.min.mjs", JS, include_bytes!("../../ui/vendor/hls.min.mjs")),
    ("vendor/hls.js.LICENSE", "text/plain; charset=utf-8", include_bytes!("../../ui/vendor/hls.js.LICENSE")),
];
const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &[u8] = include_bytes!("../../ui/index.html");

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/ui/{*path}", get(asset))
}

/// A browser shows its own login box when a script's request is answered 401 with a Basic
/// challenge (and the request waits for it): the dashboard's calls (`fetch`, hls.js) get
/// the 401 and its JSON body without `WWW-Authenticate`, and show the error themselves.
/// Script requests are those a browser marks `Sec-Fetch-Dest: empty`; other clients
/// (curl, SDKs, a browser opening an API URL) still get the challenge.
pub(super) async fn no_login_box_for_scripts(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let from_script = request.headers().get("sec-fetch-dest").is_some_and(|v| v.as_bytes() == b"empty");
    let mut response = next.run(request).await;
    if from_script && response.status() == axum::http::StatusCode::UNAUTHORIZED {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    response
}

async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(path): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == path)
        .ok_or_else(|| ApiError::NotFound { code: ErrorCode::NotFound, what: "Route".into() })?;
    Ok(respond(content_type, bytes))
}

fn respond(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Assets change with the binary; the browser revalidates rather than caching blindly.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_imports_is_served() {
        let index = std::str::from_utf8(INDEX).unwrap();
        assert!(!index.contains("<script>") && !index.contains("style="), "no inline script or style");
        for (name, _, bytes) in ASSETS {
            let text = String::from_utf8_lossy(bytes);
            if name.ends_with(".js") {
                assert!(!text.contains("innerHTML"), "{name} renders with textContent only");
                for import in text.lines().filter_map(|l| l.trim().strip_prefix("import ")) {
                    let target = import.split(['"', '\'']).nth(1).unwrap();
                    let target = target.trim_start_matches("./");
                    assert!(ASSETS.iter().any(|(n, _, _)| *n == target), "{name} imports {target}, which is not served");
                }
            }
        }
    }
}
