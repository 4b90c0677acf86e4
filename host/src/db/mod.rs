//! Persistence: sea-orm entities for jobs, outputs and events, on SQLite (the embedded
//! default) or PostgreSQL (for many workers). The same code runs on both; the only
//! backend-specific SQL is the queue's claim in `crate::queue`.
//!
//! Timestamps are Unix milliseconds (`i64`) so comparisons behave the same on both
//! backends and leases need no time-zone handling.

pub mod event;
pub mod jobs;
pub mod job;
pub mod output;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Schema};

/// Connect and bring the schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_string());
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // One writer at a time is SQLite's rule; a small pool avoids `database is locked`.
        options.max_connections(4);
    }
    let db = Database::connect(options).await?;
    if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;").await?;
    }
    migrate(&db).await?;
    Ok(db)
}

/// Create missing tables and indexes. Migrations are additive: each statement is
/// `IF NOT EXISTS`, so running them on every start is safe.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let schema = Schema::new(backend);
    let mut tables = [
        schema.create_table_from_entity(job::Entity),
        schema.create_table_from_entity(output::Entity),
        schema.create_table_from_entity(event::Entity),
    ];
    for table in &mut tables {
        db.execute(backend.build(table.if_not_exists())).await?;
    }
    for index in [
        "CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, lease_expires_at, created_at)",
        "CREATE INDEX IF NOT EXISTS outputs_job ON outputs (job_id, position)",
        "CREATE INDEX IF NOT EXISTS events_pending ON events (pending, id)",
        "CREATE INDEX IF NOT EXISTS events_job ON events (job_id, id)",
    ] {
        db.execute_unprepared(index).await?;
    }
    Ok(())
}

/// Now, in the unit the database stores.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
