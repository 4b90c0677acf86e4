//! Packages (`httpstream`) in ultrafast jobs. Every video rung of a package is a chunk
//! output of its own (encoded per chunk with the rung's plan, keyframes forced at the
//! package's segment instants as in a one-piece ladder, at the rung's display aspect);
//! its audio renditions are encoded once for the whole input, beside the other outputs'
//! audio. When the last chunk is done, the package is made from the joined rungs by
//! stream copy (`media::package_encoded`: the same muxers and playlists as the encoding
//! packager's) and uploaded as one the normal path made.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Planned;
use super::chunk_encode::ChunkOutput;
use super::stage::{Stage, piece_name};
use super::record::JobRun;
use super::ultrafast_errors::{JoinFailed, PackageUnchunkable};
use crate::db::jobs::WriteError;
use crate::job::status::OutputState;
use crate::media::{self, Produced};
use crate::queue::chunks::ChunkState;
use crate::types::{AudioPlan, OutputPlan, StreamPlan};

/// Whether a package can be made from chunks, for an input of `input_fps` frames a
/// second; if not, why. Ladders name a frame rate (the input's, capped): the rate
/// filter then keeps every frame where it is, so chunks join as without it; another
/// rate would retime frames, and chunk edges could drop or repeat one.
pub(super) fn package_chunkable(package: &StreamPlan, input_fps: f64) -> Result<(), PackageUnchunkable> {
    let ladder = media::ladder(package)?;
    if ladder.video.is_empty() {
        return Err(PackageUnchunkable::NoVideo);
    }
    for (video, _) in &ladder.video {
        if video.fps.is_some_and(|fps| (fps - input_fps).abs() > 1e-6) {
            return Err(PackageUnchunkable::OwnFrameRate);
        }
        if !video.keyframe_interval.is_some_and(|i| i > 0.0) {
            return Err(PackageUnchunkable::NoSegmentKeyframes);
        }
        if !matches!(video.codec.as_str(), "h264" | "hevc" | "h265") {
            return Err(PackageUnchunkable::Codec { codec: video.codec.clone() });
        }
    }
    Ok(())
}

/// What every chunk encodes for one chunked output: its video, or each rung of its
/// package.
pub(super) fn chunk_outputs(position: i32, plan: &OutputPlan) -> Vec<ChunkOutput> {
    match &plan.packaging {
        Some(package) => media::ladder(package)
            .map(|ladder| ladder.video)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(rung, (video, sar))| ChunkOutput { position, video, rung: Some(rung), sar: (sar != (1, 1)).then_some(sar) })
            .collect(),
        None => plan.video.clone().map(|video| ChunkOutput { position, video, rung: None, sar: None }).into_iter().collect(),
    }
}

/// An output's audio renditions (a file's one, a package's distinct ones, in the order
/// `media::package_encoded` takes them) and where each is encoded to under `work`.
pub(super) fn audio_renditions(position: i32, plan: &OutputPlan, work: &Path) -> Vec<(AudioPlan, PathBuf)> {
    match &plan.packaging {
        Some(package) => media::ladder(package)
            .map(|ladder| ladder.audio)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, audio)| (audio, work.join(format!("audio-{position}-{i}.nut"))))
            .collect(),
        None => plan.audio.clone().map(|audio| (audio, work.join(format!("audio-{position}.nut")))).into_iter().collect(),
    }
}

/// Where cuts are best placed for the job's outputs, in seconds, the most wanted first:
/// its first package's segment boundaries, then that package's forced keyframes (a join
/// there adds no keyframe to any rung).
pub(super) fn alignment(chunked: &[Planned]) -> Vec<f64> {
    let Some(package) = chunked.iter().find_map(|p| p.target.plan.packaging.as_ref()) else { return Vec::new() };
    let interval = package.variants.iter().find_map(|v| v.video.as_ref().and_then(|v| v.keyframe_interval));
    std::iter::once(package.segment_duration).chain(interval).collect()
}

impl JobRun<'_> {
    /// Make the package of `p` from its rungs' pieces and its `audio` renditions.
    /// Err: the job's lease or a write; Ok(Err(why)): the output failed.
    pub(super) async fn package_pieces(
        &self,
        p: &Planned,
        stage: &Stage,
        work: &Path,
        states: &[ChunkState],
        audio: Vec<PathBuf>,
        cancel: &Arc<AtomicBool>,
    ) -> anyhow::Result<Result<Produced, JoinFailed>> {
        let Some(package) = p.target.plan.packaging.clone() else { return Ok(Err(JoinFailed::NotPackage)) };
        let rungs = chunk_outputs(p.row.position, &p.target.plan).len();
        // Each rung's pieces (downloaded to `work` from a store).
        let mut video: Vec<Vec<PathBuf>> = Vec::with_capacity(rungs);
        for rung in 0..rungs {
            let names: Vec<String> = states.iter().map(|s| piece_name(s.id, p.row.position, Some(rung))).collect();
            match stage.get_pieces(&names, work).await {
                Ok(pieces) => video.push(pieces),
                Err(err) => {
                    for fetched in &video {
                        stage.discard_fetched(fetched).await;
                    }
                    return Ok(Err(JoinFailed::Fetch(err)));
                }
            }
        }
        self.set_output(&p.row, OutputState::Packaging).await?;
        let fetched = video.clone();
        let made = self.engine.package_encoded(&self.lease.job_id, &video, &audio, &package, &p.target.path, cancel).await;
        for pieces in &fetched {
            stage.discard_fetched(pieces).await;
        }
        // Stopped because the job is another worker's now: not this output's failure.
        if cancel.load(Ordering::Relaxed) {
            return Err(WriteError::LeaseLost(self.lease.job_id.clone()).into());
        }
        Ok(made.map(Produced::Package).map_err(JoinFailed::Package))
    }
}
