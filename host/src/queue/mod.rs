//! The durable job queue lives in the `jobs` table. A worker claims an unfinished job
//! whose lease is free or expired (fairly between API keys, oldest first within one), renews the lease while it works, and
//! clears it when the job ends. On PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`,
//! so many workers never take the same job; on SQLite one statement does it under the
//! database's single writer. Claims rotate between API keys (see [`claim`]).
//!
//! Workers are woken by [`enqueue`] (in this process) and by PostgreSQL's
//! `LISTEN/NOTIFY` (see [`listen`]) from other processes; a short poll is the fallback.

pub mod chunks;
mod identity;
mod listen;
pub use identity::Identity;
pub use listen::{CHANNEL, listen};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement, TransactionTrait};

use crate::config::QueueConfig;
use crate::db::{self, job, now_ms, output};

/// Put a new job (with its outputs) on the queue, and wake the workers: this process's
/// through `wake`, every other process's through `NOTIFY copra_jobs` on PostgreSQL.
/// Returns the rows as stored.
pub async fn enqueue(
    db: &DatabaseConnection,
    job: job::Model,
    outputs: Vec<output::Model>,
    wake: &tokio::sync::Notify,
) -> Result<(job::Model, Vec<output::Model>), DbErr> {
    // The rows as stored, taken before the worker is woken: the answer is the job as
    // submitted, not as a worker that already took it has made it. On PostgreSQL the
    // insert's own statement sends the NOTIFY, delivered once the job is committed, so a
    // woken worker finds it.
    let stored = db::jobs::insert(db, job, outputs, CHANNEL).await?;
    wake.notify_one();
    Ok(stored)
}

/// Claim one job for `worker`; returns its id.
///
/// Fair between API keys (the job's `owner`): among keys with claimable work and fewer
/// than `max_running_per_key` jobs running (0: no cap), the claim takes the key with
/// the fewest jobs running, then the one whose latest claim is oldest, then that key's
/// oldest job. One statement; on PostgreSQL the chosen row is locked with `SKIP LOCKED`,
/// so concurrent claimers never take the same job, and with a cap the claims take turns
/// so concurrent claimers never pass it.
pub async fn claim(db: &DatabaseConnection, worker: &str, settings: &QueueConfig) -> Result<Option<String>, DbErr> {
    let backend = db.get_database_backend();
    let now = now_ms();
    let expires = now + settings.lease.as_millis() as i64;
    let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE OF j SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE jobs SET lease_owner = $1, lease_expires_at = $2, claimed_at = $3, attempts = attempts + 1 \
         WHERE id = (\
             SELECT j.id FROM jobs j \
             JOIN (SELECT s.owner, \
                          SUM(CASE WHEN s.lease_expires_at >= $3 THEN 1 ELSE 0 END) AS running, \
                          (SELECT MAX(c.claimed_at) FROM jobs c WHERE c.owner = s.owner) AS last_claim \
                   FROM jobs s WHERE s.status = 'job.starting' GROUP BY s.owner) k ON k.owner = j.owner \
             WHERE j.status = 'job.starting' AND (j.lease_expires_at IS NULL OR j.lease_expires_at < $3) \
               AND ($4 = 0 OR k.running < $4) \
             ORDER BY k.running, COALESCE(k.last_claim, 0), j.created_at, j.id \
             LIMIT 1 {lock}) \
         AND status = 'job.starting' AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
         RETURNING id"
    );
    let cap = i64::from(settings.max_running_per_key);
    let claim = Statement::from_sql_and_values(backend, sql, [worker.into(), expires.into(), now.into(), cap.into()]);
    let row = if backend == DatabaseBackend::Postgres && cap > 0 {
        // With a cap, claims take turns (a transaction-scoped advisory lock): each one's
        // statement starts after the previous claim committed and counts it, so two
        // workers claiming at once never pass a key's cap. Without a cap, SKIP LOCKED
        // alone keeps claims apart and they run side by side.
        let txn = db.begin().await?;
        txn.execute(Statement::from_sql_and_values(backend, "SELECT pg_advisory_xact_lock($1)", [CLAIM_LOCK.into()])).await?;
        let row = txn.query_one(claim).await?;
        txn.commit().await?;
        row
    } else {
        db.query_one(claim).await?
    };
    row.map(|r| r.try_get::<String>("", "id")).transpose()
}

/// An arbitrary constant naming the claim lock among the database's advisory locks.
const CLAIM_LOCK: i64 = 0x636f_7072_615f_636c;

/// Extend the lease of a job this worker holds. Returns false if the lease was lost.
pub async fn heartbeat(db: &DatabaseConnection, job_id: &str, worker: &str, settings: &QueueConfig) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let expires = now_ms() + settings.lease.as_millis() as i64;
    let result = db
        .execute(Statement::from_sql_and_values(
            backend,
            "UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3",
            [expires.into(), job_id.into(), worker.into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Give back the lease `worker` holds on an unfinished job, so any worker may claim it
/// at once. `refund_attempt`: the claim does not count as an attempt (a worker shutting
/// down is not the job's fault); a stalled job keeps it. Returns whether the lease was held.
pub async fn release(db: &DatabaseConnection, job_id: &str, worker: &str, refund_attempt: bool) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let result = db
        .execute(Statement::from_sql_and_values(
            backend,
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL, \
             attempts = CASE WHEN $3 AND attempts > 0 THEN attempts - 1 ELSE attempts END \
             WHERE id = $1 AND lease_owner = $2 AND status = 'job.starting'",
            [job_id.into(), worker.into(), refund_attempt.into()],
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
mod tests;
