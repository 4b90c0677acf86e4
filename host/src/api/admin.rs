//! The operator's API: list, add and remove plugins while the server runs. It has its
//! own key (`COPRA_ADMIN_KEY`); job API keys are refused here.

use copra_codes::ErrorCode;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, auth};
use crate::job::JobError;
use crate::plugins::{AddError, LoadedPlugin};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plugins", get(list).post(add))
        .route("/plugins/{name}", delete(remove))
        .route("/jobs/{id}/events", get(job_events))
        // Components are small, but not as small as JSON bodies.
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
}

/// Proof that the caller holds the admin key.
pub struct AdminKey;

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = auth::presented_key(parts).ok_or(ApiError::Unauthorized)?;
        if auth::key_matches(&key, &state.config.admin_key) { Ok(AdminKey) } else { Err(ApiError::Unauthorized) }
    }
}

/// `stored`: added through the admin API and kept in the database, so every node
/// sharing it loads this version; otherwise a file of this node's plugin directory.
fn plugin_view(plugin: &LoadedPlugin, stored: bool) -> Value {
    let (calls, errors) = plugin.calls();
    json!({
        "stored": stored,
        "name": &*plugin.name,
        "version": plugin.info.version,
        "kind": plugin.kind.as_str(),
        "provides": plugin.info.provides,
        "sha256": plugin.sha256,
        "loaded_at": plugin.loaded_at.to_rfc3339(),
        "calls": calls,
        "errors": errors,
    })
}

#[utoipa::path(
    get,
    path = "/admin/plugins",
    operation_id = "adminListPlugins",
    tag = "Admin",
    summary = "Loaded plugins and load errors",
    responses(
        (status = 200, description = "The plugins.", body = super::schema::PluginList),
        (status = 401, description = "Not the admin key.", body = super::schema::Error),
    ),
    security(("adminBearer" = []))
)]
async fn list(State(state): State<AppState>, _: AdminKey) -> Result<Json<Value>, ApiError> {
    let stored: std::collections::HashSet<String> =
        crate::db::plugin::list(&state.db).await?.into_iter().filter(|p| p.is_active()).map(|p| p.sha256).collect();
    let plugins: Vec<Value> = state.plugins.list().iter().map(|p| plugin_view(p, stored.contains(&p.sha256))).collect();
    Ok(Json(json!({"plugins": plugins, "load_errors": state.plugins.errors()})))
}

/// Names become file names: keep them to a safe alphabet.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[utoipa::path(
    post,
    path = "/admin/plugins",
    operation_id = "adminAddPlugin",
    tag = "Admin",
    summary = "Add or replace a plugin",
    params(("name" = String, Query, description = "The plugin's name: 1-64 letters, digits, '-' or '_'.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The WebAssembly component."),
    responses(
        (status = 201, description = "Loaded.", body = super::schema::Plugin),
        (status = 400, description = "The name or the component was refused.", body = super::schema::Error),
        (status = 403, description = "Sent by a browser page of another origin (`allowed_origins`).", body = super::schema::Error),
        (status = 415, description = "The body is of a type an HTML form sends (send `application/wasm`, `application/octet-stream`, or no type).", body = super::schema::Error),
        (status = 401, description = "Not the admin key.", body = super::schema::Error),
    ),
    security(("adminBearer" = []))
)]
/// Upload a component as `?name=NAME`. It replaces a plugin of that name on every node
/// sharing the database; if it does not load, the previous version stays and the answer
/// says why.
async fn add(State(state): State<AppState>, _: AdminKey, RawQuery(raw): RawQuery, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = super::query::params(raw.as_deref()).remove("name").unwrap_or_default();
    if !valid_name(&name) {
        return Err(JobError::invalid(ErrorCode::PluginNotValid, "The plugin name must be 1-64 letters, digits, '-' or '_'.").into());
    }
    match state.plugins.add(&state.db, &name, body.to_vec()).await {
        Ok(plugin) => Ok((StatusCode::CREATED, Json(plugin_view(&plugin, true)))),
        Err(AddError::Rejected(problem)) => Err(JobError::invalid(ErrorCode::PluginNotValid, format!("The plugin was rejected: {problem}")).into()),
        Err(AddError::Failed(err)) => Err(ApiError::internal(err)),
    }
}

#[utoipa::path(
    delete,
    path = "/admin/plugins/{name}",
    operation_id = "adminRemovePlugin",
    tag = "Admin",
    summary = "Remove a plugin",
    params(("name" = String, Path, description = "The plugin's name.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Sent by a browser page of another origin (`allowed_origins`).", body = super::schema::Error),
        (status = 401, description = "Not the admin key.", body = super::schema::Error),
        (status = 404, description = "No such plugin.", body = super::schema::Error),
    ),
    security(("adminBearer" = []))
)]
/// Remove a plugin on every node sharing the database.
async fn remove(State(state): State<AppState>, _: AdminKey, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let found = valid_name(&name) && state.plugins.remove(&state.db, &name).await.map_err(ApiError::internal)?;
    if !found {
        return Err(ApiError::NotFound { code: ErrorCode::PluginNotFound, what: format!("Plugin '{name}'") });
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/admin/jobs/{jobId}/events",
    operation_id = "adminJobEvents",
    tag = "Admin",
    summary = "Any job's events and their delivery state",
    params(("jobId" = String, Path, description = "The identifier of the job.")),
    responses(
        (status = 200, description = "The events.", body = super::schema::AdminJobEvents),
        (status = 401, description = "Not the admin key.", body = super::schema::Error),
        (status = 404, description = "Job not found.", body = super::schema::Error),
    ),
    security(("adminBearer" = []))
)]
/// A job's events with their delivery state: what was sent, how often it was tried,
/// and the last error. Operators read this when a webhook did not arrive.
async fn job_events(State(state): State<AppState>, _: AdminKey, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if crate::db::jobs::read(&state.db, &id, None).await?.is_none() {
        return Err(ApiError::NotFound { code: ErrorCode::JobNotFound, what: format!("Job '{id}'") });
    }
    let events: Vec<Value> = crate::db::jobs::events(&state.db, &id)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "event": e.event,
                "created_at": crate::job::view::timestamp(e.created_at),
                "webhook_id": e.webhook_id(),
                "state": e.delivery_state(),
                "pending": e.pending,
                "attempts": e.attempts,
                "last_error": e.last_error,
            })
        })
        .collect();
    Ok(Json(json!({"job_id": id, "events": events})))
}
