//! The "dry run" use case (`POST /v2/jobs?dry_run=true`): everything a job would do
//! before its first frame is encoded, and nothing after. The job is checked as a real
//! submit checks it (same 400s), its input fetched to a scratch directory and probed,
//! each output's condition evaluated and its format plugin's plan made and checked, and
//! its storage target resolved. Nothing is stored, queued, encoded, uploaded or notified.

use std::sync::Arc;

use serde_json::{Value, json};

use super::prepare::{self, Decision};
use super::{JobError, JobSpec};
use crate::config::Config;
use crate::media;
use crate::plugins::Plugins;
use crate::storage;

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
    let output_types = super::submit::check(plugins, config, spec).await?;
    let limits = &config.limits;
    let http = prepare::transfer_client(config).map_err(|e| DryRunError::Internal(e.to_string()))?;
    let local = prepare::local_files(config, owner);

    // Storage: resolved as the worker would, reported rather than refused (a real
    // submit accepts the job and fails its outputs).
    let destination = storage::destination(plugins, spec.storage_service(), &spec.storage.to_string(), &local, &http).await;
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
    let input_path = scratch.path().join("input");
    let fetched = prepare::fetch_input(plugins, &http, limits, spec, &local, &input_path).await;
    let probed = match fetched {
        Err(message) => Err(message),
        Ok(_) => {
            match crate::confined::Engine::new(limits).probe("dry-run", &input_path).await {
                Ok(probed) => Ok(probed),
                Err(err) if err.is_crash() => Err(format!("Probing the input failed: {err}")),
                Err(err) => Err(format!("The input is not a media file that can be read: {err}")),
            }
        }
    };
    let (info, metadata) = match probed.and_then(|(info, metadata)| media::check_input(&info, limits).map(|()| (info, metadata))) {
        Ok(probed) => probed,
        Err(message) => {
            return Ok(json!({
                "dry_run": true,
                "input": {"status": "input.failed", "error": message},
                "storage": storage_view,
                "outputs": [],
            }));
        }
    };

    let mut outputs = Vec::with_capacity(spec.outputs.len());
    for (output, output_type) in spec.outputs.iter().zip(output_types) {
        let mut view = json!({"key": output.key, "format": output.format, "type": output_type.as_str(), "path": output.path, "url": output.url.as_deref().map(crate::secret::redact_url)});
        if let Some(condition) = &output.condition {
            view["if"] = json!(condition);
        }
        match prepare::decide(plugins, limits, &info, output).await {
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
            }
        }
        outputs.push(view);
    }
    Ok(json!({
        "dry_run": true,
        "input": {"status": "input.transferred", "metadata": metadata},
        "storage": storage_view,
        "outputs": outputs,
    }))
}
