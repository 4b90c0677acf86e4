//! Plugins added through the admin API, stored so that every node of a cluster loads the
//! same set: one row per component, its content hash (hex SHA-256 of the bytes) as its
//! identity. Adding a new version of a name marks the previous one `superseded_at` (it
//! stays addressable by hash for the jobs planned with it); removing a name marks every
//! version of it `removed_at` (jobs planned with one fail, saying so).

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{FromQueryResult, QuerySelect, Set, TransactionTrait};

/// Which `copra:plugin` world a stored component targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Kind {
    #[sea_orm(string_value = "storage")]
    Storage,
    #[sea_orm(string_value = "format")]
    Format,
    #[sea_orm(string_value = "condition")]
    Condition,
    #[sea_orm(string_value = "notifier")]
    Notifier,
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "plugins")]
pub struct Model {
    /// Hex SHA-256 of `wasm`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sha256: String,
    /// The name it was added under (its file stem on every node).
    pub name: String,
    pub kind: Kind,
    /// The version the component says it is.
    pub version: String,
    /// The component.
    #[sea_orm(column_type = "Blob")]
    pub wasm: Vec<u8>,
    pub added_at: i64,
    /// When a newer version of the same name replaced it.
    pub superseded_at: Option<i64>,
    /// When it was removed through the admin API.
    pub removed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A row without its bytes: what the sync loop polls.
#[derive(Clone, Debug, PartialEq, FromQueryResult)]
pub struct Meta {
    pub sha256: String,
    pub name: String,
    pub kind: Kind,
    pub version: String,
    pub added_at: i64,
    pub superseded_at: Option<i64>,
    pub removed_at: Option<i64>,
}

impl Meta {
    /// The version every node should serve under its name.
    pub fn is_active(&self) -> bool {
        self.superseded_at.is_none() && self.removed_at.is_none()
    }
}

fn meta() -> sea_orm::Select<Entity> {
    Entity::find().select_only().columns([
        Column::Sha256,
        Column::Name,
        Column::Kind,
        Column::Version,
        Column::AddedAt,
        Column::SupersededAt,
        Column::RemovedAt,
    ])
}

/// Every stored plugin, without the bytes.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Meta>, DbErr> {
    meta().into_model::<Meta>().all(db).await
}

/// The stored plugins with these hashes, without the bytes.
pub async fn find(db: &impl ConnectionTrait, hashes: &[String]) -> Result<Vec<Meta>, DbErr> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    meta().filter(Column::Sha256.is_in(hashes.iter().cloned())).into_model::<Meta>().all(db).await
}

/// The bytes of the component `sha256`.
pub async fn wasm(db: &impl ConnectionTrait, sha256: &str) -> Result<Option<Vec<u8>>, DbErr> {
    Ok(Entity::find_by_id(sha256.to_string()).one(db).await?.map(|m| m.wasm))
}

/// Store `plugin` as the active version of its name: the version it replaces is marked
/// superseded, and bytes stored before (even removed) come back active.
pub async fn add<C: ConnectionTrait + TransactionTrait>(db: &C, plugin: Model) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let now = plugin.added_at;
    Entity::update_many()
        .col_expr(Column::SupersededAt, Expr::value(now))
        .filter(Column::Name.eq(plugin.name.clone()))
        .filter(Column::Sha256.ne(plugin.sha256.clone()))
        .filter(Column::SupersededAt.is_null())
        .filter(Column::RemovedAt.is_null())
        .exec(&txn)
        .await?;
    Entity::delete_by_id(plugin.sha256.clone()).exec(&txn).await?;
    let row = ActiveModel {
        sha256: Set(plugin.sha256),
        name: Set(plugin.name),
        kind: Set(plugin.kind),
        version: Set(plugin.version),
        wasm: Set(plugin.wasm),
        added_at: Set(plugin.added_at),
        superseded_at: Set(None),
        removed_at: Set(None),
    };
    Entity::insert(row).exec_without_returning(&txn).await?;
    txn.commit().await
}

/// Mark every version of `name` removed; returns how many were not already.
pub async fn remove(db: &impl ConnectionTrait, name: &str, now: i64) -> Result<u64, DbErr> {
    let done = Entity::update_many()
        .col_expr(Column::RemovedAt, Expr::value(now))
        .filter(Column::Name.eq(name))
        .filter(Column::RemovedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}
