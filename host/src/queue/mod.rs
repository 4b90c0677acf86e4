//! The durable job queue lives in the `jobs` table. A worker claims the oldest
//! unfinished job whose lease is free or expired, renews the lease while it works, and
//! clears it when the job ends. On PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`,
//! so many workers never take the same job; on SQLite one statement does it under the
//! database's single writer.

use std::time::Duration;

mod identity;
pub use identity::Identity;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};

use crate::db::{self, job, now_ms, output};

/// How long a claim lasts without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often a worker renews its leases.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Put a new job (with its outputs) on the queue, and wake this process's worker.
/// Returns the rows as stored.
pub async fn enqueue(
    db: &DatabaseConnection,
    job: job::Model,
    outputs: Vec<output::Model>,
    wake: &tokio::sync::Notify,
) -> Result<(job::Model, Vec<output::Model>), DbErr> {
    // The rows as stored, taken before the worker is woken: the answer is the job as
    // submitted, not as a worker that already took it has made it.
    let stored = db::jobs::insert(db, job, outputs).await?;
    wake.notify_one();
    Ok(stored)
}

/// Claim one job for `worker`; returns its id.
pub async fn claim(db: &DatabaseConnection, worker: &str) -> Result<Option<String>, DbErr> {
    let backend = db.get_database_backend();
    let now = now_ms();
    let expires = now + LEASE.as_millis() as i64;
    let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE jobs SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM jobs WHERE status = 'job.starting' \
                     AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
                     ORDER BY created_at, id LIMIT 1 {lock}) \
         AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
         RETURNING id"
    );
    let row = db
        .query_one(Statement::from_sql_and_values(backend, sql, [worker.into(), expires.into(), now.into()]))
        .await?;
    row.map(|r| r.try_get::<String>("", "id")).transpose()
}

/// Extend the lease of a job this worker holds. Returns false if the lease was lost.
pub async fn heartbeat(db: &DatabaseConnection, job_id: &str, worker: &str) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let expires = now_ms() + LEASE.as_millis() as i64;
    let result = db
        .execute(Statement::from_sql_and_values(
            backend,
            "UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3",
            [expires.into(), job_id.into(), worker.into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Free every lease `worker` holds. Called at start: a worker identity that is starting
/// cannot be running anything, so its old claims are stale and can be taken at once.
pub async fn release_all(db: &DatabaseConnection, worker: &str) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let result = db
        .execute(Statement::from_sql_and_values(
            backend,
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1",
            [worker.into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Whether the database is reachable (used by readiness checks).
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};

    use super::*;
    use crate::db::job;

    async fn db_with_jobs(dir: &std::path::Path, ids: &[&str]) -> DatabaseConnection {
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.join("q.db").display())).await.unwrap();
        for (i, id) in ids.iter().enumerate() {
            job::ActiveModel {
                id: Set(id.to_string()),
                owner: Set("o".into()),
                status: Set(crate::db::status::JobStatus::Starting),
                input_status: Set(crate::db::status::InputStatus::Starting),
                progress: Set(0),
                spec: Set("{}".into()),
                input_metadata: Set(None),
                error: Set(None),
                created_at: Set(1000 + i as i64),
                completed_at: Set(None),
                lease_owner: Set(None),
                lease_expires_at: Set(None),
                attempts: Set(0),
            }
            .insert(&db)
            .await
            .unwrap();
        }
        db
    }

    #[tokio::test]
    async fn claims_oldest_first_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_jobs(dir.path(), &["first", "second"]).await;
        assert_eq!(claim(&db, "w1").await.unwrap().as_deref(), Some("first"));
        assert_eq!(claim(&db, "w2").await.unwrap().as_deref(), Some("second"));
        assert_eq!(claim(&db, "w3").await.unwrap(), None);
        let first = job::Entity::find_by_id("first".to_string()).one(&db).await.unwrap().unwrap();
        assert_eq!((first.lease_owner.as_deref(), first.attempts), (Some("w1"), 1));
    }

    #[tokio::test]
    async fn expired_leases_are_claimed_again_and_heartbeats_check_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_jobs(dir.path(), &["only"]).await;
        assert!(claim(&db, "w1").await.unwrap().is_some());
        assert!(heartbeat(&db, "only", "w1").await.unwrap());
        assert!(!heartbeat(&db, "only", "w2").await.unwrap());

        job::ActiveModel { id: Set("only".into()), lease_expires_at: Set(Some(0)), ..Default::default() }.update(&db).await.unwrap();
        assert_eq!(claim(&db, "w2").await.unwrap().as_deref(), Some("only"));
        assert!(!heartbeat(&db, "only", "w1").await.unwrap(), "w1 lost the lease");
    }

    #[tokio::test]
    async fn a_restarted_worker_takes_back_its_own_jobs_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_jobs(dir.path(), &["only"]).await;
        assert!(claim(&db, "w1").await.unwrap().is_some());
        assert_eq!(claim(&db, "w1").await.unwrap(), None);
        assert_eq!(release_all(&db, "w1").await.unwrap(), 1);
        assert_eq!(claim(&db, "w1").await.unwrap().as_deref(), Some("only"));
    }
}
