//! The generation of each tenant's webhook signing secret. A tenant has no row until it
//! first rotates (generation 0); each rotation adds one and notes when, so deliveries
//! can carry the previous generation's signature too for the overlap the operator set.
//! The secrets themselves are never stored: they are derived from the server's root.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, Statement};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_secrets")]
pub struct Model {
    /// The tenant's namespace (`crate::tenant::Tenant::namespace`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub namespace: String,
    /// How many times the tenant's secret was rotated.
    pub generation: i64,
    /// When it was last rotated (Unix ms).
    pub rotated_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a tenant's secret stands: its generation and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Generation {
    pub generation: i64,
    pub rotated_at: Option<i64>,
}

/// The current generation of `namespace`'s secret (0, never rotated, without a row).
pub async fn current(db: &impl ConnectionTrait, namespace: &str) -> Result<Generation, DbErr> {
    Ok(Entity::find_by_id(namespace.to_string())
        .one(db)
        .await?
        .map(|row| Generation { generation: row.generation, rotated_at: row.rotated_at })
        .unwrap_or_default())
}

/// Move `namespace`'s secret to the next generation at `now` (Unix ms), in one
/// statement: two rotations at once on two nodes give two generations, never one twice.
pub async fn rotate(db: &impl ConnectionTrait, namespace: &str, now: i64) -> Result<Generation, DbErr> {
    let backend = db.get_database_backend();
    let sql = "INSERT INTO webhook_secrets (namespace, generation, rotated_at) VALUES ($1, 1, $2) \
               ON CONFLICT (namespace) DO UPDATE SET generation = webhook_secrets.generation + 1, rotated_at = excluded.rotated_at \
               RETURNING generation, rotated_at";
    let row = db
        .query_one(Statement::from_sql_and_values(backend, sql, [namespace.into(), now.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("the webhook secret of {namespace}")))?;
    Ok(Generation { generation: row.try_get("", "generation")?, rotated_at: row.try_get("", "rotated_at")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generations_start_at_zero_and_count_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display())).await.unwrap();
        assert_eq!(current(&db, "tA").await.unwrap(), Generation { generation: 0, rotated_at: None });
        assert_eq!(rotate(&db, "tA", 1000).await.unwrap(), Generation { generation: 1, rotated_at: Some(1000) });
        assert_eq!(rotate(&db, "tA", 2000).await.unwrap(), Generation { generation: 2, rotated_at: Some(2000) });
        assert_eq!(current(&db, "tA").await.unwrap(), Generation { generation: 2, rotated_at: Some(2000) });
        assert_eq!(current(&db, "tB").await.unwrap().generation, 0, "one tenant's rotation is its own");
    }
}
