//! `POST /v2/jobs`, `GET /v2/jobs` (the caller's jobs, newest first) and `GET /v2/jobs/{id}`.

use copra_codes::ErrorCode;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use sea_orm::Iterable;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::ApiKey;
use super::body::Body;
use super::{ApiError, AppState, query};
use crate::db::{self, job, output};
use crate::db::status::JobStatus;
use crate::intake::dry_run::{DryRunError, dry_run};
use crate::job::submit::Submitter;
use crate::job::{JobError, JobSpec, view};

/// How many jobs `GET /v2/jobs` answers without `limit`, and at most.
const LIST_DEFAULT: u64 = 20;
const LIST_MAX: u64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs", post(create).get(list)).route("/jobs/{id}", get(show))
}

#[utoipa::path(
    post,
    path = "/v2/jobs",
    operation_id = "createJob",
    tag = "Jobs",
    summary = "Create a job",
    description = "Submit a new encoding job: input, storage, outputs, an optional notification \
        webhook and settings. The job runs asynchronously. With `dry_run=true` nothing is run: the \
        answer is the plan (200).",
    params(("dry_run" = Option<bool>, Query, description = "Plan the job without encoding or uploading.")),
    request_body(content = super::schema::CreateJobRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Job created.", body = super::schema::Job),
        (status = 200, description = "The plan of a dry run.", body = super::schema::DryRunPlan),
        (status = 400, description = "Invalid job configuration.", body = super::schema::Error),
        (status = 401, description = "Authentication failed (invalid API key).", body = super::schema::Error),
        (status = 413, description = "The body is larger than the server accepts.", body = super::schema::Error),
        (status = 403, description = "Sent by a browser page of another origin (`allowed_origins`).", body = super::schema::Error),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`).", body = super::schema::Error),
        (status = 429, description = "Too many dry runs at once (`dry_run_concurrency`, `dry_run_per_tenant`); see `Retry-After`.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
/// The body is read as bytes and parsed here, so malformed JSON gets the API's own
/// error shape rather than the framework's.
async fn create(
    State(state): State<AppState>,
    key: ApiKey,
    RawQuery(raw): RawQuery,
    Body(body): Body,
) -> Result<Response, ApiError> {
    // `dry_run`: plan the job without running it (see `intake::dry_run`).
    let dry = query::flag(&query::params(raw.as_deref()), "dry_run")?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| JobError::invalid(ErrorCode::RequestNotValid, format!("The request body is not valid JSON: {e}.")))?;
    let spec = JobSpec::parse(&body)?;
    if dry {
        let _running = state.dry_runs.enter(&key.owner).map_err(|busy| ApiError::TooManyRequests {
            code: ErrorCode::TooManyDryRuns,
            message: busy.to_string(),
            retry_after: std::time::Duration::from_secs(crate::job::dry_run_gate::RETRY_AFTER_SECS),
        })?;
        let plan = dry_run(&state.plugins, &state.config, &key.owner, &spec).await.map_err(|err| match err {
            DryRunError::Invalid(err) => ApiError::from(err),
            DryRunError::Internal(message) => ApiError::internal(anyhow::anyhow!(message)),
        })?;
        return Ok((StatusCode::OK, Json(plan)).into_response());
    }
    let (job, outputs) = submit(&state, &key, spec, "coconut_v2").await?;
    Ok((StatusCode::CREATED, Json(view::job_view(&job, &outputs))).into_response())
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

#[utoipa::path(
    get,
    path = "/v2/jobs/{jobId}",
    operation_id = "retrieveJob",
    tag = "Jobs",
    summary = "Retrieve a job",
    description = "A job with its overall status, progress, input status and each output's status and URLs.",
    params(("jobId" = String, Path, description = "The identifier of the job.")),
    responses(
        (status = 200, description = "Job retrieved.", body = super::schema::Job),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "Job not found.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn show(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>) -> Result<Json<view::JobView>, ApiError> {
    let (job, outputs) = own_job(&state, &key, &id).await?;
    Ok(Json(view::job_view(&job, &outputs)))
}

/// The caller's job `id` with its outputs, or `job_not_found` (another key's job is not
/// found either).
pub(super) async fn own_job(state: &AppState, key: &ApiKey, id: &str) -> Result<(job::Model, Vec<output::Model>), ApiError> {
    db::jobs::read(&state.db, id, Some(&key.owner))
        .await?
        .ok_or_else(|| ApiError::NotFound { code: ErrorCode::JobNotFound, what: format!("Job '{id}'") })
}

#[utoipa::path(
    get,
    path = "/v2/jobs",
    operation_id = "listJobs",
    tag = "Jobs",
    summary = "List jobs",
    description = "The caller's jobs, newest first. Another key's jobs are never listed.",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "How many jobs (default 20)."),
        ("status" = Option<super::schema::JobStatus>, Query, description = "Only jobs in this status."),
    ),
    responses(
        (status = 200, description = "The jobs.", body = super::schema::JobList),
        (status = 400, description = "A query parameter is not valid.", body = super::schema::Error),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
/// The caller's jobs, newest first: `limit` (1-100, default 20) and `status`
/// (`job.starting`, `job.completed` or `job.failed`). Another key's jobs are never listed.
async fn list(State(state): State<AppState>, key: ApiKey, RawQuery(raw): RawQuery) -> Result<Json<view::JobList>, ApiError> {
    let params = query::params(raw.as_deref());
    query::only(&params, &["limit", "status"])?;
    let limit = match params.get("limit") {
        None => LIST_DEFAULT,
        Some(text) => text.parse::<u64>().ok().filter(|n| (1..=LIST_MAX).contains(n)).ok_or_else(|| {
            JobError::invalid(ErrorCode::RequestNotValid, format!("The limit must be a whole number from 1 to {LIST_MAX}, not '{text}'."))
        })?,
    };
    let status = match params.get("status") {
        None => None,
        Some(text) => Some(JobStatus::iter().find(|s| s.as_str() == text).ok_or_else(|| {
            JobError::invalid(ErrorCode::RequestNotValid, format!("The status must be job.starting, job.completed or job.failed, not '{text}'."))
        })?),
    };
    let jobs = db::list::list(&state.db, &key.owner, status, limit).await?.iter().map(|(j, o)| view::job_view(j, o)).collect();
    Ok(Json(view::JobList { jobs }))
}
