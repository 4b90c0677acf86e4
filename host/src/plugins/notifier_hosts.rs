//! What a notifier's configuration would make it reach, asked before a job is accepted
//! so that a refused webhook address is a 400 at submit rather than failed deliveries.

use super::{PluginError, PluginKind, Plugins};

impl Plugins {
    /// The `host:port` pairs a notifier plugin says `config_json` names (its `hosts`
    /// answer, the same one that grants its delivering calls).
    pub async fn notifier_hosts(&self, kind: &str, config_json: &str) -> Result<Vec<String>, PluginError> {
        let plugin = self.catalog.find(PluginKind::Notifier, kind)?;
        self.runtime.call(&plugin, "hosts", async |bound, store| {
            let bindings = bound.notifier()?;
            bindings.copra_plugin_notifier().call_hosts(&mut *store, config_json).await
        })
        .await
    }
}
