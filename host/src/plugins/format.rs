//! Format plugins: what a format string means, checked at submit time and planned for
//! a probed input at run time.

use super::convert;
use super::registry::PluginKind;
use super::{PluginError, Plugins};
use crate::types::{MediaInfo, OutputPlan, OutputType};

impl Plugins {
    /// Check a format string and the output's parameters (JSON, without the host's own
    /// keys) at submit time; the container is the part before the first `:`.
    pub async fn format_check(&self, format: &str, params_json: &str) -> Result<OutputType, PluginError> {
        let plugin = self.catalog.find(PluginKind::Format, container_of(format))?;
        let output_type = self
            .runtime
            .call(&plugin, "check", async |bound, store| {
                let bindings = bound.format()?;
                bindings.copra_plugin_format().call_check(&mut *store, format, params_json).await
            })
            .await?;
        Ok(convert::output_type(output_type))
    }

    /// Plan one output for a probed input.
    pub async fn format_plan(&self, format: &str, params_json: &str, input: &MediaInfo) -> Result<OutputPlan, PluginError> {
        let plugin = self.catalog.find(PluginKind::Format, container_of(format))?;
        let info = convert::media_info(input);
        let plan = self
            .runtime
            .call(&plugin, "plan", async |bound, store| {
                let bindings = bound.format()?;
                bindings.copra_plugin_format().call_plan(&mut *store, format, params_json, &info).await
            })
            .await?;
        Ok(convert::output_plan(plan))
    }

    /// The next step of the search for an output's target quality, given the probes so
    /// far. What it asks is checked by the caller before anything is encoded.
    pub async fn format_search_quality(
        &self,
        format: &str,
        params_json: &str,
        input: &MediaInfo,
        probes: &[crate::types::QualityProbe],
    ) -> Result<crate::types::QualityStep, PluginError> {
        let plugin = self.catalog.find(PluginKind::Format, container_of(format))?;
        let info = convert::media_info(input);
        let probes: Vec<_> = probes.iter().map(convert::quality_probe).collect();
        let step = self
            .runtime
            .call(&plugin, "search-quality", async |bound, store| {
                let bindings = bound.format()?;
                bindings.copra_plugin_format().call_search_quality(&mut *store, format, params_json, &info, &probes).await
            })
            .await?;
        Ok(convert::quality_step(step))
    }

    /// The next step of planning a package's ladder from the content, given the probes
    /// so far. What it asks is checked by the caller before anything is encoded.
    pub async fn format_plan_ladder(
        &self,
        format: &str,
        params_json: &str,
        input: &MediaInfo,
        probes: &[crate::types::LadderProbe],
    ) -> Result<crate::types::LadderStep, PluginError> {
        let plugin = self.catalog.find(PluginKind::Format, container_of(format))?;
        let info = convert::media_info(input);
        let probes: Vec<_> = probes.iter().map(convert::ladder_probe).collect();
        let step = self
            .runtime
            .call(&plugin, "plan-ladder", async |bound, store| {
                let bindings = bound.format()?;
                bindings.copra_plugin_format().call_plan_ladder(&mut *store, format, params_json, &info, &probes).await
            })
            .await?;
        Ok(convert::ladder_step(step))
    }
}

/// The container of a format string: `mp4` of `mp4:720p::quality=4`.
fn container_of(format: &str) -> &str {
    format.split(':').next().unwrap_or(format)
}
