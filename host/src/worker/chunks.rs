//! Chunks of ultrafast jobs, as any worker runs them: the chunk's input frames are
//! decoded once and encoded with every video output's plan into pieces in the job's
//! staging directory, under a lease renewed by heartbeat like a job's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use super::{MAX_ATTEMPTS, Worker};
use crate::config::Config;
use crate::media::{self, ChunkRange};
use crate::queue::chunks::{self, Chunk};
use crate::types::VideoPlan;

/// How often a running chunk looks at its stop flags and progress.
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// What every chunk of a job encodes: each video output's plan (checked by the
/// coordinator with the job's other plans).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ChunkPlan {
    pub outputs: Vec<ChunkOutput>,
    /// The staged input's size: a coordinator taking the job over keeps its
    /// predecessor's done chunks only for the same plan of the same input.
    #[serde(default)]
    pub input_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ChunkOutput {
    pub position: i32,
    pub video: VideoPlan,
    /// For a package, which of its video rungs this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<usize>,
    /// The sample aspect ratio to encode at, when not 1:1 (package rungs display at
    /// their top rung's aspect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sar: Option<(i32, i32)>,
}

/// The directory every worker finds a job's staged input and pieces in.
pub(super) fn stage_dir(config: &Config, job_id: &str) -> Option<PathBuf> {
    // Job ids are the host's own, but they name a directory: only plain ones do.
    let plain = !job_id.is_empty() && job_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let root = config.worker.ultrafast_dir.clone().unwrap_or_else(|| config.data_dir.join("ultrafast"));
    plain.then(|| root.join(job_id))
}

/// A chunk's piece of one output, or of one rung of a package output (named by the
/// chunk's row, so a piece left by an earlier coordinator's chunk is never mistaken
/// for this one's).
pub(super) fn piece_path(stage: &Path, chunk_id: i64, position: i32, rung: Option<usize>) -> PathBuf {
    match rung {
        None => stage.join(format!("c{chunk_id}-o{position}.nut")),
        Some(rung) => stage.join(format!("c{chunk_id}-o{position}-r{rung}.nut")),
    }
}

/// The done chunks of `job_id` (an earlier coordinator's) whose pieces of every one of
/// `outputs` are still in `stage`.
pub(super) async fn staged_pieces(
    db: &sea_orm::DatabaseConnection,
    stage: &Path,
    job_id: &str,
    outputs: &[ChunkOutput],
) -> Result<HashSet<i64>, sea_orm::DbErr> {
    let mut staged = HashSet::new();
    for chunk in chunks::states(db, job_id).await?.into_iter().filter(|c| c.status == "done") {
        let mut whole = true;
        for output in outputs {
            // A piece and its side file of timestamps (`<piece>.times`, media/piece.rs).
            let piece = piece_path(stage, chunk.id, output.position, output.rung);
            let mut times = piece.clone().into_os_string();
            times.push(".times");
            let size = tokio::fs::metadata(&piece).await.map(|m| m.len()).unwrap_or(0);
            whole &= size > 0 && tokio::fs::try_exists(PathBuf::from(times)).await.unwrap_or(false);
        }
        if whole {
            staged.insert(chunk.id);
        }
    }
    Ok(staged)
}

impl Worker {
    /// Encode a claimed chunk and record the outcome. `cancel` stops it (shutdown, or
    /// its coordinator's lease lost): the claim is then given back, not counted.
    pub(super) async fn run_chunk(&self, chunk: Chunk, cancel: Arc<AtomicBool>) {
        tracing::info!(job_id = %chunk.job_id, chunk = chunk.idx, chunk_id = chunk.id, "chunk started");
        let started = std::time::Instant::now();
        let result = self.encode_chunk(&chunk, &cancel).await;
        let db = &self.db;
        match result {
            Ok(true) => match chunks::finish(db, chunk.id, &self.identity).await {
                Ok(true) => tracing::info!(job_id = %chunk.job_id, chunk = chunk.idx, seconds = started.elapsed().as_secs_f64(), "chunk done"),
                Ok(false) => tracing::warn!(job_id = %chunk.job_id, chunk = chunk.idx, "chunk finished after its lease was lost; another worker has it"),
                Err(err) => tracing::error!(job_id = %chunk.job_id, chunk = chunk.idx, %err, "chunk done but not recorded"),
            },
            Ok(false) => tracing::warn!(job_id = %chunk.job_id, chunk = chunk.idx, "chunk lease lost; left to another worker"),
            Err(_) if cancel.load(Ordering::Relaxed) => {
                if let Err(err) = chunks::release(db, &self.identity, Some(chunk.id)).await {
                    tracing::warn!(%err, "stopped chunk's lease not released; it frees when it expires");
                }
            }
            Err(message) => {
                tracing::warn!(job_id = %chunk.job_id, chunk = chunk.idx, message, "chunk failed");
                if let Err(err) = chunks::fail(db, chunk.id, &self.identity, &message, MAX_ATTEMPTS).await {
                    tracing::error!(%err, "chunk failure not recorded; it is retried when its lease expires");
                }
            }
        }
    }

    /// Ok(false): the lease was lost while encoding.
    async fn encode_chunk(&self, chunk: &Chunk, cancel: &Arc<AtomicBool>) -> Result<bool, String> {
        let plan: ChunkPlan = serde_json::from_str(&chunk.payload).map_err(|e| format!("the chunk's plan is unreadable: {e}"))?;
        let stage = stage_dir(&self.config, &chunk.job_id).ok_or("the chunk's job id is not a plain name")?;
        let input = stage.join("input");
        let pieces: Vec<PathBuf> = plan.outputs.iter().map(|o| piece_path(&stage, chunk.id, o.position, o.rung)).collect();
        let plans: Vec<(VideoPlan, (i32, i32))> = plan.outputs.into_iter().map(|o| (o.video, o.sar.unwrap_or((1, 1)))).collect();
        let range = ChunkRange { start: chunk.start, end: chunk.end };
        let done = Arc::new(AtomicU32::new(0));
        // Set when the encode must stop: the job's cancel, or the chunk's lease lost.
        let stop = Arc::new(AtomicBool::new(false));
        let mut lost = false;
        let encode = {
            let (done, stop) = (done.clone(), stop.clone());
            tokio::task::spawn_blocking(move || {
                let progress = move |fraction: f64| done.store((fraction * 1000.0) as u32, Ordering::Relaxed);
                media::encode_video_chunk(&input, range, &plans, &pieces, &progress, &stop)
            })
        };
        tokio::pin!(encode);
        let mut tick = tokio::time::interval(CHECK_EVERY);
        let mut last_beat = tokio::time::Instant::now();
        loop {
            tokio::select! {
                result = &mut encode => {
                    let result = result.map_err(|e| format!("the chunk's encode panicked: {e}"))?;
                    return match result {
                        _ if lost => Ok(false),
                        Ok(_) => Ok(true),
                        Err(err) => Err(format!("encoding failed: {err}")),
                    };
                }
                _ = tick.tick() => {
                    if cancel.load(Ordering::Relaxed) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if last_beat.elapsed() < self.config.queue.heartbeat().min(std::time::Duration::from_secs(2)) {
                        continue;
                    }
                    last_beat = tokio::time::Instant::now();
                    let progress = done.load(Ordering::Relaxed) as i32;
                    match chunks::heartbeat(&self.db, chunk.id, &self.identity, &self.config.queue, progress).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost = true;
                            stop.store(true, Ordering::Relaxed);
                        }
                        Err(err) => tracing::warn!(%err, "chunk heartbeat failed; trying again"),
                    }
                }
            }
        }
    }
}
