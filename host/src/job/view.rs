//! The job as Coconut clients read it (`GET /v2/jobs/{id}`, the list, webhook bodies, the
//! event stream). These types are what the handlers answer with and what the OpenAPI
//! document describes, so the shape exists once.

use chrono::TimeZone;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::status::{InputStatus, JobStatus, OutputType};
use crate::db::{job, output};

/// Coconut's timestamp format: `2021-02-15 14:39:46 +0000`.
pub fn timestamp(ms: i64) -> Option<String> {
    chrono::Utc.timestamp_millis_opt(ms).single().map(|t| t.format("%Y-%m-%d %H:%M:%S %z").to_string())
}

/// An encoding job.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = Job)]
pub struct JobView {
    pub id: String,
    /// `2021-02-15 14:39:46 +0000`, as Coconut writes times.
    #[schema(value_type = String)]
    pub created_at: Option<String>,
    /// `null` until the job ends.
    pub completed_at: Option<String>,
    /// Overall job status.
    #[schema(example = "job.completed")]
    pub status: JobStatus,
    #[schema(example = "100%", pattern = "^[0-9]{1,3}%$")]
    pub progress: String,
    pub input: InputView,
    pub outputs: Vec<OutputView>,
}

/// Where the job's input is.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = InputStatus)]
pub struct InputView {
    pub status: InputStatus,
    /// Why the input failed (with `input.failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// One output of a job.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = OutputStatus)]
pub struct OutputView {
    #[schema(example = "mp4:720p")]
    pub key: String,
    #[serde(rename = "type")]
    pub kind: OutputType,
    #[schema(example = "mp4")]
    pub format: String,
    /// The uploaded file (one-file outputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uri, nullable = false)]
    pub url: Option<String>,
    /// The uploaded files: numbered pictures' URLs, or a package's playlists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub urls: Option<Vec<OutputUrl>>,
    /// Per-output status: `<type>.<state>` (`video.encoded`, `image.created`, ...).
    #[schema(example = "video.encoded")]
    pub status: String,
    /// Why the output failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// One of an output's files: a picture's URL, or a package's playlist with its format.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OutputUrl {
    File(String),
    Package {
        /// `hls` or `dash`.
        format: String,
        url: String,
    },
}

/// `GET /v2/jobs`: the caller's jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
}

pub fn job_view(job: &job::Model, outputs: &[output::Model]) -> JobView {
    let failed = job.input_status == InputStatus::Failed;
    JobView {
        id: job.id.clone(),
        created_at: timestamp(job.created_at),
        completed_at: job.completed_at.and_then(timestamp),
        status: job.status,
        progress: format!("{}%", job.progress),
        input: InputView { status: job.input_status, error: job.error.clone().filter(|_| failed) },
        outputs: outputs.iter().map(output_view).collect(),
    }
}

pub fn output_view(output: &output::Model) -> OutputView {
    let urls = output.urls.as_deref().and_then(|text| match serde_json::from_str::<Vec<OutputUrl>>(text) {
        Ok(urls) => Some(urls),
        Err(err) => {
            tracing::warn!(output = %output.key, %err, "an output's stored urls are not a list of urls");
            None
        }
    });
    OutputView {
        key: output.key.clone(),
        kind: output.output_type,
        format: output.format.clone(),
        url: output.url.clone(),
        urls,
        status: output.status(),
        error: output.error.clone(),
    }
}
