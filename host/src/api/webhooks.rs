//! A job's webhook log for its tenant, and redelivery on request:
//! `GET /v2/jobs/{id}/webhooks` (every event with its delivery state and attempts) and
//! `POST /v2/jobs/{id}/webhooks/{event_id}/redeliver` (owed again, same `webhook-id`;
//! at most `[webhooks] redeliveries_per_minute` per key, then a 429 with `Retry-After`).
//! Another key's job is a 404, like every job route.

use copra_codes::ErrorCode;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::auth::ApiKey;
use super::{ApiError, AppState};
use crate::db::{event, outbox, webhook_attempt};
use crate::notify::redelivery::{self, RedeliverError};
use crate::job::{JobError, view::timestamp};

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs/{id}/webhooks", get(list)).route("/jobs/{id}/webhooks/{event_id}/redeliver", post(redeliver))
}

#[utoipa::path(
    get,
    path = "/v2/jobs/{jobId}/webhooks",
    operation_id = "listJobWebhooks",
    tag = "Webhooks",
    summary = "A job's webhook log",
    description = "Every event of the job with its delivery state and attempts, oldest first.",
    params(("jobId" = String, Path, description = "The identifier of the job.")),
    responses(
        (status = 200, description = "The log.", body = super::schema::WebhookLog),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "Job not found.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn list(State(state): State<AppState>, key: ApiKey, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    super::jobs::own_job(&state, &key, &id).await?;
    let events: Vec<Value> = outbox::log(&state.db, &id).await?.iter().map(|(e, attempts)| event_view(e, attempts)).collect();
    Ok(Json(json!({"job_id": id, "events": events})))
}

#[utoipa::path(
    post,
    path = "/v2/jobs/{jobId}/webhooks/{eventId}/redeliver",
    operation_id = "redeliverWebhook",
    tag = "Webhooks",
    summary = "Deliver an event again",
    description = "The event is owed again, with the same `webhook-id`.",
    params(
        ("jobId" = String, Path, description = "The identifier of the job."),
        ("eventId" = String, Path, description = "The event's `id` in the webhook log."),
    ),
    responses(
        (status = 202, description = "Owed again.", body = super::schema::WebhookEvent),
        (status = 400, description = "The job has no notification.", body = super::schema::Error),
        (status = 403, description = "Sent by a browser page of another origin (`allowed_origins`).", body = super::schema::Error),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "Job or event not found.", body = super::schema::Error),
        (status = 429, description = "Too many redeliveries for this key (`[webhooks] redeliveries_per_minute`); see `Retry-After`.", body = super::schema::Error,
            headers(("Retry-After" = u64, description = "Seconds until a redelivery is accepted again."))),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn redeliver(State(state): State<AppState>, key: ApiKey, Path((id, event_id)): Path<(String, String)>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (job, _) = super::jobs::own_job(&state, &key, &id).await?;
    let done = redelivery::redeliver(&state.db, &state.config.sealer, &state.redeliveries, &key.owner, &job, &event_id).await.map_err(refusal)?;
    Ok((StatusCode::ACCEPTED, Json(event_view(&done.event, &done.attempts))))
}

/// A redelivery refused, in the API's shape.
fn refusal(err: RedeliverError) -> ApiError {
    match err {
        RedeliverError::NotFound { .. } => ApiError::NotFound { code: ErrorCode::EventNotFound, what: err.to_string() },
        RedeliverError::NoNotification { .. } => JobError::invalid(ErrorCode::NotificationNotFound, err.to_string()).into(),
        RedeliverError::TooMany { retry_after, .. } => ApiError::TooManyRequests { code: ErrorCode::TooManyRedeliveries, message: err.to_string(), retry_after },
        RedeliverError::Spec(_) | RedeliverError::Db(_) => ApiError::internal(err),
    }
}

/// An event with its delivery state and its attempts, oldest first.
fn event_view(event: &event::Model, attempts: &[webhook_attempt::Model]) -> Value {
    let state = event.delivery_state();
    let attempts: Vec<Value> = attempts
        .iter()
        .map(|a| {
            json!({
                "attempted_at": timestamp(a.attempted_at),
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "succeeded": a.succeeded,
                "error": a.error,
            })
        })
        .collect();
    json!({
        "id": event.id,
        "webhook_id": event.webhook_id(),
        "event": event.event,
        "created_at": timestamp(event.created_at),
        "state": state,
        "next_attempt_at": (state == event::DeliveryState::Pending).then(|| timestamp(event.next_attempt_at)),
        "delivered_at": event.delivered_at.map(timestamp),
        "failed_at": event.failed_at.map(timestamp),
        "last_error": event.last_error,
        "attempts": attempts,
    })
}
