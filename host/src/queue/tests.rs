//! The claim's order and safety, on SQLite (the same statement runs on PostgreSQL; the
//! e2e tests run it there with many workers).

use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use super::*;
use crate::db::job;
use crate::db::status::{InputStatus, JobStatus};

fn settings(cap: u32) -> QueueConfig {
    QueueConfig { max_running_per_key: cap, ..QueueConfig::default() }
}

async fn connect(dir: &std::path::Path) -> DatabaseConnection {
    crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.join("q.db").display())).await.unwrap()
}

/// Jobs `(id, owner)`, created in this order.
async fn add(db: &DatabaseConnection, jobs: &[(&str, &str)]) {
    let base = now_ms() - 1_000_000;
    for (id, owner) in jobs {
        let created = base + job::Entity::find().all(db).await.unwrap().len() as i64;
        job::ActiveModel {
            id: Set(id.to_string()),
            owner: Set(owner.to_string()),
            status: Set(JobStatus::Starting),
            input_status: Set(InputStatus::Starting),
            progress: Set(0),
            spec: Set("{}".into()),
            input_metadata: Set(None),
            error: Set(None),
            created_at: Set(created),
            completed_at: Set(None),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            attempts: Set(0),
        }
        .insert(db)
        .await
        .unwrap();
    }
}

async fn finish(db: &DatabaseConnection, id: &str) {
    job::ActiveModel {
        id: Set(id.into()),
        status: Set(JobStatus::Completed),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        ..Default::default()
    }
    .update(db)
    .await
    .unwrap();
}

async fn claims(db: &DatabaseConnection, n: usize, cap: u32) -> Vec<Option<String>> {
    let mut got = Vec::new();
    for i in 0..n {
        got.push(claim(db, &format!("w{i}"), &settings(cap)).await.unwrap());
    }
    got
}

fn ids(list: &[&str]) -> Vec<Option<String>> {
    list.iter().map(|s| Some(s.to_string())).collect()
}

#[tokio::test]
async fn claims_oldest_first_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(dir.path()).await;
    add(&db, &[("first", "o"), ("second", "o")]).await;
    assert_eq!(claims(&db, 3, 0).await, [ids(&["first", "second"]), vec![None]].concat());
    let first = job::Entity::find_by_id("first".to_string()).one(&db).await.unwrap().unwrap();
    assert_eq!((first.lease_owner.as_deref(), first.attempts), (Some("w0"), 1));
}

#[tokio::test]
async fn expired_leases_are_claimed_again_and_heartbeats_check_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(dir.path()).await;
    add(&db, &[("only", "o")]).await;
    let s = QueueConfig::default();
    assert!(claim(&db, "w1", &s).await.unwrap().is_some());
    assert!(heartbeat(&db, "only", "w1", &s).await.unwrap());
    assert!(!heartbeat(&db, "only", "w2", &s).await.unwrap());

    job::ActiveModel { id: Set("only".into()), lease_expires_at: Set(Some(0)), ..Default::default() }.update(&db).await.unwrap();
    assert_eq!(claim(&db, "w2", &s).await.unwrap().as_deref(), Some("only"));
    assert!(!heartbeat(&db, "only", "w1", &s).await.unwrap(), "w1 lost the lease");
}

#[tokio::test]
async fn a_restarted_worker_takes_back_its_own_jobs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(dir.path()).await;
    add(&db, &[("only", "o")]).await;
    let s = QueueConfig::default();
    assert!(claim(&db, "w1", &s).await.unwrap().is_some());
    assert_eq!(claim(&db, "w1", &s).await.unwrap(), None);
    assert_eq!(release_all(&db, "w1").await.unwrap(), 1);
    assert_eq!(claim(&db, "w1", &s).await.unwrap().as_deref(), Some("only"));
}

#[tokio::test]
async fn a_key_with_fewer_running_jobs_goes_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(dir.path()).await;
    // `big` queued three jobs before `small` queued its one.
    add(&db, &[("a1", "big"), ("a2", "big"), ("a3", "big"), ("b1", "small")]).await;
    assert_eq!(claims(&db, 4, 0).await, ids(&["a1", "b1", "a2", "a3"]));
}

#[tokio::test]
async fn with_one_slot_claims_rotate_between_keys() {
    // One worker running one job at a time: nothing is running at each claim, so the
    // key served least recently goes first.
    let dir = tempfile::tempdir().unwrap();
    let db = connect(dir.path()).await;
    add(&db, &[("a1", "big"), ("a2", "big"), ("a3", "big"), ("b1", "small"), ("b2", "small"), ("c1", "third")]).await;
    let mut order = Vec::new();
    while let Some(id) = claim(&db, "w", &settings(0)).await.unwrap() {
        finish(&db, &id).await;
        order.push(id);
        // Claims in one millisecond would tie on the latest claim.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    assert_eq!(order, ["a1", "b1", "c1", "a2", "b2", "a3"]);
}

#[tokio::test]
async fn a_key_at_its_cap_waits_while_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(dir.path()).await;
    add(&db, &[("a1", "big"), ("a2", "big"), ("a3", "big"), ("b1", "small")]).await;
    // Cap 1: one job of each key, then nothing until one ends.
    assert_eq!(claims(&db, 3, 1).await, [ids(&["a1", "b1"]), vec![None]].concat());
    finish(&db, "a1").await;
    assert_eq!(claim(&db, "w", &settings(1)).await.unwrap().as_deref(), Some("a2"));
    // An expired lease does not count as running.
    job::ActiveModel { id: Set("a2".into()), lease_expires_at: Set(Some(0)), ..Default::default() }.update(&db).await.unwrap();
    assert_eq!(claim(&db, "w", &settings(1)).await.unwrap().as_deref(), Some("a2"));
}

#[tokio::test]
async fn release_frees_the_lease_and_refunds_the_attempt_if_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(dir.path()).await;
    add(&db, &[("only", "o")]).await;
    let s = QueueConfig::default();
    claim(&db, "w1", &s).await.unwrap();
    assert!(!release(&db, "only", "w2", true).await.unwrap(), "not w2's lease");
    assert!(release(&db, "only", "w1", true).await.unwrap());
    let row = job::Entity::find_by_id("only".to_string()).one(&db).await.unwrap().unwrap();
    assert_eq!((row.lease_owner, row.lease_expires_at, row.attempts), (None, None, 0));
    claim(&db, "w2", &s).await.unwrap();
    assert!(release(&db, "only", "w2", false).await.unwrap());
    let row = job::Entity::find_by_id("only".to_string()).one(&db).await.unwrap().unwrap();
    assert_eq!(row.attempts, 1, "a stalled claim counts");
}
