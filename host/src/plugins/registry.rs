//! Loaded components and how calls find them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre};
use wasmtime::{Engine, Store};

use super::bindings::{condition, format, notifier, storage, types as wit};
use super::sandbox::Sandbox;
use super::state::PluginState;

/// The four kinds of plugin, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Where files go (`storage-plugin`).
    Storage,
    /// What a format string means (`format-plugin`).
    Format,
    /// The `if` of outputs (`condition-plugin`).
    Condition,
    /// Who is told about a job (`notifier-plugin`).
    Notifier,
}

impl PluginKind {
    /// The kind's name, as the API and logs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Storage => "storage",
            PluginKind::Format => "format",
            PluginKind::Condition => "condition",
            PluginKind::Notifier => "notifier",
        }
    }

    /// Which `copra:plugin` world a component targets, from the interfaces it exports.
    pub fn of(engine: &Engine, component: &Component) -> anyhow::Result<Self> {
        let exports: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
        let exported = |iface: &str| exports.iter().any(|e| e.starts_with(&format!("copra:plugin/{iface}@")));
        if !exported("plugin") {
            anyhow::bail!("component does not export copra:plugin/plugin (exports: {exports:?})");
        }
        [
            ("storage", PluginKind::Storage),
            ("format", PluginKind::Format),
            ("condition", PluginKind::Condition),
            ("notifier", PluginKind::Notifier),
        ]
        .into_iter()
        .find(|(iface, _)| exported(iface))
        .map(|(_, kind)| kind)
        .ok_or_else(|| anyhow::anyhow!("component matches no copra:plugin world (exports: {exports:?})"))
    }
}

/// A pre-instantiated component, typed by its world.
pub enum Pre {
    Storage(storage::StoragePluginPre<PluginState>),
    Format(format::FormatPluginPre<PluginState>),
    Condition(condition::ConditionPluginPre<PluginState>),
    Notifier(notifier::NotifierPluginPre<PluginState>),
}

impl Pre {
    /// Type a pre-instantiated component by its world.
    pub fn new(kind: PluginKind, pre: InstancePre<PluginState>) -> anyhow::Result<Self> {
        Ok(match kind {
            PluginKind::Storage => Pre::Storage(storage::StoragePluginPre::new(pre)?),
            PluginKind::Format => Pre::Format(format::FormatPluginPre::new(pre)?),
            PluginKind::Condition => Pre::Condition(condition::ConditionPluginPre::new(pre)?),
            PluginKind::Notifier => Pre::Notifier(notifier::NotifierPluginPre::new(pre)?),
        })
    }

    /// A new instance in `store`, typed by its world.
    pub async fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Bound> {
        Ok(match self {
            Pre::Storage(pre) => Bound::Storage(pre.instantiate_async(store).await?),
            Pre::Format(pre) => Bound::Format(pre.instantiate_async(store).await?),
            Pre::Condition(pre) => Bound::Condition(pre.instantiate_async(store).await?),
            Pre::Notifier(pre) => Bound::Notifier(pre.instantiate_async(store).await?),
        })
    }

    /// Every world exports `copra:plugin/plugin.describe`.
    pub async fn describe(&self, store: &mut Store<PluginState>) -> wasmtime::Result<wit::PluginInfo> {
        match self {
            Pre::Storage(pre) => pre.instantiate_async(&mut *store).await?.copra_plugin_plugin().call_describe(store).await,
            Pre::Format(pre) => pre.instantiate_async(&mut *store).await?.copra_plugin_plugin().call_describe(store).await,
            Pre::Condition(pre) => pre.instantiate_async(&mut *store).await?.copra_plugin_plugin().call_describe(store).await,
            Pre::Notifier(pre) => pre.instantiate_async(&mut *store).await?.copra_plugin_plugin().call_describe(store).await,
        }
    }
}

/// An instance of a component, typed by its world.
pub enum Bound {
    Storage(storage::StoragePlugin),
    Format(format::FormatPlugin),
    Condition(condition::ConditionPlugin),
    Notifier(notifier::NotifierPlugin),
}

macro_rules! bound_accessor {
    ($method:ident, $variant:ident, $ty:ty) => {
        pub fn $method(&self) -> wasmtime::Result<&$ty> {
            match self {
                Bound::$variant(bound) => Ok(bound),
                _ => Err(wasmtime::Error::msg(concat!("plugin is not a ", stringify!($method), " plugin"))),
            }
        }
    };
}

impl Bound {
    /// The condition plugin's bindings, owned: for an instance kept across calls.
    pub fn into_condition(self) -> wasmtime::Result<condition::ConditionPlugin> {
        match self {
            Bound::Condition(bound) => Ok(bound),
            _ => Err(wasmtime::Error::msg("plugin is not a condition plugin")),
        }
    }

    bound_accessor!(storage, Storage, storage::StoragePlugin);
    bound_accessor!(format, Format, format::FormatPlugin);
    bound_accessor!(condition, Condition, condition::ConditionPlugin);
    bound_accessor!(notifier, Notifier, notifier::NotifierPlugin);
}

/// What the admin sees of a plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    /// The name the plugin gives itself.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The services, formats or notification types it answers for.
    pub provides: Vec<String>,
}

/// One loaded component, ready to instantiate for each call.
pub struct LoadedPlugin {
    /// The file stem: how logs, errors and grants name the plugin.
    pub name: Arc<str>,
    /// Which world it targets.
    pub kind: PluginKind,
    /// What it says it is.
    pub info: PluginInfo,
    /// SHA-256 of the component's bytes.
    pub sha256: String,
    /// When this version was loaded.
    pub loaded_at: chrono::DateTime<chrono::Utc>,
    pub(super) pre: Pre,
    /// Its limits and rights, from the operator's grant (fixed while it is loaded).
    pub(super) sandbox: Arc<Sandbox>,
    calls: AtomicU64,
    errors: AtomicU64,
    /// Its calls' times, for `/metrics`.
    pub(super) call_times: crate::metrics::PluginCalls,
}

impl LoadedPlugin {
    pub(super) fn new(name: Arc<str>, kind: PluginKind, pre: Pre, sha256: String, sandbox: Arc<Sandbox>) -> Self {
        LoadedPlugin {
            info: PluginInfo { name: name.to_string(), version: String::new(), provides: Vec::new() },
            name,
            kind,
            sha256,
            loaded_at: chrono::Utc::now(),
            pre,
            sandbox,
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            call_times: Default::default(),
        }
    }

    pub(super) fn set_info(&mut self, info: wit::PluginInfo) {
        self.info = PluginInfo { name: info.name, version: info.version, provides: info.provides };
    }

    pub(super) fn record_call(&self, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls made and calls that failed, since it was loaded.
    pub fn calls(&self) -> (u64, u64) {
        (self.calls.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed))
    }
}

/// Plugins by kind and by the names they provide. Conditions provide no names: the
/// first loaded condition plugin evaluates every `if`.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<Arc<LoadedPlugin>>,
    by_name: HashMap<(PluginKind, String), Arc<LoadedPlugin>>,
}

impl Registry {
    /// Add a plugin. A name already provided by another plugin of the same kind is a
    /// conflict: the earlier plugin keeps it and the later one is refused.
    pub fn insert(&mut self, plugin: Arc<LoadedPlugin>) -> anyhow::Result<()> {
        let mut names: Vec<String> = plugin.info.provides.clone();
        if plugin.kind == PluginKind::Condition {
            names.push(String::new());
        }
        for name in &names {
            if let Some(existing) = self.by_name.get(&(plugin.kind, name.clone())) {
                if plugin.kind == PluginKind::Condition && name.is_empty() {
                    continue;
                }
                anyhow::bail!("{} '{}' is already provided by plugin '{}'", plugin.kind.as_str(), name, existing.name);
            }
        }
        for name in names {
            self.by_name.entry((plugin.kind, name)).or_insert_with(|| plugin.clone());
        }
        self.plugins.push(plugin);
        Ok(())
    }

    /// The plugin of `kind` that provides `name` (conditions: `""`).
    pub fn find(&self, kind: PluginKind, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.by_name.get(&(kind, name.to_string())).cloned()
    }

    /// The plugin loaded from `<name>.wasm`.
    pub fn by_name(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.iter().find(|p| &*p.name == name).cloned()
    }

    /// The plugin whose component has content hash `sha256`.
    pub fn by_sha(&self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.iter().find(|p| p.sha256 == sha256).cloned()
    }

    /// Every plugin, in the order they were inserted.
    pub fn all(&self) -> Vec<Arc<LoadedPlugin>> {
        self.plugins.clone()
    }
}

/// The hex SHA-256 of a component's bytes.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compile a component, or load it from the on-disk cache keyed by its content hash and
/// the engine's compatibility hash, so a warm start does no compilation. `sha256` is
/// the bytes' [`sha256`]. Blocking (file I/O, compilation).
pub fn compile_cached(engine: &Engine, cache_dir: &Path, bytes: &[u8], sha256: &str) -> anyhow::Result<Component> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let key = format!("{sha256}-{:016x}.cwasm", hasher.finish());
    let cached = cache_dir.join(key);
    if cached.exists() {
        // SAFETY: the file was written by `precompile_component` of an engine with the
        // same compatibility hash, into a directory only this server writes.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(err) => tracing::warn!(path = %cached.display(), %err, "stale compiled plugin; recompiling"),
        }
    }
    let compiled = engine.precompile_component(bytes)?;
    // A name of its own: the same component may be compiled twice at once (a reload and
    // a job loading a kept version), and each must rename its own file.
    let tmp = cache_dir.join(format!(".{}.tmp", crate::random_id(12)));
    std::fs::write(&tmp, &compiled)?;
    std::fs::rename(&tmp, &cached)?;
    // SAFETY: as above; we just wrote these bytes from this engine.
    Ok(unsafe { Component::deserialize(engine, &compiled)? })
}
