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
    if let Some(path) = sqlite_path(url) {
        create_private_file(&path).map_err(|e| DbErr::Custom(format!("creating the database file {}: {e}", path.display())))?;
    }
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

/// The file of a `sqlite://` URL (not `:memory:`).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// Create the database file owner-only before SQLite does (its journal files take the
/// database's permissions); an existing file is made owner-only too: it holds every
/// tenant's jobs.
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Now, in the unit the database stores.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
