//! How this process shares its delivery slots: at most [`IN_FLIGHT`] deliveries at once,
//! at most [`PER_TENANT`] of them for one tenant (API key) and [`PER_RECEIVER`] for one
//! receiver, and tenants served in turn. A tenant with nothing in flight may always start
//! one delivery, even when the shared slots are taken (up to [`RESERVE`] beyond them), so
//! however many receivers of other tenants hold their connections open without answering,
//! a tenant's next webhook starts at the next look at the outbox, not when a slot frees.

use std::collections::HashMap;

/// Deliveries in flight at once, shared by every tenant.
pub const IN_FLIGHT: usize = 64;
/// Deliveries in flight at once for one tenant.
pub const PER_TENANT: usize = 16;
/// Deliveries in flight at once to one receiver.
pub const PER_RECEIVER: usize = 4;
/// Slots beyond [`IN_FLIGHT`] kept for tenants that have no delivery in flight.
pub const RESERVE: usize = 64;

/// What this process is delivering: counts by tenant and by receiver, and whom it served
/// first last time.
#[derive(Debug, Default)]
pub struct InFlight {
    total: usize,
    tenants: HashMap<String, usize>,
    receivers: HashMap<String, usize>,
    /// The tenant served first in the last pass: the next pass starts after it.
    last_first: Option<String>,
}

impl InFlight {
    /// Deliveries in flight.
    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Receivers with no room left: the claim skips their events.
    pub fn full_receivers(&self) -> Vec<String> {
        self.receivers.iter().filter(|(_, n)| **n >= PER_RECEIVER).map(|(r, _)| r.clone()).collect()
    }

    /// `tenants` (those with due events) in the order of this pass: round-robin, starting
    /// with the first one after the tenant that started the last pass.
    pub fn order(&mut self, mut tenants: Vec<String>) -> Vec<String> {
        tenants.sort_unstable();
        tenants.dedup();
        let start = match &self.last_first {
            Some(last) => tenants.iter().position(|t| t > last).unwrap_or(0),
            None => 0,
        };
        tenants.rotate_left(start);
        self.last_first = tenants.first().cloned();
        tenants
    }

    /// How many deliveries `tenant` may start now, when `waiting` tenants have due events:
    /// its fair share of the free shared slots, within its own cap; one at least if it has
    /// none in flight and the reserve is not used up.
    pub fn room_for(&self, tenant: &str, waiting: usize) -> usize {
        let busy = self.tenants.get(tenant).copied().unwrap_or(0);
        let free = IN_FLIGHT.saturating_sub(self.total);
        let share = free.div_ceil(waiting.max(1));
        let room = PER_TENANT.saturating_sub(busy).min(share);
        if room == 0 && busy == 0 && self.total < IN_FLIGHT + RESERVE { 1 } else { room }
    }

    /// Start a delivery of `tenant` to `receiver`; false (nothing counted) when the
    /// receiver has no room.
    pub fn start(&mut self, tenant: &str, receiver: &str) -> bool {
        let lane = self.receivers.entry(receiver.to_string()).or_default();
        if *lane >= PER_RECEIVER {
            return false;
        }
        *lane += 1;
        *self.tenants.entry(tenant.to_string()).or_default() += 1;
        self.total += 1;
        true
    }

    /// A delivery of `tenant` to `receiver` ended.
    pub fn finish(&mut self, tenant: &str, receiver: &str) {
        fn down(map: &mut HashMap<String, usize>, key: &str) {
            if let Some(count) = map.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    map.remove(key);
                }
            }
        }
        down(&mut self.receivers, receiver);
        down(&mut self.tenants, tenant);
        self.total = self.total.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tenant_never_takes_every_slot() {
        let mut flight = InFlight::default();
        // A tenant alone gets its own cap, not the whole pool.
        assert_eq!(flight.room_for("mute", 1), PER_TENANT);
        for i in 0..PER_TENANT {
            assert!(flight.start("mute", &format!("r{}", i % 16)));
        }
        assert_eq!(flight.room_for("mute", 2), 0);
        assert_eq!(flight.room_for("other", 2), (IN_FLIGHT - PER_TENANT).div_ceil(2).min(PER_TENANT));
        // Receivers have their own cap.
        for _ in 0..PER_RECEIVER {
            flight.start("other", "busy");
        }
        assert!(!flight.start("other", "busy"));
        assert!(flight.full_receivers().contains(&"busy".to_string()));
        flight.finish("other", "busy");
        assert!(flight.full_receivers().iter().all(|r| r != "busy"));
    }

    #[test]
    fn an_idle_tenant_starts_one_even_when_the_pool_is_full() {
        let mut flight = InFlight::default();
        for t in 0..IN_FLIGHT / PER_TENANT {
            for i in 0..PER_TENANT {
                assert!(flight.start(&format!("t{t}"), &format!("t{t}-r{}", i / PER_RECEIVER)));
            }
        }
        assert_eq!(flight.total(), IN_FLIGHT);
        assert_eq!(flight.room_for("t0", 5), 0);
        assert_eq!(flight.room_for("healthy", 5), 1, "one, from the reserve");
        assert!(flight.start("healthy", "h"));
        assert_eq!(flight.room_for("healthy", 5), 0, "one at a time beyond the pool");
        flight.finish("healthy", "h");
        assert_eq!(flight.room_for("healthy", 5), 1);
    }

    #[test]
    fn tenants_take_turns_starting_a_pass() {
        let mut flight = InFlight::default();
        let tenants = || vec!["b".to_string(), "a".to_string(), "c".to_string()];
        assert_eq!(flight.order(tenants()), ["a", "b", "c"]);
        assert_eq!(flight.order(tenants()), ["b", "c", "a"]);
        assert_eq!(flight.order(tenants()), ["c", "a", "b"]);
        assert_eq!(flight.order(tenants()), ["a", "b", "c"]);
        assert_eq!(flight.order(vec!["a".into(), "b".into()]), ["b", "a"]);
        assert!(flight.order(Vec::new()).is_empty());
    }
}
