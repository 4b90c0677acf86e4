//! A job's webhook log for its tenant, and redelivery on request:
//! `GET /v2/jobs/{id}/webhooks` (every event with its delivery state and attempts) and
//! `POST /v2/jobs/{id}/webhooks/{event_id}/redeliver` (owed again, same `webhook-id`;
//! at most `[webhooks] redeliveries_per_minute` per key, then a 429 with `Retry-After`).
//! Another key's job is a 404, like every job route.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::auth::ApiKey;
use super::{ApiError, AppState};
use crate::db::{event, outbox, webhook_attempt};
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
        (status = 200, description = "The log.", body = super::openapi::WebhookLog),
        (status = 401, description = "Authentication failed.", body = super::openapi::Error),
        (status = 404, description = "Job not found.", body = super::openapi::Error),
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
        (status = 202, description = "Owed again.", body = super::openapi::WebhookEvent),
        (status = 400, description = "The job has no notification.", body = super::openapi::Error),
        (status = 403, description = "Sent by a browser page of another origin (`allowed_origins`).", body = super::openapi::Error),
        (status = 401, description = "Authentication failed.", body = super::openapi::Error),
        (status = 404, description = "Job or event not found.", body = super::openapi::Error),
        (status = 429, description = "Too many redeliveries for this key (`[webhooks] redeliveries_per_minute`); see `Retry-After`.", body = super::openapi::Error,
            headers(("Retry-After" = u64, description = "Seconds until a redelivery is accepted again."))),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn redeliver(State(state): State<AppState>, key: ApiKey, Path((id, event_id)): Path<(String, String)>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (job, _) = super::jobs::own_job(&state, &key, &id).await?;
    let not_found = || ApiError::NotFound { code: "event_not_found", what: format!("Event '{event_id}' of job '{id}'") };
    let event_id: i64 = event_id.parse().map_err(|_| not_found())?;
    let spec = crate::job::stored::open_spec(&state.config.sealer, &job.spec).map_err(ApiError::internal)?;
    if spec.notification.is_none() {
        return Err(JobError::invalid(
            "notification_not_found",
            format!("Job '{id}' was submitted without a 'notification' block, so it has no webhooks to redeliver."),
        )
        .into());
    }
    state.redeliveries.take(&key.owner).map_err(|retry_after| ApiError::TooManyRequests {
        code: "too_many_redeliveries",
        message: format!(
            "This API key asked for more than {} webhook redeliveries a minute ([webhooks] redeliveries_per_minute).",
            state.redeliveries.rate()
        ),
        retry_after,
    })?;
    let event = outbox::redeliver(&state.db, &id, event_id).await?.ok_or_else(not_found)?;
    tracing::info!(job_id = %id, event_id, webhook_id = %event.webhook_id(), "webhook redelivery requested");
    let log = outbox::log(&state.db, &id).await?;
    let attempts = log.iter().find(|(e, _)| e.id == event.id).map(|(_, a)| a.as_slice()).unwrap_or_default();
    Ok((StatusCode::ACCEPTED, Json(event_view(&event, attempts))))
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
