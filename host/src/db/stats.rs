//! Counts for operators: jobs by status, waiting and running, over the whole database
//! (every node answers the same).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};

use super::now_ms;
use super::status::JobStatus;

pub struct JobCounts {
    /// Every status, with zero for those no job has.
    pub by_status: Vec<(JobStatus, i64)>,
    /// Unfinished jobs no worker holds (queued, or left by a worker that died).
    pub waiting: i64,
    /// Unfinished jobs under a live lease.
    pub running: i64,
}

pub async fn job_counts(db: &DatabaseConnection) -> Result<JobCounts, DbErr> {
    use sea_orm::Iterable;
    let backend = db.get_database_backend();
    let rows = db.query_all(Statement::from_string(backend, "SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")).await?;
    let mut by_status: Vec<(JobStatus, i64)> = JobStatus::iter().map(|s| (s, 0)).collect();
    for row in rows {
        let status: String = row.try_get("", "status")?;
        let n: i64 = row.try_get("", "n")?;
        if let Some(entry) = by_status.iter_mut().find(|(s, _)| s.as_str() == status) {
            entry.1 = n;
        }
    }
    let row = db
        .query_one(Statement::from_sql_and_values(
            backend,
            "SELECT \
               COALESCE(SUM(CASE WHEN lease_expires_at IS NULL OR lease_expires_at < $1 THEN 1 ELSE 0 END), 0) AS waiting, \
               COALESCE(SUM(CASE WHEN lease_expires_at >= $1 THEN 1 ELSE 0 END), 0) AS running \
             FROM jobs WHERE status = $2",
            [now_ms().into(), JobStatus::Starting.as_str().into()],
        ))
        .await?;
    let (waiting, running) = match row {
        Some(row) => (row.try_get::<i64>("", "waiting")?, row.try_get::<i64>("", "running")?),
        None => (0, 0),
    };
    Ok(JobCounts { by_status, waiting, running })
}
