//! Which plugin versions a job was planned with, and running it with exactly those.
//!
//! At submit, validation runs inside [`record`]: every plugin it looks up (by kind and
//! the service, format or notification type asked for) is noted with its content hash.
//! The job keeps those notes ([`Pin`]s, in its sealed spec). A worker runs the job inside
//! [`Pins::scope`]: a lookup that was pinned finds that exact version (the active one,
//! or a kept older one) or fails with [`super::PluginError::Unavailable`], never another
//! version. Lookups nobody pinned find the active plugin, as before.
//!
//! The pins travel in a task-local: a task the job spawns takes them along through
//! [`carry`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::registry::{LoadedPlugin, PluginKind};

/// One plugin a job was planned with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub kind: PluginKind,
    /// What was looked up: a storage service, a format, a notification type (`""` for
    /// the condition plugin).
    pub lookup: String,
    /// The plugin that answered (its file stem).
    pub plugin: String,
    /// Hex SHA-256 of its component.
    pub sha256: String,
}

/// The pins of one job.
#[derive(Clone, Debug, Default)]
pub struct Pins(Arc<Vec<Pin>>);

tokio::task_local! {
    static ACTIVE: Pins;
    static RECORDING: Arc<Mutex<Vec<Pin>>>;
}

impl Pins {
    pub fn new(pins: Vec<Pin>) -> Self {
        Pins(Arc::new(pins))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Pin> {
        self.0.iter()
    }

    /// Only the pins of plugins of `kind`.
    pub fn of_kind(&self, kind: PluginKind) -> Pins {
        Pins::new(self.0.iter().filter(|p| p.kind == kind).cloned().collect())
    }

    /// Run `fut` with these pins deciding its plugin lookups.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        ACTIVE.scope(self, fut).await
    }

    /// The pins of the running task (none outside a job).
    pub fn current() -> Pins {
        ACTIVE.try_with(Pins::clone).unwrap_or_default()
    }
}

/// `fut` with the running task's pins, for a task the job spawns.
pub fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    ACTIVE.scope(Pins::current(), fut)
}

/// Run `fut` and return, with its output, the plugins it looked up (one pin per lookup).
pub async fn record<F: Future>(fut: F) -> (F::Output, Vec<Pin>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let output = RECORDING.scope(notes.clone(), fut).await;
    let pins = std::mem::take(&mut *notes.lock().unwrap_or_else(|e| e.into_inner()));
    (output, pins)
}

/// The pin of the running task for `kind`/`lookup`, if there is one.
pub(super) fn pinned(kind: PluginKind, lookup: &str) -> Option<Pin> {
    ACTIVE.try_with(|pins| pins.0.iter().find(|p| p.kind == kind && p.lookup == lookup).cloned()).ok().flatten()
}

/// Note that `lookup` found `plugin`, if the running task is recording.
pub(super) fn note(kind: PluginKind, lookup: &str, plugin: &LoadedPlugin) {
    let _ = RECORDING.try_with(|notes| {
        let mut notes = notes.lock().unwrap_or_else(|e| e.into_inner());
        if !notes.iter().any(|p| p.kind == kind && p.lookup == lookup) {
            notes.push(Pin { kind, lookup: lookup.to_string(), plugin: plugin.name.to_string(), sha256: plugin.sha256.clone() });
        }
    });
}
