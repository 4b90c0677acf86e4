//! Short reads and writes on jobs, outputs and events. Every function is one statement
//! or one small transaction: nothing here is held across media work.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};

use super::{event, job, now_ms, output};

/// Store a new job and its outputs atomically.
pub async fn insert(db: &DatabaseConnection, job: job::Model, outputs: Vec<output::Model>) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    job::ActiveModel::from(job).insert(&txn).await?;
    for output in outputs {
        let mut active = output::ActiveModel::from(output);
        active.id = sea_orm::NotSet;
        active.insert(&txn).await?;
    }
    txn.commit().await
}

/// A job with its outputs, only if `owner` created it (owner `None`: any job).
pub async fn find(
    db: &DatabaseConnection,
    id: &str,
    owner: Option<&str>,
) -> Result<Option<(job::Model, Vec<output::Model>)>, DbErr> {
    let mut query = job::Entity::find_by_id(id.to_string());
    if let Some(owner) = owner {
        query = query.filter(job::Column::Owner.eq(owner));
    }
    let Some(job) = query.one(db).await? else { return Ok(None) };
    let outputs = outputs(db, id).await?;
    Ok(Some((job, outputs)))
}

pub async fn outputs(db: &DatabaseConnection, job_id: &str) -> Result<Vec<output::Model>, DbErr> {
    output::Entity::find()
        .filter(output::Column::JobId.eq(job_id))
        .order_by_asc(output::Column::Position)
        .all(db)
        .await
}

pub async fn set_input_status(db: &DatabaseConnection, id: &str, status: &str, error: Option<String>) -> Result<(), DbErr> {
    job::Entity::update_many()
        .col_expr(job::Column::InputStatus, Expr::value(status))
        .col_expr(job::Column::Error, Expr::value(error))
        .filter(job::Column::Id.eq(id))
        .exec(db)
        .await
        .map(drop)
}

pub async fn set_input_metadata(db: &DatabaseConnection, id: &str, metadata: &serde_json::Value) -> Result<(), DbErr> {
    job::Entity::update_many()
        .col_expr(job::Column::InputMetadata, Expr::value(metadata.to_string()))
        .filter(job::Column::Id.eq(id))
        .exec(db)
        .await
        .map(drop)
}

pub async fn set_progress(db: &DatabaseConnection, id: &str, percent: i32) -> Result<(), DbErr> {
    job::Entity::update_many()
        .col_expr(job::Column::Progress, Expr::value(percent.clamp(0, 100)))
        .filter(job::Column::Id.eq(id))
        .exec(db)
        .await
        .map(drop)
}

/// What changes on an output row; `None` fields are left as they are.
#[derive(Debug, Default)]
pub struct OutputUpdate {
    pub status: Option<String>,
    pub url: Option<String>,
    pub urls: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
    pub error: Option<String>,
}

pub async fn update_output(db: &DatabaseConnection, output_id: i64, update: OutputUpdate) -> Result<(), DbErr> {
    let mut active = output::ActiveModel { id: Set(output_id), ..Default::default() };
    if let Some(status) = update.status {
        active.status = Set(status);
    }
    if let Some(url) = update.url {
        active.url = Set(Some(url));
    }
    if let Some(urls) = update.urls {
        active.urls = Set(Some(urls.to_string()));
    }
    if let Some(metadata) = update.metadata {
        active.metadata = Set(Some(metadata.to_string()));
    }
    if let Some(error) = update.error {
        active.error = Set(Some(error));
    }
    active.update(db).await.map(drop)
}

/// Put a job in its final state and let go of its lease.
pub async fn finish(db: &DatabaseConnection, id: &str, status: &str) -> Result<(), DbErr> {
    let mut update = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(status))
        .col_expr(job::Column::CompletedAt, Expr::value(now_ms()))
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LeaseExpiresAt, Expr::value(Option::<i64>::None));
    if status == crate::job::status::JOB_COMPLETED {
        update = update.col_expr(job::Column::Progress, Expr::value(100));
    }
    update.filter(job::Column::Id.eq(id)).exec(db).await.map(drop)
}

/// Record an event; the notifier delivers it if the job asked for notifications.
pub async fn add_event(
    db: &DatabaseConnection,
    job_id: &str,
    event: &str,
    payload: &serde_json::Value,
    deliver: bool,
) -> Result<(), DbErr> {
    let now = now_ms();
    event::ActiveModel {
        job_id: Set(job_id.to_string()),
        event: Set(event.to_string()),
        payload: Set(payload.to_string()),
        created_at: Set(now),
        pending: Set(deliver),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(drop)
}

/// Events of one job, oldest first: its history and notification delivery log.
pub async fn events(db: &DatabaseConnection, job_id: &str) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find()
        .filter(event::Column::JobId.eq(job_id))
        .order_by_asc(event::Column::Id)
        .all(db)
        .await
}
