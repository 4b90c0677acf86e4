//! The shapes of the operator's routes (`/admin`, `/healthz`, `/readyz`) and of Octet's
//! v0 answers. Octet's request types are the parser's own (`job::octet::Request`).

#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// `GET /admin/plugins`: the loaded plugins and the files that did not load.
#[derive(Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<Plugin>,
    pub load_errors: Vec<LoadError>,
}

#[derive(Serialize, ToSchema)]
pub struct Plugin {
    /// Added through the admin API and kept in the database (every node loads it);
    /// otherwise a file of this node's plugin directory.
    pub stored: bool,
    pub name: String,
    pub version: String,
    #[schema(example = "format")]
    pub kind: String,
    /// What it provides: formats, storage services, notification types, conditions.
    pub provides: Vec<String>,
    pub sha256: String,
    pub loaded_at: String,
    pub calls: u64,
    pub errors: u64,
}

#[derive(Serialize, ToSchema)]
pub struct LoadError {
    pub file: String,
    pub error: String,
    pub at: String,
}

/// `GET /admin/jobs/{jobId}/events`: any job's events with their delivery state.
#[derive(Serialize, ToSchema)]
pub struct AdminJobEvents {
    pub job_id: String,
    pub events: Vec<AdminEvent>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminEvent {
    pub id: i64,
    pub event: String,
    pub created_at: String,
    pub webhook_id: String,
    pub state: super::coconut::DeliveryState,
    pub pending: bool,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// `/healthz` and `/health`: the process answers.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// `/readyz`: whether this node should get traffic.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    pub plugins: ReadyPlugins,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyPlugins {
    pub loaded: u64,
    pub load_errors: u64,
}

/// A job as Octet's users read it.
#[derive(Serialize, ToSchema)]
pub struct OctetJob {
    pub job_id: String,
    pub status: OctetStatus,
    /// Percent, 0 to 100.
    pub progress: i32,
    /// RFC 3339.
    pub created_at: String,
    pub completed_at: Option<String>,
    /// Why the job failed (with `error`).
    #[schema(nullable = false)]
    pub error: Option<String>,
    pub outputs: Vec<OctetOutput>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OctetStatus {
    Pending,
    Processing,
    Complete,
    Error,
}

#[derive(Serialize, ToSchema)]
pub struct OctetOutput {
    pub dest_path: Option<String>,
    /// `pending`, `processing`, `complete`, `error` or `skipped`.
    pub status: String,
    #[schema(nullable = false)]
    pub url: Option<String>,
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// Octet's error: why the request was refused.
#[derive(Serialize, ToSchema)]
pub struct OctetError {
    pub error: String,
}
