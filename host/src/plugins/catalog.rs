//! What is loaded and why: the registry of active plugins (swapped whole on reload), the
//! operator's grants and the sandboxes checked from them, the plugin directory and the
//! compile cache, the problems of the last reload, the versions kept for jobs planned
//! with them, and the state of the cluster sync (see `cluster`). A reload scans the
//! directory, has the runtime prepare what is new, and decides who wins each name.
//!
//! Lookups ([`Catalog::find`], [`Catalog::version`]) never wait for a reload; running
//! what they find is the runtime's business (`runtime`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::error::PluginError;
use super::pins;
use super::registry::{self, LoadedPlugin, PluginKind, Registry};
use super::runtime::Runtime;
use super::sandbox::{Sandbox, SandboxError};
use crate::config::PluginGrant;

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

/// The plugins loaded, the versions kept, and how they got there.
pub(super) struct Catalog {
    /// Swapped whole on reload: a call keeps the `Arc<LoadedPlugin>` it started with.
    registry: ArcSwap<Registry>,
    /// The operator's grants by plugin name (for `priority`).
    grants: HashMap<String, PluginGrant>,
    /// The sandbox of every plugin named in the config, checked at start.
    sandboxes: HashMap<String, Arc<Sandbox>>,
    plugin_dir: PathBuf,
    cache_dir: PathBuf,
    errors: Mutex<Vec<LoadError>>,
    /// One reload at a time; calls never wait for it.
    reloading: tokio::sync::Mutex<()>,
    /// Versions no longer active but still addressable by hash, for jobs planned with
    /// them (see `pins`): replaced here, or loaded from the database for a job.
    kept: Mutex<HashMap<String, Kept>>,
    /// Adding, removing and syncing with the database one at a time (see `cluster`).
    admin: tokio::sync::Mutex<()>,
    /// Stored versions this node failed to load: not tried again by every sync.
    sync_failed: Mutex<HashSet<String>>,
}

/// A version kept for the jobs planned with it, and when one last asked for it.
struct Kept {
    plugin: Arc<LoadedPlugin>,
    last_used: Instant,
}

/// What a scan of the plugin directory found for one file (see [`Catalog::scan`]).
pub(super) enum Scanned {
    /// Same bytes as the loaded version: keep it.
    Unchanged(Arc<LoadedPlugin>),
    /// New or changed, compiled and pre-instantiated; not yet asked what it is.
    Compiled { path: PathBuf, plugin: Box<LoadedPlugin>, previous: Option<Arc<LoadedPlugin>> },
    /// Unreadable or not a valid plugin; `previous` stays active.
    Failed { path: PathBuf, message: String, previous: Option<Arc<LoadedPlugin>> },
}

impl Catalog {
    /// An empty catalog for `plugin_dir`, with every grant checked: one that is not
    /// valid (e.g. `schemes = ["fs"]`) is an error naming its key.
    pub(super) fn new(plugin_dir: &Path, cache_dir: &Path, grants: HashMap<String, PluginGrant>) -> Result<Self, SandboxError> {
        let sandboxes = grants
            .iter()
            .map(|(name, grant)| Sandbox::new(name, Some(grant)).map(|s| (name.clone(), Arc::new(s))))
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(Catalog {
            registry: ArcSwap::from_pointee(Registry::default()),
            grants,
            sandboxes,
            plugin_dir: plugin_dir.to_path_buf(),
            cache_dir: cache_dir.to_path_buf(),
            errors: Mutex::new(Vec::new()),
            reloading: tokio::sync::Mutex::new(()),
            kept: Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            sync_failed: Mutex::new(HashSet::new()),
        })
    }

    /// Rescan the plugin directory and swap in the result. Unchanged files keep their
    /// loaded instance; a file that fails to load keeps its previous version active.
    /// `scan` is [`Self::scan`] of this catalog, owned so that it runs on the blocking
    /// pool (reading, hashing and compiling never run on the runtime); `runtime` asks
    /// each new component what it is. Returns the problems found (also kept for
    /// `errors()`).
    pub(super) async fn reload(
        &self,
        runtime: &Runtime,
        scan: impl FnOnce(&Registry) -> Vec<Scanned> + Send + 'static,
    ) -> Vec<LoadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.registry.load_full();
        let scanned = {
            let current = Arc::clone(&current);
            tokio::task::spawn_blocking(move || scan(&current)).await
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
                Scanned::Compiled { path, plugin, previous } => match runtime.describe(*plugin).await {
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
                kept.entry(old.sha256.clone()).or_insert_with(|| Kept { plugin: old, last_used: Instant::now() });
            }
            kept.retain(|sha256, _| registry.by_sha(sha256).is_none());
        }
        self.registry.store(registry);
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()) = errors.clone();
        errors
    }

    /// Read the plugin directory, hash every component, and have `runtime` compile (or
    /// load from the cache) the new and changed ones. Blocking: runs on the blocking pool.
    pub(super) fn scan(&self, runtime: &Runtime, current: &Registry) -> Vec<Scanned> {
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
                match self.prepare(runtime, &name, &bytes, sha256) {
                    Ok(plugin) => Scanned::Compiled { path, plugin: Box::new(plugin), previous },
                    Err(err) => Scanned::Failed { path, message: format!("{err:#}"), previous },
                }
            })
            .collect()
    }

    /// Have `runtime` compile (or load from the cache) and pre-instantiate the component
    /// `bytes` of the plugin `name`, in its sandbox. Blocking.
    pub(super) fn prepare(&self, runtime: &Runtime, name: &str, bytes: &[u8], sha256: String) -> anyhow::Result<LoadedPlugin> {
        runtime.prepare(&self.cache_dir, name, bytes, sha256, self.sandbox(name))
    }

    /// Problems of the last reload.
    pub(super) fn errors(&self) -> Vec<LoadError> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The directory plugins are loaded from (and added to by the admin API).
    pub(super) fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    /// What is loaded, for the operator.
    pub(super) fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        self.registry.load().all()
    }

    /// The active plugin loaded from `<name>.wasm`.
    pub(super) fn active(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.registry.load().by_name(name)
    }

    /// The registry as it is now (it may be swapped right after).
    pub(super) fn registry(&self) -> Arc<Registry> {
        self.registry.load_full()
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
    pub(super) fn find(&self, kind: PluginKind, name: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
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
    pub(super) fn version(&self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        if let Some(plugin) = self.registry.load().by_sha(sha256) {
            return Some(plugin);
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get_mut(sha256).map(|k| {
            k.last_used = Instant::now();
            k.plugin.clone()
        })
    }

    /// Keep `plugin` (not active) addressable by its hash, for the jobs planned with it.
    pub(super) fn keep(&self, plugin: Arc<LoadedPlugin>) {
        let kept = Kept { plugin, last_used: Instant::now() };
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).insert(kept.plugin.sha256.clone(), kept);
    }

    /// Drop kept versions that match.
    pub(super) fn forget(&self, matches: impl Fn(&LoadedPlugin) -> bool) {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, k| !matches(&k.plugin));
    }

    /// Drop kept versions no job has asked for in `unused`.
    pub(super) fn forget_unused(&self, unused: Duration) {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, k| k.last_used.elapsed() < unused);
    }

    /// Wait for the admin lock: adding, removing and syncing one at a time.
    pub(super) async fn admin(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.admin.lock().await
    }

    /// Whether this node already failed to load the stored version `sha256`.
    pub(super) fn sync_failed(&self, sha256: &str) -> bool {
        self.sync_failed.lock().unwrap_or_else(|e| e.into_inner()).contains(sha256)
    }

    /// Note that this node failed to load the stored versions `sha256s`.
    pub(super) fn note_sync_failed(&self, sha256s: impl IntoIterator<Item = String>) {
        self.sync_failed.lock().unwrap_or_else(|e| e.into_inner()).extend(sha256s);
    }
}

/// A plugin is named by its file stem (`notifier-http.wasm` → `notifier-http`).
fn plugin_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn load_error(path: &Path, error: String) -> LoadError {
    LoadError { file: path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(), error, at: chrono::Utc::now() }
}
