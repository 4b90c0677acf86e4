//! `GET /openapi.json`: the API described as OpenAPI 3.1, generated with `utoipa` from
//! the handlers' `#[utoipa::path]` attributes and the shapes in `api::schema`. It covers
//! `/v2` (consistent with Coconut's own OpenAPI document: the same paths, schema names
//! and `basicAuth` scheme), `/v0`, `/admin` and the operator's routes. Served without
//! auth: it describes the API, it holds nothing of anyone's.

use std::sync::OnceLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::schema::*;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Copra API",
        description = "Self-hosted video transcoding. `/v2` is the Coconut v2 API (HTTP Basic \
            with the API key as the username and a blank password, or the key as a Bearer token); \
            `/v0` is Octet's v0 API on the same keys; `/admin` and `/metrics` take the admin key as \
            a Bearer token. Errors are `{\"message\", \"error_code\", \"status\": \"error\"}` (Octet's: \
            `{\"error\"}`)."
    ),
    paths(
        super::jobs::create,
        super::jobs::list,
        super::jobs::show,
        super::metadata::all,
        super::metadata::one,
        super::webhooks::list,
        super::webhooks::redeliver,
        super::webhook_secret::show,
        super::webhook_secret::rotate,
        super::events::stream,
        super::uploads::capabilities,
        super::uploads::create,
        super::uploads::head_upload,
        super::uploads::append,
        super::uploads::terminate,
        super::uploads::show,
        super::octet::create,
        super::octet::show,
        super::admin::list,
        super::admin::add,
        super::admin::remove,
        super::admin::job_events,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        super::health,
        super::files::serve,
        document,
    ),
    components(schemas(
        CreateJobRequest, Input, Clip, SubtitleTrack, Storage, Credentials, Outputs, OneOrMany, Output, Notification, NotificationType,
        Settings, Job, JobStatus, InputStatus, InputStatusName, OutputStatus, OutputUrl, OutputType, JobList, DryRunPlan,
        MetadataResponse, Metadata, Stream, Format, WebhookLog, WebhookEvent, DeliveryState, WebhookAttempt, WebhookSigningSecret, Error,
        ErrorStatus, copra_codes::ErrorCode, PluginList, Plugin, LoadError, AdminJobEvents, AdminEvent, Health, Ready, ReadyPlugins, OctetJob,
        OctetStatus, OctetOutput, OctetError, crate::job::octet::Request, super::uploads::UploadView,
    )),
    modifiers(&Security),
    tags(
        (name = "Jobs", description = "Create, list and retrieve encoding jobs."),
        (name = "Metadata", description = "Retrieve technical metadata for input and output files."),
        (name = "Webhooks", description = "A job's webhook deliveries, redelivery, and your signing secret."),
        (name = "Events", description = "A job's progress as Server-Sent Events."),
        (name = "Uploads", description = "Direct uploads over tus 1.0, to use as a job's input."),
        (name = "Octet", description = "Octet's v0 job API."),
        (name = "Admin", description = "The operator's API (admin key)."),
        (name = "Operations", description = "Health, readiness, metrics, files and this document."),
    )
)]
struct ApiDoc;

/// The security schemes the operations name.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = |kind: HttpAuthScheme, description: &str| {
            SecurityScheme::Http(HttpBuilder::new().scheme(kind).description(Some(description.to_string())).build())
        };
        components.add_security_scheme(
            "basicAuth",
            scheme(HttpAuthScheme::Basic, "HTTP Basic authentication. Use the API key as the username and leave the password blank."),
        );
        components.add_security_scheme("bearerAuth", scheme(HttpAuthScheme::Bearer, "The API key as a Bearer token."));
        components.add_security_scheme("adminBearer", scheme(HttpAuthScheme::Bearer, "The admin key (COPRA_ADMIN_KEY) as a Bearer token."));
    }
}

/// The document as JSON, made once.
pub fn json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc.to_json().expect("the OpenAPI document serializes")
    })
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "Operations",
    summary = "This API's OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
    security(())
)]
async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json())
}

#[cfg(test)]
mod tests;
