//! What operators' tools call: `/healthz` (the process answers), `/readyz` (the database
//! answers and plugins are loaded: send traffic here) and `/metrics` (Prometheus text,
//! behind the admin key like every operator route: `Authorization: Bearer <admin key>`).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::admin::AdminKey;
use super::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

#[utoipa::path(
    get, path = "/healthz", operation_id = "healthz", tag = "Operations", summary = "The process answers",
    responses((status = 200, description = "Alive.", body = super::schema::Health)),
    security(())
)]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(
    get, path = "/readyz", operation_id = "readyz", tag = "Operations", summary = "Ready for traffic",
    description = "The database answers and plugins are loaded.",
    responses(
        (status = 200, description = "Ready.", body = super::schema::Ready),
        (status = 503, description = "Not ready.", body = super::schema::Ready),
    ),
    security(())
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = crate::queue::ping(&state.db).await;
    let loaded = state.plugins.list().len();
    let load_errors = state.plugins.errors().len();
    let ready = database && loaded > 0;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": if database { "ok" } else { "unreachable" },
        "plugins": {"loaded": loaded, "load_errors": load_errors},
    });
    (status, Json(body))
}

#[utoipa::path(
    get, path = "/metrics", operation_id = "metrics", tag = "Operations", summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text format.", content_type = "text/plain", body = String),
        (status = 401, description = "Not the admin key.", body = super::schema::Error),
    ),
    security(("adminBearer" = []))
)]
async fn metrics(State(state): State<AppState>, _: AdminKey) -> Result<impl IntoResponse, ApiError> {
    let handle = crate::metrics::handle();
    let counts = crate::db::stats::job_counts(&state.db).await?;
    let by_status: Vec<(String, i64)> = counts.by_status.iter().map(|(s, n)| (s.as_str().to_string(), *n)).collect();
    crate::metrics::set_jobs(&by_status, counts.waiting, counts.running);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()))
}
