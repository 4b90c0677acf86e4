//! `GET /v2/jobs?limit=N`: the caller's most recent jobs, newest first, each as
//! `GET /v2/jobs/{id}` shows it (the dashboard's jobs list). At most 100 at a time.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::auth::ApiKey;
use super::{ApiError, AppState};
use crate::job::{JobError, view};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<String>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs", get(list))
}

async fn list(State(state): State<AppState>, key: ApiKey, Query(query): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text.parse::<u64>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            ApiError::from(JobError::invalid("request_not_valid", format!("'limit' must be a whole number from 1 to {MAX_LIMIT}.")))
        })?,
    };
    let jobs = crate::db::job_list::recent(&state.db, &key.owner, limit).await?;
    let jobs: Vec<Value> = jobs.iter().map(|(job, outputs)| view::job_view(job, outputs)).collect();
    Ok(Json(json!({"jobs": jobs})))
}
