//! Hot reload: watch the plugin directory and reload when a component is added,
//! replaced or removed.

use std::sync::Arc;
use std::time::Duration;

use ::notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::Plugins;

/// Events closer together than this are one change (a copy is many writes).
const SETTLE: Duration = Duration::from_millis(100);

/// The watcher stops when the returned value is dropped: keep it for the server's life.
pub struct PluginWatcher {
    _watcher: RecommendedWatcher,
}

impl Plugins {
    /// Start watching the plugin directory. A change is live within `SETTLE` plus the
    /// time to compile the new component.
    pub fn watch(self: &Arc<Self>) -> ::notify::Result<PluginWatcher> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = ::notify::recommended_watcher(move |event: ::notify::Result<::notify::Event>| {
            let relevant = match &event {
                Ok(event) => event.paths.iter().any(|p| p.extension().is_some_and(|e| e == "wasm")),
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(self.plugin_dir(), RecursiveMode::NonRecursive)?;

        let plugins = Arc::downgrade(self);
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Let a burst of events settle, then reload once.
                tokio::time::sleep(SETTLE).await;
                while rx.try_recv().is_ok() {}
                let Some(plugins) = plugins.upgrade() else { return };
                let errors = plugins.reload().await;
                tracing::info!(plugins = plugins.list().len(), errors = errors.len(), "plugin directory reloaded");
            }
        });
        Ok(PluginWatcher { _watcher: watcher })
    }
}
