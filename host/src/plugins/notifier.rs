//! Notifier plugins: a notification block checked at submit time, and one event
//! delivered. A delivery may reach exactly the hosts that the plugin asks for (its
//! `hosts(config)`) *and* that the operator granted it (`allowed_hosts`); a host asked
//! for but not granted is refused before any socket opens. Which addresses those names
//! may resolve to is the outbound policy's decision.

use copra_codes::ErrorCode;
use std::time::Duration;

use super::error::quoted;
use super::registry::{LoadedPlugin, PluginKind};
use super::last_status::LastStatus;
use super::state::{PluginState, WebhookSigning};
use super::{PluginError, Plugins};

/// Most hosts one notification configuration may name.
const MAX_HOSTS: usize = 16;

impl Plugins {
    /// Check a notification block at submit time: the plugin's own check, then that
    /// every host it would reach is granted (so a webhook host the operator did not
    /// allow is a 400 now, not a failed delivery later).
    pub async fn notifier_check(&self, kind: &str, config_json: &str) -> Result<(), PluginError> {
        let plugin = self.catalog.find(PluginKind::Notifier, kind)?;
        self.runtime.call(&plugin, "check", async |bound, store| {
            let bindings = bound.notifier()?;
            bindings.copra_plugin_notifier().call_check(&mut *store, config_json).await
        })
        .await?;
        self.granted_hosts(&plugin, config_json).await.map(drop)
    }

    /// Deliver one event within `deadline` (wall clock, the network included: the
    /// caller's webhook timeout). The delivering call may reach only the granted hosts
    /// its configuration names, and may have its body signed (`sign-webhook`) with
    /// `signing`. The status of the last HTTP answer the plugin got lands in `status`,
    /// whether the call succeeds or not.
    pub async fn notifier_notify(
        &self,
        kind: &str,
        config_json: &str,
        event_json: &str,
        deadline: Duration,
        signing: WebhookSigning,
        status: LastStatus,
    ) -> Result<(), PluginError> {
        let plugin = self.catalog.find(PluginKind::Notifier, kind)?;
        let hosts = self.granted_hosts(&plugin, config_json).await?;
        let setup = |state: &mut PluginState| state.deliver(signing, status);
        self.runtime.call_with(&plugin, "notify", hosts, deadline, setup, async |bound, store| {
            let bindings = bound.notifier()?;
            bindings.copra_plugin_notifier().call_notify(&mut *store, config_json, event_json).await
        })
        .await
    }

    /// The hosts a configuration makes the plugin reach, each granted: the plugin's
    /// `hosts(config)`, every one matched against its `allowed_hosts` grant.
    async fn granted_hosts(&self, plugin: &LoadedPlugin, config_json: &str) -> Result<Vec<String>, PluginError> {
        let asked = self
            .runtime
            .call(plugin, "hosts", async |bound, store| {
                let bindings = bound.notifier()?;
                bindings.copra_plugin_notifier().call_hosts(&mut *store, config_json).await
            })
            .await?;
        if asked.len() > MAX_HOSTS {
            return Err(PluginError::Refused {
                code: ErrorCode::NotificationNotValid,
                message: format!("The notifier plugin '{}' asks to reach {} hosts; at most {MAX_HOSTS} are allowed.", plugin.name, asked.len()),
            });
        }
        plugin.sandbox.granted_hosts(&asked).map_err(|refused| {
            tracing::warn!(plugin = %plugin.name, host = %quoted(&refused.entry), "notifier asked for a host it was not granted");
            let (name, host) = (&plugin.name, quoted(&refused.entry));
            PluginError::Refused {
                code: ErrorCode::NotificationNotValid,
                message: format!(
                    "The notifier plugin '{name}' would send to {host}, which the server does not allow it to reach. The \
                     operator grants hosts in the config file: `[plugins.{name}] allowed_hosts = [{host}]` (or a pattern \
                     such as \"*.example.com:443\")."
                ),
            }
        })
    }
}
