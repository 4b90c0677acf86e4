//! The upkeep of a SQLite database's write-ahead log: a checkpointer in the background
//! copies the log back into the database file, starts the log again from its beginning
//! when it grows long, and gives the file's space back when writes stop.
//!
//! By default SQLite checkpoints inside whichever commit finds the log past 1,000 pages:
//! that commit writes the log back and fsyncs the file while holding the writer lock, and
//! every submit queued behind it. So no connection checkpoints on commit
//! (`wal_autocheckpoint = 0`) and [`spawn_checkpointer`] does it, on a blocking thread.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Row;
use sea_orm::DbErr;

use super::sqlite::{BUSY_TIMEOUT, with_connection};

/// How often the write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Frames (pages) the write-ahead log may hold before the log is started again from its
/// beginning: 16 MiB of 4 KiB pages.
const WAL_RESTART_FRAMES: i64 = 4096;

/// Frames left to copy under the writer lock that are few enough (1 MiB).
const LOCKED_COPY_FRAMES: i64 = 256;

/// Passive passes run back to back, at most, to catch up before a restart.
const CATCH_UP_PASSES: usize = 4;

/// A log file larger than this is cut to nothing once a whole tick passed without a write.
const IDLE_CUT_BYTES: u64 = 4 << 20;

/// Checkpoint the database's write-ahead log in the background, for as long as the
/// runtime runs.
///
/// A passive checkpoint waits for no reader or writer, but under a steady stream of
/// submits it never catches up with the end of the log, and the log is only started
/// again from its beginning after a checkpoint that did: the log grew without end
/// (4.7 GB after 100,000 submits, and the kernel then throttled every write to it).
/// So once the log holds [`WAL_RESTART_FRAMES`] frames, the checkpointer takes the
/// process's writer lock (`writer`, the queue every write of this process waits in),
/// copies the few frames the passive checkpoint left, and restarts the log; the next
/// commit writes from its beginning.
///
/// Every submit waits while the lock is held, so the copy under it must be short. At
/// 4,000 submits a second a tick's worth of commits is thousands of frames, so before
/// taking the lock the checkpointer runs passive passes back to back (each copies what
/// came in during the one before, a shorter time each) until at most
/// [`LOCKED_COPY_FRAMES`] are left, or [`CATCH_UP_PASSES`] have run.
///
/// When a tick passes with no write and the file is larger than [`IDLE_CUT_BYTES`], the
/// log is checkpointed and its file cut to nothing (`TRUNCATE`), under the same lock.
pub fn spawn_checkpointer(path: PathBuf, writer: &'static tokio::sync::Mutex<()>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The log's frames at the tick before: the same count twice, all copied, is a
        // tick without a write.
        let mut frames_before = -1;
        loop {
            tick.tick().await;
            let file = path.clone();
            let passive = tokio::task::spawn_blocking(move || checkpoint(&file, Mode::Passive)).await;
            let locked = match passive {
                Ok(Ok(frames)) => {
                    let mode = next_mode(&frames, frames_before);
                    frames_before = frames.log;
                    mode
                }
                Ok(Err(err)) if !path.exists() => {
                    tracing::debug!(%err, "the database file is gone; checkpoints stop");
                    return;
                }
                Ok(Err(err)) => {
                    tracing::warn!(%err, "checkpoint of the write-ahead log failed; trying again");
                    None
                }
                Err(_) => return,
            };
            let Some(mode) = locked else { continue };
            if mode == Mode::Restart {
                for _ in 0..CATCH_UP_PASSES {
                    let file = path.clone();
                    match tokio::task::spawn_blocking(move || checkpoint(&file, Mode::Passive)).await {
                        Ok(Ok(frames)) if frames.log - frames.copied > LOCKED_COPY_FRAMES => continue,
                        _ => break,
                    }
                }
            }
            let _writes_wait = writer.lock().await;
            let file = path.clone();
            let held = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || checkpoint(&file, mode)).await {
                Ok(Ok(frames)) if !frames.busy => {
                    // A restarted log keeps its count until the next write starts it
                    // again: the same count at the next tick is a tick without a write.
                    frames_before = frames.log;
                    tracing::debug!(?mode, frames = frames.log, held_ms = held.elapsed().as_secs_f64() * 1e3, "write-ahead log started again");
                }
                Ok(Ok(_)) => tracing::debug!(?mode, "a reader still reads the write-ahead log; left to the next tick"),
                Ok(Err(err)) => tracing::warn!(%err, ?mode, "starting the write-ahead log again failed; trying again"),
                Err(_) => return,
            }
        }
    });
}

/// What to do under the writer lock after a passive checkpoint found `frames`, the
/// tick before having found `frames_before` frames in the log.
///
/// Idleness is looked at first: a log that was started again keeps its count of frames
/// until the next write, so a burst that ended with a long log would otherwise be
/// restarted at every tick for good, and its file never cut.
fn next_mode(frames: &Frames, frames_before: i64) -> Option<Mode> {
    let idle = frames.log == frames_before && frames.log == frames.copied;
    if idle {
        (frames.file_bytes > IDLE_CUT_BYTES).then_some(Mode::Truncate)
    } else if frames.log >= WAL_RESTART_FRAMES {
        Some(Mode::Restart)
    } else {
        None
    }
}

/// The write-ahead log after a checkpoint.
struct Frames {
    /// The checkpoint could not finish: a reader held it back.
    busy: bool,
    /// Frames the log holds.
    log: i64,
    /// Of those, the frames now copied into the database file.
    copied: i64,
    /// The size of the log's file.
    file_bytes: u64,
}

/// Run a checkpoint of `mode`.
fn checkpoint(path: &Path, mode: Mode) -> Result<Frames, DbErr> {
    let mut log_file = OsString::from(path);
    log_file.push("-wal");
    let frames = |row: &Row<'_>| {
        let file_bytes = std::fs::metadata(&log_file).map_or(0, |m| m.len());
        Ok(Frames { busy: row.get::<_, i64>(0)? != 0, log: row.get(1)?, copied: row.get(2)?, file_bytes })
    };
    with_connection(path, |connection| match mode {
        Mode::Passive => connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], frames),
        Mode::Restart | Mode::Truncate => {
            // Without waiting: a reader still on an older snapshot would make SQLite's
            // busy handler sleep (1, 2, 5, 10 ... ms) while every submit waits for the
            // writer lock. Such a restart is left to the next tick.
            connection.busy_timeout(Duration::ZERO)?;
            let sql = if mode == Mode::Restart { "PRAGMA wal_checkpoint(RESTART)" } else { "PRAGMA wal_checkpoint(TRUNCATE)" };
            let frames = connection.query_row(sql, [], frames);
            connection.busy_timeout(BUSY_TIMEOUT)?;
            frames
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Copy what no reader needs; wait for nobody.
    Passive,
    /// Copy everything and start the log again from its beginning.
    Restart,
    /// As `Restart`, and cut the log's file to nothing.
    Truncate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::direct::fixtures;
    use crate::db::direct::sqlite::{file_of, find, insert};

    #[test]
    fn a_long_log_is_restarted_under_writes_and_cut_once_they_stop() {
        let frames = |log, copied, file_bytes| Frames { busy: false, log, copied, file_bytes };
        let long = WAL_RESTART_FRAMES + 10;
        // Writes since the tick before: a long log is started again, a short one left.
        assert_eq!(next_mode(&frames(long, long, 64 << 20), 100), Some(Mode::Restart));
        assert_eq!(next_mode(&frames(100, 90, 64 << 20), 50), None);
        // No write since: the file is cut, however long the log was when they stopped
        // (a restarted log keeps its count until the next write).
        assert_eq!(next_mode(&frames(long, long, 64 << 20), long), Some(Mode::Truncate));
        assert_eq!(next_mode(&frames(100, 100, 64 << 20), 100), Some(Mode::Truncate));
        // Nothing to give back, or frames a reader still holds: left alone.
        assert_eq!(next_mode(&frames(100, 100, 1 << 20), 100), None);
        assert_eq!(next_mode(&frames(0, 0, 0), 0), None);
        assert_eq!(next_mode(&frames(100, 60, 64 << 20), 100), None);
    }

    // Two workers, as the server has: the checkpointer runs beside the writes, not only
    // when the test yields.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_stays_bounded_under_a_steady_stream_of_writes_and_its_file_is_cut_when_they_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
        let file = file_of(&db).unwrap();
        let wal = path.with_extension("db-wal");
        // About 40 KiB of log a job (its row and outputs, with their indexes): 3,000 jobs
        // are 120 MB of log if it is never started again.
        let mut largest = 0;
        for i in 0..3000 {
            let (job, outputs) = fixtures::new_job(&format!("j{i}"), "o", 3);
            // Every write of the process waits in the writers' queue, as a submit does, so a
            // restart of the log never finds SQLite's write lock taken by one of them.
            let queued = crate::db::writer(&db).await;
            insert(&file, &job, outputs).unwrap();
            drop(queued);
            if i % 20 == 0 {
                // The checkpointer runs between the writes, as it does between submits.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        assert!(largest < 64 << 20, "the write-ahead log grew to {largest} bytes");
        assert_eq!(find(&file, "j2999", None).unwrap().unwrap().1.len(), 3);

        // The file kept its space under the writes; once they stop it is given back.
        assert!(largest > IDLE_CUT_BYTES, "the log never grew past {IDLE_CUT_BYTES} bytes, so this test shows nothing");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        while size > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        }
        assert_eq!(size, 0, "the log's file was not cut back after the writes stopped");
        assert_eq!(find(&file, "j2999", None).unwrap().unwrap().1.len(), 3);
    }
}
