//! The plugin room: the wasmtime host that loads WebAssembly components and calls them.
//!
//! Each component is compiled once (cached on disk by content hash and engine
//! compatibility hash) and pre-instantiated; every call gets a fresh `Store` from the
//! pooling allocator (the checks of one submit share one per plugin, see
//! `shared_instances`) with the plugin's [`sandbox`]: a memory cap, a CPU budget, a
//! wall-clock deadline and the hosts it may reach. A plugin that loops, traps, waits
//! or grows without bound fails its own call and nothing else. Whatever a plugin
//! answers is a request the host checks (schemes, object keys, hosts) before any I/O.
//!
//! [`Plugins`] is two halves behind one facade:
//! - the runtime (`runtime`): the engine and linker; preparing a component, asking it
//!   what it is, and running one call of it;
//! - the catalog (`catalog`): what is loaded and why: the registry, reload, grants and
//!   sandboxes, the versions kept for jobs, the problems of the last reload; and with
//!   it `cluster` (the database's plugin set on every node) and `hot_reload`.
//!
//! The other files, one concern each: `engine` (engine, epoch ticker, linker), `sandbox`
//! (limits and rights from the grant; the store), `hosts` (host grants), `outbound`
//! (the network policy of plugin HTTP), `last_status` (what a call last heard back),
//! `state` (what a store holds), `error` (failures and how a call's result becomes
//! one), `registry` (loaded components), `pins` (the versions a job was planned with),
//! `convert` (WIT ↔ host types), `bindings`, `shared_instances` (one instance per plugin
//! for a submit's checks); and one file per kind of call: `storage`,
//! `custom_upload`, `format`, `condition`, `notifier` (with `notifier_hosts`). This
//! file: the facade, its start, and what it hands on.

mod bindings;
mod catalog;
mod cluster;
mod condition;
mod convert;
mod custom_upload;
mod engine;
mod error;
mod format;
mod hosts;
mod hot_reload;
mod last_status;
mod notifier;
mod notifier_hosts;
mod outbound;
mod pins;
mod registry;
mod runtime;
mod sandbox;
mod shared_instances;
mod state;
mod storage;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::PluginGrant;
use catalog::Catalog;
pub use catalog::LoadError;
pub use cluster::{AddError, ReadyError};
pub use condition::ConditionInstance;
pub use error::PluginError;
pub use hot_reload::PluginWatcher;
pub use pins::{Pin, Pins, carry, record};
pub use registry::{LoadedPlugin, PluginKind};
use runtime::Runtime;
pub use sandbox::{grantable_schemes, is_never_granted};
pub use shared_instances::one_instance_each;
pub use last_status::LastStatus;
pub use state::WebhookSigning;

/// The plugin host: a runtime that runs components, and the catalog of what is loaded.
pub struct Plugins {
    runtime: Runtime,
    catalog: Catalog,
}

impl Plugins {
    /// Build the engine and load every `*.wasm` in `plugin_dir`. A grant that is not
    /// valid (e.g. `schemes = ["fs"]`) stops the start with a message naming its key; a
    /// component that fails to load is logged and skipped: one bad file must not stop
    /// the server.
    pub async fn start(
        plugin_dir: &Path,
        cache_dir: &Path,
        grants: HashMap<String, PluginGrant>,
        outbound: crate::net::Outbound,
    ) -> anyhow::Result<Arc<Self>> {
        let catalog = Catalog::new(plugin_dir, cache_dir, grants)
            .map_err(|e| anyhow::anyhow!("the plugin grants of the config file are not valid: {e}"))?;
        let runtime = Runtime::new(outbound)?;
        tokio::fs::create_dir_all(cache_dir).await?;
        tokio::fs::create_dir_all(plugin_dir).await?;

        let plugins = Arc::new(Plugins { runtime, catalog });
        plugins.reload().await;
        Ok(plugins)
    }

    /// Rescan the plugin directory and swap in the result. Unchanged files keep their
    /// loaded instance; a file that fails to load keeps its previous version active.
    /// Reading, hashing and compiling run on the blocking pool, never on the runtime.
    /// Returns the problems found (also kept for `errors()`).
    pub async fn reload(self: &Arc<Self>) -> Vec<LoadError> {
        let this = Arc::clone(self);
        self.catalog.reload(&self.runtime, move |current| this.catalog.scan(&this.runtime, current)).await
    }

    /// Problems of the last reload.
    pub fn errors(&self) -> Vec<LoadError> {
        self.catalog.errors()
    }

    /// The directory plugins are loaded from (and added to by the admin API).
    pub fn plugin_dir(&self) -> &Path {
        self.catalog.plugin_dir()
    }

    /// What is loaded, for the operator.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        self.catalog.list()
    }

    /// The loaded version with content hash `sha256`: active, or kept.
    pub fn version(&self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        self.catalog.version(sha256)
    }
}

#[cfg(test)]
/// The test plugin `hostile-condition` alone, loaded with `grant` (TOML), and the
/// directory it lives in; `None`, saying so, when `scripts/build-test-plugins.sh` has
/// not built it.
pub(crate) async fn hostile_condition(grant: &str) -> Option<(tempfile::TempDir, Arc<Plugins>)> {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/dist/hostile-condition.wasm");
    if !wasm.exists() {
        eprintln!("skipped: {} is not built", wasm.display());
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::copy(&wasm, plugin_dir.join("hostile-condition.wasm")).unwrap();
    let grant: PluginGrant = toml::from_str(grant).unwrap();
    let grants = HashMap::from([("hostile-condition".to_string(), grant)]);
    let plugins = Plugins::start(&plugin_dir, &dir.path().join("cache"), grants, Default::default()).await.unwrap();
    Some((dir, plugins))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A plugin that loops must not hold the runtime thread: on a single-threaded
    /// runtime, another task keeps running while it spins, until its budget traps it.
    /// Needs `scripts/build-test-plugins.sh` (skipped, saying so, without it).
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_plugin_yields_the_runtime_thread() {
        let Some((_dir, plugins)) = hostile_condition("time_ms = 300").await else { return };

        let ticks = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        let started = std::time::Instant::now();
        let result = plugins.condition_evaluate("loop", &crate::types::MediaInfo::default()).await;
        let elapsed = started.elapsed();
        ticker.abort();
        assert!(matches!(result, Err(PluginError::Timeout { budget_ms: 300, .. })), "{result:?}");
        assert!(elapsed >= Duration::from_millis(250), "the budget is the plugin's running time: {elapsed:?}");
        let ticks = ticks.load(std::sync::atomic::Ordering::Relaxed);
        assert!(ticks >= 10, "the other task ran only {ticks} times in {elapsed:?} while the plugin looped");
    }

    #[tokio::test]
    async fn an_ungrantable_scheme_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let grant: PluginGrant = toml::from_str("schemes = [\"fs\"]").unwrap();
        let grants = HashMap::from([("my-storage".to_string(), grant)]);
        let started = Plugins::start(&dir.path().join("plugins"), &dir.path().join("cache"), grants, Default::default()).await;
        let err = format!("{:#}", started.err().expect("refused"));
        assert!(err.contains("[plugins.my-storage] schemes") && err.contains("'fs' can never be granted"), "{err}");
    }
}
