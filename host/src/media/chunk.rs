//! The encodes of an ultrafast job: one chunk of the video for every video output (a
//! piece each), and the whole audio once for every output that has audio, so joins
//! never fall inside an audio frame. Each uses the same encoders, settings and filters
//! as the one-piece encode; only the frames fed differ.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::MediaError;
use super::encode::{AudioEncoder, VideoEncoder, VideoSetup};
use super::input::{Decoded, Demuxer};
use super::piece::PieceWriter;
use super::split::ChunkRange;
use crate::types::{AudioPlan, VideoPlan};

/// Encode the frames of `range` with every plan, into `pieces` (one per plan). The
/// first frame of each piece is a keyframe (an encoder's first frame always is).
/// `progress` sees the share of the chunk done. Returns the frames encoded.
pub fn encode_video_chunk(
    input: &Path,
    range: ChunkRange,
    plans: &[VideoPlan],
    pieces: &[PathBuf],
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<u64, MediaError> {
    super::init();
    let mut demuxer = Demuxer::open(input)?;
    let format = demuxer.video_format().ok_or_else(|| MediaError::Unsupported("the input has no video".into()))?;
    if let Some(start) = range.start {
        demuxer.seek_video(start)?;
    }
    let unit = f64::from(format.time_base);
    let first = range.start.map_or(0.0, |s| s as f64 * unit);
    let length = range.end.map_or(demuxer.duration, |e| e as f64 * unit) - first;
    let mut lanes = Vec::with_capacity(plans.len());
    for (plan, path) in plans.iter().zip(pieces) {
        let setup = VideoSetup { global_header: true, ..VideoSetup::plain() };
        let encoder = VideoEncoder::open(plan, &format, setup)?;
        let writer = PieceWriter::create(path, encoder.context(), encoder.time_base, Some(encoder.frame_rate))?;
        lanes.push((encoder, writer));
    }
    let (mut frames, mut past_end, mut failed) = (0u64, false, None::<MediaError>);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        let more = demuxer.step(true, false, &mut |decoded| {
            let Decoded::Video(frame, seconds) = decoded else { return };
            let Some(pts) = frame.pts() else { return };
            if past_end || failed.is_some() || range.start.is_some_and(|s| pts < s) {
                return;
            }
            if range.end.is_some_and(|e| pts >= e) {
                past_end = true;
                return;
            }
            frames += 1;
            for (encoder, writer) in lanes.iter_mut() {
                if let Err(err) = encoder.push(Some(frame), &mut |packet, tb| writer.write(packet, tb)) {
                    failed = Some(err);
                    return;
                }
            }
            if length > 0.0 {
                progress(((seconds - first) / length).clamp(0.0, 1.0));
            }
        })?;
        if let Some(err) = failed {
            return Err(err);
        }
        if !more || past_end {
            break;
        }
    }
    for (mut encoder, mut writer) in lanes {
        encoder.push(None, &mut |packet, tb| writer.write(packet, tb))?;
        writer.finish()?;
    }
    progress(1.0);
    Ok(frames)
}

/// Encode the whole input's audio with every plan, into `pieces` (one per plan).
pub fn encode_audio(input: &Path, plans: &[AudioPlan], pieces: &[PathBuf], cancel: &AtomicBool) -> Result<(), MediaError> {
    super::init();
    let mut demuxer = Demuxer::open(input)?;
    let format = demuxer.audio_format().ok_or_else(|| MediaError::Unsupported("the input has no audio".into()))?;
    let mut lanes = Vec::with_capacity(plans.len());
    for (plan, path) in plans.iter().zip(pieces) {
        let encoder = AudioEncoder::open(plan, &format, None, true)?;
        let writer = PieceWriter::create(path, encoder.context(), encoder.time_base, None)?;
        lanes.push((encoder, writer));
    }
    let mut failed = None::<MediaError>;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        let more = demuxer.step(false, true, &mut |decoded| {
            let Decoded::Audio(frame, _) = decoded else { return };
            for (encoder, writer) in lanes.iter_mut() {
                if failed.is_none()
                    && let Err(err) = encoder.push(Some(frame), &mut |packet, tb| writer.write(packet, tb))
                {
                    failed = Some(err);
                }
            }
        })?;
        if let Some(err) = failed {
            return Err(err);
        }
        if !more {
            break;
        }
    }
    for (mut encoder, mut writer) in lanes {
        encoder.push(None, &mut |packet, tb| writer.write(packet, tb))?;
        writer.finish()?;
    }
    Ok(())
}
