//! One attempt to deliver an event's notification: when, how long it took, and what
//! came of it (the receiver's HTTP status, or the error). Written by the delivery loop,
//! read through `GET /v2/jobs/{id}/webhooks`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The event (`events.id`) this attempt delivered.
    pub event_id: i64,
    pub job_id: String,
    /// When the attempt started (Unix ms).
    pub attempted_at: i64,
    /// How long it took, the network included.
    pub duration_ms: i64,
    /// The status of the receiver's last HTTP answer, if one arrived.
    pub status_code: Option<i32>,
    /// Why the attempt failed; `None` when it succeeded.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub succeeded: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
