//! One instance per plugin for the checks of one submit.
//!
//! A submit asks the same plugins several things: the storage plugin where the files go
//! and the key of every path, the format plugin to check and plan every output. Each of
//! those calls used to instantiate the plugin afresh, and instantiating is most of what a
//! call costs. Inside [`one_instance_each`], a call keeps its instance for the next call
//! to the same plugin version in the same task, so a submit instantiates each plugin
//! once. Every call still gets the full CPU budget and its own wall-clock deadline; an
//! instance whose call trapped, ran out of time or grew past its memory cap is dropped,
//! never reused, and so is one that wrote to stderr (its pipe is sized for one call). The instance serves one submit of one tenant and is dropped with it.
//! Elsewhere (the worker, deliveries) every call gets a fresh instance.
//!
//! Kept instances hold slots of the engine's instance pool between calls, so at most
//! [`MAX_KEPT`] are kept across the process; past that a call's instance is dropped as
//! before, and many concurrent submits never starve the calls of the pool.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::Store;

use super::registry::{Bound, LoadedPlugin, PluginKind};
use super::state::PluginState;

tokio::task_local! {
    static KEPT: RefCell<Vec<Kept>>;
}

/// Instances kept at most, across the process: half of the engine's pool of
/// component instances (`engine::new_engine`).
const MAX_KEPT: usize = 128;

/// Instances kept now.
static KEPT_NOW: AtomicUsize = AtomicUsize::new(0);

/// An instance kept for the task's next call to the same plugin version.
struct Kept {
    kind: PluginKind,
    sha256: String,
    store: Store<PluginState>,
    bound: Bound,
    _slot: Slot,
}

/// One of the [`MAX_KEPT`] places, given back when the instance goes.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        KEPT_NOW.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| (now < MAX_KEPT).then_some(now + 1)).ok().map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        KEPT_NOW.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run `fut` with its plugin calls sharing one instance per plugin version.
pub async fn one_instance_each<F: Future>(fut: F) -> F::Output {
    KEPT.scope(RefCell::new(Vec::new()), fut).await
}

/// Whether the running task shares instances.
pub(super) fn sharing() -> bool {
    KEPT.try_with(|_| ()).is_ok()
}

/// The running task's kept instance of `plugin`, taken out for one call.
pub(super) fn take(plugin: &LoadedPlugin) -> Option<(Store<PluginState>, Bound)> {
    KEPT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        let index = kept.iter().position(|k| k.kind == plugin.kind && k.sha256 == plugin.sha256)?;
        let Kept { store, bound, _slot, .. } = kept.swap_remove(index);
        Some((store, bound))
    })
    .ok()
    .flatten()
}

/// Keep `plugin`'s instance for the running task's next call (when the task shares,
/// and fewer than [`MAX_KEPT`] are kept); otherwise it is dropped here.
pub(super) fn put(plugin: &LoadedPlugin, store: Store<PluginState>, bound: Bound) {
    let Some(slot) = Slot::take() else { return };
    let _ = KEPT.try_with(|kept| kept.borrow_mut().push(Kept { kind: plugin.kind, sha256: plugin.sha256.clone(), store, bound, _slot: slot }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::PluginError;
    use crate::types::MediaInfo;

    fn kept() -> usize {
        KEPT.with(|kept| kept.borrow().len())
    }

    /// A submit's calls to one plugin share its instance; a call that trapped or ran out
    /// of time leaves none behind, and the next call gets a fresh one that works.
    /// Needs `scripts/build-test-plugins.sh` (skipped, saying so, without it).
    #[tokio::test]
    async fn calls_share_an_instance_until_one_traps() {
        let Some((_dir, plugins)) = crate::plugins::hostile_condition("time_ms = 200").await else { return };
        let input = MediaInfo::default();

        assert!(!sharing(), "outside a submit nothing is shared");
        one_instance_each(async {
            assert!(sharing());
            assert_eq!(plugins.condition_evaluate("true", &input).await.unwrap(), true);
            assert_eq!(kept(), 1, "the instance is kept for the next call");
            assert_eq!(plugins.condition_evaluate("false", &input).await.unwrap(), false);
            assert_eq!(kept(), 1, "the next call took the kept instance and gave it back");
            // A rejection is an answer: the instance stays.
            assert!(matches!(plugins.condition_evaluate("nonsense", &input).await, Err(PluginError::Rejected { .. })));
            assert_eq!(kept(), 1);

            let trapped = plugins.condition_evaluate("trap", &input).await;
            assert!(matches!(trapped, Err(PluginError::Trapped { .. })), "{trapped:?}");
            assert_eq!(kept(), 0, "a trapped instance is dropped");
            assert_eq!(plugins.condition_evaluate("true", &input).await.unwrap(), true, "a fresh instance answers");

            // Each call has the whole budget: a loop is stopped by it, and the instance goes.
            let looped = plugins.condition_evaluate("loop", &input).await;
            assert!(matches!(looped, Err(PluginError::Timeout { budget_ms: 200, .. })), "{looped:?}");
            assert_eq!(kept(), 0, "an instance stopped by its budget is dropped");
            assert_eq!(plugins.condition_evaluate("false", &input).await.unwrap(), false);
            assert_eq!(kept(), 1);
        })
        .await;
    }
}
