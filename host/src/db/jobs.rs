//! Short reads and writes on jobs, outputs and events. Every function is one statement
//! or one small transaction: nothing here is held across media work.
//!
//! A worker writes only through [`apply`] and [`set_progress`], which check in the same
//! transaction that it still holds the job's lease: a worker whose lease was taken over
//! writes nothing more. A status change and the event that reports it are one
//! transaction (the outbox), so a crash never loses the event of a change that happened.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, Statement, TransactionTrait,
};

use super::status::{EventName, InputStatus, JobStatus, OutputState};
use super::{event, job, now_ms, output};

/// Store a new job and its outputs atomically; returns them as stored (the outputs with
/// their ids). On PostgreSQL the same statement sends a `NOTIFY` on `channel` with the
/// job's id, delivered once it commits (the workers of other processes listen there).
/// On the submit path every round trip to the database counts: on a SQLite file and on
/// PostgreSQL this is one ([`super::direct`]).
pub async fn insert(db: &DatabaseConnection, job: job::Model, outputs: Vec<output::Model>, channel: &str) -> Result<(job::Model, Vec<output::Model>), DbErr> {
    if let Some(file) = super::direct::sqlite::file_of(db) {
        let _writer = super::writer(db).await;
        let outputs = super::direct::sqlite::insert(&file, &job, outputs)?;
        return Ok((job, outputs));
    }
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let outputs = super::direct::postgres_inserts::insert(db.get_postgres_connection_pool(), job.clone(), outputs, channel).await?;
        return Ok((job, outputs));
    }
    // An in-memory SQLite database (tests).
    let id = job.id.clone();
    {
        let _writer = super::writer(db).await;
        let txn = db.begin().await?;
        job::Entity::insert(job::ActiveModel::from(job.clone())).exec_without_returning(&txn).await?;
        if !outputs.is_empty() {
            let rows = outputs.into_iter().map(|output| output::ActiveModel { id: sea_orm::NotSet, ..output.into() });
            output::Entity::insert_many(rows).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
    }
    Ok((job, self::outputs(db, &id).await?))
}

/// A job with its outputs, only if `owner` created it (owner `None`: any job). One
/// query (a join), as it is what every `GET /v2/jobs/{id}` does.
pub async fn find<C: ConnectionTrait>(db: &C, id: &str, owner: Option<&str>) -> Result<Option<(job::Model, Vec<output::Model>)>, DbErr> {
    let mut query = job::Entity::find_by_id(id.to_string());
    if let Some(owner) = owner {
        query = query.filter(job::Column::Owner.eq(owner));
    }
    let found = query.find_with_related(output::Entity).order_by_asc(output::Column::Position).all(db).await?;
    Ok(found.into_iter().next())
}

/// [`find`] for a reader: on a SQLite file on the caller's own thread, on PostgreSQL
/// one prepared query, shared with the reads that arrive at the same time
/// ([`super::direct`]).
pub async fn read(db: &DatabaseConnection, id: &str, owner: Option<&str>) -> Result<Option<(job::Model, Vec<output::Model>)>, DbErr> {
    if let Some(file) = super::direct::sqlite::file_of(db) {
        return super::direct::sqlite::find(&file, id, owner);
    }
    match db.get_database_backend() {
        DatabaseBackend::Postgres => super::direct::postgres_reads::find(db.get_postgres_connection_pool(), id, owner).await,
        _ => find(db, id, owner).await,
    }
}

pub async fn outputs<C: ConnectionTrait>(db: &C, job_id: &str) -> Result<Vec<output::Model>, DbErr> {
    output::Entity::find().filter(output::Column::JobId.eq(job_id)).order_by_asc(output::Column::Position).all(db).await
}

/// The claim a worker holds on a job: every write it makes names it.
#[derive(Debug, Clone)]
pub struct Lease {
    pub job_id: String,
    /// The worker identity the lease was claimed under.
    pub owner: String,
}

/// Why a worker's write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Another worker holds the job now (this one's lease expired and was taken over);
    /// its statuses are that worker's to write.
    #[error("the lease on job {0} was lost to another worker")]
    LeaseLost(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What changes on the job row; `None` fields are left as they are.
#[derive(Debug, Default)]
pub struct JobChange {
    pub input_status: Option<InputStatus>,
    /// The input's error (set with `input.failed`).
    pub error: Option<String>,
    pub input_metadata: Option<serde_json::Value>,
    /// The job's end: final status, completion time, 100% when completed, lease released.
    pub finished: Option<JobStatus>,
}

/// What changes on an output row; `None` fields are left as they are.
#[derive(Debug, Default)]
pub struct OutputChange {
    pub state: Option<OutputState>,
    pub url: Option<String>,
    pub urls: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// The payload of an event, made from the job as it is once the change is applied.
pub type Payload = Box<dyn FnOnce(&job::Model, &[output::Model]) -> serde_json::Value + Send>;

/// An event to record with a change.
pub struct NewEvent {
    pub name: EventName,
    /// What makes it one of a kind in its job: a second event with the same key (a job
    /// run again after a crash) is not recorded.
    pub dedupe_key: String,
    /// Whether the notifier owes a delivery (the job asked for notifications).
    pub deliver: bool,
    pub payload: Payload,
}

/// Apply a change to a job the caller holds the lease of, its outputs' changes, and the
/// event that reports it, in one transaction.
pub async fn apply(
    db: &DatabaseConnection,
    lease: &Lease,
    change: JobChange,
    outputs: Vec<(i64, OutputChange)>,
    event: Option<NewEvent>,
) -> Result<(), WriteError> {
    let _writer = super::writer(db).await;
    let txn = db.begin().await?;
    hold(&txn, lease).await?;
    update_job(&txn, &lease.job_id, change).await?;
    for (id, change) in outputs {
        update_output(&txn, &lease.job_id, id, change).await?;
    }
    if let Some(event) = event {
        record(&txn, &lease.job_id, event).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Check, inside `txn`, that `lease` still holds the job, and lock its row until commit.
async fn hold(txn: &DatabaseTransaction, lease: &Lease) -> Result<(), WriteError> {
    let backend = txn.get_database_backend();
    let result = txn
        .execute(Statement::from_sql_and_values(
            backend,
            "UPDATE jobs SET lease_owner = lease_owner WHERE id = $1 AND lease_owner = $2",
            [lease.job_id.clone().into(), lease.owner.clone().into()],
        ))
        .await?;
    if result.rows_affected() == 1 { Ok(()) } else { Err(WriteError::LeaseLost(lease.job_id.clone())) }
}

async fn update_job(txn: &DatabaseTransaction, id: &str, change: JobChange) -> Result<(), DbErr> {
    let mut update = job::Entity::update_many().filter(job::Column::Id.eq(id));
    let mut any = false;
    if let Some(status) = change.input_status {
        update = update.col_expr(job::Column::InputStatus, Expr::value(status));
        any = true;
    }
    if let Some(error) = change.error {
        update = update.col_expr(job::Column::Error, Expr::value(error));
        any = true;
    }
    if let Some(metadata) = change.input_metadata {
        update = update.col_expr(job::Column::InputMetadata, Expr::value(metadata.to_string()));
        any = true;
    }
    if let Some(status) = change.finished {
        update = update
            .col_expr(job::Column::Status, Expr::value(status))
            .col_expr(job::Column::CompletedAt, Expr::value(now_ms()))
            .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(job::Column::LeaseExpiresAt, Expr::value(Option::<i64>::None));
        if status == JobStatus::Completed {
            update = update.col_expr(job::Column::Progress, Expr::value(100));
        }
        any = true;
    }
    if any {
        update.exec(txn).await?;
    }
    Ok(())
}

async fn update_output(txn: &DatabaseTransaction, job_id: &str, output_id: i64, change: OutputChange) -> Result<(), DbErr> {
    let mut update = output::Entity::update_many().filter(output::Column::Id.eq(output_id)).filter(output::Column::JobId.eq(job_id));
    let mut any = false;
    if let Some(state) = change.state {
        update = update.col_expr(output::Column::State, Expr::value(state));
        any = true;
    }
    if let Some(url) = change.url {
        update = update.col_expr(output::Column::Url, Expr::value(url));
        any = true;
    }
    if let Some(urls) = change.urls {
        update = update.col_expr(output::Column::Urls, Expr::value(urls.to_string()));
        any = true;
    }
    if let Some(metadata) = change.metadata {
        update = update.col_expr(output::Column::Metadata, Expr::value(metadata.to_string()));
        any = true;
    }
    if let Some(error) = change.error {
        update = update.col_expr(output::Column::Error, Expr::value(error));
        any = true;
    }
    if any {
        update.exec(txn).await?;
    }
    Ok(())
}

/// Record an event once: a second one with the same dedupe key is dropped.
async fn record(txn: &DatabaseTransaction, job_id: &str, event: NewEvent) -> Result<(), DbErr> {
    let (job, outputs) = find(txn, job_id, None).await?.ok_or_else(|| DbErr::RecordNotFound(format!("job {job_id}")))?;
    let payload = (event.payload)(&job, &outputs);
    let now = now_ms();
    let row = event::ActiveModel {
        job_id: Set(job_id.to_string()),
        owner: Set(job.owner.clone()),
        event: Set(event.name),
        dedupe_key: Set(Some(event.dedupe_key)),
        payload: Set(payload.to_string()),
        created_at: Set(now),
        pending: Set(event.deliver),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        webhook_id: Set(Some(format!("msg_{}", crate::random_id(24)))),
        ..Default::default()
    };
    let inserted = event::Entity::insert(row)
        .on_conflict(OnConflict::columns([event::Column::JobId, event::Column::DedupeKey]).do_nothing().to_owned())
        .exec_without_returning(txn)
        .await?;
    if inserted == 0 {
        tracing::debug!(job_id, event = %event.name, "event already recorded by an earlier run");
    }
    Ok(())
}

/// Write a running job's progress (percent), if the caller still holds its lease.
pub async fn set_progress(db: &DatabaseConnection, lease: &Lease, percent: i32) -> Result<(), WriteError> {
    let result = job::Entity::update_many()
        .col_expr(job::Column::Progress, Expr::value(percent.clamp(0, 100)))
        .filter(job::Column::Id.eq(lease.job_id.as_str()))
        .filter(job::Column::LeaseOwner.eq(lease.owner.as_str()))
        .exec(db)
        .await?;
    if result.rows_affected == 1 { Ok(()) } else { Err(WriteError::LeaseLost(lease.job_id.clone())) }
}

/// Events of one job, oldest first: its history and notification delivery log.
pub async fn events(db: &DatabaseConnection, job_id: &str) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find().filter(event::Column::JobId.eq(job_id)).order_by_asc(event::Column::Id).all(db).await
}

/// Events of one job newer than `after` (an event id), oldest first.
pub async fn events_after(db: &DatabaseConnection, job_id: &str, after: i64) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find()
        .filter(event::Column::JobId.eq(job_id))
        .filter(event::Column::Id.gt(after))
        .order_by_asc(event::Column::Id)
        .all(db)
        .await
}
