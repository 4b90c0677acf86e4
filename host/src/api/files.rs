//! Files of the `local` storage service, served below `/files/<namespace>/`. They are a
//! tenant's outputs: the caller's key must be the tenant's, and another tenant's
//! namespace answers 404 exactly as a file that does not exist.
//!
//! A tenant chooses its files' names and bytes, and they are served on the dashboard's
//! origin, so they are served inert: every answer carries `X-Content-Type-Options:
//! nosniff` and `Content-Security-Policy: sandbox` (a page that opens anyway runs in an
//! opaque origin, without the dashboard's storage or cookies), and only media, images
//! (not SVG), WebVTT, playlists and manifests get their own type ([`inline_type`]);
//! anything else is `application/octet-stream` with `Content-Disposition: attachment`.

use copra_codes::ErrorCode;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use super::auth::ApiKey;
use super::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/files/{*path}", axum::routing::get(serve)).layer(axum::middleware::from_fn(inert))
}

#[utoipa::path(
    get,
    path = "/files/{path}",
    operation_id = "getFile",
    tag = "Operations",
    summary = "An output of the `local` storage",
    description = "`/files/<namespace>/<path>`: the caller's own outputs only; another tenant's are a 404.",
    params(("path" = String, Path, description = "The tenant's namespace, then the file's path.")),
    responses(
        (status = 200, description = "The file: media, pictures, WebVTT, playlists and manifests with their own type, anything else as an `application/octet-stream` attachment. Always `nosniff` and `Content-Security-Policy: sandbox`.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "No such file.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn serve(State(state): State<AppState>, key: ApiKey, request: Request) -> Result<Response, ApiError> {
    serve_file(state, key, request).await
}

/// Every answer below `/files/` inert: `nosniff`, a sandbox, and a type from the
/// allowlist or an attachment.
async fn inert(request: Request, next: axum::middleware::Next) -> Response {
    let extension = request.uri().path().rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    let mut response = next.run(request).await;
    let ok = response.status().is_success();
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    if ok {
        match inline_type(&extension) {
            Some(mime) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
            }
            None => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
            }
        }
    }
    response
}

/// The type a file is served inline with, by its extension: media, images (not SVG,
/// which runs scripts), WebVTT, HLS playlists and DASH manifests. `None`: served as an
/// attachment of no particular type.
fn inline_type(extension: &str) -> Option<&'static str> {
    Some(match extension {
        "mp4" | "m4v" => "video/mp4",
        "m4s" => "video/iso.segment",
        "m4a" => "audio/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "ts" => "video/mp2t",
        "ogv" => "video/ogg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "avif" => "image/avif",
        "vtt" => "text/vtt; charset=utf-8",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        _ => return None,
    })
}

async fn serve_file(state: AppState, key: ApiKey, request: Request) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound { code: ErrorCode::FileNotFound, what: "File".into() };
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().trim_start_matches("/files/").to_string();
    let (namespace, rest) = path.split_once('/').ok_or_else(not_found)?;
    // A temporary is a file being written, not an output.
    if namespace != key.tenant.namespace() || crate::storage::local::is_temporary(rest) {
        return Err(not_found());
    }
    // ServeDir rejects `..` and serves only below the tenant's directory.
    parts.uri = format!("/{rest}").parse().map_err(|_| not_found())?;
    let response = ServeDir::new(key.tenant.files_root(&state.config.files_dir()))
        .oneshot(Request::from_parts(parts, body))
        .await
        .map_err(ApiError::internal)?;
    if response.status() == axum::http::StatusCode::NOT_FOUND {
        return Err(not_found());
    }
    Ok(response.into_response())
}
