//! The status view of a job for Octet's users (`GET /v0/jobs/{id}`).

use serde_json::{Map, Value, json};

use crate::db::{job, output};
use crate::job::JobSpec;
use crate::job::status::{InputStatus, JobStatus, OutputState};

/// A job as Octet users read it. `pending` until a worker starts on it, `processing`
/// while it runs, then `complete` or `error`. Each output is named by its `dest_path`
/// (from the stored spec), with its own status, its URL once uploaded, and its error.
pub fn job_view(job: &job::Model, outputs: &[output::Model], sealer: &crate::secret::Sealer) -> Value {
    let spec: Option<JobSpec> = crate::job::stored::open_spec(sealer, &job.spec).ok();
    let dest_path = |key: &str| -> Value {
        let path = spec.as_ref().and_then(|s| s.outputs.iter().find(|o| o.key == key)).and_then(|o| o.path.clone());
        path.map_or(Value::Null, Value::String)
    };
    let job_status = if job.status == JobStatus::Completed {
        "complete"
    } else if job.status == JobStatus::Failed {
        "error"
    } else if job.input_status == InputStatus::Starting && job.lease_owner.is_none() {
        "pending"
    } else {
        "processing"
    };
    let views: Vec<Value> = outputs
        .iter()
        .map(|o| {
            let mut view = Map::new();
            view.insert("dest_path".into(), dest_path(&o.key));
            view.insert("status".into(), json!(output_status(o.state)));
            if let Some(url) = &o.url {
                view.insert("url".into(), json!(url));
            }
            if let Some(error) = &o.error {
                view.insert("error".into(), json!(error));
            }
            Value::Object(view)
        })
        .collect();
    let mut view = Map::new();
    view.insert("job_id".into(), json!(job.id));
    view.insert("status".into(), json!(job_status));
    view.insert("progress".into(), json!(job.progress));
    view.insert("created_at".into(), rfc3339(job.created_at));
    view.insert("completed_at".into(), job.completed_at.map_or(Value::Null, rfc3339));
    if job_status == "error" {
        let error = job.error.clone().or_else(|| outputs.iter().find_map(|o| o.error.clone()));
        if let Some(error) = error {
            view.insert("error".into(), json!(error));
        }
    }
    view.insert("outputs".into(), Value::Array(views));
    Value::Object(view)
}

/// An output's Coconut status (`video.encoding`, ...) in Octet's four words. Skipped
/// outputs (only Coconut jobs have conditions) keep the word `skipped`.
pub(super) fn output_status(state: OutputState) -> &'static str {
    match state {
        OutputState::Waiting => "pending",
        OutputState::Queued | OutputState::Working | OutputState::Packaging => "processing",
        OutputState::Done => "complete",
        OutputState::Skipped => "skipped",
        OutputState::Failed => "error",
    }
}

fn rfc3339(ms: i64) -> Value {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .map_or(Value::Null, |t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}
