//! The plugin room: wasmtime engine, the registry of loaded components, and typed calls.
//!
//! Each component is compiled once (cached on disk by content hash and engine
//! compatibility hash) and pre-instantiated; every call gets a fresh `Store` from the
//! pooling allocator with a memory cap and an epoch deadline, so a plugin that loops,
//! traps or grows without bound fails its own call and nothing else.

mod bindings;
mod notifier_hosts;
mod outbound;
mod registry;
mod state;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::config::PluginGrant;
use crate::types::{AudioPlan, MediaInfo, OutputPlan, OutputType, VideoPlan};
use bindings::types as wit;
pub use registry::{LoadedPlugin, PluginKind};
use registry::{Pre, Registry};
use state::PluginState;

/// The limits and rights of one plugin's calls, from the operator's grant.
#[derive(Debug, Clone)]
struct Sandbox {
    memory_bytes: usize,
    call_budget: Duration,
    allowed_hosts: Vec<String>,
    env: Vec<(String, String)>,
}

impl Sandbox {
    /// A call's time budget in epoch ticks.
    fn deadline_ticks(&self) -> u64 {
        (self.call_budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }

    fn from_grant(grant: Option<&PluginGrant>) -> Self {
        let grant = grant.cloned().unwrap_or_default();
        Sandbox {
            memory_bytes: grant.memory_mib.map(|m| (m as usize) << 20).unwrap_or(DEFAULT_MEMORY),
            call_budget: grant.time_ms.map(Duration::from_millis).unwrap_or(DEFAULT_BUDGET),
            allowed_hosts: grant.allowed_hosts,
            env: grant.env.into_iter().collect(),
        }
    }
}

const DEFAULT_MEMORY: usize = 64 << 20;
const DEFAULT_BUDGET: Duration = Duration::from_secs(1);

/// Why a plugin call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin answered with an error of its own: an API error code and message.
    #[error("{message}")]
    Rejected { code: String, message: String },
    /// No loaded plugin provides what was asked for.
    #[error("no {kind} plugin provides '{name}'")]
    Missing { kind: &'static str, name: String },
    #[error("plugin '{plugin}' ran past its time budget of {budget_ms} ms")]
    Timeout { plugin: String, budget_ms: u128 },
    #[error("plugin '{plugin}' exceeded its memory limit")]
    MemoryExceeded { plugin: String },
    #[error("plugin '{plugin}' failed: {message}")]
    Trapped { plugin: String, message: String },
}

impl PluginError {
    /// The API error code for this failure.
    pub fn code(&self) -> &str {
        match self {
            PluginError::Rejected { code, .. } => code,
            PluginError::Missing { .. } => "plugin_not_found",
            PluginError::Timeout { .. } => "plugin_timeout",
            PluginError::MemoryExceeded { .. } => "plugin_memory_exceeded",
            PluginError::Trapped { .. } => "plugin_failed",
        }
    }
}

impl PluginError {
    /// `code: message`, for status messages that users read.
    pub fn describe(&self) -> String {
        format!("{}: {self}", self.code())
    }
}

/// Longest code and message kept from a plugin: they end up in API responses and logs.
const MAX_CODE: usize = 64;
const MAX_MESSAGE: usize = 2048;

/// Cut `text` to at most `max` bytes on a character boundary.
fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl From<wit::PluginError> for PluginError {
    fn from(e: wit::PluginError) -> Self {
        PluginError::Rejected { code: truncated(e.code, MAX_CODE), message: truncated(e.message, MAX_MESSAGE) }
    }
}

/// Where a storage plugin says files go.
#[derive(Debug, Clone)]
pub enum StorageTarget {
    Opendal { scheme: String, options: Vec<(String, String)>, url_base: String },
    Local,
    /// The plugin uploads each file itself, through [`Plugins::storage_upload`].
    Custom,
}

/// A plugin file that could not be loaded, for the operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadError {
    pub file: String,
    pub error: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The plugin host: an engine, a linker, and the registry of loaded components.
pub struct Plugins {
    engine: Engine,
    linker: Linker<PluginState>,
    /// Swapped whole on reload: a call keeps the `Arc<LoadedPlugin>` it started with.
    registry: ArcSwap<Registry>,
    grants: HashMap<String, PluginGrant>,
    plugin_dir: PathBuf,
    cache_dir: PathBuf,
    errors: std::sync::Mutex<Vec<LoadError>>,
    /// One reload at a time; calls never wait for it.
    reloading: tokio::sync::Mutex<()>,
    /// The outbound policy every `wasi:http` request of a plugin obeys.
    outbound: outbound::PluginNet,
}

impl Plugins {
    /// Build the engine and load every `*.wasm` in `plugin_dir`. A component that fails
    /// to load is logged and skipped: one bad file must not stop the server.
    pub async fn start(
        plugin_dir: &Path,
        cache_dir: &Path,
        grants: HashMap<String, PluginGrant>,
        outbound: crate::net::Outbound,
    ) -> anyhow::Result<Arc<Self>> {
        let engine = new_engine()?;
        spawn_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::host::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
        std::fs::create_dir_all(cache_dir)?;
        std::fs::create_dir_all(plugin_dir)?;

        let plugins = Arc::new(Plugins {
            engine,
            linker,
            registry: ArcSwap::from_pointee(Registry::default()),
            grants,
            plugin_dir: plugin_dir.to_path_buf(),
            cache_dir: cache_dir.to_path_buf(),
            errors: std::sync::Mutex::new(Vec::new()),
            reloading: tokio::sync::Mutex::new(()),
            outbound: outbound::PluginNet::new(outbound),
        });
        plugins.reload().await;
        Ok(plugins)
    }

    /// Rescan the plugin directory and swap in the result. Unchanged files keep their
    /// loaded instance; a file that fails to load keeps its previous version active.
    /// Returns the problems found (also kept for `errors()`).
    pub async fn reload(&self) -> Vec<LoadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.registry.load_full();
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.plugin_dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(err) => {
                tracing::warn!(dir = %self.plugin_dir.display(), %err, "plugin directory not readable");
                Vec::new()
            }
        };
        paths.retain(|p| p.extension().is_some_and(|ext| ext == "wasm"));
        paths.sort();

        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for path in paths {
            let name = plugin_name(&path);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(err) => {
                    errors.push(load_error(&path, err.to_string()));
                    continue;
                }
            };
            let previous = current.by_name(&name);
            if let Some(previous) = previous.as_ref().filter(|p| p.sha256 == registry::sha256(&bytes)) {
                loaded.push(previous.clone());
                continue;
            }
            match self.load(&name, &bytes).await {
                Ok(plugin) => {
                    tracing::info!(plugin = %plugin.name, version = %plugin.info.version, kind = plugin.kind.as_str(), provides = ?plugin.info.provides, "plugin loaded");
                    loaded.push(Arc::new(plugin));
                }
                Err(err) => {
                    let message = format!("{err:#}");
                    tracing::error!(path = %path.display(), err = %message, "plugin rejected");
                    errors.push(load_error(&path, message));
                    loaded.extend(previous);
                }
            }
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
        self.registry.store(Arc::new(registry));
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()) = errors.clone();
        errors
    }

    /// Problems of the last reload.
    pub fn errors(&self) -> Vec<LoadError> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    /// What is loaded, for the operator.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        self.registry.load().all()
    }

    /// Compile (or load from the cache) and pre-instantiate one component, then ask it
    /// what it is.
    async fn load(&self, name: &str, bytes: &[u8]) -> anyhow::Result<LoadedPlugin> {
        let component = registry::compile_cached(&self.engine, &self.cache_dir, bytes)?;
        let kind = PluginKind::of(&self.engine, &component)?;
        let instance_pre = self.linker.instantiate_pre(&component)?;
        let pre = Pre::new(kind, instance_pre)?;
        let mut plugin = LoadedPlugin::new(name.into(), kind, pre, bytes);
        let sandbox = self.sandbox(&plugin.name);
        let mut store = self.store(&plugin, &sandbox, Vec::new());
        let info = plugin.pre.describe(&mut store).await.map_err(|e| anyhow::anyhow!(classify(&plugin.name, &sandbox, e)))?;
        plugin.set_info(info);
        Ok(plugin)
    }

    fn sandbox(&self, plugin: &str) -> Sandbox {
        Sandbox::from_grant(self.grants.get(plugin))
    }

    fn store(&self, plugin: &LoadedPlugin, sandbox: &Sandbox, extra_hosts: Vec<String>) -> Store<PluginState> {
        let mut hosts = sandbox.allowed_hosts.clone();
        hosts.extend(extra_hosts);
        let state = PluginState::new(plugin.name.clone(), hosts, &sandbox.env, sandbox.memory_bytes, self.outbound.clone());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(sandbox.deadline_ticks());
        store.epoch_deadline_trap();
        store
    }

    fn find(&self, kind: PluginKind, name: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        self.registry.load().find(kind, name).ok_or_else(|| PluginError::Missing { kind: kind.as_str(), name: name.to_string() })
    }

    /// Run one call against a fresh instance of `plugin`, mapping traps to `PluginError`.
    async fn call<R>(
        &self,
        plugin: &LoadedPlugin,
        allowed_hosts: Vec<String>,
        f: impl AsyncFnOnce(&Pre, &mut Store<PluginState>) -> wasmtime::Result<Result<R, wit::PluginError>>,
    ) -> Result<R, PluginError> {
        let span = tracing::debug_span!("plugin_call", plugin = %plugin.name);
        let _enter = span.enter();
        let sandbox = self.sandbox(&plugin.name);
        let mut store = self.store(plugin, &sandbox, allowed_hosts);
        let result = f(&plugin.pre, &mut store).await;
        outcome(plugin, &sandbox, &store, result)
    }

    /// Stream `file` to `key` through a storage plugin's own `upload` (custom targets),
    /// in 1 MiB chunks, every chunk with a fresh time budget. Returns the file's URL.
    pub async fn storage_upload(
        &self,
        service: &str,
        spec_json: &str,
        key: &str,
        content_type: &str,
        file: &Path,
    ) -> Result<String, PluginError> {
        use tokio::io::AsyncReadExt;
        const CHUNK: usize = 1 << 20;
        let plugin = self.find(PluginKind::Storage, service)?;
        let sandbox = self.sandbox(&plugin.name);
        let mut store = self.store(&plugin, &sandbox, Vec::new());
        let io_error = |e: std::io::Error| PluginError::Trapped { plugin: plugin.name.to_string(), message: format!("reading the file: {e}") };
        let mut source = tokio::fs::File::open(file).await.map_err(io_error)?;
        let size = source.metadata().await.map_err(io_error)?.len();

        let bindings = match plugin.pre.storage() {
            Ok(pre) => pre.instantiate_async(&mut store).await,
            Err(e) => Err(e),
        };
        let bindings = outcome(&plugin, &sandbox, &store, bindings.map(Ok))?;
        let storage = bindings.copra_plugin_storage();
        let opened = storage.call_open_upload(&mut store, spec_json, key, content_type, size).await;
        let upload = outcome(&plugin, &sandbox, &store, opened)?;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = source.read(&mut buffer).await.map_err(io_error)?;
            if read == 0 {
                break;
            }
            self.renew_budget(&mut store, &sandbox);
            let written = storage.upload().call_write(&mut store, upload, &buffer[..read]).await;
            outcome(&plugin, &sandbox, &store, written)?;
        }
        self.renew_budget(&mut store, &sandbox);
        let finished = storage.upload().call_finish(&mut store, upload).await;
        let url = outcome(&plugin, &sandbox, &store, finished)?;
        let _ = upload.resource_drop_async(&mut store).await;
        Ok(url)
    }

    fn renew_budget(&self, store: &mut Store<PluginState>, sandbox: &Sandbox) {
        store.set_epoch_deadline(sandbox.deadline_ticks());
    }

    // ---- storage ----

    pub async fn storage_resolve(&self, service: &str, spec_json: &str) -> Result<StorageTarget, PluginError> {
        let plugin = self.find(PluginKind::Storage, service)?;
        let target = self
            .call(&plugin, Vec::new(), async |pre, store| {
                let bindings = pre.storage()?.instantiate_async(&mut *store).await?;
                bindings.copra_plugin_storage().call_resolve(&mut *store, spec_json).await
            })
            .await?;
        Ok(match target {
            bindings::storage::exports::copra::plugin::storage::Target::Opendal(t) => {
                StorageTarget::Opendal { scheme: t.scheme, options: t.options, url_base: t.url_base }
            }
            bindings::storage::exports::copra::plugin::storage::Target::Local => StorageTarget::Local,
            bindings::storage::exports::copra::plugin::storage::Target::Custom => StorageTarget::Custom,
        })
    }

    pub async fn storage_object_key(&self, service: &str, spec_json: &str, output_path: &str) -> Result<String, PluginError> {
        let plugin = self.find(PluginKind::Storage, service)?;
        self.call(&plugin, Vec::new(), async |pre, store| {
            let bindings = pre.storage()?.instantiate_async(&mut *store).await?;
            bindings.copra_plugin_storage().call_object_key(&mut *store, spec_json, output_path).await
        })
        .await
    }

    // ---- format ----

    /// Check a format string and the output's parameters (JSON, without the host's own
    /// keys) at submit time; the container is the part before the first `:`.
    pub async fn format_check(&self, format: &str, params_json: &str) -> Result<OutputType, PluginError> {
        let plugin = self.find(PluginKind::Format, container_of(format))?;
        let output_type = self
            .call(&plugin, Vec::new(), async |pre, store| {
                let bindings = pre.format()?.instantiate_async(&mut *store).await?;
                bindings.copra_plugin_format().call_check(&mut *store, format, params_json).await
            })
            .await?;
        Ok(convert::output_type(output_type))
    }

    pub async fn format_plan(&self, format: &str, params_json: &str, input: &MediaInfo) -> Result<OutputPlan, PluginError> {
        let plugin = self.find(PluginKind::Format, container_of(format))?;
        let info = convert::media_info(input);
        let plan = self
            .call(&plugin, Vec::new(), async |pre, store| {
                let bindings = pre.format()?.instantiate_async(&mut *store).await?;
                bindings.copra_plugin_format().call_plan(&mut *store, format, params_json, &info).await
            })
            .await?;
        Ok(convert::output_plan(plan))
    }

    // ---- condition ----

    pub async fn condition_check(&self, expression: &str) -> Result<(), PluginError> {
        let plugin = self.find(PluginKind::Condition, "")?;
        self.call(&plugin, Vec::new(), async |pre, store| {
            let bindings = pre.condition()?.instantiate_async(&mut *store).await?;
            bindings.copra_plugin_condition().call_check(&mut *store, expression).await
        })
        .await
    }

    pub async fn condition_evaluate(&self, expression: &str, input: &MediaInfo) -> Result<bool, PluginError> {
        let plugin = self.find(PluginKind::Condition, "")?;
        let info = convert::media_info(input);
        self.call(&plugin, Vec::new(), async |pre, store| {
            let bindings = pre.condition()?.instantiate_async(&mut *store).await?;
            bindings.copra_plugin_condition().call_evaluate(&mut *store, expression, &info).await
        })
        .await
    }

    /// A condition plugin instance kept alive, for evaluating many expressions against
    /// inputs without instantiating per call (and to measure the warm-call cost).
    pub async fn condition_instance(&self) -> Result<ConditionInstance, PluginError> {
        let plugin = self.find(PluginKind::Condition, "")?;
        let sandbox = self.sandbox(&plugin.name);
        let mut store = self.store(&plugin, &sandbox, Vec::new());
        let pre = plugin.pre.condition().map_err(|e| classify(&plugin.name, &sandbox, e))?;
        let bindings = pre.instantiate_async(&mut store).await.map_err(|e| classify(&plugin.name, &sandbox, e))?;
        Ok(ConditionInstance { plugin, sandbox, store, bindings })
    }

    // ---- notifier ----

    pub async fn notifier_check(&self, kind: &str, config_json: &str) -> Result<(), PluginError> {
        let plugin = self.find(PluginKind::Notifier, kind)?;
        self.call(&plugin, Vec::new(), async |pre, store| {
            let bindings = pre.notifier()?.instantiate_async(&mut *store).await?;
            bindings.copra_plugin_notifier().call_check(&mut *store, config_json).await
        })
        .await
    }

    /// Deliver one event. The plugin is first asked which hosts the configuration
    /// names, and the delivering call may reach exactly those.
    pub async fn notifier_notify(&self, kind: &str, config_json: &str, event_json: &str) -> Result<(), PluginError> {
        let plugin = self.find(PluginKind::Notifier, kind)?;
        let hosts = self
            .call(&plugin, Vec::new(), async |pre, store| {
                let bindings = pre.notifier()?.instantiate_async(&mut *store).await?;
                bindings.copra_plugin_notifier().call_hosts(&mut *store, config_json).await
            })
            .await?;
        self.call(&plugin, hosts, async |pre, store| {
            let bindings = pre.notifier()?.instantiate_async(&mut *store).await?;
            bindings.copra_plugin_notifier().call_notify(&mut *store, config_json, event_json).await
        })
        .await
    }
}

/// The result of one plugin call as the host reports it: the plugin's own error, or a
/// trap explained (time, memory, panic message from its stderr). Counts the call.
fn outcome<R>(
    plugin: &LoadedPlugin,
    sandbox: &Sandbox,
    store: &Store<PluginState>,
    result: wasmtime::Result<Result<R, wit::PluginError>>,
) -> Result<R, PluginError> {
    plugin.record_call(result.as_ref().map(|r| r.is_ok()).unwrap_or(false));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(rejected)) => Err(rejected.into()),
        Err(trap) => {
            let stderr = store.data().stderr.contents();
            let mut error = if store.data().limits.exceeded {
                PluginError::MemoryExceeded { plugin: plugin.name.to_string() }
            } else {
                classify(&plugin.name, sandbox, trap)
            };
            if let PluginError::Trapped { message, .. } = &mut error {
                // A panicking Rust plugin says why on stderr before it traps.
                if let Some(said) = panic_message(&stderr) {
                    *message = said;
                }
            }
            let stderr = String::from_utf8_lossy(&stderr);
            tracing::warn!(plugin = %plugin.name, code = error.code(), %error, stderr = %stderr.trim(), "plugin call failed");
            Err(error)
        }
    }
}

/// See [`Plugins::condition_instance`].
pub struct ConditionInstance {
    plugin: Arc<LoadedPlugin>,
    sandbox: Sandbox,
    store: Store<PluginState>,
    bindings: bindings::condition::ConditionPlugin,
}

impl ConditionInstance {
    pub async fn evaluate(&mut self, expression: &str, input: &MediaInfo) -> Result<bool, PluginError> {
        // Each call gets the full time budget again.
        self.store.set_epoch_deadline(self.sandbox.deadline_ticks());
        let info = convert::media_info(input);
        match self.bindings.copra_plugin_condition().call_evaluate(&mut self.store, expression, &info).await {
            Ok(result) => result.map_err(PluginError::from),
            Err(trap) => Err(classify(&self.plugin.name, &self.sandbox, trap)),
        }
    }
}

fn container_of(format: &str) -> &str {
    format.split(':').next().unwrap_or(format)
}

/// A plugin is named by its file stem (`notifier-http.wasm` → `notifier-http`).
fn plugin_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn load_error(path: &Path, error: String) -> LoadError {
    LoadError { file: path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(), error, at: chrono::Utc::now() }
}

/// Epochs tick every 10 ms; a call's budget is counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of a plugin's linear memory kept mapped between instances. Plugins are
/// instantiated for every call, so resetting their memory is on every call's path:
/// with `pagemap_scan` (Linux 6.7+) only the pages a call dirtied are reset, in place,
/// and the next instance takes no page faults. Bounded by what plugins actually touch.
const MEMORY_KEEP_RESIDENT: usize = 4 << 20;

fn new_engine() -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(256)
        .total_core_instances(1024)
        .total_memories(512)
        .total_tables(512)
        .total_stacks(256)
        .max_memory_size(256 << 20)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto)
        // What does go back to the kernel goes in batches: one madvise, not one per drop.
        .decommit_batch_size(16);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("copra-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .ok();
}

/// The message of a Rust panic as the guest printed it (`panicked at src/lib.rs:1:2:\nmsg`).
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let after = text.split_once("panicked at ")?.1;
    let message = after.split_once('\n').map(|(_, rest)| rest).unwrap_or(after);
    let message = message.lines().next().unwrap_or("").trim();
    (!message.is_empty()).then(|| format!("panicked: {message}"))
}

/// Turn a wasmtime error into the reason a user can act on.
fn classify(plugin: &str, sandbox: &Sandbox, err: wasmtime::Error) -> PluginError {
    let plugin = plugin.to_string();
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PluginError::Timeout { plugin, budget_ms: sandbox.call_budget.as_millis() },
        Some(wasmtime::Trap::AllocationTooLarge) => PluginError::MemoryExceeded { plugin },
        _ => PluginError::Trapped { plugin, message: format!("{err:#}") },
    }
}

/// Conversions between the generated WIT types and the host's own `crate::types`.
mod convert {
    use super::bindings::format::exports::copra::plugin::format as wit_format;
    use super::*;
    use crate::types::{Fit, HlsPlan, ImagePlan, SpritePlan, StreamPlan, TimeRange, VariantPlan};

    pub fn media_info(m: &MediaInfo) -> wit::MediaInfo {
        wit::MediaInfo {
            width: m.width,
            height: m.height,
            duration: m.duration,
            rotation: m.rotation,
            fps: m.fps,
            bitrate: m.bitrate,
            has_video: m.has_video,
            has_audio: m.has_audio,
            video_codec: m.video_codec.clone(),
            audio_codec: m.audio_codec.clone(),
            pix_fmt: m.pix_fmt.clone(),
            sample_rate: m.sample_rate,
            channels: m.channels,
            size: m.size,
            format_name: m.format_name.clone(),
            color_transfer: m.color_transfer.clone(),
            color_primaries: m.color_primaries.clone(),
        }
    }

    pub fn output_type(t: wit_format::OutputType) -> OutputType {
        match t {
            wit_format::OutputType::Video => OutputType::Video,
            wit_format::OutputType::Audio => OutputType::Audio,
            wit_format::OutputType::Image => OutputType::Image,
            wit_format::OutputType::Httpstream => OutputType::Httpstream,
        }
    }

    fn fit(f: wit_format::Fit) -> Fit {
        match f {
            wit_format::Fit::Stretch => Fit::Stretch,
            wit_format::Fit::Crop => Fit::Crop,
            wit_format::Fit::Pad => Fit::Pad,
        }
    }

    fn video(v: wit_format::VideoPlan) -> VideoPlan {
        VideoPlan {
            codec: v.codec,
            width: v.width,
            height: v.height,
            fps: v.fps,
            bitrate_kbps: v.bitrate_kbps,
            crf: v.crf,
            pix_fmt: v.pix_fmt,
            gop: v.gop,
            keyframe_interval: v.keyframe_interval,
            encoder_options: v.encoder_options,
            scaler: v.scaler,
            fit: fit(v.fit),
            rotate: v.rotate,
            tone_map: v.tone_map,
        }
    }

    fn audio(a: wit_format::AudioPlan) -> AudioPlan {
        AudioPlan { codec: a.codec, bitrate_kbps: a.bitrate_kbps, sample_rate: a.sample_rate, channels: a.channels }
    }

    pub fn output_plan(p: wit_format::OutputPlan) -> OutputPlan {
        OutputPlan {
            output_type: output_type(p.output_type),
            container: p.container,
            extension: p.extension,
            mime_type: p.mime_type,
            video: p.video.map(video),
            audio: p.audio.map(audio),
            range: p.range.map(|r| TimeRange { offset: r.offset, duration: r.duration }),
            image: p.image.map(|i| ImagePlan {
                codec: i.codec,
                width: i.width,
                height: i.height,
                fit: fit(i.fit),
                times: i.times,
                sprite: i.sprite.map(|s| SpritePlan { columns: s.columns, rows: s.rows }),
                encoder_options: i.encoder_options,
            }),
            packaging: p.packaging.map(|s| StreamPlan {
                variants: s
                    .variants
                    .into_iter()
                    .map(|v| VariantPlan { name: v.name, video: v.video.map(video), audio: v.audio.map(audio) })
                    .collect(),
                segment_duration: s.segment_duration,
                hls: s.hls.map(|h| HlsPlan { fmp4: h.fmp4 }),
                dash: s.dash,
            }),
        }
    }
}
