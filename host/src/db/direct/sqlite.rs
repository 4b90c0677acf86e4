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
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    connection.pragma_update(None, "journal_size_limit", 64 << 20)?;
    connection.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
    Ok(connection)
}

/// Run `work` on this thread's connection to `path`.
fn with_connection<T>(path: &Path, work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, DbErr> {
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

/// How often the write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Frames (pages) the write-ahead log may hold before the log is started again from its
/// beginning: 16 MiB of 4 KiB pages.
const WAL_RESTART_FRAMES: i64 = 4096;

/// Frames left to copy under the writer lock that are few enough (1 MiB).
const LOCKED_COPY_FRAMES: i64 = 256;

/// Passive passes run back to back, at most, to catch up before a restart.
const CATCH_UP_PASSES: usize = 4;

/// Checkpoint the database's write-ahead log in the background, for as long as the
/// runtime runs. By default SQLite checkpoints inside whichever commit finds the log past
/// 1,000 pages: that commit wrote the log back and fsynced the file while holding the
/// writer lock, and every submit queued behind it. So no connection checkpoints on
/// commit (`wal_autocheckpoint = 0`) and this does it instead, on a blocking thread.
///
/// A passive checkpoint waits for no reader or writer, but under a steady stream of
/// submits it never catches up with the end of the log, and the log is only started
/// again from its beginning after a checkpoint that did: the log grew without end
/// (4.7 GB after 100,000 submits, and the kernel then throttled every write to it).
/// So once the log holds [`WAL_RESTART_FRAMES`] frames, the checkpointer takes the
/// process's writer lock (`writer`, the queue every write of this process waits in),
/// copies the few frames the passive checkpoint left, and restarts the log; the next
/// commit writes from its beginning, and `journal_size_limit` cuts the file back.
///
/// Every submit waits while the lock is held, so the copy under it must be short. At
/// 4,000 submits a second a tick's worth of commits is thousands of frames, so before
/// taking the lock the checkpointer runs passive passes back to back (each copies what
/// came in during the one before, a shorter time each) until at most
/// [`LOCKED_COPY_FRAMES`] are left, or [`CATCH_UP_PASSES`] have run.
pub fn spawn_checkpointer(path: PathBuf, writer: &'static tokio::sync::Mutex<()>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let file = path.clone();
            let passive = tokio::task::spawn_blocking(move || checkpoint(&file, Mode::Passive)).await;
            let restart = match passive {
                Ok(Ok(frames)) => frames.log >= WAL_RESTART_FRAMES,
                Ok(Err(err)) if !path.exists() => {
                    tracing::debug!(%err, "the database file is gone; checkpoints stop");
                    return;
                }
                Ok(Err(err)) => {
                    tracing::warn!(%err, "checkpoint of the write-ahead log failed; trying again");
                    false
                }
                Err(_) => return,
            };
            if restart {
                for _ in 0..CATCH_UP_PASSES {
                    let file = path.clone();
                    match tokio::task::spawn_blocking(move || checkpoint(&file, Mode::Passive)).await {
                        Ok(Ok(frames)) if frames.log - frames.copied > LOCKED_COPY_FRAMES => continue,
                        _ => break,
                    }
                }
                let _writes_wait = writer.lock().await;
                let file = path.clone();
                let held = std::time::Instant::now();
                match tokio::task::spawn_blocking(move || checkpoint(&file, Mode::Restart)).await {
                    Ok(Ok(frames)) => tracing::debug!(frames = frames.log, held_ms = held.elapsed().as_secs_f64() * 1e3, "write-ahead log restarted"),
                    Ok(Err(err)) => tracing::warn!(%err, "restarting the write-ahead log failed; trying again"),
                    Err(_) => return,
                }
            }
        }
    });
}

/// The write-ahead log after a checkpoint.
struct Frames {
    /// Frames the log holds.
    log: i64,
    /// Of those, the frames now copied into the database file.
    copied: i64,
}

/// Run a checkpoint of `mode`.
fn checkpoint(path: &Path, mode: Mode) -> Result<Frames, DbErr> {
    let frames = |row: &Row<'_>| Ok(Frames { log: row.get(1)?, copied: row.get(2)? });
    with_connection(path, |connection| match mode {
        Mode::Passive => connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], frames),
        Mode::Restart => {
            // Without waiting: a reader still on an older snapshot would make SQLite's
            // busy handler sleep (1, 2, 5, 10 ... ms) while every submit waits for the
            // writer lock. Such a restart is left to the next tick.
            connection.busy_timeout(Duration::ZERO)?;
            let frames = connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], frames);
            connection.busy_timeout(BUSY_TIMEOUT)?;
            frames
        }
    })
}

#[derive(Clone, Copy)]
enum Mode {
    /// Copy what no reader needs; wait for nobody.
    Passive,
    /// Copy everything and start the log again from its beginning.
    Restart,
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
    async fn the_log_stays_bounded_under_a_steady_stream_of_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
        let file = file_of(&db).unwrap();
        let wal = path.with_extension("db-wal");
        // About 40 KiB of log a job (its row and outputs, with their indexes): 3,000 jobs
        // are 120 MB of log if it is never started again.
        let mut largest = 0;
        for i in 0..3000 {
            let (job, outputs) = new_job(&format!("j{i}"), "o");
            insert(&file, &job, outputs).unwrap();
            if i % 20 == 0 {
                // The checkpointer runs between the writes, as it does between submits.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        assert!(largest < 64 << 20, "the write-ahead log grew to {largest} bytes");
        assert_eq!(find(&file, "j2999", None).unwrap().unwrap().1.len(), 3);
    }

    #[tokio::test]
    async fn in_memory_databases_are_left_to_sea_orm() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        assert_eq!(file_of(&db), None);
    }
}
