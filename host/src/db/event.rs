//! Job events: the history of a job and the outbox of its notifications. A row is
//! written in the same breath as the status change it reports; the notifier delivers
//! pending rows in order and records each attempt, so a crash loses no webhook.

use sea_orm::entity::prelude::*;

use super::status::EventName;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_id: String,
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
    pub attempts: i32,
    pub next_attempt_at: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
