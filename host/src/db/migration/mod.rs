//! The schema, as versioned migrations (sea-orm-migration). Every node runs them at start;
//! on PostgreSQL under an advisory lock inside one transaction, so nodes starting at once
//! apply each migration exactly once and none sees a half-made schema.

mod m20261125_000001_initial;
mod m20261125_000002_output_state;
mod m20261125_000003_event_dedupe;
mod m20261126_000011_webhook_outbox;
mod m20261126_000021_queue_fairness;
mod m20261126_000041_plugins;
mod m20261126_000051_jobs_by_owner;
mod m20261126_000061_chunks;
mod m20261127_000191_webhook_tenants;
mod m20261205_000201_cluster;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261125_000002_output_state::Migration),
            Box::new(m20261125_000003_event_dedupe::Migration),
            Box::new(m20261126_000011_webhook_outbox::Migration),
            Box::new(m20261126_000021_queue_fairness::Migration),
            Box::new(m20261126_000041_plugins::Migration),
            Box::new(m20261126_000051_jobs_by_owner::Migration),
            Box::new(m20261126_000061_chunks::Migration),
            Box::new(m20261127_000191_webhook_tenants::Migration),
            Box::new(m20261205_000201_cluster::Migration),
        ]
    }
}

/// An arbitrary constant naming Copra's migration lock among the database's advisory locks.
const MIGRATION_LOCK: i64 = 0x636f_7072_615f_6d69;

/// Bring the schema up to date.
pub async fn run(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            // The lock is held by this transaction's connection until it commits; a node
            // starting meanwhile waits, then finds every migration applied.
            let txn = db.begin().await?;
            txn.execute(Statement::from_sql_and_values(DatabaseBackend::Postgres, "SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK.into()]))
                .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await
        }
        // One process owns an SQLite file (its writer lock serialises the rest).
        _ => Migrator::up(db, None).await,
    }
}
