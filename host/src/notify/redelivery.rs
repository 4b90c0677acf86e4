//! Redelivery on a tenant's request: an event of its job owed again, with the same
//! `webhook-id`, at most `[webhooks] redeliveries_per_minute` per key on one node (the
//! notifier then delivers it like any due event).

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};

use super::RateLimiter;
use crate::db::{event, job, outbox, webhook_attempt};
use crate::job::stored::StoredSpecError;
use crate::secret::Sealer;

#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("Job '{job_id}' was submitted without a 'notification' block, so it has no webhooks to redeliver.")]
    NoNotification { job_id: String },
    #[error("Event '{event_id}' of job '{job_id}'")]
    NotFound { job_id: String, event_id: String },
    #[error("This API key asked for more than {per_minute} webhook redeliveries a minute ([webhooks] redeliveries_per_minute).")]
    TooMany { per_minute: u32, retry_after: Duration },
    #[error(transparent)]
    Spec(#[from] StoredSpecError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The event owed again, with its attempts so far (oldest first).
pub struct Redelivered {
    pub event: event::Model,
    pub attempts: Vec<webhook_attempt::Model>,
}

/// Owe `event_id` of `job` (already known to be `owner`'s) again, if the job asked
/// for notifications and `owner` has a redelivery left this minute.
pub async fn redeliver(
    db: &DatabaseConnection,
    sealer: &Sealer,
    limiter: &RateLimiter,
    owner: &str,
    job: &job::Model,
    event_id: &str,
) -> Result<Redelivered, RedeliverError> {
    let not_found = || RedeliverError::NotFound { job_id: job.id.clone(), event_id: event_id.to_string() };
    let event_id: i64 = event_id.parse().map_err(|_| not_found())?;
    let spec = crate::job::stored::open_spec(sealer, &job.spec)?;
    if spec.notification.is_none() {
        return Err(RedeliverError::NoNotification { job_id: job.id.clone() });
    }
    limiter.take(owner).map_err(|retry_after| RedeliverError::TooMany { per_minute: limiter.rate(), retry_after })?;
    let event = outbox::redeliver(db, &job.id, event_id).await?.ok_or_else(not_found)?;
    tracing::info!(job_id = %job.id, event_id, webhook_id = %event.webhook_id(), "webhook redelivery requested");
    let attempts = outbox::log(db, &job.id).await?.into_iter().find(|(e, _)| e.id == event.id).map(|(_, a)| a).unwrap_or_default();
    Ok(Redelivered { event, attempts })
}
