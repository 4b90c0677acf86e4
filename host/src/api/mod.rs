//! The HTTP room: routes of the Coconut v2 API, of Octet's v0 API, and the files of the
//! `local` storage.
//! Handlers are thin: they authenticate, parse, call into `job`/`db`, and shape JSON.

mod admin;
mod auth;
mod body;
mod error;
mod events;
mod files;
mod guard;
mod jobs;
mod metadata;
mod octet;
mod openapi;
mod ops;
mod query;
mod schema;
mod ui;
mod uploads;
mod webhook_secret;
mod webhooks;

use copra_codes::ErrorCode;
use std::sync::Arc;

use axum::Router;
use sea_orm::DatabaseConnection;

pub use error::ApiError;

use crate::config::Config;
use crate::plugins::Plugins;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub plugins: Arc<Plugins>,
    pub config: Arc<Config>,
    keys: Arc<auth::Keys>,
    /// Wakes the local worker when a job arrives, so it need not wait for its poll.
    pub job_arrived: Arc<tokio::sync::Notify>,
    /// Cancelled when the server shuts down: long-lived answers (event streams) end.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Webhook redeliveries per API key (`[webhooks] redeliveries_per_minute`).
    redeliveries: Arc<crate::notify::RateLimiter>,
    /// The dry runs running in this process, per tenant and in all.
    pub dry_runs: Arc<crate::job::dry_run_gate::DryRunGate>,
    /// Direct uploads (`/v2/uploads`).
    pub uploads: crate::upload::Uploads,
}

impl AppState {
    pub fn new(db: DatabaseConnection, plugins: Arc<Plugins>, config: Arc<Config>, job_arrived: Arc<tokio::sync::Notify>) -> Self {
        let keys = Arc::new(auth::Keys::new(&config.api_keys));
        let redeliveries = Arc::new(crate::notify::RateLimiter::per_minute(config.webhooks.redeliveries_per_minute));
        let dry_runs = crate::job::dry_run_gate::DryRunGate::new(&config.limits);
        let uploads = crate::upload::Uploads::of(&config);
        AppState { db, plugins, config, keys, job_arrived, stopping: Default::default(), redeliveries, dry_runs, uploads }
    }
}

impl AppState {
    /// Ends long-lived answers when `stopping` is cancelled.
    pub fn stopping_on(mut self, stopping: tokio_util::sync::CancellationToken) -> Self {
        self.stopping = stopping;
        self
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/v2", jobs::router().merge(metadata::router()).merge(webhooks::router()).merge(webhook_secret::router()).merge(events::router()).merge(uploads::router()))
        .nest("/v0", octet::router())
        .nest("/admin", admin::router())
        .merge(files::router())
        .merge(ops::router())
        .merge(openapi::router())
        .merge(ui::router())
        .route("/health", axum::routing::get(health))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(axum::middleware::from_fn(ui::no_login_box_for_scripts))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The process answers and its database too (kept for early scripts; see `/readyz`).
#[utoipa::path(
    get, path = "/health", operation_id = "health", tag = "Operations", summary = "Liveness with a database check",
    responses((status = 200, description = "Up."), (status = 503, description = "The database does not answer.")),
    security(())
)]
async fn health(axum::extract::State(state): axum::extract::State<AppState>) -> axum::http::StatusCode {
    if crate::queue::ping(&state.db).await { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE }
}

async fn not_found() -> ApiError {
    ApiError::NotFound { code: ErrorCode::NotFound, what: "Route".into() }
}
