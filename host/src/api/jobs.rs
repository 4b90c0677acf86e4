//! `POST /v2/jobs` and `GET /v2/jobs/{id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::auth::ApiKey;
use super::body::Body;
use super::{ApiError, AppState};
use crate::db::{self, job, output};
use crate::job::status::{self, OutputState};
use crate::job::{JobError, JobSpec, validate::validate, view};

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs", post(create)).route("/jobs/{id}", get(show))
}

/// The body is read as bytes and parsed here, so malformed JSON gets the API's own
/// error shape rather than the framework's.
async fn create(State(state): State<AppState>, key: ApiKey, Body(body): Body) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| JobError::invalid("request_not_valid", format!("The request body is not valid JSON: {e}.")))?;
    let spec = JobSpec::parse(&body)?;
    let (job, outputs) = submit(&state, &key, spec, "coconut_v2").await?;
    Ok((StatusCode::CREATED, Json(view::job_view(&job, &outputs))))
}

/// Validate a job through the plugins, store it with its outputs and wake the worker.
/// Every API submits through here, so a job translated from another API (Octet's) is
/// checked, queued and run exactly like a Coconut one. `api` only labels the log line.
pub(super) async fn submit(
    state: &AppState,
    key: &ApiKey,
    spec: JobSpec,
    api: &'static str,
) -> Result<(job::Model, Vec<output::Model>), ApiError> {
    let limits = &state.config.limits;
    if spec.outputs.len() > limits.max_outputs {
        return Err(JobError::invalid(
            "outputs_not_valid",
            format!("The job has {} outputs; this server takes at most {} per job (limits.max_outputs).", spec.outputs.len(), limits.max_outputs),
        )
        .into());
    }
    let output_types = validate(&spec, &state.plugins, limits, &state.config.outbound).await?;

    let id = crate::random_id(14);
    let job = job::Model {
        id: id.clone(),
        owner: key.owner.clone(),
        status: status::JOB_STARTING.into(),
        input_status: status::INPUT_STARTING.into(),
        progress: 0,
        // Storage credentials, webhook and presigned URLs: sealed at rest.
        spec: crate::job::stored::seal_spec(&state.config.sealer, &spec).map_err(ApiError::internal)?,
        input_metadata: None,
        error: None,
        created_at: db::now_ms(),
        completed_at: None,
        lease_owner: None,
        lease_expires_at: None,
        attempts: 0,
    };
    let outputs: Vec<output::Model> = spec
        .outputs
        .iter()
        .zip(&output_types)
        .enumerate()
        .map(|(position, (spec, output_type))| output::Model {
            id: 0,
            job_id: id.clone(),
            position: position as i32,
            key: spec.key.clone(),
            format: spec.format.clone(),
            output_type: output_type.as_str().into(),
            status: status::output(output_type.as_str(), OutputState::Waiting),
            url: None,
            urls: None,
            metadata: None,
            error: None,
        })
        .collect();
    db::jobs::insert(&state.db, job, outputs).await?;
    state.job_arrived.notify_one();
    tracing::info!(job_id = %id, api, outputs = spec.outputs.len(), "job accepted");

    db::jobs::find(&state.db, &id, None).await?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("job {id} vanished")))
}

async fn show(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (job, outputs) = db::jobs::find(&state.db, &id, Some(&key.owner))
        .await?
        .ok_or_else(|| ApiError::NotFound { code: "job_not_found", what: format!("Job '{id}'") })?;
    Ok(Json(view::job_view(&job, &outputs)))
}
