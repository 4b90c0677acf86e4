//! A tenant's jobs, newest first (`GET /v2/jobs`): one read of the jobs (index
//! `jobs_owner_created`) and one of their outputs.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::status::JobStatus;
use super::{job, output};

/// Up to `limit` jobs of `owner` (only those in `status` when given), newest first, each
/// with its outputs in order.
pub async fn list(
    db: &DatabaseConnection,
    owner: &str,
    status: Option<JobStatus>,
    limit: u64,
) -> Result<Vec<(job::Model, Vec<output::Model>)>, DbErr> {
    let mut query = job::Entity::find().filter(job::Column::Owner.eq(owner));
    if let Some(status) = status {
        query = query.filter(job::Column::Status.eq(status));
    }
    let jobs = query.order_by_desc(job::Column::CreatedAt).order_by_desc(job::Column::Id).limit(limit).all(db).await?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let mut by_job: HashMap<String, Vec<output::Model>> = HashMap::new();
    let outputs = output::Entity::find()
        .filter(output::Column::JobId.is_in(ids))
        .order_by_asc(output::Column::Position)
        .all(db)
        .await?;
    for output in outputs {
        by_job.entry(output.job_id.clone()).or_default().push(output);
    }
    Ok(jobs.into_iter().map(|j| { let outputs = by_job.remove(&j.id).unwrap_or_default(); (j, outputs) }).collect())
}
