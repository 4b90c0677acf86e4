//! A tenant's most recent jobs with their outputs, newest first: two queries (the jobs,
//! then their outputs), whatever the number of jobs.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{job, output};

pub async fn recent<C: ConnectionTrait>(db: &C, owner: &str, limit: u64) -> Result<Vec<(job::Model, Vec<output::Model>)>, DbErr> {
    let jobs = job::Entity::find()
        .filter(job::Column::Owner.eq(owner))
        .order_by_desc(job::Column::CreatedAt)
        .order_by_desc(job::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let mut by_job: HashMap<String, Vec<output::Model>> = HashMap::new();
    for out in output::Entity::find().filter(output::Column::JobId.is_in(ids)).order_by_asc(output::Column::Position).all(db).await? {
        by_job.entry(out.job_id.clone()).or_default().push(out);
    }
    Ok(jobs.into_iter().map(|j| {
        let outputs = by_job.remove(&j.id).unwrap_or_default();
        (j, outputs)
    }).collect())
}
