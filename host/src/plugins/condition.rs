//! Condition plugins: the `if` of outputs, parsed at submit time and evaluated against
//! the probed input; and a kept instance for evaluating many expressions.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::condition::ConditionPlugin;
use super::convert;
use super::error::{classify, within};
use super::registry::{LoadedPlugin, PluginKind};
use super::state::PluginState;
use super::{PluginError, Plugins};
use crate::types::MediaInfo;

impl Plugins {
    /// Parse an `if` expression at submit time, so a syntax error is a 400.
    pub async fn condition_check(&self, expression: &str) -> Result<(), PluginError> {
        let plugin = self.catalog.find(PluginKind::Condition, "")?;
        self.runtime.call(&plugin, "check", async |bound, store| {
            let bindings = bound.condition()?;
            bindings.copra_plugin_condition().call_check(&mut *store, expression).await
        })
        .await
    }

    /// Evaluate an `if` expression against the probed input.
    pub async fn condition_evaluate(&self, expression: &str, input: &MediaInfo) -> Result<bool, PluginError> {
        let plugin = self.catalog.find(PluginKind::Condition, "")?;
        let info = convert::media_info(input);
        self.runtime.call(&plugin, "evaluate", async |bound, store| {
            let bindings = bound.condition()?;
            bindings.copra_plugin_condition().call_evaluate(&mut *store, expression, &info).await
        })
        .await
    }

    /// A condition plugin instance kept alive, for evaluating many expressions against
    /// inputs without instantiating per call (and to measure the warm-call cost).
    pub async fn condition_instance(&self) -> Result<ConditionInstance, PluginError> {
        let plugin = self.catalog.find(PluginKind::Condition, "")?;
        let mut store = self.runtime.store(&plugin, plugin.sandbox.allowed_hosts.clone());
        let bound = within(plugin.sandbox.deadline, plugin.pre.instantiate(&mut store)).await.map_err(|e| classify(&plugin, e))?;
        let bindings = bound.into_condition().map_err(|e| classify(&plugin, e))?;
        Ok(ConditionInstance { plugin, store, bindings })
    }
}

/// See [`Plugins::condition_instance`].
pub struct ConditionInstance {
    plugin: Arc<LoadedPlugin>,
    store: Store<PluginState>,
    bindings: ConditionPlugin,
}

impl ConditionInstance {
    /// Evaluate one expression; each call gets the full CPU budget and the deadline.
    pub async fn evaluate(&mut self, expression: &str, input: &MediaInfo) -> Result<bool, PluginError> {
        self.plugin.sandbox.renew_budget(&mut self.store);
        let info = convert::media_info(input);
        let call = self.bindings.copra_plugin_condition().call_evaluate(&mut self.store, expression, &info);
        match within(self.plugin.sandbox.deadline, call).await {
            Ok(result) => result.map_err(PluginError::from),
            Err(trap) => Err(classify(&self.plugin, trap)),
        }
    }
}
