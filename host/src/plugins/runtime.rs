//! Running components: the engine, the linker, and the outbound network every plugin's
//! HTTP leaves through. Preparing a component (compiled or taken from the cache, typed
//! by its world, pre-instantiated), asking it what it is, and one call of it: a fresh
//! store within its sandbox, the deadline, the outcome, the call's time for `/metrics`.
//!
//! What is loaded and which version a lookup finds is the catalog's business
//! (`catalog`); this file never looks a plugin up.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};

use super::bindings::types as wit;
use super::error::{self, PluginError};
use super::outbound::PluginNet;
use super::registry::{self, Bound, LoadedPlugin, PluginKind, Pre};
use super::sandbox::Sandbox;
use super::state::PluginState;
use super::engine;
use super::shared_instances;

/// The engine, its linker, and the network policy of plugin calls.
pub(super) struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    /// The outbound policy every `wasi:http` request of a plugin obeys.
    outbound: PluginNet,
}

impl Runtime {
    /// Build the engine (and start its epoch ticker) and the linker.
    pub(super) fn new(outbound: crate::net::Outbound) -> anyhow::Result<Self> {
        let engine = engine::new_engine()?;
        engine::spawn_epoch_ticker(&engine);
        let linker = engine::new_linker(&engine)?;
        Ok(Runtime { engine, linker, outbound: PluginNet::new(outbound) })
    }

    /// Compile (or load from `cache_dir`) and pre-instantiate one component, to run
    /// within `sandbox`. Blocking.
    pub(super) fn prepare(
        &self,
        cache_dir: &Path,
        name: &str,
        bytes: &[u8],
        sha256: String,
        sandbox: Arc<Sandbox>,
    ) -> anyhow::Result<LoadedPlugin> {
        let component = registry::compile_cached(&self.engine, cache_dir, bytes, &sha256)?;
        let kind = PluginKind::of(&self.engine, &component)?;
        let instance_pre = self.linker.instantiate_pre(&component)?;
        let pre = Pre::new(kind, instance_pre)?;
        Ok(LoadedPlugin::new(name.into(), kind, pre, sha256, sandbox))
    }

    /// Ask a prepared plugin what it is (name, version, what it provides).
    pub(super) async fn describe(&self, mut plugin: LoadedPlugin) -> Result<LoadedPlugin, PluginError> {
        let mut store = self.store(&plugin, Vec::new());
        let described = error::within(plugin.sandbox.deadline, plugin.pre.describe(&mut store)).await;
        let info = described.map_err(|e| error::classify(&plugin, e))?;
        plugin.set_info(info);
        Ok(plugin)
    }

    /// A fresh store for `plugin` within its sandbox, whose outgoing HTTP may reach
    /// `hosts`: for one call, or an instance kept for several.
    pub(super) fn store(&self, plugin: &LoadedPlugin, hosts: Vec<String>) -> Store<PluginState> {
        plugin.sandbox.store(&self.engine, plugin.name.clone(), hosts, self.outbound.clone())
    }

    /// Run one call of `plugin` within its sandbox: its granted hosts (a notifier's are
    /// granted per delivery, see `notifier_notify`) and its deadline. The instance is a
    /// fresh one, or inside `shared_instances::one_instance_each` the task's own.
    pub(super) async fn call<R>(
        &self,
        plugin: &LoadedPlugin,
        function: &'static str,
        f: impl AsyncFnOnce(&Bound, &mut Store<PluginState>) -> wasmtime::Result<Result<R, wit::PluginError>>,
    ) -> Result<R, PluginError> {
        let hosts = if plugin.kind == PluginKind::Notifier { Vec::new() } else { plugin.sandbox.allowed_hosts.clone() };
        self.run(plugin, function, hosts, plugin.sandbox.deadline, None::<fn(&mut PluginState)>, f).await
    }

    /// One call against a fresh instance, with the hosts the call may reach, its
    /// wall-clock deadline, and `setup` of the call's state (e.g. a webhook delivery to
    /// sign for). `function` names the call in its span and its latency metric.
    pub(super) async fn call_with<R>(
        &self,
        plugin: &LoadedPlugin,
        function: &'static str,
        hosts: Vec<String>,
        deadline: Duration,
        setup: impl FnOnce(&mut PluginState),
        f: impl AsyncFnOnce(&Bound, &mut Store<PluginState>) -> wasmtime::Result<Result<R, wit::PluginError>>,
    ) -> Result<R, PluginError> {
        self.run(plugin, function, hosts, deadline, Some(setup), f).await
    }

    /// A call without `setup` may run on the task's kept instance (fresh budget, same
    /// deadline), and leaves it there unless it trapped.
    async fn run<R>(
        &self,
        plugin: &LoadedPlugin,
        function: &'static str,
        hosts: Vec<String>,
        deadline: Duration,
        setup: Option<impl FnOnce(&mut PluginState)>,
        f: impl AsyncFnOnce(&Bound, &mut Store<PluginState>) -> wasmtime::Result<Result<R, wit::PluginError>>,
    ) -> Result<R, PluginError> {
        let span = tracing::debug_span!("plugin_call", plugin = %plugin.name, function);
        async {
            let started = std::time::Instant::now();
            let shared = setup.is_none() && shared_instances::sharing();
            let (mut store, kept) = match shared.then(|| shared_instances::take(plugin)).flatten() {
                Some((mut store, bound)) => {
                    plugin.sandbox.renew_budget(&mut store);
                    (store, Some(bound))
                }
                None => (self.store(plugin, hosts), None),
            };
            if let Some(setup) = setup {
                setup(store.data_mut());
            }
            let result = error::within(deadline, async {
                let bound = match kept {
                    Some(bound) => bound,
                    None => plugin.pre.instantiate(&mut store).await?,
                };
                let answer = f(&bound, &mut store).await?;
                Ok((answer, bound))
            })
            .await;
            let (result, bound) = match result {
                Ok((answer, bound)) => (Ok(answer), Some(bound)),
                Err(trap) => (Err(trap), None),
            };
            let outcome = error::outcome(plugin, &store, result);
            plugin.call_times.record(&plugin.name, function, outcome.is_ok(), started.elapsed());
            // An instance that wrote to stderr is not kept: its pipe has room for one
            // call's messages (`state::STDERR_CAPACITY`), and a full one fails the next.
            if let (true, Some(bound)) = (shared, bound)
                && store.data().stderr.contents().is_empty()
            {
                shared_instances::put(plugin, store, bound);
            }
            outcome
        }
        .instrument(span)
        .await
    }
}
