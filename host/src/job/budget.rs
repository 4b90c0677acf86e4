//! The submit-time check of what a job's outputs cost together. The input is not known
//! yet, so each output without an `if` is planned for the smallest input there is
//! (`media::smallest_input`): what those plans cost is the least the job can cost, and a
//! job over `max_job_pictures` or `max_job_memory_mib` even then is a 400 now instead of
//! a failed job later. The real plans are checked again once the input is probed.

use copra_codes::ErrorCode;
use super::{JobError, JobSpec};
use crate::config::Limits;
use crate::media;
use crate::plugins::Plugins;
use crate::types::OutputPlan;

/// Refuse `spec` if its outputs cannot fit the job limits for any input. An output
/// whose plugin cannot plan it for the smallest input (an offset past its end, ...) or
/// whose plan the host would refuse is left out: it fails later on its own.
pub async fn check_budget(plugins: &Plugins, limits: &Limits, spec: &JobSpec) -> Result<(), JobError> {
    let smallest = media::smallest_input();
    let mut plans: Vec<(&str, OutputPlan)> = Vec::new();
    for output in spec.outputs.iter().filter(|o| o.condition.is_none()) {
        let plan = match plugins.format_plan(&output.format, &output.plugin_params(), &smallest).await {
            Ok(plan) => plan,
            Err(err) => {
                tracing::debug!(output = ?output.key, err = %err.describe(), "not planned for the smallest input: left out of the job's budget");
                continue;
            }
        };
        match media::check_plan(&plan, limits) {
            Ok(()) => plans.push((output.key.as_str(), plan)),
            Err(problem) => tracing::debug!(output = ?output.key, %problem, "planned for the smallest input beyond the host's bounds: left out of the job's budget"),
        }
    }
    let keyed: Vec<(&str, &OutputPlan)> = plans.iter().map(|(key, plan)| (*key, plan)).collect();
    media::check_job(&smallest, &keyed, limits, true).map_err(|refusal| JobError::invalid(ErrorCode::OutputsNotValid, refusal.to_string()))
}
