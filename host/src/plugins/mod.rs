//! The plugin room: the wasmtime host that loads WebAssembly components and calls them.
//!
//! Each component is compiled once (cached on disk by content hash and engine
//! compatibility hash) and pre-instantiated; every call gets a fresh `Store` from the
//! pooling allocator with the plugin's [`sandbox`]: a memory cap, a CPU budget, a
//! wall-clock deadline and the hosts it may reach. A plugin that loops, traps, waits
//! or grows without bound fails its own call and nothing else. Whatever a plugin
//! answers is a request the host checks (schemes, object keys, hosts) before any I/O.
//!
//! Files, one concern each: `engine` (engine, epoch ticker, linker), `sandbox` (limits
//! and rights from the grant; the store), `hosts` (host grants), `error` (failures and
//! how a call's result becomes one), `registry` (loaded components), `convert` (WIT ↔
//! host types), `hot_reload`, and one file per kind of call: `storage`,
//! `custom_upload`, `format`, `condition`, `notifier`. This file: the [`Plugins`] host itself,
//! start, reload, lookup.

mod bindings;
mod cluster;
mod condition;
mod convert;
mod engine;
mod error;
mod format;
mod hosts;
mod notifier;
mod notifier_hosts;
mod outbound;
mod pins;
mod registry;
mod sandbox;
mod state;
mod storage;
mod custom_upload;
mod hot_reload;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tracing::Instrument;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};

use crate::config::PluginGrant;
use bindings::types as wit;
pub use condition::ConditionInstance;
pub use cluster::AddError;
pub use error::PluginError;
pub use pins::{Pin, Pins, carry, record};
pub use registry::{LoadedPlugin, PluginKind};
use registry::{Pre, Registry};
use sandbox::Sandbox;
use state::PluginState;
pub use state::{LastStatus, WebhookSigning};
pub use sandbox::{grantable_schemes, is_never_granted};
pub use hot_reload::PluginWatcher;

/// A plugin file that could not be loaded, for the operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadError {
    /// The file's name in the plugin directory.
    pub file: String,
    /// Why it was not loaded.
    pub error: String,
    /// When the reload that found it ran.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The plugin host: an engine, a linker, and the registry of loaded components.
pub struct Plugins {
    engine: Engine,
    linker: Linker<PluginState>,
    /// Swapped whole on reload: a call keeps the `Arc<LoadedPlugin>` it started with.
    registry: ArcSwap<Registry>,
    /// The operator's grants by plugin name (for `priority`).
    grants: HashMap<String, PluginGrant>,
    /// The sandbox of every plugin named in the config, checked at start.
    sandboxes: HashMap<String, Arc<Sandbox>>,
    plugin_dir: PathBuf,
    cache_dir: PathBuf,
    errors: std::sync::Mutex<Vec<LoadError>>,
    /// One reload at a time; calls never wait for it.
    reloading: tokio::sync::Mutex<()>,
    /// The outbound policy every `wasi:http` request of a plugin obeys.
    outbound: outbound::PluginNet,
    /// Versions no longer active but still addressable by hash, for jobs planned with
    /// them (see `pins`): replaced here, or loaded from the database for a job.
    kept: std::sync::Mutex<HashMap<String, Kept>>,
    /// Adding, removing and syncing with the database one at a time (see `cluster`).
    admin: tokio::sync::Mutex<()>,
    /// Stored versions this node failed to load: not tried again by every sync.
    sync_failed: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A version kept for the jobs planned with it, and when one last asked for it.
struct Kept {
    plugin: Arc<LoadedPlugin>,
    last_used: std::time::Instant,
}

/// What a scan of the plugin directory found for one file (see [`Plugins::scan`]).
enum Scanned {
    /// Same bytes as the loaded version: keep it.
    Unchanged(Arc<LoadedPlugin>),
    /// New or changed, compiled and pre-instantiated; not yet asked what it is.
    Compiled { path: PathBuf, plugin: Box<LoadedPlugin>, previous: Option<Arc<LoadedPlugin>> },
    /// Unreadable or not a valid plugin; `previous` stays active.
    Failed { path: PathBuf, message: String, previous: Option<Arc<LoadedPlugin>> },
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
        let sandboxes = grants
            .iter()
            .map(|(name, grant)| Sandbox::new(name, Some(grant)).map(|s| (name.clone(), Arc::new(s))))
            .collect::<Result<HashMap<_, _>, _>>()
            .map_err(|e| anyhow::anyhow!("the plugin grants of the config file are not valid: {e}"))?;
        let engine = engine::new_engine()?;
        engine::spawn_epoch_ticker(&engine);
        let linker = engine::new_linker(&engine)?;
        tokio::fs::create_dir_all(cache_dir).await?;
        tokio::fs::create_dir_all(plugin_dir).await?;

        let plugins = Arc::new(Plugins {
            engine,
            linker,
            registry: ArcSwap::from_pointee(Registry::default()),
            grants,
            sandboxes,
            plugin_dir: plugin_dir.to_path_buf(),
            cache_dir: cache_dir.to_path_buf(),
            errors: std::sync::Mutex::new(Vec::new()),
            reloading: tokio::sync::Mutex::new(()),
            outbound: outbound::PluginNet::new(outbound),
            kept: std::sync::Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            sync_failed: std::sync::Mutex::new(Default::default()),
        });
        plugins.reload().await;
        Ok(plugins)
    }

    /// Rescan the plugin directory and swap in the result. Unchanged files keep their
    /// loaded instance; a file that fails to load keeps its previous version active.
    /// Reading, hashing and compiling run on the blocking pool, never on the runtime.
    /// Returns the problems found (also kept for `errors()`).
    pub async fn reload(self: &Arc<Self>) -> Vec<LoadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.registry.load_full();
        let scanned = {
            let (this, current) = (Arc::clone(self), Arc::clone(&current));
            tokio::task::spawn_blocking(move || this.scan(&current)).await
        };
        let scanned = match scanned {
            Ok(scanned) => scanned,
            Err(err) => {
                tracing::error!(%err, "scanning the plugin directory failed");
                return self.errors();
            }
        };

        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for entry in scanned {
            let (path, message, previous) = match entry {
                Scanned::Unchanged(plugin) => {
                    loaded.push(plugin);
                    continue;
                }
                Scanned::Compiled { path, plugin, previous } => match self.describe(*plugin).await {
                    Ok(plugin) => {
                        tracing::info!(plugin = %plugin.name, version = %plugin.info.version, kind = plugin.kind.as_str(), provides = ?plugin.info.provides, "plugin loaded");
                        loaded.push(Arc::new(plugin));
                        continue;
                    }
                    Err(err) => (path, err.to_string(), previous),
                },
                Scanned::Failed { path, message, previous } => (path, message, previous),
            };
            tracing::error!(path = %path.display(), err = %message, "plugin rejected");
            errors.push(load_error(&path, message));
            loaded.extend(previous);
        }
        // Who wins a name: higher priority first; on a tie a plugin already serving keeps
        // it and a newcomer is refused; at start-up, directory order decides.
        let priority = |p: &Arc<LoadedPlugin>| self.grants.get(&*p.name).map(|g| g.priority).unwrap_or(0);
        let newcomer = |p: &Arc<LoadedPlugin>| current.by_name(&p.name).is_none();
        loaded.sort_by_key(|p| (std::cmp::Reverse(priority(p)), newcomer(p)));
        let mut registry = Registry::default();
        for plugin in loaded {
            if let Err(err) = registry.insert(plugin.clone()) {
                tracing::error!(plugin = %plugin.name, %err, "plugin refused");
                errors.push(LoadError { file: format!("{}.wasm", plugin.name), error: err.to_string(), at: chrono::Utc::now() });
            }
        }
        // A version that is no longer active stays addressable by its hash.
        let registry = Arc::new(registry);
        {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            for old in current.all().into_iter().filter(|p| registry.by_sha(&p.sha256).is_none()) {
                kept.entry(old.sha256.clone()).or_insert_with(|| Kept { plugin: old, last_used: std::time::Instant::now() });
            }
            kept.retain(|sha256, _| registry.by_sha(sha256).is_none());
        }
        self.registry.store(registry);
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()) = errors.clone();
        errors
    }

    /// Read the plugin directory, hash every component, and compile (or load from the
    /// cache) the new and changed ones. Blocking: runs on the blocking pool.
    fn scan(&self, current: &Registry) -> Vec<Scanned> {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.plugin_dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(err) => {
                tracing::warn!(dir = %self.plugin_dir.display(), %err, "plugin directory not readable");
                Vec::new()
            }
        };
        paths.retain(|p| p.extension().is_some_and(|ext| ext == "wasm"));
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let name = plugin_name(&path);
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(err) => return Scanned::Failed { path, message: err.to_string(), previous: None },
                };
                let sha256 = registry::sha256(&bytes);
                let previous = current.by_name(&name);
                if let Some(previous) = previous.as_ref().filter(|p| p.sha256 == sha256) {
                    return Scanned::Unchanged(previous.clone());
                }
                match self.prepare(&name, &bytes, sha256) {
                    Ok(plugin) => Scanned::Compiled { path, plugin: Box::new(plugin), previous },
                    Err(err) => Scanned::Failed { path, message: format!("{err:#}"), previous },
                }
            })
            .collect()
    }

    /// Compile (or load from the cache) and pre-instantiate one component. Blocking.
    fn prepare(&self, name: &str, bytes: &[u8], sha256: String) -> anyhow::Result<LoadedPlugin> {
        let component = registry::compile_cached(&self.engine, &self.cache_dir, bytes, &sha256)?;
        let kind = PluginKind::of(&self.engine, &component)?;
        let instance_pre = self.linker.instantiate_pre(&component)?;
        let pre = Pre::new(kind, instance_pre)?;
        Ok(LoadedPlugin::new(name.into(), kind, pre, sha256, self.sandbox(name)))
    }

    /// Ask a prepared plugin what it is (name, version, what it provides).
    async fn describe(&self, mut plugin: LoadedPlugin) -> Result<LoadedPlugin, PluginError> {
        let mut store = plugin.sandbox.store(&self.engine, plugin.name.clone(), Vec::new(), self.outbound.clone());
        let described = error::within(plugin.sandbox.deadline, plugin.pre.describe(&mut store)).await;
        let info = described.map_err(|e| error::classify(&plugin, e))?;
        plugin.set_info(info);
        Ok(plugin)
    }

    /// Problems of the last reload.
    pub fn errors(&self) -> Vec<LoadError> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The directory plugins are loaded from (and added to by the admin API).
    pub fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    /// What is loaded, for the operator.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        self.registry.load().all()
    }

    /// The sandbox of the plugin `name`: its checked grant, or the defaults.
    fn sandbox(&self, name: &str) -> Arc<Sandbox> {
        match self.sandboxes.get(name) {
            Some(sandbox) => sandbox.clone(),
            None => Arc::new(Sandbox::new(name, None).expect("the default grant is valid (tested)")),
        }
    }

    /// The plugin of `kind` for `name`: inside a job, the version the job was planned
    /// with (or none); otherwise the active one (noted when a submit is recording).
    fn find(&self, kind: PluginKind, name: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        if let Some(pin) = pins::pinned(kind, name) {
            return self
                .version(&pin.sha256)
                .filter(|p| p.kind == kind)
                .ok_or(PluginError::Unavailable { plugin: pin.plugin, sha256: pin.sha256 });
        }
        let plugin = self.registry.load().find(kind, name).ok_or_else(|| PluginError::Missing { kind: kind.as_str(), name: name.to_string() })?;
        pins::note(kind, name, &plugin);
        Ok(plugin)
    }

    /// The loaded version with content hash `sha256`: active, or kept.
    pub fn version(&self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        if let Some(plugin) = self.registry.load().by_sha(sha256) {
            return Some(plugin);
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get_mut(sha256).map(|k| {
            k.last_used = std::time::Instant::now();
            k.plugin.clone()
        })
    }

    /// Run one call against a fresh instance of `plugin` within its sandbox: its
    /// granted hosts (a notifier's are granted per delivery, see `notifier_notify`) and
    /// its deadline.
    async fn call<R>(
        &self,
        plugin: &LoadedPlugin,
        function: &'static str,
        f: impl AsyncFnOnce(&Pre, &mut Store<PluginState>) -> wasmtime::Result<Result<R, wit::PluginError>>,
    ) -> Result<R, PluginError> {
        let hosts = if plugin.kind == PluginKind::Notifier { Vec::new() } else { plugin.sandbox.allowed_hosts.clone() };
        self.call_with(plugin, function, hosts, plugin.sandbox.deadline, |_| {}, f).await
    }

    /// [`Self::call`] with the hosts the call may reach, its wall-clock deadline, and
    /// `setup` of the call's state (e.g. a webhook delivery to sign for). `function` names
    /// the call in its span and its latency metric.
    async fn call_with<R>(
        &self,
        plugin: &LoadedPlugin,
        function: &'static str,
        hosts: Vec<String>,
        deadline: Duration,
        setup: impl FnOnce(&mut PluginState),
        f: impl AsyncFnOnce(&Pre, &mut Store<PluginState>) -> wasmtime::Result<Result<R, wit::PluginError>>,
    ) -> Result<R, PluginError> {
        let span = tracing::debug_span!("plugin_call", plugin = %plugin.name, function);
        async {
            let started = std::time::Instant::now();
            let mut store = plugin.sandbox.store(&self.engine, plugin.name.clone(), hosts, self.outbound.clone());
            setup(store.data_mut());
            let result = error::within(deadline, f(&plugin.pre, &mut store)).await;
            let outcome = error::outcome(plugin, &store, result);
            plugin.call_times.record(&plugin.name, function, outcome.is_ok(), started.elapsed());
            outcome
        }
        .instrument(span)
        .await
    }
}

/// A plugin is named by its file stem (`notifier-http.wasm` → `notifier-http`).
fn plugin_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn load_error(path: &Path, error: String) -> LoadError {
    LoadError { file: path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(), error, at: chrono::Utc::now() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin that loops must not hold the runtime thread: on a single-threaded
    /// runtime, another task keeps running while it spins, until its budget traps it.
    /// Needs `scripts/build-test-plugins.sh` (skipped, saying so, without it).
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_plugin_yields_the_runtime_thread() {
        let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/dist/hostile-condition.wasm");
        if !wasm.exists() {
            eprintln!("skipped: {} is not built", wasm.display());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).unwrap();
        std::fs::copy(&wasm, plugin_dir.join("hostile-condition.wasm")).unwrap();
        let grant: PluginGrant = toml::from_str("time_ms = 300").unwrap();
        let grants = HashMap::from([("hostile-condition".to_string(), grant)]);
        let plugins = Plugins::start(&plugin_dir, &dir.path().join("cache"), grants, Default::default()).await.unwrap();

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
