//! A job row: its spec, its overall state, and the lease of the worker running it.

use sea_orm::entity::prelude::*;

use super::status::{InputStatus, JobStatus};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 of the API key that created the job: jobs are only visible to it.
    pub owner: String,
    pub status: JobStatus,
    pub input_status: InputStatus,
    /// Percent, 0 to 100.
    pub progress: i32,
    /// The validated `JobSpec` as JSON.
    #[sea_orm(column_type = "Text")]
    pub spec: String,
    /// ffprobe-shaped metadata of the input, once probed.
    #[sea_orm(column_type = "Text", nullable)]
    pub input_metadata: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    /// The worker holding the job, and until when. Expired leases are claimed again.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    /// How many times a worker has claimed the job.
    pub attempts: i32,
}

/// A job's outputs point at it, and the way from a job to its outputs is declared in
/// the outputs' file, so this one names no other table.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
