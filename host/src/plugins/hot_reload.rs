//! Hot reload: watch the plugin directory and reload when a component is added,
//! replaced or removed.

use std::sync::Arc;
use std::time::Duration;

use ::notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use ::notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::Plugins;

/// While a file is being written (created, or written without being closed yet), events
/// closer together than this are one change: a copy is many writes.
const SETTLE: Duration = Duration::from_millis(100);
/// Once the last event says a file is complete (renamed into place, closed after
/// writing, removed), the quiet time before reloading: a burst of such events (several
/// plugins moved in at once) is still one reload.
const SETTLE_COMPLETE: Duration = Duration::from_millis(15);

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
                Ok(event) => changes(&event.kind) && event.paths.iter().any(|p| p.extension().is_some_and(|e| e == "wasm")),
                Err(_) => true,
            };
            if relevant {
                let complete = event.as_ref().is_ok_and(|e| completes(&e.kind));
                let _ = tx.send(complete);
            }
        })?;
        watcher.watch(self.plugin_dir(), RecursiveMode::NonRecursive)?;

        let plugins = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(mut complete) = rx.recv().await {
                // Let a burst of events settle, then reload once: a short quiet time
                // once the last event says the file is whole, a longer one while it is
                // being written.
                loop {
                    let quiet = if complete { SETTLE_COMPLETE } else { SETTLE };
                    match tokio::time::timeout(quiet, rx.recv()).await {
                        Ok(Some(next)) => complete = next,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                let Some(plugins) = plugins.upgrade() else { return };
                let errors = plugins.reload().await;
                tracing::info!(plugins = plugins.list().len(), errors = errors.len(), "plugin directory reloaded");
            }
        });
        Ok(PluginWatcher { _watcher: watcher })
    }
}

/// Whether an event leaves a file whole: renamed into place, closed after writing, or
/// removed. A creation or a write is followed by more writes.
fn completes(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// Whether an event can change what a file holds. Reading a component (as a reload
/// itself does) raises access events too: reacting to those would reload forever.
fn changes(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any | ModifyKind::Other)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Any
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::notify::event::{CreateKind, DataChange, MetadataKind, RenameMode};

    #[test]
    fn reads_are_not_changes() {
        assert!(!changes(&EventKind::Access(AccessKind::Read)));
        assert!(!changes(&EventKind::Access(AccessKind::Open(AccessMode::Read))));
        assert!(!changes(&EventKind::Access(AccessKind::Close(AccessMode::Read))));
        assert!(!changes(&EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime))));
        assert!(changes(&EventKind::Create(CreateKind::File)));
        assert!(changes(&EventKind::Modify(ModifyKind::Data(DataChange::Content))));
        assert!(changes(&EventKind::Modify(ModifyKind::Name(RenameMode::To))));
        assert!(changes(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
    }

    #[test]
    fn only_a_rename_a_close_after_writing_or_a_removal_leaves_a_file_whole() {
        assert!(completes(&EventKind::Modify(ModifyKind::Name(RenameMode::To))));
        assert!(completes(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
        assert!(completes(&EventKind::Remove(::notify::event::RemoveKind::File)));
        assert!(!completes(&EventKind::Create(CreateKind::File)));
        assert!(!completes(&EventKind::Modify(ModifyKind::Data(DataChange::Content))));
        assert!(!completes(&EventKind::Any));
    }
}
