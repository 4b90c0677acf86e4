//! Packages made from renditions encoded before, as an ultrafast job's are: each
//! rendition is read from its pieces (a join, by stream copy) and its packets go, in
//! decoding order across renditions, to the same HLS and DASH muxers, master playlist
//! and measured bandwidths as the encoding packager's. Nothing is decoded or encoded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::ladder::Layout;
use super::manifest::declared_kbps;
use super::muxers::StreamSpec;
use super::packager::Packager;
use super::lock;
use crate::media::sink::Package;
use crate::media::error::MediaError;
use crate::media::join::PieceChain;
use crate::types::StreamPlan;

/// Package `plan` into `dir` from its renditions, as [`super::ladder`] lists them: each
/// video rung's pieces in order, and each audio rendition's piece. The video pieces must
/// have keyframes at the package's segment instants (the rungs' keyframe interval).
pub fn package_encoded(video: &[Vec<PathBuf>], audio: &[PathBuf], plan: &StreamPlan, dir: &Path, cancel: &AtomicBool) -> Result<Package, MediaError> {
    crate::media::ffmpeg_init::init();
    let result = package(video, audio, plan, dir, cancel);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn package(video: &[Vec<PathBuf>], audio: &[PathBuf], plan: &StreamPlan, dir: &Path, cancel: &AtomicBool) -> Result<Package, MediaError> {
    let layout = Layout::of(plan, &[], !video.is_empty(), !audio.is_empty())?;
    if layout.video.len() != video.len() || layout.audio.len() != audio.len() {
        return Err(MediaError::Unsupported(format!(
            "the package has {} video and {} audio renditions, but {} and {} were encoded",
            layout.video.len(),
            layout.audio.len(),
            video.len(),
            audio.len()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;
    let mut chains = Vec::with_capacity(video.len() + audio.len());
    for pieces in video.iter().cloned().chain(audio.iter().map(|a| vec![a.clone()])) {
        chains.push(PieceChain::open(pieces)?);
    }
    let declared = layout.video.iter().map(|(_, v)| declared_kbps(v)).chain(layout.audio.iter().map(|r| r.plan.bitrate_kbps));
    let streams: Vec<StreamSpec> = chains
        .iter()
        .zip(declared)
        .map(|(chain, kbps)| StreamSpec {
            parameters: chain.parameters.clone(),
            sar: chain.aspect,
            time_base: chain.time_base(),
            frame_rate: (chain.frame_rate.numerator() > 0 && chain.parameters.medium() == ffmpeg_next::media::Type::Video).then_some(chain.frame_rate),
            bit_rate: kbps,
        })
        .collect();
    let out = Packager::open(plan, dir, &layout, &streams, Box::new(|_| {}))?;
    // Always the rendition whose next packet is due first: the DASH muxer, which has
    // them all, gets them in order.
    let mut written = 0u64;
    while let Some((r, chain)) = chains.iter_mut().enumerate().filter(|(_, c)| c.due().is_some()).min_by_key(|(_, c)| c.due()) {
        written += 1;
        if written.is_multiple_of(256) && cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        let time_base = chain.time_base();
        let Some(mut packet) = chain.take()? else { break };
        lock(&out.muxers).write(r, &mut packet, time_base)?;
    }
    out.close()
}
