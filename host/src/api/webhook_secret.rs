//! The caller's webhook signing secret: `GET /v2/webhooks/secret` shows it and
//! `POST /v2/webhooks/secret/rotate` replaces it (the previous one keeps signing beside
//! it for `webhook_secret_overlap_secs`). Neither takes a tenant: a key reads and rotates
//! its own secret, never another's.

use copra_codes::ErrorCode;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::auth::ApiKey;
use super::{ApiError, AppState};
use crate::db::now_ms;
use crate::job::{JobError, view::timestamp};
use crate::notify::secrets::{self, RotateError, TenantSecrets};

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/secret", get(show)).route("/webhooks/secret/rotate", post(rotate))
}

#[utoipa::path(
    get,
    path = "/v2/webhooks/secret",
    operation_id = "getWebhookSecret",
    tag = "Webhooks",
    summary = "Your webhook signing secret",
    description = "The Standard Webhooks secret (`whsec_...`) that signs this key's webhooks: verify each \
        delivery's `webhook-signature` with it. Each API key has its own.",
    responses(
        (status = 200, description = "The secret.", body = super::schema::WebhookSigningSecret),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn show(State(state): State<AppState>, key: ApiKey) -> Result<Json<Value>, ApiError> {
    let secrets = secrets::of(&state.db, &state.config.webhooks, &key.owner, now_ms()).await?;
    Ok(Json(view(&secrets)))
}

#[utoipa::path(
    post,
    path = "/v2/webhooks/secret/rotate",
    operation_id = "rotateWebhookSecret",
    tag = "Webhooks",
    summary = "Replace your webhook signing secret",
    description = "A new secret signs this key's webhooks from now on. For `webhook_secret_overlap_secs` \
        (24 hours by default) every delivery carries both signatures, the new one first, separated by \
        a space (`v1,<new> v1,<old>`), so receivers verifying with either secret accept it.",
    responses(
        (status = 200, description = "The new secret.", body = super::schema::WebhookSigningSecret),
        (status = 400, description = "This key's secret is set in the server's config file (`webhook_secret_configured`).", body = super::schema::Error),
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn rotate(State(state): State<AppState>, key: ApiKey) -> Result<Json<Value>, ApiError> {
    match secrets::rotate(&state.db, &state.config.webhooks, &key.owner, now_ms()).await {
        Ok(secrets) => Ok(Json(view(&secrets))),
        Err(err @ RotateError::Configured) => Err(JobError::invalid(ErrorCode::WebhookSecretConfigured, format!("{err}.")).into()),
        Err(RotateError::Db(err)) => Err(err.into()),
    }
}

fn view(secrets: &TenantSecrets) -> Value {
    json!({
        "secret": secrets.text.expose(),
        "rotated_at": secrets.rotated_at.map(timestamp),
        "previous_secret_expires_at": secrets.previous.as_ref().map(|(_, until)| timestamp(*until)),
        "configured": secrets.configured,
    })
}
