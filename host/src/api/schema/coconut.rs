//! The Coconut v2 API's shapes, as Coconut's own OpenAPI document names and
//! types them, with what Copra adds (`url` and `error` of an output, the job list, the
//! webhook log, the dry-run plan, `notification.progress_interval`). Requests are parsed
//! by hand (`job::JobSpec::parse`) and answers built as JSON (`job::view`), so these types
//! only describe; the contract test (tests/e2e/test_contract.py) checks the server
//! against them.

#![allow(dead_code)]

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

/// The body of `POST /v2/jobs`.
#[derive(Serialize, ToSchema)]
pub struct CreateJobRequest {
    /// The source; required unless `inputs` is given.
    #[schema(nullable = false)]
    pub input: Option<Input>,
    /// Several sources joined, in order, into the timeline every output is made from
    /// (an intro, the programme, an outro), in place of `input`: 1 to 20 input objects,
    /// each with `clips` of its own if it likes. Later inputs are conformed to the
    /// first's picture size, pixel format and frame rate and to the joined audio's
    /// format; an input without audio is joined with silence. Only the first may be a
    /// direct `upload`.
    #[schema(nullable = false)]
    pub inputs: Option<Vec<Input>>,
    pub storage: Storage,
    pub outputs: Outputs,
    #[schema(nullable = false)]
    pub notification: Option<Notification>,
    #[schema(nullable = false)]
    pub settings: Option<Settings>,
    /// Sidecar WebVTT or SRT files, one a language, carried into the job's packages.
    #[schema(nullable = false)]
    pub subtitles: Option<Vec<SubtitleTrack>>,
}

/// A sidecar subtitle file.
#[derive(Serialize, ToSchema)]
pub struct SubtitleTrack {
    /// The WebVTT or SRT file.
    #[schema(format = Uri)]
    pub url: String,
    /// A BCP 47 language tag (`en`, `pt-BR`).
    pub language: String,
    /// What players show (the language when not given).
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// The track players pick first (at most one; else the first).
    #[schema(nullable = false)]
    pub default: Option<bool>,
}

/// A range of the input, in seconds.
#[derive(Serialize, ToSchema)]
pub struct Clip {
    pub offset: f64,
    pub duration: f64,
}

/// The source media file to transcode.
#[derive(Serialize, ToSchema)]
pub struct Input {
    /// Publicly reachable URL of the source media file.
    #[schema(format = Uri, nullable = false)]
    pub url: Option<String>,
    /// Cloud storage service when fetching the input from private storage.
    #[schema(nullable = false)]
    pub service: Option<String>,
    #[schema(nullable = false)]
    pub bucket: Option<String>,
    #[schema(nullable = false)]
    pub credentials: Option<Credentials>,
    /// A finished direct upload of the same API key (`/v2/uploads`), by its id; its URL
    /// (`Location` of the upload) may be given as `url` instead.
    #[schema(nullable = false)]
    pub upload: Option<String>,
    /// Ranges of the input joined, in order, into the timeline every output is made from.
    #[schema(nullable = false)]
    pub clips: Option<Vec<Clip>>,
}

/// Destination where output files are uploaded. Each service's plugin reads its own
/// fields (`s3` also takes `endpoint` and `force_path_style`; `local` only `path`).
#[derive(Serialize, ToSchema)]
pub struct Storage {
    /// Storage service: `s3`, `local`, or one a plugin adds.
    #[schema(example = "s3")]
    pub service: String,
    #[schema(example = "us-east-1", nullable = false)]
    pub region: Option<String>,
    #[schema(nullable = false)]
    pub bucket: Option<String>,
    /// Destination path prefix within the bucket.
    #[schema(nullable = false)]
    pub path: Option<String>,
    #[schema(nullable = false)]
    pub credentials: Option<Credentials>,
}

/// Access credentials for the storage service.
#[derive(Serialize, ToSchema)]
pub struct Credentials {
    #[schema(nullable = false)]
    pub access_key_id: Option<String>,
    #[schema(nullable = false)]
    pub secret_access_key: Option<String>,
}

/// Map of output keys to output definitions. Keys name the format and variant
/// (`mp4:720p`, `webm:480p`, `httpstream`, `jpg:300x`, `gif:200x`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"mp4:720p": {"path": "/transcoded/video_720p.mp4"}, "jpg:300x": {"path": "/thumbs/thumb_#num#.jpg", "number": 5}}))]
pub struct Outputs(pub HashMap<String, OneOrMany>);

/// One output definition, or several of the same format.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(Output),
    Many(Vec<Output>),
}

/// A single output definition. Other fields are the format plugin's parameters.
#[derive(Serialize, ToSchema)]
pub struct Output {
    /// Destination path for this output file.
    #[schema(nullable = false)]
    pub path: Option<String>,
    /// Direct destination URL (alternative to storage + path).
    #[schema(format = Uri, nullable = false)]
    pub url: Option<String>,
    /// Conditional expression controlling whether the output is produced.
    #[serde(rename = "if")]
    #[schema(nullable = false)]
    pub condition: Option<String>,
    /// Number of images to generate (image outputs only).
    #[schema(nullable = false)]
    pub number: Option<i64>,
}

/// Webhook configuration that receives job event callbacks.
#[derive(Serialize, ToSchema)]
pub struct Notification {
    /// Notification transport. Only `http` (webhook) is supported by the first-party plugin.
    #[serde(rename = "type")]
    #[schema(nullable = false)]
    pub kind: Option<NotificationType>,
    /// Endpoint that receives POST callbacks.
    #[schema(format = Uri)]
    pub url: String,
    /// When true, a callback for each event (`input.transferred`, `output.completed`,
    /// `output.failed`) besides the final `job.completed`/`job.failed`.
    #[schema(default = false, nullable = false)]
    pub events: Option<bool>,
    /// When true, callbacks include codec/stream metadata.
    #[schema(default = false, nullable = false)]
    pub metadata: Option<bool>,
    /// Seconds between `job.progress` callbacks while the job encodes (Copra's addition).
    #[schema(minimum = 1, maximum = 86400, nullable = false)]
    pub progress_interval: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub enum NotificationType {
    #[serde(rename = "http")]
    Http,
}

/// Optional job-level settings.
#[derive(Serialize, ToSchema)]
pub struct Settings {
    /// Split the input into chunks for parallel transcoding.
    #[schema(default = false, nullable = false)]
    pub ultrafast: Option<bool>,
}

/// `POST /v2/jobs?dry_run=true`: what a submit would do, nothing run.
#[derive(Serialize, ToSchema)]
pub struct DryRunPlan {
    pub dry_run: bool,
    /// `input.transferred` with the input's `metadata`, or `input.failed` with its `error`.
    pub input: serde_json::Value,
    /// `{service, valid, error?}`: whether the storage target resolved.
    pub storage: serde_json::Value,
    /// Per output: `key`, `format`, `type`, `status` (`planned`, `skipped`, `failed`) and
    /// the format plugin's `plan`.
    pub outputs: Vec<serde_json::Value>,
    /// `{estimate_bytes, limit_bytes}`: the memory the planned outputs would need at
    /// once, and `max_job_memory_mib`; above it every planned output is `failed`.
    /// Absent when the input failed.
    #[schema(nullable = false)]
    pub memory: Option<serde_json::Value>,
}

/// Metadata for the input source (`source`) and every finished output of a job.
#[derive(Serialize, ToSchema)]
pub struct MetadataResponse(pub HashMap<String, Metadata>);

/// Technical metadata for a single media file (ffprobe's shape).
#[derive(Serialize, ToSchema)]
pub struct Metadata {
    pub streams: Vec<Stream>,
    pub format: Format,
    /// An output's measured quality, when the job or the output asked for `metrics`.
    #[schema(nullable = false)]
    pub quality: Option<crate::media::QualityReport>,
}

#[derive(Serialize, ToSchema)]
pub struct Stream {
    #[schema(nullable = false)]
    pub codec_name: Option<String>,
    #[schema(nullable = false)]
    pub codec_type: Option<String>,
    #[schema(nullable = false)]
    pub profile: Option<String>,
    #[schema(nullable = false)]
    pub width: Option<i64>,
    #[schema(nullable = false)]
    pub height: Option<i64>,
    #[schema(nullable = false)]
    pub bit_rate: Option<String>,
    #[schema(nullable = false)]
    pub sample_rate: Option<String>,
    #[schema(nullable = false)]
    pub channels: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Format {
    #[schema(nullable = false)]
    pub filename: Option<String>,
    #[schema(nullable = false)]
    pub duration: Option<String>,
    #[schema(nullable = false)]
    pub size: Option<String>,
    #[schema(nullable = false)]
    pub bit_rate: Option<String>,
    #[schema(nullable = false)]
    pub tags: Option<HashMap<String, String>>,
}

/// A job's webhook log: every event with its delivery state and attempts.
#[derive(Serialize, ToSchema)]
pub struct WebhookLog {
    pub job_id: String,
    pub events: Vec<WebhookEvent>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookEvent {
    pub id: i64,
    /// The Standard Webhooks `webhook-id`, the same on every attempt.
    pub webhook_id: String,
    #[schema(example = "job.completed")]
    pub event: String,
    pub created_at: String,
    pub state: DeliveryState,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub failed_at: Option<String>,
    pub last_error: Option<String>,
    pub attempts: Vec<WebhookAttempt>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
    NotRequested,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookAttempt {
    pub attempted_at: String,
    pub duration_ms: i64,
    /// The receiver's HTTP status, `null` when it was not reached.
    pub status_code: Option<i32>,
    pub succeeded: bool,
    pub error: Option<String>,
}

/// `GET /v2/webhooks/secret`, `POST /v2/webhooks/secret/rotate`: the caller's webhook
/// signing secret.
#[derive(Serialize, ToSchema)]
pub struct WebhookSigningSecret {
    /// The Standard Webhooks secret that signs this key's webhooks.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
    /// When it was last rotated; `null` if never.
    pub rotated_at: Option<String>,
    /// Until when deliveries also carry a signature made with the previous secret;
    /// `null` when they do not.
    pub previous_secret_expires_at: Option<String>,
    /// Set by the operator in the config file (`[webhooks.secrets]`): rotated there,
    /// not through the API.
    pub configured: bool,
}
