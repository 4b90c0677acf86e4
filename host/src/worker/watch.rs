//! What runs beside a job: the heartbeat that keeps its lease, and the stall watch. A
//! job whose encode has not moved (its progress is the same, its input transferred and
//! its encode not at its end) for `[worker] stall_after_secs` is reported with a
//! `job.stalled` event and a log line, stopped, and its lease released, so another
//! worker (or this one) tries it again; the claim counts as an attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::json;
use tokio::sync::Notify;

use crate::config::{QueueConfig, WorkerConfig};
use crate::db::jobs::{self, JobChange, Lease, NewEvent};
use crate::db::{job, status::EventName, status::InputStatus};
use crate::queue;

pub(super) struct Watch {
    pub db: DatabaseConnection,
    pub lease: Lease,
    pub queue: QueueConfig,
    pub worker: WorkerConfig,
    /// Set when the job must stop: its lease was lost, or it stalled.
    pub cancel: Arc<AtomicBool>,
    /// Told when the job stalled (after its lease was released).
    pub stalled: Arc<Notify>,
}

impl Watch {
    /// Renew the lease every heartbeat and watch the progress, until the lease is lost
    /// or the job stalls (the caller aborts it when the job ends).
    pub async fn run(self) {
        let job_id = self.lease.job_id.as_str();
        // The last progress seen, and since when.
        let mut seen: Option<(i32, Instant)> = None;
        loop {
            tokio::time::sleep(self.queue.heartbeat()).await;
            if !matches!(queue::heartbeat(&self.db, job_id, &self.lease.owner, &self.queue).await, Ok(true)) {
                tracing::warn!(job_id, "lease lost; stopping work on the job");
                self.cancel.store(true, Ordering::Relaxed);
                return;
            }
            let Some(after) = self.worker.stall_after else { continue };
            let Ok(Some(row)) = job::Entity::find_by_id(job_id.to_string()).one(&self.db).await else { continue };
            // Only an encode is watched: transfers have their own idle timeouts, and a
            // finished encode's uploads too.
            if row.input_status != InputStatus::Transferred || row.progress >= 99 {
                seen = None;
                continue;
            }
            match seen {
                Some((progress, since)) if progress == row.progress => {
                    if since.elapsed() >= after {
                        self.stall(&row, since.elapsed()).await;
                        return;
                    }
                }
                _ => seen = Some((row.progress, Instant::now())),
            }
        }
    }

    async fn stall(&self, row: &job::Model, still_for: Duration) {
        let job_id = self.lease.job_id.as_str();
        let (progress, attempt, worker) = (row.progress, row.attempts, self.lease.owner.clone());
        tracing::warn!(job_id, progress, attempt, still_secs = still_for.as_secs(), "job stalled: its encode has not moved; giving it back for another attempt");
        let event = NewEvent {
            name: EventName::JobStalled,
            dedupe_key: format!("job.stalled:{attempt}"),
            deliver: false,
            payload: Box::new(move |job, _| {
                json!({
                    "event": EventName::JobStalled.as_str(),
                    "job_id": job.id,
                    "data": {"progress": progress, "attempt": attempt, "worker": worker, "still_secs": still_for.as_secs()},
                })
            }),
        };
        if let Err(err) = jobs::apply(&self.db, &self.lease, JobChange::default(), Vec::new(), Some(event)).await {
            tracing::warn!(job_id, %err, "the stall was not recorded");
        }
        self.cancel.store(true, Ordering::Relaxed);
        if let Err(err) = queue::release(&self.db, job_id, &self.lease.owner, false).await {
            tracing::warn!(job_id, %err, "the stalled job's lease was not released; it frees when it expires");
        }
        self.stalled.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, Set};

    use super::*;
    use crate::db::status::JobStatus;

    async fn db_with_job(dir: &std::path::Path, input_status: InputStatus) -> DatabaseConnection {
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.join("w.db").display())).await.unwrap();
        job::ActiveModel {
            id: Set("j".into()),
            owner: Set("o".into()),
            status: Set(JobStatus::Starting),
            input_status: Set(input_status),
            progress: Set(40),
            spec: Set("{}".into()),
            input_metadata: Set(None),
            error: Set(None),
            created_at: Set(1),
            completed_at: Set(None),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            attempts: Set(0),
        }
        .insert(&db)
        .await
        .unwrap();
        db
    }

    fn watch(db: &DatabaseConnection) -> (Watch, Arc<AtomicBool>, Arc<Notify>) {
        let (cancel, stalled) = (Arc::new(AtomicBool::new(false)), Arc::new(Notify::new()));
        let watch = Watch {
            db: db.clone(),
            lease: Lease { job_id: "j".into(), owner: "w1".into() },
            queue: QueueConfig { lease: Duration::from_millis(300), max_running_per_key: 0 },
            worker: WorkerConfig { shutdown_grace: Duration::from_secs(1), stall_after: Some(Duration::from_millis(400)), ..WorkerConfig::default() },
            cancel: cancel.clone(),
            stalled: stalled.clone(),
        };
        (watch, cancel, stalled)
    }

    #[tokio::test]
    async fn an_encode_that_does_not_move_is_reported_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_job(dir.path(), InputStatus::Transferred).await;
        let settings = QueueConfig::default();
        assert_eq!(queue::claim(&db, "w1", &settings).await.unwrap().as_deref(), Some("j"));
        let (watch, cancel, stalled) = watch(&db);
        let task = tokio::spawn(watch.run());
        tokio::time::timeout(Duration::from_secs(10), stalled.notified()).await.expect("the stall was seen");
        task.await.unwrap();
        assert!(cancel.load(Ordering::Relaxed), "the job was told to stop");
        let row = job::Entity::find_by_id("j".to_string()).one(&db).await.unwrap().unwrap();
        assert_eq!((row.lease_owner, row.attempts), (None, 1), "lease released, the attempt counted");
        let events = jobs::events(&db, "j").await.unwrap();
        assert_eq!(events.iter().map(|e| (e.event, e.pending)).collect::<Vec<_>>(), [(EventName::JobStalled, false)]);
        assert_eq!(queue::claim(&db, "w2", &settings).await.unwrap().as_deref(), Some("j"), "another worker takes it");
    }

    #[tokio::test]
    async fn a_transfer_is_not_an_encode_and_is_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_job(dir.path(), InputStatus::Transferring).await;
        queue::claim(&db, "w1", &QueueConfig::default()).await.unwrap();
        let (watch, cancel, stalled) = watch(&db);
        let task = tokio::spawn(watch.run());
        assert!(tokio::time::timeout(Duration::from_millis(1500), stalled.notified()).await.is_err());
        task.abort();
        assert!(!cancel.load(Ordering::Relaxed));
        let row = job::Entity::find_by_id("j".to_string()).one(&db).await.unwrap().unwrap();
        assert_eq!(row.lease_owner.as_deref(), Some("w1"), "the heartbeat kept the lease");
    }
}
