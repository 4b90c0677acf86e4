//! `POST /v2/jobs` and `GET /v2/jobs/{id}`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::auth::ApiKey;
use super::body::Body;
use super::{ApiError, AppState};
use crate::db::{self, job, output};
use crate::job::dry_run::{DryRunError, dry_run};
use crate::job::submit::Submitter;
use crate::job::{JobError, JobSpec, view};

#[derive(serde::Deserialize)]
struct CreateQuery {
    /// Plan the job without running it (see `job::dry_run`).
    #[serde(default)]
    dry_run: bool,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs", post(create)).route("/jobs/{id}", get(show))
}

/// The body is read as bytes and parsed here, so malformed JSON gets the API's own
/// error shape rather than the framework's.
async fn create(
    State(state): State<AppState>,
    key: ApiKey,
    Query(query): Query<CreateQuery>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| JobError::invalid("request_not_valid", format!("The request body is not valid JSON: {e}.")))?;
    let spec = JobSpec::parse(&body)?;
    if query.dry_run {
        let plan = dry_run(&state.plugins, &state.config, &key.owner, &spec).await.map_err(|err| match err {
            DryRunError::Invalid(err) => ApiError::from(err),
            DryRunError::Internal(message) => ApiError::internal(anyhow::anyhow!(message)),
        })?;
        return Ok((StatusCode::OK, Json(plan)));
    }
    let (job, outputs) = submit(&state, &key, spec, "coconut_v2").await?;
    Ok((StatusCode::CREATED, Json(view::job_view(&job, &outputs))))
}

/// Submit through the job layer's use case. Every API submits through here, so a job
/// translated from another API (Octet's) is checked, queued and run exactly like a
/// Coconut one.
pub(super) async fn submit(
    state: &AppState,
    key: &ApiKey,
    spec: JobSpec,
    api: &'static str,
) -> Result<(job::Model, Vec<output::Model>), ApiError> {
    let submitter = Submitter { db: &state.db, plugins: &state.plugins, config: &state.config, wake: &state.job_arrived };
    Ok(submitter.submit(&key.owner, spec, api).await?)
}

async fn show(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (job, outputs) = db::jobs::find(&state.db, &id, Some(&key.owner))
        .await?
        .ok_or_else(|| ApiError::NotFound { code: "job_not_found", what: format!("Job '{id}'") })?;
    Ok(Json(view::job_view(&job, &outputs)))
}
