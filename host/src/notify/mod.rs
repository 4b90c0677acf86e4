//! Delivery of job events to notifier plugins.
//!
//! Events are an outbox in the database: the worker writes them, this loop delivers
//! pending ones oldest first, one job's events in order, retrying with backoff and
//! recording every attempt. A notification outlives a crash or a restart.
//!
//! Deliveries run side by side: each has a deadline (`limits.webhook_timeout`), a job's
//! events go one at a time and in order, and one receiver (a webhook host) never holds
//! more than [`PER_RECEIVER`] deliveries, so a mute receiver delays only its own
//! webhooks, never another tenant's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::db::{self, event, now_ms};
use crate::job::JobSpec;
use crate::plugins::Plugins;
use crate::secret::Sealer;

/// Attempts before an event is given up.
const MAX_ATTEMPTS: i32 = 8;
/// How often the outbox is looked at without being told: retries falling due, and
/// events recorded by other processes sharing the database.
const IDLE: Duration = Duration::from_millis(500);
/// Deliveries in flight at once, in all.
const IN_FLIGHT: usize = 64;
/// Deliveries in flight at once to one receiver.
const PER_RECEIVER: usize = 4;

/// What the loop needs besides the database.
#[derive(Clone)]
pub struct Notifier {
    pub db: DatabaseConnection,
    pub plugins: Arc<Plugins>,
    pub sealer: Sealer,
    /// The longest one delivery may take.
    pub timeout: Duration,
}

/// One delivery under way.
struct Delivery {
    event: event::Model,
    receiver: String,
}

/// Deliver events until the process ends. `recorded` wakes the loop as soon as this
/// process records an event, so a webhook does not wait for the next look.
pub async fn run(notifier: Notifier, recorded: Arc<tokio::sync::Notify>) {
    let mut running: JoinSet<Delivery> = JoinSet::new();
    let mut busy_jobs: HashSet<String> = HashSet::new();
    let mut busy_events: HashSet<i64> = HashSet::new();
    let mut per_receiver: HashMap<String, usize> = HashMap::new();
    loop {
        match notifier.dispatch(&mut running, &mut busy_jobs, &mut busy_events, &mut per_receiver).await {
            Ok(_) => {}
            Err(err) => tracing::error!(%err, "notification loop failed"),
        }
        tokio::select! {
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok(done) = done {
                    busy_jobs.remove(&done.event.job_id);
                    busy_events.remove(&done.event.id);
                    if let Some(count) = per_receiver.get_mut(&done.receiver) {
                        *count -= 1;
                        if *count == 0 {
                            per_receiver.remove(&done.receiver);
                        }
                    }
                }
            }
            _ = recorded.notified() => {}
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
}

impl Notifier {
    /// Start a delivery for every due event whose job and receiver have room.
    async fn dispatch(
        &self,
        running: &mut JoinSet<Delivery>,
        busy_jobs: &mut HashSet<String>,
        busy_events: &mut HashSet<i64>,
        per_receiver: &mut HashMap<String, usize>,
    ) -> Result<(), sea_orm::DbErr> {
        if running.len() >= IN_FLIGHT {
            return Ok(());
        }
        let pending = event::Entity::find()
            .filter(event::Column::Pending.eq(true))
            .order_by_asc(event::Column::Id)
            .limit(500)
            .all(&self.db)
            .await?;
        let now = now_ms();
        // A job whose earlier event is still owed holds back its later ones.
        let mut held: HashSet<String> = busy_jobs.clone();
        let mut receivers: HashMap<String, String> = HashMap::new();
        for pending_event in pending {
            if running.len() >= IN_FLIGHT {
                break;
            }
            if busy_events.contains(&pending_event.id) || held.contains(&pending_event.job_id) {
                continue;
            }
            held.insert(pending_event.job_id.clone());
            if pending_event.next_attempt_at > now {
                continue;
            }
            let receiver = match receivers.get(&pending_event.job_id) {
                Some(receiver) => receiver.clone(),
                None => {
                    let receiver = self.receiver_of(&pending_event.job_id).await;
                    receivers.insert(pending_event.job_id.clone(), receiver.clone());
                    receiver
                }
            };
            let lane = per_receiver.entry(receiver.clone()).or_default();
            if *lane >= PER_RECEIVER {
                continue;
            }
            *lane += 1;
            busy_jobs.insert(pending_event.job_id.clone());
            busy_events.insert(pending_event.id);
            let notifier = self.clone();
            let span = tracing::info_span!("notify", job_id = %pending_event.job_id, event = %pending_event.event);
            running.spawn(
                async move {
                    notifier.attempt(&pending_event).await;
                    Delivery { event: pending_event, receiver }
                }
                .instrument(span),
            );
        }
        Ok(())
    }

    /// Who receives a job's notifications: its notifier type and the host of its `url`
    /// when it has one (the webhook host), else the job itself.
    async fn receiver_of(&self, job_id: &str) -> String {
        let spec = match self.spec(job_id).await {
            Ok(Some(spec)) => spec,
            _ => return format!("job:{job_id}"),
        };
        let kind = spec.notification_type().unwrap_or("none").to_string();
        let host = spec
            .notification
            .as_ref()
            .and_then(|n| n.get("url"))
            .and_then(|u| u.as_str())
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0))));
        match host {
            Some(host) => format!("{kind}:{host}"),
            None => format!("{kind}:job:{job_id}"),
        }
    }

    async fn spec(&self, job_id: &str) -> Result<Option<JobSpec>, String> {
        let job = db::job::Entity::find_by_id(job_id.to_string()).one(&self.db).await.map_err(|e| e.to_string())?;
        let Some(job) = job else { return Ok(None) };
        crate::job::stored::open_spec(&self.sealer, &job.spec).map(Some).map_err(|e| e.to_string())
    }

    /// Deliver one event once and record the attempt.
    async fn attempt(&self, pending: &event::Model) {
        let result = self.deliver(pending).await;
        let attempts = pending.attempts + 1;
        let mut row: event::ActiveModel = pending.clone().into();
        row.attempts = Set(attempts);
        match result {
            Ok(()) => {
                row.pending = Set(false);
                row.last_error = Set(None);
            }
            Err(message) => {
                tracing::warn!(attempts, message, "notification failed");
                row.last_error = Set(Some(message));
                if attempts >= MAX_ATTEMPTS {
                    row.pending = Set(false);
                } else {
                    row.next_attempt_at = Set(now_ms() + backoff(attempts).as_millis() as i64);
                }
            }
        }
        if let Err(err) = row.update(&self.db).await {
            tracing::error!(%err, "recording a notification attempt failed");
        }
    }

    async fn deliver(&self, pending: &event::Model) -> Result<(), String> {
        let Some(spec) = self.spec(&pending.job_id).await? else { return Ok(()) };
        let (Some(kind), Some(config)) = (spec.notification_type(), &spec.notification) else { return Ok(()) };
        let config = config.to_string();
        // The plugin call's wall-clock deadline covers the whole delivery, network included.
        self.plugins.notifier_notify(kind, &config, &pending.payload, self.timeout).await.map_err(|e| match e {
            crate::plugins::PluginError::Deadline { .. } => {
                format!("{e}: the receiver did not answer within {} s (limits.webhook_timeout_secs)", self.timeout.as_secs())
            }
            other => other.to_string(),
        })
    }
}

/// 1 s, 2 s, 4 s, ... capped at 5 minutes.
fn backoff(attempts: i32) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 9) as u64).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
