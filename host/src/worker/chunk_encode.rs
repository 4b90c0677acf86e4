//! Chunks of ultrafast jobs, as any worker runs them: the chunk's input frames are
//! decoded once and encoded with every video output's plan into pieces in the job's
//! staging area (see `stage`), under a lease renewed by heartbeat like a job's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use super::stage::{Stage, StageError, piece_name, times_name};
use super::{MAX_ATTEMPTS, Worker};
use crate::confined::{Engine, EngineError};
use crate::media::ChunkRange;
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

/// The done chunks of `job_id` (an earlier coordinator's) whose pieces of every one of
/// `outputs` are still in `stage`.
pub(super) async fn staged_pieces(
    db: &sea_orm::DatabaseConnection,
    stage: &Stage,
    job_id: &str,
    outputs: &[ChunkOutput],
) -> Result<HashSet<i64>, sea_orm::DbErr> {
    let mut staged = HashSet::new();
    for chunk in chunks::states(db, job_id).await?.into_iter().filter(|c| c.status == "done") {
        let mut whole = true;
        for output in outputs {
            // A piece and its side file of timestamps (`<piece>.times`, media/piece.rs).
            let piece = piece_name(chunk.id, output.position, output.rung);
            whole &= stage.size(&piece).await.is_some_and(|size| size > 0) && stage.size(&times_name(&piece)).await.is_some();
        }
        if whole {
            staged.insert(chunk.id);
        }
    }
    Ok(staged)
}

/// Why a chunk was not encoded and stored; the message is recorded on the chunk.
#[derive(Debug, thiserror::Error)]
pub(super) enum ChunkError {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("creating {}: {source}", dir.display())]
    Scratch { dir: PathBuf, source: std::io::Error },
    #[error("the chunk's plan is unreadable: {0}")]
    Plan(#[from] serde_json::Error),
    #[error("encoding failed: {0}")]
    Encode(#[from] EngineError),
    #[error("stopped before its pieces were stored")]
    Stopped,
}

impl Worker {
    /// Where the chunks and pieces of `job_id` are staged.
    pub(super) fn stage_of(&self, job_id: &str) -> Result<Stage, StageError> {
        let dirs = self.config.worker.ultrafast_dir.clone().unwrap_or_else(|| self.config.data_dir.join("ultrafast"));
        Stage::of(&dirs, self.stage_store.as_ref(), job_id)
    }

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
            Err(err) => {
                let message = err.to_string();
                tracing::warn!(job_id = %chunk.job_id, chunk = chunk.idx, message, "chunk failed");
                if let Err(err) = chunks::fail(db, chunk.id, &self.identity, &message, MAX_ATTEMPTS).await {
                    tracing::error!(%err, "chunk failure not recorded; it is retried when its lease expires");
                }
            }
        }
    }

    /// Ok(false): the lease was lost while encoding. A chunk staged in a store is
    /// downloaded to a scratch directory of its own, removed at the end.
    async fn encode_chunk(&self, chunk: &Chunk, cancel: &Arc<AtomicBool>) -> Result<bool, ChunkError> {
        let stage = self.stage_of(&chunk.job_id)?;
        let scratch = crate::storage::work_dir(&self.config.data_dir, &format!("{}-chunk-{}", chunk.job_id, chunk.id));
        if stage.cuts_chunks() {
            tokio::fs::create_dir_all(&scratch).await.map_err(|source| ChunkError::Scratch { dir: scratch.clone(), source })?;
        }
        let result = self.encode_staged_chunk(chunk, &stage, &scratch, cancel).await;
        if stage.cuts_chunks()
            && let Err(err) = tokio::fs::remove_dir_all(&scratch).await
        {
            tracing::warn!(%err, "the chunk's scratch directory was not removed");
        }
        result
    }

    /// Fetch, encode and store the chunk while renewing its lease (transfers included).
    async fn encode_staged_chunk(&self, chunk: &Chunk, stage: &Stage, scratch: &Path, cancel: &Arc<AtomicBool>) -> Result<bool, ChunkError> {
        let plan: ChunkPlan = serde_json::from_str(&chunk.payload)?;
        let done = Arc::new(AtomicU32::new(0));
        // Set when the encode must stop: the job's cancel, or the chunk's lease lost.
        let stop = Arc::new(AtomicBool::new(false));
        let mut lost = false;
        // The job's work directory, where this node's coordinator (if it is this node) cut the chunks.
        let job_work = crate::storage::work_dir(&self.config.data_dir, &chunk.job_id);
        let work = fetch_encode_store(&self.engine, chunk, plan, stage, &job_work, scratch, done.clone(), stop.clone());
        tokio::pin!(work);
        let mut tick = tokio::time::interval(CHECK_EVERY);
        let mut last_beat = tokio::time::Instant::now();
        loop {
            tokio::select! {
                result = &mut work => {
                    return match result {
                        _ if lost => Ok(false),
                        Ok(()) => Ok(true),
                        Err(err) => Err(err),
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

/// The chunk's input from the stage (its own file, or the whole input), its pieces
/// encoded, and staged; nothing is staged once `stop` is set.
#[allow(clippy::too_many_arguments)]
async fn fetch_encode_store(
    engine: &Engine,
    chunk: &Chunk,
    plan: ChunkPlan,
    stage: &Stage,
    job_work: &Path,
    scratch: &Path,
    done: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> Result<(), ChunkError> {
    let cut = stage.cuts_chunks();
    let input = stage.get_chunk(chunk.idx, job_work, scratch).await?;
    let names: Vec<String> = plan.outputs.iter().map(|o| piece_name(chunk.id, o.position, o.rung)).collect();
    let pieces: Vec<PathBuf> = names.iter().map(|name| stage.local_dir(scratch).join(name)).collect();
    let plans: Vec<(VideoPlan, (i32, i32))> = plan.outputs.into_iter().map(|o| (o.video, o.sar.unwrap_or((1, 1)))).collect();
    let range = ChunkRange { start: chunk.start, end: chunk.end };
    let progress = move |fraction: f64| done.store((fraction * 1000.0) as u32, Ordering::Relaxed);
    let label = format!("{}-chunk-{}", chunk.job_id, chunk.idx);
    engine.encode_video_chunk(&label, &input, cut, range, &plans, &pieces, &progress, &stop).await?;
    for (name, path) in names.iter().zip(&pieces) {
        if stop.load(Ordering::Relaxed) {
            return Err(ChunkError::Stopped);
        }
        stage.put(name, path).await?;
        stage.put(&times_name(name), &path.with_file_name(times_name(name))).await?;
    }
    Ok(())
}
