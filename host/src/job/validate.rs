//! Submit-time checks that need plugins: every problem a job can be known to have
//! before any work starts is a 400 here, not a failed job later.

use crate::config::Limits;
use crate::plugins::{PluginError, Plugins};
use crate::types::OutputType;

use super::spec::check_numbered_path;
use super::{JobError, JobSpec};

/// Check a parsed job against the loaded plugins and the server's `limits`; returns each
/// output's type, in order.
pub async fn validate(spec: &JobSpec, plugins: &Plugins, limits: &Limits) -> Result<Vec<OutputType>, JobError> {
    let storage_json = spec.storage.to_string();
    let service = spec.storage_service();
    plugins.storage_resolve(service, &storage_json).await.map_err(|e| rejected(e, "storage_not_valid", || {
        format!("The storage service '{service}' is not supported.")
    }))?;

    if let Some(input_service) = &spec.input.service {
        plugins.storage_resolve(input_service, &spec.input.raw.to_string()).await.map_err(|e| {
            rejected(e, "input_not_valid", || format!("The input service '{input_service}' is not supported."))
        })?;
    }

    let mut types = Vec::with_capacity(spec.outputs.len());
    for output in &spec.outputs {
        let output_type = plugins.format_check(&output.format, &output.plugin_params()).await.map_err(|e| {
            rejected(e, "format_not_valid", || format!("The format '{}' is not supported.", output.format))
        })?;
        types.push(output_type);
        if let Some(condition) = &output.condition {
            plugins.condition_check(condition).await.map_err(|e| {
                rejected(e, "condition_not_valid", || "No condition plugin is loaded to evaluate 'if'.".to_string())
            })?;
        }
        let mut paths: Vec<&str> = output.path.iter().map(String::as_str).collect();
        match output_type {
            OutputType::Httpstream => {
                if output.path.is_some() || output.url.is_some() {
                    return Err(JobError::invalid(
                        "output_param_not_valid",
                        format!("The output '{}' takes its paths in its 'hls' and 'dash' blocks, not 'path' or 'url'.", output.key),
                    ));
                }
                paths.extend(["hls", "dash"].into_iter().filter_map(|block| output.package_path(block)));
            }
            // Pictures are many files at numbered paths; a GIF is one file like a video.
            OutputType::Image if output.path.is_none() && !output.format.starts_with("gif") => {
                return Err(JobError::invalid(
                    "output_param_not_valid",
                    format!("The output '{}' makes pictures: it needs a 'path' (numbered like 'thumb_%.2d.jpg').", output.key),
                ));
            }
            _ if output.path.is_none() && output.url.is_none() => {
                return Err(JobError::invalid("output_param_not_valid", format!("The output '{}' needs a 'path' or a 'url'.", output.key)));
            }
            _ => {}
        }
        if let Some(vtt) = output.string_param("vtt") {
            paths.push(vtt);
        }
        for path in paths {
            check_numbered_path(path, limits.max_path_digits)?;
            plugins.storage_object_key(service, &storage_json, path).await.map_err(|e| {
                rejected(e, "output_param_not_valid", || format!("The storage service '{service}' is not supported."))
            })?;
        }
        if let Some(url) = &output.url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(JobError::invalid("output_param_not_valid", format!("The output url '{url}' of '{}' is not a valid http(s) URL.", output.key)));
            }
        }
    }

    if let (Some(kind), Some(notification)) = (spec.notification_type(), &spec.notification) {
        plugins.notifier_check(kind, &notification.to_string()).await.map_err(|e| {
            rejected(e, "notification_not_valid", || format!("The notification type '{kind}' is not supported."))
        })?;
    }
    Ok(types)
}

/// A plugin's own rejection keeps its code; a missing plugin becomes `missing_code`;
/// a plugin that broke is reported as such (it is the operator's problem, not the
/// user's, but the job still cannot be accepted).
fn rejected(err: PluginError, missing_code: &str, missing: impl FnOnce() -> String) -> JobError {
    match err {
        PluginError::Rejected { code, message } => JobError::invalid(code, message),
        PluginError::Missing { .. } => JobError::invalid(missing_code, missing()),
        other => JobError::invalid(other.code().to_string(), other.to_string()),
    }
}
