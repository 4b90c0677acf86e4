//! Persistence: sea-orm entities for jobs, outputs and events, on SQLite (the embedded
//! default) or PostgreSQL (for many workers). The same code runs on both; the only
//! backend-specific SQL is the queue's claim in `crate::queue`.
//!
//! Timestamps are Unix milliseconds (`i64`) so comparisons behave the same on both
//! backends and leases need no time-zone handling.

pub mod cluster;
mod direct;
pub mod event;
pub mod job;
pub mod jobs;
pub mod list;
mod migration;
pub mod outbox;
pub mod output;
pub mod plugin;
pub mod stats;
pub mod status;
pub mod webhook_attempt;
pub mod webhook_secret;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Connect and bring the schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_path(url) {
        create_private_file(&path).map_err(|e| DbErr::Custom(format!("creating the database file {}: {e}", path.display())))?;
    }
    let mut options = ConnectOptions::new(url.to_string());
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // One writer at a time is SQLite's rule; a small pool avoids `database is locked`.
        // Every connection of the pool gets the same settings (they are per connection).
        // A connection to a local file does not go stale: pinging it before every query
        // (sqlx's default) was one extra round trip to its thread per query.
        options.max_connections(4).test_before_acquire(false).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                // Checkpoints run in the background (direct::sqlite_log::spawn_checkpointer),
                // not in a commit; a restarted log's file keeps up to LOG_KEPT_BYTES.
                .pragma("wal_autocheckpoint", "0")
                .pragma("journal_size_limit", direct::sqlite::LOG_KEPT_BYTES.to_string())
        });
    }
    if url.starts_with("postgres") {
        // One server process per connection, on the same cores as this one: more
        // connections than the machine can run at once only queue in the kernel
        // instead of in the pool. And no ping before each query (sqlx's default): that
        // was a second round trip on every read; a connection that broke fails its one
        // query and is dropped from the pool.
        let cores = std::thread::available_parallelism().map_or(2, usize::from) as u32;
        options.max_connections(pg_pool_size(cores)).test_before_acquire(false);
    }
    let db = Database::connect(options).await?;
    migration::run(&db).await?;
    if let Some(file) = direct::sqlite::file_of(&db) {
        direct::sqlite_log::spawn_checkpointer(file, &SQLITE_WRITER);
    }
    Ok(db)
}

/// Connections to PostgreSQL for a machine with `cores` cores: enough that workers'
/// writes and the API's reads do not wait on each other, few enough for its cores.
fn pg_pool_size(cores: u32) -> u32 {
    (cores * 4).clamp(8, 32)
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

/// SQLite takes one writer at a time, and a writer that finds the database locked sleeps
/// in SQLite's busy handler (1, 2, 5, 10 ... ms) however soon the lock is free: under
/// concurrent submits that sleeping, not the writes, made the latency. So this process's
/// write transactions on SQLite queue here, in memory, and wake as soon as the one before
/// them commits. On PostgreSQL writers run side by side: `None`.
pub async fn writer(db: &DatabaseConnection) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    match sea_orm::ConnectionTrait::get_database_backend(db) {
        sea_orm::DatabaseBackend::Sqlite => Some(SQLITE_WRITER.lock().await),
        _ => None,
    }
}

/// The process's SQLite writers' queue (see [`writer`]); the checkpointer takes it too
/// when it must reset the write-ahead log.
static SQLITE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Now, in the unit the database stores.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
