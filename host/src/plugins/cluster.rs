//! Plugins in a cluster. A plugin added through the admin API is stored in the database
//! (`db::plugin`, its content hash as identity) and written to this node's plugin
//! directory; every other node's sync loop sees the new row within `plugin_sync_ms`,
//! writes the component into its own plugin directory and reloads. Removing marks every
//! version of the name removed, and each node deletes its copy. First-party plugins the
//! operator puts in the directory stay local files; the stored set comes on top (a
//! stored plugin wins its file name).
//!
//! A replaced version stays addressable by hash (the catalog's kept versions), and
//! [`Plugins::ready`] loads a stored older version on demand, so a job runs with the
//! versions it was planned with.
//!
//! These stay on the facade: each writes the directory, then reloads or has the runtime
//! prepare a component. What they keep (kept versions, the versions that failed to load
//! here, the admin lock) is the catalog's (`catalog`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use tracing::Instrument;

use super::{LoadedPlugin, PluginKind, Pins, Plugins};
use crate::db::{self, plugin::Kind};

/// A kept version no job has asked for in this long is dropped (a stored one can be
/// loaded again from the database).
const KEEP_UNUSED: Duration = Duration::from_secs(3600);
/// How often a worker looks again for a plugin version a job waits for.
const RECHECK: Duration = Duration::from_millis(500);

/// Why a plugin was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The component is not a plugin this server can load: a 400.
    #[error("The plugin was rejected: {0}")]
    Rejected(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Why a job cannot run with the plugin versions it was planned with (see
/// [`Plugins::ready`]): the message its user reads, naming the plugin and its hash.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// The database could not say which versions are stored.
    #[error("The job's plugins could not be looked up: {0}")]
    Lookup(#[source] sea_orm::DbErr),
    /// The version was removed through the admin API.
    #[error("The job was planned with plugin '{plugin}' version {version} (sha256:{sha256}), which has been removed; it is not run with another version.")]
    Removed { plugin: String, version: String, sha256: String },
    /// The version is stored, and does not load on this node.
    #[error("The job was planned with plugin '{plugin}' (sha256:{sha256}), which does not load on this worker: {error:#}")]
    DoesNotLoad { plugin: String, sha256: String, error: anyhow::Error },
    /// The version is not stored (a file on another node), and did not arrive in time.
    #[error(
        "The job was planned with plugin '{plugin}' (sha256:{sha256}), which this worker did not have after waiting {waited_secs} s \
         (plugin_version_wait_secs); it is not run with another version."
    )]
    Missing { plugin: String, sha256: String, waited_secs: u64 },
}

impl From<PluginKind> for Kind {
    fn from(kind: PluginKind) -> Self {
        match kind {
            PluginKind::Storage => Kind::Storage,
            PluginKind::Format => Kind::Format,
            PluginKind::Condition => Kind::Condition,
            PluginKind::Notifier => Kind::Notifier,
        }
    }
}

impl Plugins {
    /// Add (or replace) the plugin `name` on every node: load it here first, so a
    /// component that does not load is refused and the previous version stays; then
    /// store it as the active version of its name.
    pub async fn add(self: &Arc<Self>, db: &DatabaseConnection, name: &str, bytes: Vec<u8>) -> Result<Arc<LoadedPlugin>, AddError> {
        let _one_at_a_time = self.catalog.admin().await;
        let dir = self.plugin_dir();
        let path = dir.join(format!("{name}.wasm"));
        let previous = tokio::fs::read(&path).await.ok();
        write_plugin(dir, name, &bytes).await?;
        let errors = self.reload().await;
        let file = format!("{name}.wasm");
        let loaded = match errors.iter().find(|e| e.file == file) {
            Some(problem) => Err(AddError::Rejected(problem.error.clone())),
            None => self
                .catalog
                .active(name)
                .ok_or_else(|| AddError::Failed(anyhow::anyhow!("plugin {name} vanished after loading"))),
        };
        let stored = match loaded {
            Ok(plugin) => {
                let row = db::plugin::Model {
                    sha256: plugin.sha256.clone(),
                    name: name.to_string(),
                    kind: plugin.kind.into(),
                    version: plugin.info.version.clone(),
                    wasm: bytes,
                    added_at: db::now_ms(),
                    superseded_at: None,
                    removed_at: None,
                };
                db::plugin::add(db, row).await.map(|()| plugin).map_err(|e| AddError::Failed(e.into()))
            }
            Err(err) => Err(err),
        };
        if stored.is_err() {
            // Put back what was there.
            match previous {
                Some(bytes) => write_plugin(dir, name, &bytes).await?,
                None => tokio::fs::remove_file(&path).await.map_err(anyhow::Error::from)?,
            }
            self.reload().await;
        }
        if let Ok(plugin) = &stored {
            tracing::info!(plugin = name, sha256 = %plugin.sha256, version = %plugin.info.version, "plugin added for every node");
        }
        stored
    }

    /// Remove the plugin `name` on every node (every stored version of it: jobs planned
    /// with one fail, saying so) and here. Returns whether there was such a plugin.
    pub async fn remove(self: &Arc<Self>, db: &DatabaseConnection, name: &str) -> anyhow::Result<bool> {
        let _one_at_a_time = self.catalog.admin().await;
        let stored = db::plugin::remove(db, name, db::now_ms()).await?;
        let path = self.plugin_dir().join(format!("{name}.wasm"));
        let file = tokio::fs::try_exists(&path).await.unwrap_or(false);
        if file {
            tokio::fs::remove_file(&path).await?;
            self.reload().await;
        }
        self.catalog.forget(|p| &*p.name == name);
        if stored > 0 || file {
            tracing::info!(plugin = name, stored_versions = stored, "plugin removed");
        }
        Ok(stored > 0 || file)
    }

    /// Sync with the database now, then every `every` in the background.
    pub async fn start_sync(self: &Arc<Self>, db: DatabaseConnection, every: Duration) {
        if let Err(err) = self.sync(&db).await {
            tracing::warn!(err = format!("{err:#}"), "syncing plugins from the database failed");
        }
        let plugins = Arc::downgrade(self);
        tokio::spawn(
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(plugins) = plugins.upgrade() else { return };
                    if let Err(err) = plugins.sync(&db).await {
                        tracing::warn!(err = format!("{err:#}"), "syncing plugins from the database failed");
                    }
                }
            }
            .instrument(tracing::info_span!("plugin_sync")),
        );
    }

    /// Make this node's plugins the database's set: write the active stored versions
    /// that are not loaded, delete the removed ones, reload if anything changed.
    async fn sync(self: &Arc<Self>, db: &DatabaseConnection) -> anyhow::Result<()> {
        let rows = db::plugin::list(db).await?;
        let _one_at_a_time = self.catalog.admin().await;
        let registry = self.catalog.registry();
        // One active version per name; should two nodes have added one at once, the
        // later wins everywhere.
        let mut active: HashMap<&str, &db::plugin::Meta> = HashMap::new();
        for row in rows.iter().filter(|r| r.is_active()) {
            let newer = |other: &&db::plugin::Meta| (row.added_at, &row.sha256) > (other.added_at, &other.sha256);
            if active.get(row.name.as_str()).is_none_or(newer) {
                active.insert(&row.name, row);
            }
        }
        let mut changed = false;
        for row in active.values() {
            let loaded = registry.by_name(&row.name).is_some_and(|p| p.sha256 == row.sha256);
            if loaded || self.catalog.sync_failed(&row.sha256) {
                continue;
            }
            let Some(bytes) = db::plugin::wasm(db, &row.sha256).await? else { continue };
            write_plugin(self.plugin_dir(), &row.name, &bytes).await?;
            tracing::info!(plugin = %row.name, sha256 = %row.sha256, version = %row.version, "plugin added on another node; loading it");
            changed = true;
        }
        let removed: Vec<&db::plugin::Meta> = rows.iter().filter(|r| r.removed_at.is_some()).collect();
        for row in &removed {
            let loaded = registry.by_name(&row.name).is_some_and(|p| p.sha256 == row.sha256);
            if loaded && !active.contains_key(row.name.as_str()) {
                let path = self.plugin_dir().join(format!("{}.wasm", row.name));
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => changed = true,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err.into()),
                }
                tracing::info!(plugin = %row.name, sha256 = %row.sha256, "plugin removed on another node; unloading it");
            }
        }
        if changed {
            let errors = self.reload().await;
            let failed = active.values().filter(|r| errors.iter().any(|e| e.file == format!("{}.wasm", r.name)));
            self.catalog.note_sync_failed(failed.map(|row| {
                tracing::error!(plugin = %row.name, sha256 = %row.sha256, "a stored plugin does not load on this node");
                row.sha256.clone()
            }));
        }
        self.catalog.forget(|p| removed.iter().any(|r| r.sha256 == p.sha256 && r.name == *p.name));
        self.catalog.forget_unused(KEEP_UNUSED);
        Ok(())
    }

    /// Make sure every plugin version of `pins` is loaded here: a stored one is loaded
    /// from the database; one that is not stored (a file on another node) is waited for
    /// up to `wait`. A removed version, or one still missing at the deadline, is an
    /// error naming the plugin and its hash: the job is never run with another version.
    pub async fn ready(self: &Arc<Self>, db: &DatabaseConnection, pins: &Pins, wait: Duration) -> Result<(), ReadyError> {
        let hashes: Vec<String> = pins.iter().map(|p| p.sha256.clone()).collect();
        if hashes.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + wait;
        loop {
            let stored = db::plugin::find(db, &hashes).await.map_err(ReadyError::Lookup)?;
            let mut missing = None;
            for pin in pins.iter() {
                // The same bytes may be stored under two names: only this plugin's own
                // row says whether the version the job was planned with was removed.
                let row = stored.iter().find(|r| r.sha256 == pin.sha256 && r.name == pin.plugin);
                if let Some(row) = row.filter(|r| r.removed_at.is_some()) {
                    return Err(ReadyError::Removed { plugin: pin.plugin.clone(), version: row.version.clone(), sha256: pin.sha256.clone() });
                }
                if self.version(&pin.sha256).is_some() {
                    continue;
                }
                if row.is_some() {
                    self.keep_stored(db, &pin.plugin, &pin.sha256).await.map_err(|error| ReadyError::DoesNotLoad {
                        plugin: pin.plugin.clone(),
                        sha256: pin.sha256.clone(),
                        error,
                    })?;
                    continue;
                }
                missing = Some(pin);
            }
            let Some(pin) = missing else { return Ok(()) };
            if Instant::now() >= deadline {
                return Err(ReadyError::Missing { plugin: pin.plugin.clone(), sha256: pin.sha256.clone(), waited_secs: wait.as_secs() });
            }
            tracing::info!(plugin = %pin.plugin, sha256 = %pin.sha256, "waiting for the plugin version the job was planned with");
            tokio::time::sleep(RECHECK).await;
        }
    }

    /// Load the stored version `sha256` of `name` and keep it (not active).
    async fn keep_stored(self: &Arc<Self>, db: &DatabaseConnection, name: &str, sha256: &str) -> anyhow::Result<()> {
        let bytes = db::plugin::wasm(db, sha256).await?.ok_or_else(|| anyhow::anyhow!("not stored"))?;
        let prepared = {
            let (this, name, sha256) = (Arc::clone(self), name.to_string(), sha256.to_string());
            tokio::task::spawn_blocking(move || this.catalog.prepare(&this.runtime, &name, &bytes, sha256)).await??
        };
        let plugin = Arc::new(self.runtime.describe(prepared).await?);
        tracing::info!(plugin = name, sha256, version = %plugin.info.version, "kept an earlier plugin version for a job planned with it");
        self.catalog.keep(plugin);
        Ok(())
    }
}

/// Write `<name>.wasm` beside, then rename: a reload never sees half a file.
async fn write_plugin(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let staging = dir.join(format!(".{name}.upload"));
    tokio::fs::write(&staging, bytes).await?;
    tokio::fs::rename(&staging, dir.join(format!("{name}.wasm"))).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_cannot_run_says_which_version_and_why() {
        let plugin = || "notifier-http".to_string();
        let sha256 = || "ab12".to_string();
        let removed = ReadyError::Removed { plugin: plugin(), version: "1.2.0".into(), sha256: sha256() };
        assert_eq!(
            removed.to_string(),
            "The job was planned with plugin 'notifier-http' version 1.2.0 (sha256:ab12), which has been removed; it is not run with another version."
        );
        let error = anyhow::anyhow!("no copra:plugin world").context("compiling");
        let broken = ReadyError::DoesNotLoad { plugin: plugin(), sha256: sha256(), error };
        assert_eq!(
            broken.to_string(),
            "The job was planned with plugin 'notifier-http' (sha256:ab12), which does not load on this worker: compiling: no copra:plugin world"
        );
        let missing = ReadyError::Missing { plugin: plugin(), sha256: sha256(), waited_secs: 30 };
        assert_eq!(
            missing.to_string(),
            "The job was planned with plugin 'notifier-http' (sha256:ab12), which this worker did not have after waiting 30 s \
             (plugin_version_wait_secs); it is not run with another version."
        );
        let lookup = ReadyError::Lookup(sea_orm::DbErr::Custom("gone".into()));
        assert!(lookup.to_string().starts_with("The job's plugins could not be looked up: ") && lookup.to_string().ends_with("gone"), "{lookup}");
    }
}
