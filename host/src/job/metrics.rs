//! Which outputs are measured, and how: `settings.metrics` (and
//! `settings.metrics_per_frame`) for every video output of a job, each output's own
//! `metrics` (and `metrics_per_frame`) over the job's. Checked at submit, so a typo is a
//! 400 and not an output measured with nothing.

use copra_codes::ErrorCode;
use serde_json::Value;

use super::{JobError, JobSpec, OutputSpec};
use crate::media::Metric;

/// Check the job's and every output's metric parameters.
pub fn check(spec: &JobSpec) -> Result<(), JobError> {
    parse(spec.settings.get("metrics")).map_err(|m| JobError::invalid(ErrorCode::SettingsNotValid, format!("The settings' metrics {m}")))?;
    flag(spec.settings.get("metrics_per_frame"))
        .map_err(|()| JobError::invalid(ErrorCode::SettingsNotValid, "The settings' metrics_per_frame must be true or false."))?;
    for output in &spec.outputs {
        parse(output.params.get("metrics"))
            .map_err(|m| JobError::invalid(ErrorCode::OutputParamNotValid, format!("The metrics of output '{}' {m}", output.key)))?;
        flag(output.params.get("metrics_per_frame"))
            .map_err(|()| JobError::invalid(ErrorCode::OutputParamNotValid, format!("The metrics_per_frame of output '{}' must be true or false.", output.key)))?;
    }
    Ok(())
}

impl JobSpec {
    /// What `output` is measured with: its own `metrics`, else the job's; empty when
    /// neither asks (or an output says `[]`).
    pub fn metrics_of(&self, output: &OutputSpec) -> Vec<Metric> {
        let own = parse(output.params.get("metrics")).ok().flatten();
        own.or_else(|| parse(self.settings.get("metrics")).ok().flatten()).unwrap_or_default()
    }

    /// Whether `output`'s per-frame scores are stored beside it as CSV.
    pub fn per_frame_of(&self, output: &OutputSpec) -> bool {
        let own = flag(output.params.get("metrics_per_frame")).ok().flatten();
        own.or_else(|| flag(self.settings.get("metrics_per_frame")).ok().flatten()).unwrap_or(false)
    }
}

/// Why a `metrics` parameter was refused: the end of a sentence that names the
/// parameter ("The settings' metrics …", "The metrics of output 'x' …").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// Something other than a list.
    #[error("must be a list of names (vmaf, psnr, ssim).")]
    NotList,
    /// An item that is not the name of a metric (shown as JSON, as written).
    #[error("name an unknown metric {0}; the metrics are vmaf, psnr and ssim.")]
    Unknown(Value),
}

/// A list of metric names, each once.
fn parse(value: Option<&Value>) -> Result<Option<Vec<Metric>>, MetricsError> {
    let names = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(names)) => names,
        Some(_) => return Err(MetricsError::NotList),
    };
    let mut metrics = Vec::new();
    for name in names {
        let metric = name.as_str().and_then(Metric::parse).ok_or_else(|| MetricsError::Unknown(name.clone()))?;
        if !metrics.contains(&metric) {
            metrics.push(metric);
        }
    }
    Ok(Some(metrics))
}

fn flag(value: Option<&Value>) -> Result<Option<bool>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(settings: Value, output: Value) -> Result<JobSpec, JobError> {
        JobSpec::parse(&json!({
            "input": {"url": "https://example.com/in.mp4"},
            "storage": {"service": "local"},
            "settings": settings,
            "outputs": {"mp4": output},
        }))
    }

    #[test]
    fn an_output_overrides_the_job() {
        let job = parsed(json!({"metrics": ["vmaf", "psnr"], "metrics_per_frame": true}), json!({"path": "a.mp4", "metrics": ["ssim"]})).unwrap();
        assert_eq!(job.metrics_of(&job.outputs[0]), vec![Metric::Ssim]);
        assert!(job.per_frame_of(&job.outputs[0]));
        let job = parsed(json!({"metrics": ["vmaf", "vmaf"]}), json!({"path": "a.mp4"})).unwrap();
        assert_eq!(job.metrics_of(&job.outputs[0]), vec![Metric::Vmaf]);
        let job = parsed(json!({}), json!({"path": "a.mp4"})).unwrap();
        assert!(job.metrics_of(&job.outputs[0]).is_empty());
        // The host's own parameters: the format plugin never sees them.
        let job = parsed(json!({}), json!({"path": "a.mp4", "metrics": ["vmaf"], "metrics_per_frame": false})).unwrap();
        assert_eq!(job.outputs[0].plugin_params(), "{}");
    }

    #[test]
    fn unknown_metrics_are_refused() {
        let err = parsed(json!({"metrics": ["vmaf", "butteraugli"]}), json!({"path": "a.mp4"})).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SettingsNotValid);
        assert!(err.to_string().contains("butteraugli"), "{err}");
        let err = parsed(json!({}), json!({"path": "a.mp4", "metrics": "vmaf"})).unwrap_err();
        assert_eq!(err.code(), ErrorCode::OutputParamNotValid);
        let err = parsed(json!({}), json!({"path": "a.mp4", "metrics_per_frame": "yes"})).unwrap_err();
        assert_eq!(err.code(), ErrorCode::OutputParamNotValid);
    }

    #[test]
    fn metrics_mistakes_end_a_sentence() {
        assert_eq!(parse(Some(&json!("vmaf"))).unwrap_err().to_string(), "must be a list of names (vmaf, psnr, ssim).");
        assert_eq!(
            parse(Some(&json!(["vmaf", "butteraugli"]))).unwrap_err().to_string(),
            "name an unknown metric \"butteraugli\"; the metrics are vmaf, psnr and ssim."
        );
        assert_eq!(parse(Some(&json!([3]))).unwrap_err(), MetricsError::Unknown(json!(3)));
        let err = parsed(json!({"metrics": {"vmaf": true}}), json!({"path": "a.mp4"})).unwrap_err();
        assert_eq!(err.to_string(), "The settings' metrics must be a list of names (vmaf, psnr, ssim).");
        let err = parsed(json!({}), json!({"path": "a.mp4", "metrics": ["ssim", "x"]})).unwrap_err();
        assert_eq!(err.to_string(), "The metrics of output 'mp4' name an unknown metric \"x\"; the metrics are vmaf, psnr and ssim.");
    }
}
