//! Chunk tasks of ultrafast jobs, in the `chunks` table: a job's coordinating worker
//! creates them, any worker claims one (a lease renewed by heartbeat, `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, attempts counted), encodes it and marks it done. A chunk whose
//! worker died is claimed again once its lease expires; one that failed `max_attempts`
//! times is `failed`, and its job's coordinator fails the outputs naming it. A
//! coordinator that takes a job over carries on with its predecessor's chunks when it
//! cuts the input the same way: the done ones whose pieces are still there, and the
//! pending ones.

use std::collections::HashSet;

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

/// Make the chunks of `job_id`, one per range, each encoding `payload`, and return the
/// indexes of the done chunks kept. When the job had chunks already (its coordinator
/// died and this one took the job over) cut into the same ranges with the same payload,
/// they are kept as they are: done ones whose id is in `reusable` (their pieces are still
/// staged), pending ones with their attempts and leases (a worker encoding one goes on),
/// failed ones (the job fails naming them, as their coordinator would have). Only done
/// chunks whose pieces are gone are made afresh. Cut otherwise, every chunk is made
/// afresh (new ids, so no earlier piece is taken for one of theirs; no attempts).
pub async fn create(
    db: &DatabaseConnection,
    job_id: &str,
    ranges: &[(Option<i64>, Option<i64>)],
    payload: &str,
    reusable: &HashSet<i64>,
) -> Result<Vec<i32>, DbErr> {
    let kept = {
        let _writer = crate::db::writer(db).await;
        let txn = db.begin().await?;
        let backend = db.get_database_backend();
        let sql = "SELECT id, job_id, idx, start_pts, end_pts, payload, status, created_at FROM chunks WHERE job_id = $1 ORDER BY idx";
        let earlier = txn.query_all(Statement::from_sql_and_values(backend, sql, [job_id.into()])).await?;
        let earlier = earlier.iter().map(Earlier::from_row).collect::<Result<Vec<_>, DbErr>>()?;
        let same_cut = earlier.len() == ranges.len()
            && earlier.iter().zip(ranges).enumerate().all(|(i, (e, range))| {
                let c = &e.chunk;
                usize::try_from(c.idx).is_ok_and(|idx| idx == i) && (c.start, c.end) == *range && c.payload == payload
            });
        let keep = |e: &Earlier| same_cut && (e.status != "done" || reusable.contains(&e.chunk.id));
        for e in earlier.iter().filter(|e| !keep(e)) {
            txn.execute(Statement::from_sql_and_values(backend, "DELETE FROM chunks WHERE id = $1", [e.chunk.id.into()])).await?;
        }
        let kept: Vec<i32> = earlier.iter().filter(|e| keep(e)).map(|e| e.chunk.idx).collect();
        // Chunks are claimed oldest job first: a job taken over keeps its place.
        let now = earlier.iter().map(|e| e.created_at).min().unwrap_or_else(now_ms);
        for (idx, (start, end)) in ranges.iter().enumerate() {
            let idx = idx as i32;
            if kept.contains(&idx) {
                continue;
            }
            txn.execute(Statement::from_sql_and_values(
                backend,
                "INSERT INTO chunks (job_id, idx, start_pts, end_pts, status, attempts, progress, payload, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', 0, 0, $5, $6)",
                [job_id.into(), idx.into(), (*start).into(), (*end).into(), payload.into(), now.into()],
            ))
            .await?;
        }
        txn.commit().await?;
        earlier.iter().filter(|e| keep(e) && e.status == "done").map(|e| e.chunk.idx).collect::<Vec<i32>>()
    };
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // Other processes' workers claim at once instead of at their next poll.
        let notify = statement(db, "SELECT pg_notify($1, $2)", vec![super::CHANNEL.into(), job_id.into()]);
        if let Err(err) = db.execute(notify).await {
            tracing::warn!(%err, job_id, "NOTIFY of new chunks failed; workers will find them on their next poll");
        }
    }
    Ok(kept)
}

/// A chunk row as an earlier coordinator left it.
struct Earlier {
    chunk: Chunk,
    status: String,
    created_at: i64,
}

impl Earlier {
    fn from_row(r: &QueryResult) -> Result<Self, DbErr> {
        Ok(Earlier { chunk: Chunk::from_row(r)?, status: r.try_get("", "status")?, created_at: r.try_get("", "created_at")? })
    }
}

impl Chunk {
    fn from_row(r: &QueryResult) -> Result<Self, DbErr> {
        Ok(Chunk {
            id: r.try_get("", "id")?,
            job_id: r.try_get("", "job_id")?,
            idx: r.try_get("", "idx")?,
            start: r.try_get("", "start_pts")?,
            end: r.try_get("", "end_pts")?,
            payload: r.try_get("", "payload")?,
        })
    }
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
    row.as_ref().map(Chunk::from_row).transpose()
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
        create(&db, "j1", &[(None, Some(10)), (Some(10), None)], "{}", &HashSet::new()).await.unwrap();
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
        assert!(create(&db, "j1", &[(None, None)], "{}", &HashSet::from([second.id])).await.unwrap().is_empty(), "cut otherwise");
        let fresh = claim(&db, "a", &settings, 2, None).await.unwrap().unwrap();
        assert_eq!(release(&db, "a", Some(fresh.id)).await.unwrap(), 1);
        assert_eq!(states(&db, "j1").await.unwrap()[0].attempts, 0);
        delete(&db, "j1").await.unwrap();
        assert!(states(&db, "j1").await.unwrap().is_empty());
    }

    async fn sqlite() -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display())).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn a_new_coordinator_carries_on_with_the_chunks_it_can() {
        let (_dir, db) = sqlite().await;
        let settings = QueueConfig::default();
        let ranges = [(None, Some(10)), (Some(10), Some(20)), (Some(20), Some(30)), (Some(30), Some(40)), (Some(40), None)];
        create(&db, "j1", &ranges, "plan", &HashSet::new()).await.unwrap();
        create(&db, "j2", &ranges[..2], "plan", &HashSet::new()).await.unwrap();
        // The first coordinator's chunks: 0 and 1 done, 2 failed for good, 3 failed once
        // and held again by a live worker, 4 never claimed.
        let mut held = Vec::new();
        for worker in ["a", "b", "c", "d"] {
            held.push(claim(&db, worker, &settings, 1, Some("j1")).await.unwrap().unwrap());
        }
        assert!(finish(&db, held[0].id, "a").await.unwrap() && finish(&db, held[1].id, "b").await.unwrap());
        fail(&db, held[2].id, "c", "boom", 1).await.unwrap();
        fail(&db, held[3].id, "d", "bang", 3).await.unwrap();
        let fourth = claim(&db, "e", &settings, 3, Some("j1")).await.unwrap().unwrap();
        assert_eq!((fourth.idx, fourth.id), (3, held[3].id));
        assert!(heartbeat(&db, fourth.id, "e", &settings, 400).await.unwrap());
        let before = states(&db, "j1").await.unwrap();

        // It died. The next one cuts the input the same way; chunk 1's pieces are gone.
        let kept = create(&db, "j1", &ranges, "plan", &HashSet::from([held[0].id])).await.unwrap();
        assert_eq!(kept, [0], "the done chunks kept");
        let after = states(&db, "j1").await.unwrap();
        assert_eq!(after.iter().map(|s| s.idx).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        for i in [0, 2, 3, 4] {
            let (old, new) = (&before[i], &after[i]);
            assert_eq!((old.id, &old.status, old.attempts, old.progress, &old.error, old.leased), (new.id, &new.status, new.attempts, new.progress, &new.error, new.leased), "chunk {i} is kept as it was");
        }
        assert_ne!(after[1].id, before[1].id, "chunk 1 is made afresh (its pieces get a new name)");
        assert_eq!((after[1].status.as_str(), after[1].attempts, after[1].progress), ("pending", 0, 0));
        // The worker encoding chunk 3 goes on and finishes it; chunk 1 is the next to claim.
        assert!(heartbeat(&db, fourth.id, "e", &settings, 900).await.unwrap());
        assert!(finish(&db, fourth.id, "e").await.unwrap());
        assert_eq!(claim(&db, "f", &settings, 3, Some("j1")).await.unwrap().unwrap().idx, 1);
        assert_eq!(states(&db, "j2").await.unwrap().len(), 2, "another job's chunks are untouched");

        // Cut otherwise, or another plan: every chunk is made afresh, even a done one with
        // its pieces.
        let done = [after[0].id];
        assert!(create(&db, "j1", &ranges, "another plan", &HashSet::from(done)).await.unwrap().is_empty());
        let fresh = states(&db, "j1").await.unwrap();
        assert!(fresh.iter().all(|s| s.status == "pending" && s.attempts == 0 && !s.leased && !before.iter().any(|b| b.id == s.id)));
        let first = claim(&db, "a", &settings, 3, Some("j1")).await.unwrap().unwrap();
        assert!(finish(&db, first.id, "a").await.unwrap());
        let moved = [(None, Some(12)), (Some(12), Some(20)), (Some(20), None)];
        assert!(create(&db, "j1", &moved, "another plan", &HashSet::from([first.id])).await.unwrap().is_empty());
        assert_eq!(states(&db, "j1").await.unwrap().len(), 3);
        // ... and the same cut again keeps it.
        let first = claim(&db, "a", &settings, 3, Some("j1")).await.unwrap().unwrap();
        assert!(finish(&db, first.id, "a").await.unwrap());
        assert_eq!(create(&db, "j1", &moved, "another plan", &HashSet::from([first.id])).await.unwrap(), [0]);
        assert_eq!(states(&db, "j1").await.unwrap()[0].id, first.id);
    }
}
