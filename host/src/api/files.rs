//! Files of the `local` storage service, served below `/files/<namespace>/`. They are a
//! tenant's outputs: the caller's key must be the tenant's, and another tenant's
//! namespace answers 404 exactly as a file that does not exist.

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use super::auth::ApiKey;
use super::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/files/{*path}", axum::routing::get(serve))
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
        (status = 200, description = "The file.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "Authentication failed.", body = super::openapi::Error),
        (status = 404, description = "No such file.", body = super::openapi::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn serve(State(state): State<AppState>, key: ApiKey, request: Request) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound { code: "file_not_found", what: "File".into() };
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
