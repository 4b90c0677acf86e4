//! The notification outbox: claims of owed events, the result of each attempt,
//! redelivery on request, and the delivery log.
//!
//! Several processes may deliver from one database. A process claims due events with a
//! short lease (`claimed_by`, `claimed_until`): on PostgreSQL with `FOR UPDATE SKIP
//! LOCKED`, on SQLite in one statement under its single writer. Only the oldest owed
//! event of each job can be claimed, so a job's events go out in order whichever
//! process sends them. A process that dies leaves claims that expire; another process
//! then delivers those events (at least once: the stable `webhook-id` lets receivers
//! drop a duplicate). Claims are made per tenant (`events.owner`), so the notifier can
//! share its slots between tenants (`crate::notify`'s fairness).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, Statement, TransactionTrait, Value,
};

use super::{event, now_ms, webhook_attempt};

/// Most tenants one look at the outbox considers.
const MAX_TENANTS: u64 = 1000;

/// The tenants (`events.owner`) that have due events no live claim holds, at `now`
/// (Unix ms). One index range read (`events_due_owner`).
pub async fn due_tenants(db: &DatabaseConnection, now: i64) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT DISTINCT owner FROM events \
         WHERE pending AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
         LIMIT {MAX_TENANTS}"
    );
    let rows = db.query_all(Statement::from_sql_and_values(backend, sql, [now.into()])).await?;
    rows.iter().map(|row| row.try_get::<String>("", "owner")).collect()
}

/// Claim for `claimer` until `until` (Unix ms) up to `limit` due events of the tenant
/// `owner`: each the oldest owed event of its job, not claimed by a live claim, not going
/// to one of `skip_receivers` (receivers that have no room in this process). Oldest first.
pub async fn claim(
    db: &DatabaseConnection,
    claimer: &str,
    owner: &str,
    until: i64,
    limit: u64,
    skip_receivers: &[String],
) -> Result<Vec<event::Model>, DbErr> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let now = now_ms();
    let mut values: Vec<Value> = vec![claimer.into(), until.into(), now.into(), owner.into()];
    // Placeholders are numbered in the order they appear (SQLite binds them so).
    let skip = if skip_receivers.is_empty() {
        String::new()
    } else {
        let first = values.len() + 1;
        values.extend(skip_receivers.iter().map(|r| Value::from(r.as_str())));
        let list: Vec<String> = (first..first + skip_receivers.len()).map(|i| format!("${i}")).collect();
        format!("AND (e.receiver IS NULL OR e.receiver NOT IN ({}))", list.join(", "))
    };
    values.push((limit as i64).into());
    let limit_at = values.len();
    let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE events SET claimed_by = $1, claimed_until = $2 \
         WHERE id IN (SELECT e.id FROM events e \
                      WHERE e.pending AND e.next_attempt_at <= $3 \
                      AND (e.claimed_until IS NULL OR e.claimed_until < $3) \
                      AND e.owner = $4 \
                      AND NOT EXISTS (SELECT 1 FROM events o WHERE o.job_id = e.job_id AND o.pending AND o.id < e.id) \
                      {skip} \
                      ORDER BY e.id LIMIT ${limit_at} {lock}) \
         AND pending AND (claimed_until IS NULL OR claimed_until < $3) \
         RETURNING *"
    );
    let mut claimed = event::Entity::find().from_raw_sql(Statement::from_sql_and_values(backend, sql, values)).all(db).await?;
    claimed.sort_by_key(|e| e.id);
    Ok(claimed)
}

/// Note who receives an event (the first time the notifier works it out).
pub async fn set_receiver(db: &DatabaseConnection, id: i64, receiver: &str) -> Result<(), DbErr> {
    event::Entity::update_many()
        .col_expr(event::Column::Receiver, Expr::value(receiver))
        .filter(event::Column::Id.eq(id))
        .exec(db)
        .await
        .map(drop)
}

/// Give back a claim without an attempt (the receiver had no room): another pass, or
/// another process, takes the event.
pub async fn release(db: &DatabaseConnection, id: i64, owner: &str) -> Result<(), DbErr> {
    event::Entity::update_many()
        .col_expr(event::Column::ClaimedBy, Expr::value(Option::<String>::None))
        .col_expr(event::Column::ClaimedUntil, Expr::value(Option::<i64>::None))
        .filter(event::Column::Id.eq(id))
        .filter(event::Column::ClaimedBy.eq(owner))
        .exec(db)
        .await
        .map(drop)
}

/// What an attempt leaves the event as.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Sent: no longer owed.
    Delivered,
    /// Failed; tried again at `at` (Unix ms).
    Retry { at: i64 },
    /// Failed, and it was the schedule's last attempt: given up.
    Failed,
}

/// One attempt as it happened.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it started (Unix ms).
    pub started_at: i64,
    pub duration_ms: i64,
    /// The receiver's last HTTP status, if an answer arrived.
    pub status_code: Option<u16>,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
}

/// Record an attempt on an event claimed by `owner`, and release the claim: the event is
/// delivered, rescheduled or failed as `outcome` says, with `attempts` tries so far. One
/// transaction. The attempt is logged even when the claim was lost meanwhile (it did
/// happen); the event row is then left to the process that holds it. Returns whether
/// the claim was still held.
pub async fn finish(db: &DatabaseConnection, event: &event::Model, owner: &str, attempts: i32, outcome: &Outcome, attempt: Attempt) -> Result<bool, DbErr> {
    let now = now_ms();
    let txn = db.begin().await?;
    let mut update = event::Entity::update_many()
        .col_expr(event::Column::Attempts, Expr::value(attempts))
        .col_expr(event::Column::LastError, Expr::value(attempt.error.clone()))
        .col_expr(event::Column::ClaimedBy, Expr::value(Option::<String>::None))
        .col_expr(event::Column::ClaimedUntil, Expr::value(Option::<i64>::None));
    update = match outcome {
        Outcome::Delivered => update.col_expr(event::Column::Pending, Expr::value(false)).col_expr(event::Column::DeliveredAt, Expr::value(now)),
        Outcome::Retry { at } => update.col_expr(event::Column::NextAttemptAt, Expr::value(*at)),
        Outcome::Failed => update.col_expr(event::Column::Pending, Expr::value(false)).col_expr(event::Column::FailedAt, Expr::value(now)),
    };
    let held = update.filter(event::Column::Id.eq(event.id)).filter(event::Column::ClaimedBy.eq(owner)).exec(&txn).await?.rows_affected == 1;
    webhook_attempt::ActiveModel {
        event_id: Set(event.id),
        job_id: Set(event.job_id.clone()),
        attempted_at: Set(attempt.started_at),
        duration_ms: Set(attempt.duration_ms),
        status_code: Set(attempt.status_code.map(i32::from)),
        succeeded: Set(attempt.error.is_none()),
        error: Set(attempt.error),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(held)
}

/// Make an event of `job_id` owed again, due now, with the same `webhook-id`: a
/// delivered or failed one starts the retry schedule afresh; a pending one is only
/// brought forward. `None` when the job has no such event.
pub async fn redeliver(db: &DatabaseConnection, job_id: &str, event_id: i64) -> Result<Option<event::Model>, DbErr> {
    let now = now_ms();
    let txn = db.begin().await?;
    let found = event::Entity::find_by_id(event_id).filter(event::Column::JobId.eq(job_id)).one(&txn).await?;
    let Some(found) = found else { return Ok(None) };
    let mut update = event::Entity::update_many().col_expr(event::Column::NextAttemptAt, Expr::value(now));
    if !found.pending {
        update = update
            .col_expr(event::Column::Pending, Expr::value(true))
            .col_expr(event::Column::Attempts, Expr::value(0))
            .col_expr(event::Column::DeliveredAt, Expr::value(Option::<i64>::None))
            .col_expr(event::Column::FailedAt, Expr::value(Option::<i64>::None))
            .col_expr(event::Column::LastError, Expr::value(Option::<String>::None));
    }
    update.filter(event::Column::Id.eq(event_id)).exec(&txn).await?;
    let updated = event::Entity::find_by_id(event_id).one(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// A job's events, oldest first, each with its attempts, oldest first.
pub async fn log(db: &DatabaseConnection, job_id: &str) -> Result<Vec<(event::Model, Vec<webhook_attempt::Model>)>, DbErr> {
    let events = event::Entity::find().filter(event::Column::JobId.eq(job_id)).order_by_asc(event::Column::Id).all(db).await?;
    let attempts = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::JobId.eq(job_id))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(db)
        .await?;
    Ok(events
        .into_iter()
        .map(|event| {
            let mine = attempts.iter().filter(|a| a.event_id == event.id).cloned().collect();
            (event, mine)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::status::EventName;

    async fn db_with_events(dir: &std::path::Path, events: &[(&str, bool)]) -> DatabaseConnection {
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.join("o.db").display())).await.unwrap();
        for (i, (job, pending)) in events.iter().enumerate() {
            event::ActiveModel {
                job_id: Set(job.to_string()),
                event: Set(EventName::OutputCompleted),
                dedupe_key: Set(Some(format!("k{i}"))),
                payload: Set("{}".into()),
                created_at: Set(0),
                pending: Set(*pending),
                attempts: Set(0),
                next_attempt_at: Set(0),
                webhook_id: Set(Some(format!("msg_{i}"))),
                ..Default::default()
            }
            .insert(&db)
            .await
            .unwrap();
        }
        db
    }

    fn ids(events: &[event::Model]) -> Vec<i64> {
        events.iter().map(|e| e.id).collect()
    }

    #[tokio::test]
    async fn only_the_oldest_owed_event_of_a_job_is_claimed_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        // Job a: 1 (sent), 2, 3 owed; job b: 4 owed.
        let db = db_with_events(dir.path(), &[("a", false), ("a", true), ("a", true), ("b", true)]).await;
        let until = now_ms() + 30_000;
        assert_eq!(ids(&claim(&db, "p1", "", until, 10, &[]).await.unwrap()), [2, 4]);
        assert!(claim(&db, "p2", "", until, 10, &[]).await.unwrap().is_empty(), "claimed events and their jobs' later ones are held");

        let attempt = |error: Option<&str>| Attempt { started_at: now_ms(), duration_ms: 5, status_code: Some(500), error: error.map(str::to_string) };
        let two = event::Entity::find_by_id(2).one(&db).await.unwrap().unwrap();
        assert!(finish(&db, &two, "p1", 1, &Outcome::Delivered, attempt(None)).await.unwrap());
        assert_eq!(ids(&claim(&db, "p2", "", until, 10, &[]).await.unwrap()), [3], "the next event of job a, once 2 is sent");

        // A rescheduled event holds back its job until it is due.
        let three = event::Entity::find_by_id(3).one(&db).await.unwrap().unwrap();
        assert!(finish(&db, &three, "p2", 1, &Outcome::Retry { at: now_ms() + 60_000 }, attempt(Some("HTTP 500"))).await.unwrap());
        assert!(!finish(&db, &three, "p1", 1, &Outcome::Delivered, attempt(None)).await.unwrap(), "p1 holds no claim on 3");
        assert!(claim(&db, "p2", "", until, 10, &[]).await.unwrap().is_empty());
        let log = log(&db, "a").await.unwrap();
        assert_eq!(log.iter().map(|(_, a)| a.len()).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(log[2].1[0].status_code, Some(500));
        assert_eq!(log[2].0.delivery_state(), event::DeliveryState::Pending);
        assert_eq!(log[1].0.delivery_state(), event::DeliveryState::Delivered);
    }

    #[tokio::test]
    async fn expired_claims_are_taken_over_and_full_receivers_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_events(dir.path(), &[("a", true), ("b", true)]).await;
        set_receiver(&db, 1, "http:slow:80").await.unwrap();
        let skip = ["http:slow:80".to_string()];
        assert_eq!(ids(&claim(&db, "p1", "", now_ms() + 30_000, 10, &skip).await.unwrap()), [2]);
        // p1 died holding 2: its claim expires and p2 takes it.
        event::Entity::update_many().col_expr(event::Column::ClaimedUntil, Expr::value(now_ms() - 1)).exec(&db).await.unwrap();
        assert_eq!(ids(&claim(&db, "p2", "", now_ms() + 30_000, 10, &[]).await.unwrap()), [1, 2]);
        release(&db, 1, "p1").await.unwrap();
        assert!(claim(&db, "p3", "", now_ms() + 30_000, 10, &[]).await.unwrap().is_empty(), "only the holder releases");
        release(&db, 1, "p2").await.unwrap();
        assert_eq!(ids(&claim(&db, "p3", "", now_ms() + 30_000, 10, &[]).await.unwrap()), [1]);
    }

    #[tokio::test]
    async fn a_failed_event_can_be_redelivered_with_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_events(dir.path(), &[("a", true)]).await;
        let claimed = claim(&db, "p1", "", now_ms() + 30_000, 1, &[]).await.unwrap();
        let attempt = Attempt { started_at: now_ms(), duration_ms: 1, status_code: None, error: Some("connection refused".into()) };
        finish(&db, &claimed[0], "p1", 8, &Outcome::Failed, attempt).await.unwrap();
        let failed = event::Entity::find_by_id(1).one(&db).await.unwrap().unwrap();
        assert_eq!((failed.delivery_state(), failed.pending), (event::DeliveryState::Failed, false));
        assert!(claim(&db, "p1", "", now_ms() + 30_000, 1, &[]).await.unwrap().is_empty());
        assert!(redeliver(&db, "other-job", 1).await.unwrap().is_none());
        let again = redeliver(&db, "a", 1).await.unwrap().unwrap();
        assert_eq!((again.delivery_state(), again.attempts, again.webhook_id()), (event::DeliveryState::Pending, 0, "msg_0".to_string()));
        assert_eq!(ids(&claim(&db, "p1", "", now_ms() + 30_000, 1, &[]).await.unwrap()), [1]);
    }

    #[tokio::test]
    async fn claims_are_made_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_events(dir.path(), &[("a", true), ("b", true), ("c", true), ("d", false)]).await;
        let own = |tenant: &'static str, jobs: &'static [&'static str]| {
            event::Entity::update_many()
                .col_expr(event::Column::Owner, Expr::value(tenant))
                .filter(event::Column::JobId.is_in(jobs.iter().copied()))
                .exec(&db)
        };
        own("t1", &["a", "b"]).await.unwrap();
        own("t2", &["c", "d"]).await.unwrap();
        let mut tenants = due_tenants(&db, now_ms()).await.unwrap();
        tenants.sort();
        assert_eq!(tenants, ["t1", "t2"]);
        let until = now_ms() + 30_000;
        assert_eq!(ids(&claim(&db, "p1", "t2", until, 10, &[]).await.unwrap()), [3], "t2's only");
        assert_eq!(due_tenants(&db, now_ms()).await.unwrap(), ["t1"], "claimed events are not due");
        assert_eq!(ids(&claim(&db, "p1", "t1", until, 1, &[]).await.unwrap()), [1]);
        assert_eq!(ids(&claim(&db, "p1", "t1", until, 5, &[]).await.unwrap()), [2]);
        assert!(due_tenants(&db, now_ms()).await.unwrap().is_empty());
    }
}
