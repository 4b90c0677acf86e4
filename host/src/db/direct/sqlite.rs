//! SQLite's two hot paths, driven on the caller's own thread: the read of a job with its
//! outputs (every `GET /v2/jobs/{id}`, every event stream's look) and the insert of a
//! new job (every submit).
//!
//! sqlx drives each SQLite connection on a thread of its own: every statement is a
//! message to that thread and every row a message back, and each message wakes a
//! thread. On these two paths that hand-off was most of the server's CPU (half of it in
//! the kernel, waking threads) and capped reads near 13,000 a second on two cores. Here
//! each thread that asks keeps a connection of its own to the same file (opened on first
//! use, statements cached), so a read is a few microseconds of SQLite on the request's
//! own thread. Writes still queue on the process's writer lock ([`crate::db::writer`]), so
//! they never wait in SQLite's busy handler behind sqlx's writers.
//!
//! Everything else goes through sea-orm; PostgreSQL and in-memory databases never come
//! here. The unit tests check that both ways read and write the same rows.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{FromSql, Type, Value as SqlValue};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use sea_orm::{ActiveEnum, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, QueryTrait};

use crate::db::{job, output};

/// How long a statement waits for a lock another connection holds.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The size SQLite cuts the log's file back to when the log is started again
/// (`journal_size_limit`, set on every connection). Cutting a file frees its pages, and
/// that happens inside the first commit after the restart, with every other write waiting
/// behind it: at 5,500 submits a second, with the log restarted at about 280 MiB and cut to
/// 64 MiB, the submits' p99 was 70 ms, against 16.7 ms with the file kept. So under load the
/// file keeps its space up to this size (a tick's writes at well over ten times that rate),
/// and the checkpointer gives it back once the writes stop
/// ([`super::sqlite_log::spawn_checkpointer`]).
pub const LOG_KEPT_BYTES: i64 = 256 << 20;

/// Statements kept prepared per connection.
const CACHED_STATEMENTS: usize = 16;

thread_local! {
    /// This thread's connections, by database file (a process opens one database; unit
    /// tests open many).
    static CONNECTIONS: RefCell<Vec<(PathBuf, Connection)>> = const { RefCell::new(Vec::new()) };
}

/// The file behind `db`, when it is a SQLite database on disk.
pub fn file_of(db: &DatabaseConnection) -> Option<PathBuf> {
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return None;
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let path = options.get_filename();
    let name = path.to_str()?;
    // sqlx names in-memory databases `:memory:` or `file:sqlx-in-memory-N`.
    (!name.is_empty() && !name.starts_with(":memory:") && !name.starts_with("file:")).then(|| path.to_path_buf())
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    // The file exists: the pool created it and ran the migrations before anyone asks.
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    // The same settings as the pool's connections (journal_mode=WAL is the file's own).
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", true)?;
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    connection.pragma_update(None, "journal_size_limit", LOG_KEPT_BYTES)?;
    connection.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
    Ok(connection)
}

/// Run `work` on this thread's connection to `path`.
pub(super) fn with_connection<T>(path: &Path, work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, DbErr> {
    CONNECTIONS
        .with(|cell| {
            let mut connections = cell.borrow_mut();
            let index = match connections.iter().position(|(file, _)| file == path) {
                Some(index) => index,
                None => {
                    connections.push((path.to_path_buf(), open(path)?));
                    connections.len() - 1
                }
            };
            work(&mut connections[index].1)
        })
        .map_err(|err| DbErr::Custom(format!("SQLite ({}): {err}", path.display())))
}

const JOB: &str = "SELECT id, owner, status, input_status, progress, spec, input_metadata, error, created_at, \
                   completed_at, lease_owner, lease_expires_at, attempts FROM jobs WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)";
const OUTPUTS: &str = "SELECT id, job_id, position, key, format, output_type, state, url, urls, metadata, error \
                       FROM outputs WHERE job_id = ?1 ORDER BY position";

/// A job with its outputs, only if `owner` created it (owner `None`: any job); the two
/// are read in one transaction, so they are one moment's state.
pub fn find(path: &Path, id: &str, owner: Option<&str>) -> Result<Option<(job::Model, Vec<output::Model>)>, DbErr> {
    with_connection(path, |connection| {
        let read = connection.transaction()?;
        let found = read.prepare_cached(JOB)?.query_row((id, owner), job_row).optional()?;
        let Some(job) = found else { return Ok(None) };
        let outputs = read.prepare_cached(OUTPUTS)?.query_map([id], output_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        read.commit()?;
        Ok(Some((job, outputs)))
    })
}

/// Store a new job and its outputs in one transaction; returns the outputs with their
/// ids. The caller holds the writer lock.
pub fn insert(path: &Path, job: &job::Model, outputs: Vec<output::Model>) -> Result<Vec<output::Model>, DbErr> {
    // The statements are sea-orm's own, so their columns follow the entities.
    let job_insert = job::Entity::insert(job::ActiveModel::from(job.clone())).build(DatabaseBackend::Sqlite);
    let outputs_insert = (!outputs.is_empty()).then(|| {
        let rows = outputs.iter().cloned().map(|o| output::ActiveModel { id: sea_orm::NotSet, ..o.into() });
        output::Entity::insert_many(rows).build(DatabaseBackend::Sqlite)
    });
    let job_values = values(&job_insert)?;
    let output_values = outputs_insert.as_ref().map(values).transpose()?;
    let ids = with_connection(path, |connection| {
        let write = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        write.prepare_cached(&job_insert.sql)?.execute(rusqlite::params_from_iter(job_values))?;
        let mut ids = Vec::new();
        if let (Some(statement), Some(values)) = (&outputs_insert, output_values) {
            let sql = format!("{} RETURNING position, id", statement.sql);
            let mut insert = write.prepare_cached(&sql)?;
            ids = insert.query_map(rusqlite::params_from_iter(values), |row| Ok((row.get::<_, i32>(0)?, row.get::<_, i64>(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        }
        write.commit()?;
        Ok(ids)
    })?;
    Ok(super::with_ids(outputs, &ids))
}

/// A statement's values as SQLite takes them.
fn values(statement: &sea_orm::Statement) -> Result<Vec<SqlValue>, DbErr> {
    use sea_orm::Value as V;
    let Some(values) = &statement.values else { return Ok(Vec::new()) };
    values
        .0
        .iter()
        .map(|value| {
            Ok(match value {
                V::String(s) => s.as_deref().map_or(SqlValue::Null, |s| SqlValue::Text(s.clone())),
                V::Int(i) => i.map_or(SqlValue::Null, |i| SqlValue::Integer(i.into())),
                V::BigInt(i) => i.map_or(SqlValue::Null, SqlValue::Integer),
                V::Bool(b) => b.map_or(SqlValue::Null, |b| SqlValue::Integer(b.into())),
                other => return Err(DbErr::Custom(format!("no SQLite value for {other:?}"))),
            })
        })
        .collect()
}

/// A text column holding one of an enum's values.
fn enumerated<E: ActiveEnum<Value = String>>(row: &Row<'_>, index: usize) -> rusqlite::Result<E> {
    let text: String = row.get(index)?;
    E::try_from_value(&text).map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err)))
}

fn get<T: FromSql>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    row.get(index)
}

fn job_row(row: &Row<'_>) -> rusqlite::Result<job::Model> {
    Ok(job::Model {
        id: get(row, 0)?,
        owner: get(row, 1)?,
        status: enumerated(row, 2)?,
        input_status: enumerated(row, 3)?,
        progress: get(row, 4)?,
        spec: get(row, 5)?,
        input_metadata: get(row, 6)?,
        error: get(row, 7)?,
        created_at: get(row, 8)?,
        completed_at: get(row, 9)?,
        lease_owner: get(row, 10)?,
        lease_expires_at: get(row, 11)?,
        attempts: get(row, 12)?,
    })
}

fn output_row(row: &Row<'_>) -> rusqlite::Result<output::Model> {
    Ok(output::Model {
        id: get(row, 0)?,
        job_id: get(row, 1)?,
        position: get(row, 2)?,
        key: get(row, 3)?,
        format: get(row, 4)?,
        output_type: enumerated(row, 5)?,
        state: enumerated(row, 6)?,
        url: get(row, 7)?,
        urls: get(row, 8)?,
        metadata: get(row, 9)?,
        error: get(row, 10)?,
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveModelTrait;

    use super::*;
    use crate::db::direct::fixtures;

    fn new_job(id: &str, owner: &str) -> (job::Model, Vec<output::Model>) {
        fixtures::new_job(id, owner, 3)
    }

    #[tokio::test]
    async fn both_ways_read_and_write_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display())).await.unwrap();
        let file = file_of(&db).expect("a SQLite file");

        // Written here, read by sea-orm.
        let (job, outputs) = new_job("j1", "owner-a");
        let stored = insert(&file, &job, outputs.clone()).unwrap();
        assert!(stored.iter().all(|o| o.id > 0) && stored.windows(2).all(|w| w[0].id != w[1].id));
        let read = crate::db::jobs::find(&db, "j1", Some("owner-a")).await.unwrap().unwrap();
        assert_eq!(read, (job.clone(), stored.clone()));

        // Written by sea-orm (and changed, so every column has a value), read here.
        let (other, other_outputs) = new_job("j2", "owner-b");
        crate::db::jobs::insert(&db, other, other_outputs, "unused").await.unwrap();
        let changed = fixtures::every_column_set(crate::db::jobs::find(&db, "j2", None).await.unwrap().unwrap().0);
        changed.update(&db).await.unwrap();
        let via_orm = crate::db::jobs::find(&db, "j2", Some("owner-b")).await.unwrap().unwrap();
        assert_eq!(find(&file, "j2", Some("owner-b")).unwrap().unwrap(), via_orm);
        assert_eq!(find(&file, "j2", None).unwrap().unwrap(), via_orm);

        // Another owner's job is not found; neither is a missing one.
        assert!(find(&file, "j2", Some("owner-a")).unwrap().is_none());
        assert!(find(&file, "nope", None).unwrap().is_none());

        // A job that is there already is refused, and nothing of it is stored twice.
        let (again, again_outputs) = new_job("j1", "owner-a");
        assert!(insert(&file, &again, again_outputs).is_err());
        assert_eq!(find(&file, "j1", None).unwrap().unwrap().1.len(), 3);
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
        let file = file_of(&db).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        for i in 0..300 {
            let (job, outputs) = new_job(&format!("j{i}"), "o");
            insert(&file, &job, outputs).unwrap();
        }
        // No commit checkpoints (wal_autocheckpoint = 0): the pages reach the database
        // file only through the background checkpointer.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() <= before {
            assert!(std::time::Instant::now() < deadline, "the write-ahead log was not checkpointed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(find(&file, "j299", None).unwrap().unwrap().1.len(), 3);
    }

    #[tokio::test]
    async fn in_memory_databases_are_left_to_sea_orm() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        assert_eq!(file_of(&db), None);
    }
}
