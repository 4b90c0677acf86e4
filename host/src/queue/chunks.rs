//! Chunk tasks of ultrafast jobs, in the `chunks` table: a job's coordinating worker
//! creates them, any worker claims one (a lease renewed by heartbeat, `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, attempts counted), encodes it and marks it done. A chunk whose
//! worker died is claimed again once its lease expires; one that failed `max_attempts`
//! times is `failed`, and its job's coordinator fails the outputs naming it.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult, Statement, TransactionTrait};

use crate::config::QueueConfig;
use crate::db::now_ms;

/// A chunk as a worker claims it.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub id: i64,
    pub job_id: String,
    pub idx: i32,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// What to encode (the coordinator's JSON).
    pub payload: String,
}

/// Where a chunk stands, for its job's coordinator.
#[derive(Debug, Clone)]
pub struct ChunkState {
    pub id: i64,
    pub idx: i32,
    pub status: String,
    pub attempts: i32,
    /// Per mille.
    pub progress: i32,
    pub error: Option<String>,
    /// Whether a worker holds it now.
    pub leased: bool,
}

fn statement(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

/// Replace the chunks of `job_id` (an earlier coordinator's, if any) with new ones.
pub async fn create(db: &DatabaseConnection, job_id: &str, ranges: &[(Option<i64>, Option<i64>)], payload: &str) -> Result<(), DbErr> {
    {
        let _writer = crate::db::writer(db).await;
        let txn = db.begin().await?;
        let backend = db.get_database_backend();
        txn.execute(Statement::from_sql_and_values(backend, "DELETE FROM chunks WHERE job_id = $1", [job_id.into()])).await?;
        let now = now_ms();
        for (idx, (start, end)) in ranges.iter().enumerate() {
            txn.execute(Statement::from_sql_and_values(
                backend,
                "INSERT INTO chunks (job_id, idx, start_pts, end_pts, status, attempts, progress, payload, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', 0, 0, $5, $6)",
                [job_id.into(), (idx as i32).into(), (*start).into(), (*end).into(), payload.into(), now.into()],
            ))
            .await?;
        }
        txn.commit().await?;
    }
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // Other processes' workers claim at once instead of at their next poll.
        let notify = statement(db, "SELECT pg_notify($1, $2)", vec![super::CHANNEL.into(), job_id.into()]);
        if let Err(err) = db.execute(notify).await {
            tracing::warn!(%err, job_id, "NOTIFY of new chunks failed; workers will find them on their next poll");
        }
    }
    Ok(())
}

/// Claim a pending chunk whose lease is free or expired (of `job_id` only, if given),
/// oldest job first, in order within a job.
pub async fn claim(db: &DatabaseConnection, worker: &str, settings: &QueueConfig, max_attempts: i32, job_id: Option<&str>) -> Result<Option<Chunk>, DbErr> {
    let backend = db.get_database_backend();
    let now = now_ms();
    let expires = now + settings.lease.as_millis() as i64;
    let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let free = "status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at < $3) AND attempts < $4 AND ($5 = '' OR job_id = $5)";
    let sql = format!(
        "UPDATE chunks SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM chunks WHERE {free} ORDER BY created_at, job_id, idx LIMIT 1 {lock}) AND {free} \
         RETURNING id, job_id, idx, start_pts, end_pts, payload"
    );
    let values = vec![worker.into(), expires.into(), now.into(), max_attempts.into(), job_id.unwrap_or("").into()];
    let row = {
        let _writer = crate::db::writer(db).await;
        db.query_one(statement(db, &sql, values)).await?
    };
    row.map(|r| {
        Ok(Chunk {
            id: r.try_get("", "id")?,
            job_id: r.try_get("", "job_id")?,
            idx: r.try_get("", "idx")?,
            start: r.try_get("", "start_pts")?,
            end: r.try_get("", "end_pts")?,
            payload: r.try_get("", "payload")?,
        })
    })
    .transpose()
}

/// Renew the lease of a chunk `worker` holds and record its progress (per mille).
/// Returns false if the lease was lost (or the chunk is gone).
pub async fn heartbeat(db: &DatabaseConnection, id: i64, worker: &str, settings: &QueueConfig, progress: i32) -> Result<bool, DbErr> {
    let expires = now_ms() + settings.lease.as_millis() as i64;
    let sql = "UPDATE chunks SET lease_expires_at = $1, progress = $4 WHERE id = $2 AND lease_owner = $3 AND status = 'pending'";
    let _writer = crate::db::writer(db).await;
    let result = db.execute(statement(db, sql, vec![expires.into(), id.into(), worker.into(), progress.clamp(0, 1000).into()])).await?;
    Ok(result.rows_affected() == 1)
}

/// Mark a chunk `worker` holds as done. Returns false if the lease was lost.
pub async fn finish(db: &DatabaseConnection, id: i64, worker: &str) -> Result<bool, DbErr> {
    let sql = "UPDATE chunks SET status = 'done', progress = 1000, lease_owner = NULL, lease_expires_at = NULL \
               WHERE id = $1 AND lease_owner = $2 AND status = 'pending'";
    let _writer = crate::db::writer(db).await;
    Ok(db.execute(statement(db, sql, vec![id.into(), worker.into()])).await?.rows_affected() == 1)
}

/// A chunk's encode failed: give it back for another attempt, or after `max_attempts`
/// mark it failed with `error`.
pub async fn fail(db: &DatabaseConnection, id: i64, worker: &str, error: &str, max_attempts: i32) -> Result<(), DbErr> {
    let sql = "UPDATE chunks SET lease_owner = NULL, lease_expires_at = NULL, error = $3, \
               status = CASE WHEN attempts >= $4 THEN 'failed' ELSE 'pending' END \
               WHERE id = $1 AND lease_owner = $2 AND status = 'pending'";
    let _writer = crate::db::writer(db).await;
    db.execute(statement(db, sql, vec![id.into(), worker.into(), error.into(), max_attempts.into()])).await?;
    Ok(())
}

/// Free the chunk leases `worker` holds (at start, or a chunk stopped at shutdown,
/// which is then not counted as an attempt).
pub async fn release(db: &DatabaseConnection, worker: &str, id: Option<i64>) -> Result<u64, DbErr> {
    let sql = "UPDATE chunks SET lease_owner = NULL, lease_expires_at = NULL, \
               attempts = CASE WHEN $2 <> 0 AND attempts > 0 THEN attempts - 1 ELSE attempts END \
               WHERE lease_owner = $1 AND status = 'pending' AND ($2 = 0 OR id = $2)";
    let _writer = crate::db::writer(db).await;
    Ok(db.execute(statement(db, sql, vec![worker.into(), id.unwrap_or(0).into()])).await?.rows_affected())
}

/// The chunks of a job, in order.
pub async fn states(db: &DatabaseConnection, job_id: &str) -> Result<Vec<ChunkState>, DbErr> {
    let sql = "SELECT id, idx, status, attempts, progress, error, lease_expires_at FROM chunks WHERE job_id = $1 ORDER BY idx";
    let rows = db.query_all(statement(db, sql, vec![job_id.into()])).await?;
    let now = now_ms();
    rows.iter().map(|r: &QueryResult| {
        let expires: Option<i64> = r.try_get("", "lease_expires_at")?;
        Ok(ChunkState {
            id: r.try_get("", "id")?,
            idx: r.try_get("", "idx")?,
            status: r.try_get("", "status")?,
            attempts: r.try_get("", "attempts")?,
            progress: r.try_get("", "progress")?,
            error: r.try_get("", "error")?,
            leased: expires.is_some_and(|e| e >= now),
        })
    })
    .collect()
}

/// Forget a job's chunks (its outputs are joined, or it ended).
pub async fn delete(db: &DatabaseConnection, job_id: &str) -> Result<(), DbErr> {
    let _writer = crate::db::writer(db).await;
    db.execute(statement(db, "DELETE FROM chunks WHERE job_id = $1", vec![job_id.into()])).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_are_claimed_once_retried_and_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display())).await.unwrap();
        let settings = QueueConfig::default();
        create(&db, "j1", &[(None, Some(10)), (Some(10), None)], "{}").await.unwrap();
        let first = claim(&db, "a", &settings, 2, None).await.unwrap().unwrap();
        let second = claim(&db, "b", &settings, 2, Some("j1")).await.unwrap().unwrap();
        assert_eq!((first.idx, first.start, first.end), (0, None, Some(10)));
        assert_eq!((second.idx, second.start, second.end), (1, Some(10), None));
        assert!(claim(&db, "c", &settings, 2, None).await.unwrap().is_none(), "both are leased");
        assert!(claim(&db, "c", &settings, 2, Some("other")).await.unwrap().is_none());

        // Only the holder writes; a failure gives the chunk back until its attempts are spent.
        assert!(!heartbeat(&db, first.id, "b", &settings, 500).await.unwrap());
        assert!(heartbeat(&db, first.id, "a", &settings, 500).await.unwrap());
        fail(&db, first.id, "a", "boom", 2).await.unwrap();
        let again = claim(&db, "c", &settings, 2, None).await.unwrap().unwrap();
        assert_eq!(again.id, first.id);
        fail(&db, again.id, "c", "boom again", 2).await.unwrap();
        assert!(finish(&db, second.id, "b").await.unwrap());
        let seen = states(&db, "j1").await.unwrap();
        assert_eq!(seen.iter().map(|s| (s.status.as_str(), s.attempts)).collect::<Vec<_>>(), [("failed", 2), ("done", 1)]);
        assert_eq!(seen[0].error.as_deref(), Some("boom again"));
        assert!(claim(&db, "c", &settings, 2, None).await.unwrap().is_none(), "a failed chunk is not claimed");

        // A new coordinator replaces the chunks; a stopped chunk's claim is refunded.
        create(&db, "j1", &[(None, None)], "{}").await.unwrap();
        let fresh = claim(&db, "a", &settings, 2, None).await.unwrap().unwrap();
        assert_eq!(release(&db, "a", Some(fresh.id)).await.unwrap(), 1);
        assert_eq!(states(&db, "j1").await.unwrap()[0].attempts, 0);
        delete(&db, "j1").await.unwrap();
        assert!(states(&db, "j1").await.unwrap().is_empty());
    }
}
