//! Job events: the history of a job and the outbox of its notifications. A row is
//! written in the same breath as the status change it reports; the notifier claims
//! owed rows (one process at a time each), delivers them in order per job, and records
//! every attempt in `webhook_attempts`, so a crash loses no webhook.

use sea_orm::entity::prelude::*;
use serde::Serialize;

use super::status::EventName;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_id: String,
    /// The job's owner (its tenant): delivery slots are shared fairly between tenants.
    pub owner: String,
    pub event: EventName,
    /// What makes this event one of a kind for its job (`output.completed:<key>`): a job
    /// run again after a crash records each event once.
    pub dedupe_key: Option<String>,
    /// The event as the notifier plugin receives it.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub created_at: i64,
    /// True while a notification is still owed (not yet delivered, not given up).
    pub pending: bool,
    /// Attempts since the event was recorded (or last asked to be redelivered).
    pub attempts: i32,
    /// When the next attempt is due.
    pub next_attempt_at: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// The `webhook-id` of its deliveries: the same on every retry and redelivery, so
    /// receivers can drop duplicates. Set when the event is recorded.
    pub webhook_id: Option<String>,
    /// Who receives it (`<notifier type>:<host:port>`), filled in by the notifier when
    /// it first looks: deliveries to one receiver are capped.
    pub receiver: Option<String>,
    /// The process delivering it now, and until when its claim holds; an expired claim
    /// (a process that died) is taken by another.
    pub claimed_by: Option<String>,
    pub claimed_until: Option<i64>,
    /// When a delivery succeeded.
    pub delivered_at: Option<i64>,
    /// When the last attempt of the retry schedule failed: the event was given up.
    pub failed_at: Option<i64>,
}

/// Where an event's notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// The job asked for no notification.
    NotRequested,
    /// Owed: waiting for its first attempt or a retry.
    Pending,
    /// The notifier took it (for webhooks: the receiver answered 2xx).
    Delivered,
    /// Every attempt of the retry schedule failed.
    Failed,
}

impl Model {
    /// Where this event's notification stands.
    pub fn delivery_state(&self) -> DeliveryState {
        if self.pending {
            DeliveryState::Pending
        } else if self.failed_at.is_some() {
            DeliveryState::Failed
        } else if self.delivered_at.is_some() {
            DeliveryState::Delivered
        } else {
            DeliveryState::NotRequested
        }
    }

    /// The `webhook-id` of this event's deliveries.
    pub fn webhook_id(&self) -> String {
        self.webhook_id.clone().unwrap_or_else(|| format!("msg_{}_{}", self.job_id, self.id))
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
