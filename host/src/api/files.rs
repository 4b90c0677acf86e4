//! Files of the `local` storage service, served below `/files/`. They are outputs, so
//! they need an API key like every other route.

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

async fn serve(State(state): State<AppState>, _key: ApiKey, request: Request) -> Result<Response, ApiError> {
    // ServeDir rejects `..` and serves only below the directory.
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().trim_start_matches("/files").to_string();
    parts.uri = path.parse().map_err(ApiError::internal)?;
    let response = ServeDir::new(state.config.files_dir())
        .oneshot(Request::from_parts(parts, body))
        .await
        .map_err(ApiError::internal)?;
    if response.status() == axum::http::StatusCode::NOT_FOUND {
        return Err(ApiError::NotFound { code: "file_not_found", what: "File".into() });
    }
    Ok(response.into_response())
}
