//! Submit-time checks that need plugins: every problem a job can be known to have
//! before any work starts is a 400 here, not a failed job later.

use copra_codes::ErrorCode;
use crate::config::Limits;
use crate::net::{Outbound, UrlRefused};
use crate::plugins::{PluginError, Plugins};
use crate::storage::StorageTarget;
use crate::storage::endpoint;
use crate::types::OutputType;

use super::spec::check_numbered_path;
use super::{JobError, JobSpec};

/// Check a parsed job against the loaded plugins, the server's `limits` and the outbound
/// policy; returns each output's type, in order. Every address known now (the input URL, output URLs, a
/// storage endpoint, the hosts a notification names) is checked against the policy.
pub async fn validate(spec: &JobSpec, plugins: &Plugins, limits: &Limits, outbound: &Outbound) -> Result<Vec<OutputType>, JobError> {
    for input in spec.inputs() {
        if let Some(url) = &input.url {
            outbound.check_url(url).map_err(|e| refused_url(ErrorCode::InputNotValid, &format!("The input URL '{}'", crate::secret::redact_url(url)), e))?;
        }
    }
    for track in &spec.subtitles {
        let what = format!("The '{}' subtitles' URL '{}'", track.language, crate::secret::redact_url(&track.url));
        outbound.check_url(&track.url).map_err(|e| refused_url(ErrorCode::SubtitlesNotValid, &what, e))?;
    }

    let storage_json = spec.storage.to_string();
    let service = spec.storage_service();
    let target = plugins.storage_resolve(service, &storage_json).await.map_err(|e| rejected(e, ErrorCode::StorageNotValid, || {
        format!("The storage service '{service}' is not supported.")
    }))?;
    check_endpoint(&target, outbound, ErrorCode::StorageNotValid)?;

    for input in spec.inputs() {
        check_input_service(input, plugins, outbound).await?;
    }

    let mut types = Vec::with_capacity(spec.outputs.len());
    for output in &spec.outputs {
        let output_type = plugins.format_check(&output.format, &output.plugin_params()).await.map_err(|e| {
            rejected(e, ErrorCode::FormatNotValid, || format!("The format '{}' is not supported.", output.format))
        })?;
        types.push(output_type);
        if let Some(condition) = &output.condition {
            plugins.condition_check(condition).await.map_err(|e| match e {
                // The plugin's reason alone ("unexpected comparison at position 19") does
                // not say which output or what it read.
                PluginError::Rejected { code, message } => {
                    let shown: String = condition.chars().take(200).collect();
                    let code = ErrorCode::from_plugin(&code, ErrorCode::ConditionNotValid);
                    JobError::invalid(code, format!("The 'if' of output '{}' is not valid: {message} (in '{shown}').", output.key))
                }
                e => rejected(e, ErrorCode::ConditionNotValid, || "No condition plugin is loaded to evaluate 'if'.".to_string()),
            })?;
        }
        let mut paths: Vec<&str> = output.path.iter().map(String::as_str).collect();
        match output_type {
            OutputType::Httpstream => {
                if output.path.is_some() || output.url.is_some() {
                    return Err(JobError::invalid(ErrorCode::OutputParamNotValid,
                        format!("The output '{}' takes its paths in its 'hls' and 'dash' blocks, not 'path' or 'url'.", output.key),
                    ));
                }
                paths.extend(["hls", "dash"].into_iter().filter_map(|block| output.package_path(block)));
            }
            // Pictures are many files at numbered paths; a GIF is one file like a video.
            OutputType::Image if output.path.is_none() && !output.format.starts_with("gif") => {
                return Err(JobError::invalid(ErrorCode::OutputParamNotValid,
                    format!("The output '{}' makes pictures: it needs a 'path' (numbered like 'thumb_%.2d.jpg').", output.key),
                ));
            }
            _ if output.path.is_none() && output.url.is_none() => {
                return Err(JobError::invalid(ErrorCode::OutputParamNotValid, format!("The output '{}' needs a 'path' or a 'url'.", output.key)));
            }
            _ => {}
        }
        if let Some(vtt) = output.string_param("vtt") {
            paths.push(vtt);
        }
        for path in paths {
            check_numbered_path(path, limits.max_path_digits)?;
            plugins.storage_object_key(service, &storage_json, path).await.map_err(|e| {
                rejected(e, ErrorCode::OutputParamNotValid, || format!("The storage service '{service}' is not supported."))
            })?;
        }
        if let Some(url) = &output.url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(JobError::invalid(ErrorCode::OutputParamNotValid, format!("The output url '{}' of '{}' is not a valid http(s) URL.", crate::secret::redact_url(url), output.key)));
            }
            outbound.check_url(url).map_err(|e| refused_url(ErrorCode::OutputParamNotValid, &format!("The output url '{}' of '{}'", crate::secret::redact_url(url), output.key), e))?;
        }
    }

    if let (Some(kind), Some(notification)) = (spec.notification_type(), &spec.notification) {
        let config = notification.to_string();
        let unsupported = || format!("The notification type '{kind}' is not supported.");
        plugins.notifier_check(kind, &config).await.map_err(|e| rejected(e, ErrorCode::NotificationNotValid, unsupported))?;
        let hosts = plugins.notifier_hosts(kind, &config).await.map_err(|e| rejected(e, ErrorCode::NotificationNotValid, unsupported))?;
        for host in hosts {
            outbound.check_authority(&host).map_err(|e| refused_url(ErrorCode::NotificationNotValid, &format!("The notification's host '{host}'"), e))?;
        }
    }
    Ok(types)
}

/// An opendal target's endpoint must be one the policy lets the server reach.
fn check_endpoint(target: &StorageTarget, outbound: &Outbound, code: ErrorCode) -> Result<(), JobError> {
    if let StorageTarget::Opendal { scheme, options, .. } = target {
        endpoint::check_target(outbound.policy(), scheme, options).map_err(|refused| JobError::invalid(code, refused.to_string()))?;
    }
    Ok(())
}

/// `what` (a sentence's subject) refused by the outbound policy, as a 400.
fn refused_url(code: ErrorCode, what: &str, err: UrlRefused) -> JobError {
    match err {
        UrlRefused::NotHttp => JobError::invalid(code, format!("{what} is not an http(s) address with a host.")),
        UrlRefused::Refused(refused) => JobError::invalid(code, format!("{what} cannot be used: {refused}.")),
    }
}

/// A plugin's own rejection keeps its code; a missing plugin becomes `missing_code`;
/// a plugin that broke is reported as such (it is the operator's problem, not the
/// user's, but the job still cannot be accepted).
fn rejected(err: PluginError, asked: ErrorCode, missing: impl FnOnce() -> String) -> JobError {
    match err {
        PluginError::Rejected { code, message } => JobError::invalid(ErrorCode::from_plugin(&code, asked), message),
        PluginError::Missing { .. } => JobError::invalid(asked, missing()),
        other => JobError::invalid(other.api_code(asked), other.to_string()),
    }
}

/// An input fetched from a storage service: the service is one this server has, its
/// endpoint passes the outbound policy, and the object's key stays in its root (a key
/// that climbs out is a 400, not a failed job).
async fn check_input_service(input: &super::spec::InputSpec, plugins: &Plugins, outbound: &Outbound) -> Result<(), JobError> {
    let Some(input_service) = &input.service else { return Ok(()) };
    let target = plugins
        .storage_resolve(input_service, &input.raw.to_string())
        .await
        .map_err(|e| rejected(e, ErrorCode::InputNotValid, || format!("The input service '{input_service}' is not supported.")))?;
    check_endpoint(&target, outbound, ErrorCode::InputNotValid)?;
    let (object, block) =
        input.object().ok_or_else(|| JobError::invalid(ErrorCode::InputNotValid, "The input needs a 'key' (or 'path') of the object to fetch."))?;
    plugins
        .storage_object_key(input_service, &block, object)
        .await
        .map_err(|e| rejected(e, ErrorCode::InputNotValid, || format!("The input service '{input_service}' is not supported.")))?;
    Ok(())
}
