//! What runs beside a job: the heartbeat that keeps its lease, and the stall watch. A
//! job whose encode has not moved (its progress is the same and the engine reported
//! nothing, its input transferred and its encode not at its end) for `[worker]
//! stall_after_secs` is reported with a `job.stalled` event and a log line, stopped,
//! and its lease released, so another worker (or this one) tries it again; the claim
//! counts as an attempt.
//!
//! The percent alone does not tell: an input longer than its container declares sits at
//! 99 % for the rest of its decode, one without a duration at 0 %. So the engine's
//! reports (progress while it decodes, even at the same percent; files as they are
//! made) are counted in an [`Activity`], and while the engine runs the job is watched
//! at any percent. Once the engine has returned, a job at 99 % is uploading, which has
//! its own idle timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// The engine's signs of life.
    pub activity: Arc<Activity>,
}

/// What a job's encode shows of its life beside its percent.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Engines running for the job now.
    encoding: AtomicU64,
    /// Reports seen from them.
    ticks: AtomicU64,
}

impl Activity {
    /// An engine runs until the guard is dropped.
    pub fn encoding(&self) -> Encoding<'_> {
        self.encoding.fetch_add(1, Ordering::Relaxed);
        Encoding(self)
    }

    /// The engine reported something.
    pub fn tick(&self) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }

    fn running(&self) -> bool {
        self.encoding.load(Ordering::Relaxed) > 0
    }

    fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
}

/// An engine running for a job (see [`Activity::encoding`]).
pub(super) struct Encoding<'a>(&'a Activity);

impl Drop for Encoding<'_> {
    fn drop(&mut self) {
        self.0.encoding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Watch {
    /// Renew the lease every heartbeat and watch the progress, until the lease is lost
    /// or the job stalls (the caller aborts it when the job ends).
    pub async fn run(self) {
        let job_id = self.lease.job_id.as_str();
        // The last progress and count of reports seen, and since when.
        let mut seen: Option<((i32, u64), Instant)> = None;
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
            // finished encode's uploads too (at 99 % once the engine has returned).
            if row.input_status != InputStatus::Transferred || (row.progress >= 99 && !self.activity.running()) {
                seen = None;
                continue;
            }
            let mark = (row.progress, self.activity.ticks());
            match seen {
                Some((last, since)) if last == mark => {
                    if since.elapsed() >= after {
                        self.stall(&row, since.elapsed()).await;
                        return;
                    }
                }
                _ => seen = Some((mark, Instant::now())),
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
        db_with_job_at(dir, input_status, 40).await
    }

    async fn db_with_job_at(dir: &std::path::Path, input_status: InputStatus, progress: i32) -> DatabaseConnection {
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.join("w.db").display())).await.unwrap();
        job::ActiveModel {
            id: Set("j".into()),
            owner: Set("o".into()),
            status: Set(JobStatus::Starting),
            input_status: Set(input_status),
            progress: Set(progress),
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
        watch_with(db, Arc::new(Activity::default()))
    }

    fn watch_with(db: &DatabaseConnection, activity: Arc<Activity>) -> (Watch, Arc<AtomicBool>, Arc<Notify>) {
        let (cancel, stalled) = (Arc::new(AtomicBool::new(false)), Arc::new(Notify::new()));
        let watch = Watch {
            db: db.clone(),
            lease: Lease { job_id: "j".into(), owner: "w1".into() },
            queue: QueueConfig { lease: Duration::from_millis(300), max_running_per_key: 0 },
            worker: WorkerConfig { shutdown_grace: Duration::from_secs(1), stall_after: Some(Duration::from_millis(400)), ..WorkerConfig::default() },
            cancel: cancel.clone(),
            stalled: stalled.clone(),
            activity,
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

    /// An encode at 99 % (an input longer than it declared) is still watched while its
    /// engine runs: silent, it stalls; reporting, it lives on. Once the engine has
    /// returned (uploads), 99 % is not watched.
    #[tokio::test]
    async fn an_encode_at_99_percent_is_watched_while_its_engine_runs() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_job_at(dir.path(), InputStatus::Transferred, 99).await;
        queue::claim(&db, "w1", &QueueConfig::default()).await.unwrap();

        // Reporting at the same percent: alive.
        let activity = Arc::new(Activity::default());
        let running = activity.encoding();
        let (watch, cancel, stalled) = watch_with(&db, activity.clone());
        let task = tokio::spawn(watch.run());
        let ticking = {
            let activity = activity.clone();
            tokio::spawn(async move {
                loop {
                    activity.tick();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        assert!(tokio::time::timeout(Duration::from_millis(1500), stalled.notified()).await.is_err(), "a reporting encode stalled");
        assert!(!cancel.load(Ordering::Relaxed));
        ticking.abort();

        // Silent: stalled, although at 99 %.
        tokio::time::timeout(Duration::from_secs(10), stalled.notified()).await.expect("the silent encode at 99 % was seen");
        task.await.unwrap();
        assert!(cancel.load(Ordering::Relaxed));
        drop(running);

        // The engine has returned (uploads at 99 %): not watched.
        let again = dir.path().join("again");
        std::fs::create_dir_all(&again).unwrap();
        let db = db_with_job_at(&again, InputStatus::Transferred, 99).await;
        queue::claim(&db, "w1", &QueueConfig::default()).await.unwrap();
        let (watch, cancel, stalled) = watch_with(&db, Arc::new(Activity::default()));
        let task = tokio::spawn(watch.run());
        assert!(tokio::time::timeout(Duration::from_millis(1500), stalled.notified()).await.is_err(), "uploads at 99 % were stalled");
        task.abort();
        assert!(!cancel.load(Ordering::Relaxed));
    }
}
