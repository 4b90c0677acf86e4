//! The job as Coconut clients read it (`GET /v2/jobs/{id}`, webhook bodies).

use chrono::TimeZone;
use serde_json::{Map, Value, json};

use crate::db::{job, output};

/// Coconut's timestamp format: `2021-02-15 14:39:46 +0000`.
pub fn timestamp(ms: i64) -> Value {
    match chrono::Utc.timestamp_millis_opt(ms).single() {
        Some(t) => Value::String(t.format("%Y-%m-%d %H:%M:%S %z").to_string()),
        None => Value::Null,
    }
}

pub fn job_view(job: &job::Model, outputs: &[output::Model]) -> Value {
    let mut input = Map::new();
    input.insert("status".into(), json!(job.input_status.as_str()));
    if job.input_status == super::status::InputStatus::Failed {
        if let Some(error) = &job.error {
            input.insert("error".into(), json!(error));
        }
    }
    json!({
        "id": job.id,
        "created_at": timestamp(job.created_at),
        "completed_at": job.completed_at.map(timestamp).unwrap_or(Value::Null),
        "status": job.status.as_str(),
        "progress": format!("{}%", job.progress),
        "input": input,
        "outputs": outputs.iter().map(output_view).collect::<Vec<_>>(),
    })
}

pub fn output_view(output: &output::Model) -> Value {
    let mut view = Map::new();
    view.insert("key".into(), json!(output.key));
    view.insert("type".into(), json!(output.output_type.as_str()));
    view.insert("format".into(), json!(output.format));
    if let Some(url) = &output.url {
        view.insert("url".into(), json!(url));
    }
    if let Some(urls) = output.urls.as_deref().and_then(|u| serde_json::from_str::<Value>(u).ok()) {
        view.insert("urls".into(), urls);
    }
    view.insert("status".into(), json!(output.status()));
    if let Some(error) = &output.error {
        view.insert("error".into(), json!(error));
    }
    Value::Object(view)
}
