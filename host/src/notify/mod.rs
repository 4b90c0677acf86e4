//! Delivery of job events to notifier plugins.
//!
//! Events are an outbox in the database: the worker writes them with the status change
//! they report, and this loop delivers them, in every process that runs it. Each
//! process claims due events for a short while (`db::outbox::claim`: `SKIP LOCKED` on
//! PostgreSQL), only the oldest owed event of each job, so one event goes out from one
//! process at a time and a job's events arrive in order. A failed attempt is retried on
//! the configured schedule (`[webhooks] retry_schedule_secs`, ±20 % jitter); after the
//! last one the event is marked failed. Every attempt is logged with its duration and
//! the receiver's status or the error. A notification outlives a crash or a restart: a
//! dead process's claims expire and another process delivers.
//!
//! Webhooks are signed as Standard Webhooks: the notifier plugin asks the host to sign
//! its body (`sign-webhook`) with the event's stable `webhook-id`, the attempt's time
//! and the tenant's secret, which never enters the plugin.
//!
//! Each tenant (API key) has its own signing secret ([`secrets`]): derived from the
//! server's root secret, which signs nothing itself.
//!
//! Deliveries run side by side: each has a deadline (`limits.webhook_timeout`), and the
//! slots are shared fairly ([`fair`]): tenants with due events are claimed for in turn,
//! one tenant never holds more than [`fair::PER_TENANT`] of this process's deliveries
//! and one receiver (a webhook host) never more than [`PER_RECEIVER`], and a tenant with
//! nothing in flight always gets a slot. A tenant's mute receivers delay only its own
//! webhooks, never another tenant's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sea_orm::EntityTrait;
use tokio::task::JoinSet;
use tracing::Instrument;

mod fair;
mod rate_limit;
pub mod redelivery;
pub mod secrets;

pub use rate_limit::RateLimiter;

use crate::config::{Config, WebhookConfig};
use crate::db::outbox::{self, Attempt, Outcome};
use crate::db::{self, event, now_ms};
use crate::job::JobSpec;
use crate::job::stored::StoredSpecError;
use crate::plugins::{LastStatus, PluginError, PluginKind, Pins, Plugins, ReadyError, WebhookSigning};
use crate::secret::Sealer;

/// How often the outbox is looked at without being told: retries falling due, and
/// events recorded by other processes sharing the database.
const IDLE: Duration = Duration::from_millis(500);
pub use fair::{IN_FLIGHT, PER_RECEIVER, PER_TENANT};
/// How much longer than a delivery's deadline a claim lasts: room to record the result.
/// A process that dies holds its events no longer than the deadline plus this.
const CLAIM_MARGIN: Duration = Duration::from_secs(15);
/// How far each wait of the retry schedule is varied, either way.
const JITTER: f64 = 0.2;

/// Why one delivery attempt failed; recorded with the attempt (with the receiver's
/// first words, if any) and retried on the schedule.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The job's row could not be read.
    #[error("{0}")]
    Job(sea_orm::DbErr),
    /// The job's stored spec could not be opened.
    #[error("{0}")]
    Spec(#[from] StoredSpecError),
    /// The notifier version the job was planned with is not loaded (the message says
    /// why).
    #[error("{0}")]
    NotReady(#[from] ReadyError),
    /// The tenant's signing secret could not be read.
    #[error("the webhook secret could not be read: {0}")]
    Secret(sea_orm::DbErr),
    /// The notifier plugin ran out of its deadline: the receiver did not answer in time.
    #[error("{error}: the receiver did not answer within {} s (limits.webhook_timeout_secs)", .timeout.as_secs())]
    Deadline {
        /// The plugin call's error.
        error: PluginError,
        /// The deadline (`limits.webhook_timeout`).
        timeout: Duration,
    },
    /// The notifier plugin failed otherwise (the receiver's refusal, a trap, ...).
    #[error("{0}")]
    Plugin(PluginError),
}

/// What the loop needs besides the database.
#[derive(Clone)]
pub struct Notifier {
    pub db: sea_orm::DatabaseConnection,
    pub plugins: Arc<Plugins>,
    pub sealer: Sealer,
    /// The longest one delivery may take.
    pub timeout: Duration,
    /// Signing secrets and the retry schedule.
    pub webhooks: Arc<WebhookConfig>,
    /// This process's name in claims; unique per process.
    pub claimer: String,
}

impl Notifier {
    /// The delivery loop's settings from the server's config.
    pub fn new(db: sea_orm::DatabaseConnection, plugins: Arc<Plugins>, config: &Config) -> Self {
        Notifier {
            db,
            plugins,
            sealer: config.sealer.clone(),
            timeout: config.limits.webhook_timeout,
            webhooks: Arc::new(config.webhooks.clone()),
            claimer: format!("{}/notify-{}", config.worker_id, crate::random_id(12)),
        }
    }
}

/// Deliver events until the process ends. `recorded` wakes the loop as soon as this
/// process records an event, so a webhook does not wait for the next look.
pub async fn run(notifier: Notifier, recorded: Arc<tokio::sync::Notify>) {
    // Each finished delivery gives back its tenant's and its receiver's slots, even one
    // whose task panicked (it is known by its task's id).
    let mut running: JoinSet<()> = JoinSet::new();
    let mut flight = fair::InFlight::default();
    let mut slots: HashMap<tokio::task::Id, (String, String)> = HashMap::new();
    loop {
        if let Err(err) = notifier.dispatch(&mut running, &mut flight, &mut slots).await {
            tracing::error!(%err, "notification loop failed");
        }
        tokio::select! {
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(err) => {
                        tracing::error!(%err, "a notification delivery task failed");
                        err.id()
                    }
                };
                if let Some((tenant, receiver)) = slots.remove(&id) {
                    flight.finish(&tenant, &receiver);
                }
            }
            _ = recorded.notified() => {}
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
}

impl Notifier {
    /// Claim due events, tenant by tenant in turn, each its share of the free slots, and
    /// start a delivery for each whose receiver has room; give back the others at once.
    async fn dispatch(
        &self,
        running: &mut JoinSet<()>,
        flight: &mut fair::InFlight,
        slots: &mut HashMap<tokio::task::Id, (String, String)>,
    ) -> Result<(), sea_orm::DbErr> {
        let tenants = flight.order(outbox::due_tenants(&self.db, now_ms()).await?);
        let waiting = tenants.len();
        for tenant in tenants {
            let room = flight.room_for(&tenant, waiting);
            if room == 0 {
                continue;
            }
            let until = now_ms() + (self.timeout + CLAIM_MARGIN).as_millis() as i64;
            let claimed = outbox::claim(&self.db, &self.claimer, &tenant, until, room as u64, &flight.full_receivers()).await?;
            for owed in claimed {
                let receiver = match &owed.receiver {
                    Some(receiver) => receiver.clone(),
                    None => {
                        let receiver = self.receiver_of(&owed.job_id).await;
                        outbox::set_receiver(&self.db, owed.id, &receiver).await?;
                        receiver
                    }
                };
                if !flight.start(&tenant, &receiver) {
                    outbox::release(&self.db, owed.id, &self.claimer).await?;
                    continue;
                }
                let notifier = self.clone();
                let span = tracing::info_span!("notify", job_id = %owed.job_id, event = %owed.event, webhook_id = %owed.webhook_id());
                let task = running.spawn(async move { notifier.attempt(&owed).await }.instrument(span));
                slots.insert(task.id(), (tenant.clone(), receiver));
            }
        }
        Ok(())
    }

    /// Who receives a job's notifications: its notifier type and the host of its `url`
    /// when it has one (the webhook host), else the job itself.
    async fn receiver_of(&self, job_id: &str) -> String {
        let spec = match self.job(job_id).await {
            Ok(Some((_, spec, _))) => spec,
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

    /// A job's owner and spec.
    async fn job(&self, job_id: &str) -> Result<Option<(String, JobSpec, Pins)>, DeliveryError> {
        let job = db::job::Entity::find_by_id(job_id.to_string()).one(&self.db).await.map_err(DeliveryError::Job)?;
        let Some(job) = job else { return Ok(None) };
        let (spec, pins) = crate::job::stored::open_planned(&self.sealer, &job.spec)?;
        Ok(Some((job.owner, spec, Pins::new(pins))))
    }

    /// Deliver one claimed event once, record the attempt, and reschedule, fail or
    /// close the event.
    async fn attempt(&self, owed: &event::Model) {
        let started_at = now_ms();
        let clock = Instant::now();
        let status = LastStatus::default();
        let result = self.deliver(owed, status.clone()).await;
        let attempts = owed.attempts + 1;
        let outcome = match &result {
            Ok(()) => Outcome::Delivered,
            Err(_) => match self.webhooks.retry_schedule.get(owed.attempts.max(0) as usize) {
                Some(wait) => Outcome::Retry { at: now_ms() + jittered(*wait).as_millis() as i64 },
                None => Outcome::Failed,
            },
        };
        crate::metrics::webhook_delivery(match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retry { .. } => "retry",
            Outcome::Failed => "failed",
        });
        match (&result, &outcome) {
            (Ok(()), _) => tracing::debug!(attempts, status = ?status.get(), "notification delivered"),
            (Err(message), Outcome::Failed) => {
                tracing::warn!(attempts, message = %message, "notification failed for good: the retry schedule is used up")
            }
            (Err(message), _) => tracing::warn!(attempts, message = %message, "notification failed; it will be retried"),
        }
        let attempt = Attempt {
            started_at,
            duration_ms: clock.elapsed().as_millis() as i64,
            status_code: status.get(),
            // The receiver's first words (bounded, escaped) with a failure's message.
            error: result.err().map(|message| status.with_answer(message.to_string())),
        };
        match outbox::finish(&self.db, owed, &self.claimer, attempts, &outcome, attempt).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the claim on this event expired during its delivery; another process owns it now"),
            Err(err) => tracing::error!(%err, "recording a notification attempt failed"),
        }
    }

    async fn deliver(&self, owed: &event::Model, status: LastStatus) -> Result<(), DeliveryError> {
        let Some((owner, spec, pins)) = self.job(&owed.job_id).await? else { return Ok(()) };
        let (Some(kind), Some(config)) = (spec.notification_type(), &spec.notification) else { return Ok(()) };
        // The notifier version the job was planned with (loaded from the database if
        // need be; no waiting here: a failed attempt is retried on the schedule).
        let pins = pins.of_kind(PluginKind::Notifier);
        self.plugins.ready(&self.db, &pins, Duration::ZERO).await?;
        let config = config.to_string();
        let secrets = secrets::of(&self.db, &self.webhooks, &owner, now_ms()).await.map_err(DeliveryError::Secret)?;
        let signing = WebhookSigning { id: owed.webhook_id(), secrets: secrets.signing() };
        // The plugin call's wall-clock deadline covers the whole delivery, network included.
        let call = self.plugins.notifier_notify(kind, &config, &owed.payload, self.timeout, signing, status);
        pins.scope(call).await.map_err(|error| match error {
            PluginError::Deadline { .. } => DeliveryError::Deadline { error, timeout: self.timeout },
            other => DeliveryError::Plugin(other),
        })
    }
}

/// `wait` varied at random by up to ±[`JITTER`], so retries of many events that failed
/// together do not arrive together.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(rand::rng().random_range(1.0 - JITTER..=1.0 + JITTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..200 {
            let wait = jittered(Duration::from_secs(100));
            assert!(wait >= Duration::from_secs(80) && wait <= Duration::from_secs(120), "{wait:?}");
        }
        let spread: std::collections::HashSet<u128> = (0..50).map(|_| jittered(Duration::from_secs(100)).as_millis()).collect();
        assert!(spread.len() > 10, "the waits vary");
    }

    #[test]
    fn delivery_failures_keep_their_sentences() {
        let deadline = PluginError::Deadline { plugin: "webhook".into(), deadline_ms: 5000 };
        let err = DeliveryError::Deadline { error: deadline, timeout: Duration::from_secs(5) };
        assert_eq!(
            err.to_string(),
            "plugin 'webhook' did not finish within its deadline of 5000 ms (wall clock, waiting on the network included): \
             the receiver did not answer within 5 s (limits.webhook_timeout_secs)"
        );
        let secret = DeliveryError::Secret(sea_orm::DbErr::Custom("the pool is closed".into()));
        assert_eq!(secret.to_string(), "the webhook secret could not be read: Custom Error: the pool is closed");
        let job = DeliveryError::Job(sea_orm::DbErr::Custom("the pool is closed".into()));
        assert_eq!(job.to_string(), "Custom Error: the pool is closed");
        let removed = ReadyError::Removed { plugin: "webhook".into(), version: "1.0.0".into(), sha256: "ab".into() };
        let removed_sentence = removed.to_string();
        assert_eq!(DeliveryError::NotReady(removed).to_string(), removed_sentence, "the plugins' own sentence, unchanged");
        let plugin = PluginError::Deadline { plugin: "webhook".into(), deadline_ms: 1 };
        assert_eq!(DeliveryError::Plugin(plugin).to_string(), "plugin 'webhook' did not finish within its deadline of 1 ms (wall clock, waiting on the network included)");
    }
}
