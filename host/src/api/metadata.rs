//! `GET /v2/metadata/jobs/{id}` and `GET /v2/metadata/jobs/{id}/{key}`: ffprobe-shaped
//! metadata of the input (key `source`) and of every finished output.

use copra_codes::ErrorCode;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::auth::ApiKey;
use super::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metadata/jobs/{id}", get(all))
        // Coconut's own client libraries ask for `/metadata/jobs/{id}/` when no key is given.
        .route("/metadata/jobs/{id}/", get(all))
        .route("/metadata/jobs/{id}/{key}", get(one))
}

async fn collect(state: &AppState, key: &ApiKey, id: &str) -> Result<Map<String, Value>, ApiError> {
    let (job, outputs) = super::jobs::own_job(state, key, id).await?;
    let parse = |text: &Option<String>| text.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
    let mut all = Map::new();
    if let Some(source) = parse(&job.input_metadata) {
        all.insert("source".into(), source);
    }
    for output in &outputs {
        if let Some(metadata) = parse(&output.metadata) {
            all.insert(output.key.clone(), metadata);
        }
    }
    Ok(all)
}

#[utoipa::path(
    get,
    path = "/v2/metadata/jobs/{jobId}",
    operation_id = "retrieveJobMetadata",
    tag = "Metadata",
    summary = "Retrieve all metadata for a job",
    description = "Technical metadata (streams and format) for the input source and all output files of a job.",
    params(("jobId" = String, Path, description = "The identifier of the job.")),
    responses(
        (status = 200, description = "Metadata retrieved.", body = super::schema::MetadataResponse),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "Job not found.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn all(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(Value::Object(collect(&state, &key, &id).await?)))
}

#[utoipa::path(
    get,
    path = "/v2/metadata/jobs/{jobId}/{key}",
    operation_id = "retrieveOutputMetadata",
    tag = "Metadata",
    summary = "Retrieve metadata for a specific source or output key",
    params(
        ("jobId" = String, Path, description = "The identifier of the job."),
        ("key" = String, Path, description = "The source or output key name (for example \"source\" or \"mp4:720p\")."),
    ),
    responses(
        (status = 200, description = "Metadata retrieved.", body = super::schema::Metadata),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "Job or key not found.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn one(
    State(state): State<AppState>,
    key: ApiKey,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut all = collect(&state, &key, &id).await?;
    all.remove(&name)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound { code: ErrorCode::MetadataNotFound, what: format!("Metadata for '{name}' of job '{id}'") })
}
