//! Delivery of job events to notifier plugins.
//!
//! Events are an outbox in the database: the worker writes them, this loop delivers
//! pending ones oldest first, one job's events in order, retrying with backoff and
//! recording every attempt. A notification outlives a crash or a restart.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use tracing::Instrument;

use crate::db::{self, event, now_ms};
use crate::job::JobSpec;
use crate::plugins::Plugins;

/// Attempts before an event is given up.
const MAX_ATTEMPTS: i32 = 8;
/// How often the outbox is looked at without being told: retries falling due, and
/// events recorded by other processes sharing the database.
const IDLE: Duration = Duration::from_millis(500);

/// Deliver events until the process ends. `recorded` wakes the loop as soon as this
/// process records an event, so a webhook does not wait for the next look.
pub async fn run(db: DatabaseConnection, plugins: Arc<Plugins>, recorded: Arc<tokio::sync::Notify>) {
    loop {
        match deliver_due(&db, &plugins).await {
            Ok(0) => {
                let _ = tokio::time::timeout(IDLE, recorded.notified()).await;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(%err, "notification loop failed");
                tokio::time::sleep(IDLE).await;
            }
        }
    }
}

/// One pass over pending events; returns how many were attempted.
async fn deliver_due(db: &DatabaseConnection, plugins: &Plugins) -> Result<usize, sea_orm::DbErr> {
    let pending = event::Entity::find()
        .filter(event::Column::Pending.eq(true))
        .order_by_asc(event::Column::Id)
        .limit(200)
        .all(db)
        .await?;
    let now = now_ms();
    // A job whose earlier event is still waiting holds back its later ones.
    let mut held: HashSet<String> = HashSet::new();
    let mut attempted = 0;
    for pending_event in pending {
        if held.contains(&pending_event.job_id) {
            continue;
        }
        if pending_event.next_attempt_at > now {
            held.insert(pending_event.job_id.clone());
            continue;
        }
        attempted += 1;
        let span = tracing::info_span!("notify", job_id = %pending_event.job_id, event = %pending_event.event);
        let result = deliver(db, plugins, &pending_event).instrument(span).await;
        let attempts = pending_event.attempts + 1;
        let mut row: event::ActiveModel = pending_event.clone().into();
        row.attempts = Set(attempts);
        match result {
            Ok(()) => {
                row.pending = Set(false);
                row.last_error = Set(None);
            }
            Err(message) => {
                tracing::warn!(job_id = %pending_event.job_id, event = %pending_event.event, attempts, message, "notification failed");
                held.insert(pending_event.job_id.clone());
                row.last_error = Set(Some(message));
                if attempts >= MAX_ATTEMPTS {
                    row.pending = Set(false);
                } else {
                    row.next_attempt_at = Set(now_ms() + backoff(attempts).as_millis() as i64);
                }
            }
        }
        row.update(db).await?;
    }
    Ok(attempted)
}

/// 1 s, 2 s, 4 s, ... capped at 5 minutes.
fn backoff(attempts: i32) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 9) as u64).min(Duration::from_secs(300))
}

async fn deliver(db: &DatabaseConnection, plugins: &Plugins, pending: &event::Model) -> Result<(), String> {
    let job = db::job::Entity::find_by_id(pending.job_id.clone()).one(db).await.map_err(|e| e.to_string())?;
    let Some(job) = job else { return Ok(()) };
    let spec: JobSpec = serde_json::from_str(&job.spec).map_err(|e| e.to_string())?;
    let (Some(kind), Some(config)) = (spec.notification_type(), &spec.notification) else { return Ok(()) };
    // TODO(limits): the loop gets `config.limits.webhook_timeout` once it has the config.
    let deadline = crate::config::Limits::default().webhook_timeout;
    plugins.notifier_notify(kind, &config.to_string(), &pending.payload, deadline).await.map_err(|e| e.to_string())
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
