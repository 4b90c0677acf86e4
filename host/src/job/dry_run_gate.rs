//! How many dry runs run at once. A dry run fetches part of an input and probes it on
//! the API node, inside the request: each costs a connection, disk and a probe. So they
//! are counted in all (`dry_run_concurrency`) and per tenant (`dry_run_per_tenant`);
//! past either, the caller is told to come back later (429 with `Retry-After`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Limits;

/// Seconds a refused caller is asked to wait: about one dry run.
pub const RETRY_AFTER_SECS: u64 = 5;

/// The dry runs running in this process.
#[derive(Debug)]
pub struct DryRunGate {
    all: usize,
    per_tenant: usize,
    running: Mutex<(usize, HashMap<String, usize>)>,
}

/// Why a dry run cannot start now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DryRunBusy {
    #[error("This server runs at most {0} dry runs at once (dry_run_concurrency, COPRA_LIMITS_DRY_RUN_CONCURRENCY); try again in a few seconds.")]
    All(usize),
    #[error("An API key may run at most {0} dry runs at once (dry_run_per_tenant, COPRA_LIMITS_DRY_RUN_PER_TENANT); try again when one has answered.")]
    Tenant(usize),
}

/// A running dry run's place; given back when dropped.
#[derive(Debug)]
pub struct DryRunPass {
    gate: Arc<DryRunGate>,
    owner: String,
}

impl DryRunGate {
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(DryRunGate { all: limits.dry_run_concurrency, per_tenant: limits.dry_run_per_tenant, running: Mutex::default() })
    }

    /// A place for one more dry run of `owner`, or why there is none.
    pub fn enter(self: &Arc<Self>, owner: &str) -> Result<DryRunPass, DryRunBusy> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (all, tenants) = &mut *running;
        let mine = tenants.get(owner).copied().unwrap_or(0);
        if mine >= self.per_tenant {
            return Err(DryRunBusy::Tenant(self.per_tenant));
        }
        if *all >= self.all {
            return Err(DryRunBusy::All(self.all));
        }
        *all += 1;
        tenants.insert(owner.to_string(), mine + 1);
        Ok(DryRunPass { gate: self.clone(), owner: owner.to_string() })
    }
}

impl Drop for DryRunPass {
    fn drop(&mut self) {
        let mut running = self.gate.running.lock().unwrap_or_else(|e| e.into_inner());
        let (all, tenants) = &mut *running;
        *all = all.saturating_sub(1);
        if let Some(mine) = tenants.get_mut(&self.owner) {
            *mine -= 1;
            if *mine == 0 {
                tenants.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_runs_are_counted_per_tenant_and_in_all() {
        let limits = Limits { dry_run_concurrency: 3, dry_run_per_tenant: 2, ..Limits::default() };
        let gate = DryRunGate::new(&limits);
        let a1 = gate.enter("a").unwrap();
        let _a2 = gate.enter("a").unwrap();
        assert_eq!(gate.enter("a").unwrap_err(), DryRunBusy::Tenant(2));
        let _b1 = gate.enter("b").unwrap();
        assert_eq!(gate.enter("c").unwrap_err(), DryRunBusy::All(3));
        drop(a1);
        assert!(gate.enter("c").is_ok(), "a place given back is taken again");
        assert!(DryRunBusy::All(3).to_string().contains("dry_run_concurrency"));
    }
}
