//! The "dry run" use case (`POST /v2/jobs?dry_run=true`): everything a job would do
//! before its first frame is encoded, and nothing after. The job is checked as a real
//! submit checks it (same 400s), its input fetched to a scratch directory and probed,
//! each output's condition evaluated and its format plugin's plan made and checked, and
//! its storage target resolved. Nothing is stored, queued, encoded, uploaded or notified.
//!
//! A dry run runs on the API node inside the request, so its cost is bounded: the
//! caller holds a place of the [`crate::job::dry_run_gate`] while it runs, and the input is
//! not downloaded but read in part (`limits.dry_run_probe_bytes`: its first and last
//! bytes with ranged reads, into a sparse file of its full size; see
//! [`crate::storage::fetch_http_window`]) and probed from that.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Decision, InputSources, Reading, decide, local_files, read_inputs, transfer_client};
use crate::job::{JobError, JobSpec};
use crate::config::Config;
use crate::media;
use crate::plugins::Plugins;

/// The longest a dry run reads its input: it holds an API request and a place of the
/// gate, so a trickling server is cut long before `transfer_total_secs`.
const FETCH_TIME: std::time::Duration = std::time::Duration::from_secs(120);

/// Why a dry run could not answer with a plan.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The job would be refused at submit: the same 400.
    #[error(transparent)]
    Invalid(#[from] JobError),
    #[error("{0}")]
    Internal(String),
}

/// Plan `spec` for the tenant `owner` without running it.
pub async fn dry_run(plugins: &Arc<Plugins>, config: &Config, owner: &str, spec: &JobSpec) -> Result<Value, DryRunError> {
    let mut spec = spec.clone();
    crate::job::input_upload::resolve(config, owner, &mut spec).await?;
    let spec = &spec;
    let output_types = crate::job::submit::check(plugins, config, spec).await?;
    let limits = &config.limits;
    let http = transfer_client(config).map_err(|e| DryRunError::Internal(e.to_string()))?;
    let local = local_files(config, owner);
    let uploads = crate::job::input_upload::TenantUploads::of(config, owner);

    // Storage: resolved as the worker would, reported rather than refused (a real
    // submit accepts the job and fails its outputs).
    let destination = plugins.storage_destination(spec.storage_service(), &spec.storage.to_string(), &local, &http).await;
    let storage_view = match &destination {
        Ok(_) => json!({"service": spec.storage_service(), "valid": true}),
        Err(err) => json!({"service": spec.storage_service(), "valid": false, "error": err.to_string()}),
    };

    // Input: fetched to a scratch directory removed on the way out, then probed.
    let work = config.data_dir.join("work");
    let scratch = tokio::fs::create_dir_all(&work)
        .await
        .and_then(|()| tempfile::Builder::new().prefix("dry-run-").tempdir_in(&work))
        .map_err(|e| DryRunError::Internal(format!("no scratch directory: {e}")))?;
    // Each input (with `inputs`, every one of them) read in part, probed, its clips
    // joined; then the inputs seen as one.
    let sources = InputSources { plugins, http: &http, local: &local, uploads: &uploads };
    let reading = Reading::Window { bytes: limits.dry_run_probe_bytes, time: FETCH_TIME };
    let engine = crate::confined::Engine::new(limits);
    let (info, metadata) = match read_inputs(&sources, &engine, "dry-run", spec, scratch.path(), reading, limits).await {
        Ok(probed) => (probed.info, probed.metadata),
        Err(err) => {
            let message = match err.crash {
                Some(crash) => format!("Probing the input failed: {crash}"),
                None => err.message,
            };
            return Ok(json!({
                "dry_run": true,
                "input": {"status": "input.failed", "error": message},
                "storage": storage_view,
                "outputs": [],
            }));
        }
    };

    let mut outputs = Vec::with_capacity(spec.outputs.len());
    let mut plans: Vec<(usize, crate::types::OutputPlan)> = Vec::new();
    for (output, output_type) in spec.outputs.iter().zip(output_types) {
        let mut view = json!({"key": output.key, "format": output.format, "type": output_type.as_str(), "path": output.path, "url": output.url.as_deref().map(crate::secret::redact_url)});
        if let Some(condition) = &output.condition {
            view["if"] = json!(condition);
        }
        match decide(plugins, limits, &info, output).await {
            Decision::Skip => {
                view["condition"] = json!(false);
                view["status"] = json!("skipped");
            }
            Decision::Fail(message) => {
                view["status"] = json!("failed");
                view["error"] = json!(message);
            }
            Decision::Encode(plan) => {
                if output.condition.is_some() {
                    view["condition"] = json!(true);
                }
                view["status"] = json!(if destination.is_ok() { "planned" } else { "failed" });
                view["plan"] = serde_json::to_value(&plan).unwrap_or(Value::Null);
                plans.push((outputs.len(), plan));
            }
        }
        outputs.push(view);
    }
    // The plans together, as the worker holds them: pictures and memory.
    let keyed: Vec<(&str, &crate::types::OutputPlan)> = plans.iter().map(|(i, plan)| (spec.outputs[*i].key.as_str(), plan)).collect();
    let all: Vec<crate::types::OutputPlan> = plans.iter().map(|(_, plan)| plan.clone()).collect();
    let memory = json!({"estimate_bytes": media::memory_estimate(&info, &all), "limit_bytes": limits.max_job_memory});
    if let Err(refusal) = media::check_job(&info, &keyed, limits, false) {
        for (i, _) in &plans {
            outputs[*i]["status"] = json!("failed");
            outputs[*i]["error"] = json!(refusal.to_string());
        }
    }
    Ok(json!({
        "dry_run": true,
        "input": {"status": "input.transferred", "metadata": metadata},
        "storage": storage_view,
        "outputs": outputs,
        "memory": memory,
    }))
}
