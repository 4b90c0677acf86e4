//! Octet's v0 API: `POST /v0/jobs/create` and `GET /v0/jobs/{id}`.
//!
//! The request is translated by [`crate::job::octet`] into an ordinary job and submitted
//! through the same path as Coconut's (`jobs::submit`): same plugin validation, same
//! queue, same worker. Only the shapes differ: answers are Octet's job view, errors are
//! `{"error": "<why>"}` (Octet's "error describes why the request was invalid").

use copra_codes::ErrorCode;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::auth::ApiKey;
use super::body::Body;
use super::jobs::submit;
use super::{ApiError, AppState};
use crate::job::{JobError, octet};

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs/create", post(create)).route("/jobs/{id}", get(show)).fallback(not_found)
}

/// Create a job. Answers `200` with the job's view (`job_id`, `status: "pending"`,
/// `outputs`): the endpoint is an RPC-style `create`, and Octet's document speaks of a
/// response that is the job or an error, not of a created resource.
#[utoipa::path(
    post,
    path = "/v0/jobs/create",
    operation_id = "octetCreateJob",
    tag = "Octet",
    summary = "Create a job (Octet v0)",
    request_body(content = crate::job::octet::Request, content_type = "application/json"),
    responses(
        (status = 200, description = "Job created.", body = super::schema::OctetJob),
        (status = 400, description = "The request is not valid.", body = super::schema::OctetError),
        (status = 401, description = "Authentication failed.", body = super::schema::OctetError),
        (status = 413, description = "The body is larger than the server accepts.", body = super::schema::OctetError),
        (status = 403, description = "Sent by a browser page of another origin (`allowed_origins`).", body = super::schema::OctetError),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`).", body = super::schema::OctetError),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn create(State(state): State<AppState>, OctetKey(key): OctetKey, OctetBody(body): OctetBody) -> Result<Json<Value>, OctetError> {
    let request = octet::parse(&body)?;
    let spec = octet::to_job(&request)?;
    let (job, outputs) = submit(&state, &key, spec, "octet_v0").await?;
    Ok(Json(octet::job_view(&job, &outputs, &state.config.sealer)))
}

#[utoipa::path(
    get,
    path = "/v0/jobs/{jobId}",
    operation_id = "octetRetrieveJob",
    tag = "Octet",
    summary = "Retrieve a job (Octet v0)",
    params(("jobId" = String, Path, description = "The job's `job_id`.")),
    responses(
        (status = 200, description = "The job.", body = super::schema::OctetJob),
        (status = 401, description = "Authentication failed.", body = super::schema::OctetError),
        (status = 404, description = "Job not found.", body = super::schema::OctetError),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn show(State(state): State<AppState>, OctetKey(key): OctetKey, Path(id): Path<String>) -> Result<Json<Value>, OctetError> {
    // Another key's job is "not found", never "forbidden": its existence is not ours to tell.
    let (job, outputs) = super::jobs::own_job(&state, &key, &id).await?;
    Ok(Json(octet::job_view(&job, &outputs, &state.config.sealer)))
}

async fn not_found() -> OctetError {
    ApiError::NotFound { code: ErrorCode::NotFound, what: "Route".into() }.into()
}

/// The request body within the server's limit, refused in Octet's error shape.
struct OctetBody(axum::body::Bytes);

impl FromRequest<AppState> for OctetBody {
    type Rejection = OctetError;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(OctetBody(Body::from_request(request, state).await?.0))
    }
}

/// The caller's key (Basic username or Bearer token, as for the Coconut API), rejected in
/// Octet's error shape.
struct OctetKey(ApiKey);

impl FromRequestParts<AppState> for OctetKey {
    type Rejection = OctetError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(OctetKey(ApiKey::from_request_parts(parts, state).await?))
    }
}

/// Any failure of an Octet route: the API's error, answered as `{"error": "<message>"}`
/// with the same HTTP status the Coconut API would use.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct OctetError(#[from] ApiError);

impl From<JobError> for OctetError {
    fn from(err: JobError) -> Self {
        OctetError(ApiError::Invalid(err))
    }
}

impl From<sea_orm::DbErr> for OctetError {
    fn from(err: sea_orm::DbErr) -> Self {
        OctetError(err.into())
    }
}

/// An API error in Octet's shape (`{"error": ...}`), for refusals made before a handler runs.
pub(super) fn error_response(err: ApiError) -> Response {
    OctetError(err).into_response()
}

impl IntoResponse for OctetError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let message = match &self.0 {
            ApiError::Unauthorized => {
                "Authentication failed: send your API key as a Bearer token or as the Basic auth username.".to_string()
            }
            ApiError::Invalid(err) => {
                tracing::info!(code = err.code().as_str(), message = %err, "octet request refused");
                err.to_string()
            }
            ApiError::Internal(err) => {
                tracing::error!(err = format!("{err:#}"), "request failed");
                self.0.to_string()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"copra\", Basic realm=\"copra\""),
            );
        }
        response
    }
}
