//! Deciding an output: its condition evaluated against the input, then its format
//! plugin's plan, held to the host's bounds.

use crate::config::Limits;
use crate::job::OutputSpec;
use crate::media;
use crate::plugins::Plugins;
use crate::types::{MediaInfo, OutputPlan};

/// What becomes of one output.
pub enum Decision {
    /// Its condition is false.
    Skip,
    /// It cannot be made: the message says why.
    Fail(String),
    Encode(OutputPlan),
}

/// Evaluate the output's condition against the input, then plan it with its format
/// plugin; the plan is the plugin's answer, checked against the host's limits.
pub async fn decide(plugins: &Plugins, limits: &Limits, info: &MediaInfo, spec: &OutputSpec) -> Decision {
    if let Some(condition) = &spec.condition {
        match plugins.condition_evaluate(condition, info).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(output = ?spec.key, condition = ?condition, "condition false; output skipped");
                return Decision::Skip;
            }
            Err(err) => return Decision::Fail(format!("The condition could not be evaluated: {}", err.describe())),
        }
    }
    match plugins.format_plan(&spec.format, &spec.plugin_params(), info).await {
        Ok(plan) => match media::check_plan(&plan, limits) {
            Ok(()) => Decision::Encode(plan),
            Err(problem) => Decision::Fail(format!("The format plugin planned something this server refuses: {problem}.")),
        },
        Err(err) => Decision::Fail(err.describe()),
    }
}
