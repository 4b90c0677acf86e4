//! Idle timeouts for transfers whose bytes move in either direction.
//!
//! reqwest's own read timeout counts from the start of a request to its response
//! headers without resetting while a body is being sent, so an upload longer than the
//! idle time would fail however fast it moved. Instead the transfer touches an
//! [`Activity`] whenever bytes move, and [`until_idle`] fails it once nothing moved for
//! the idle time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When bytes last moved in a transfer. Cheap to clone; clones share the clock.
#[derive(Debug, Clone)]
pub struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last movement.
    last: Arc<AtomicU64>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Activity {
    /// A clock that starts now, as if bytes had just moved.
    pub fn new() -> Self {
        Activity { start: Instant::now(), last: Arc::new(AtomicU64::new(0)) }
    }

    /// Bytes moved now.
    pub fn touch(&self) {
        self.last.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long nothing has moved.
    pub fn quiet_for(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }
}

/// A transfer in which nothing moved for the idle time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer went silent: nothing was sent or received for {} s", .0.as_secs_f64())]
pub struct Stalled(pub Duration);

/// Run `fut` until it ends, or fail once `activity` has not been touched for `idle`.
/// The future is dropped on a stall, which aborts its request.
pub async fn until_idle<F: Future>(fut: F, activity: &Activity, idle: Duration) -> Result<F::Output, Stalled> {
    let mut fut = std::pin::pin!(fut);
    loop {
        let quiet = activity.quiet_for();
        if quiet >= idle {
            return Err(Stalled(idle));
        }
        tokio::select! {
            out = &mut fut => return Ok(out),
            _ = tokio::time::sleep(idle - quiet) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_moving_transfer_runs_past_the_idle_time_and_a_silent_one_stops() {
        let idle = Duration::from_millis(300);
        let activity = Activity::new();
        let ticking = {
            let activity = activity.clone();
            async move {
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    activity.touch();
                }
                "done"
            }
        };
        // 600 ms in all, never 300 ms without movement.
        assert_eq!(until_idle(ticking, &activity, idle).await, Ok("done"));

        let activity = Activity::new();
        let silent = tokio::time::sleep(Duration::from_secs(60));
        let started = Instant::now();
        assert_eq!(until_idle(silent, &activity, idle).await, Err(Stalled(idle)));
        let took = started.elapsed();
        assert!(took >= idle && took < Duration::from_secs(5), "{took:?}");
    }
}
