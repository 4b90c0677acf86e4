//! `GET /v2/metadata/jobs/{id}` and `GET /v2/metadata/jobs/{id}/{key}`: ffprobe-shaped
//! metadata of the input (key `source`) and of every finished output.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::auth::ApiKey;
use super::{ApiError, AppState};
use crate::db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metadata/jobs/{id}", get(all))
        // Coconut's own client libraries ask for `/metadata/jobs/{id}/` when no key is given.
        .route("/metadata/jobs/{id}/", get(all))
        .route("/metadata/jobs/{id}/{key}", get(one))
}

async fn collect(state: &AppState, key: &ApiKey, id: &str) -> Result<Map<String, Value>, ApiError> {
    let (job, outputs) = db::jobs::find(&state.db, id, Some(&key.owner))
        .await?
        .ok_or_else(|| ApiError::NotFound { code: "job_not_found", what: format!("Job '{id}'") })?;
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

async fn all(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(Value::Object(collect(&state, &key, &id).await?)))
}

async fn one(
    State(state): State<AppState>,
    key: ApiKey,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut all = collect(&state, &key, &id).await?;
    all.remove(&name)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound { code: "metadata_not_found", what: format!("Metadata for '{name}' of job '{id}'") })
}
