//! The encodes of an ultrafast job: one chunk of the video for every video output (a
//! piece each), and the whole audio once for every output that has audio, so joins
//! never fall inside an audio frame. Each uses the same encoders, settings and filters
//! as the one-piece encode; only the frames fed differ. As in the engine, this thread
//! decodes and every piece is filtered and encoded on a lane (a thread) of its own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use super::decode_limits::DecodeLimits;
use super::error::MediaError;
use super::encode::{AudioEncoder, VideoEncoder, VideoSetup};
use super::lane::Lane;
use super::sink::{Flow, Sink};
use super::input::{Decoded, Demuxer};
use super::piece::PieceWriter;
use super::split::ChunkRange;
use crate::types::{AudioPlan, VideoPlan};

/// One piece being made: an encoder and the piece it writes.
struct PieceSink<E> {
    encoder: E,
    writer: Option<PieceWriter>,
}

impl Sink for PieceSink<VideoEncoder> {
    type Done = ();
    fn wants_video(&self) -> bool {
        true
    }
    fn wants_audio(&self) -> bool {
        false
    }
    fn video(&mut self, frame: &frame::Video) -> Result<Flow, MediaError> {
        let writer = self.writer.as_mut().ok_or(MediaError::Cancelled)?;
        self.encoder.push(Some(frame), &mut |packet, tb| writer.write(packet, tb))?;
        Ok(Flow::Continue)
    }
    fn audio(&mut self, _: &frame::Audio) -> Result<Flow, MediaError> {
        Ok(Flow::Continue)
    }
    fn finish(&mut self) -> Result<(), MediaError> {
        let mut writer = self.writer.take().ok_or(MediaError::Cancelled)?;
        self.encoder.push(None, &mut |packet, tb| writer.write(packet, tb))?;
        writer.finish()
    }
}

impl Sink for PieceSink<AudioEncoder> {
    type Done = ();
    fn wants_video(&self) -> bool {
        false
    }
    fn wants_audio(&self) -> bool {
        true
    }
    fn video(&mut self, _: &frame::Video) -> Result<Flow, MediaError> {
        Ok(Flow::Continue)
    }
    fn audio(&mut self, frame: &frame::Audio) -> Result<Flow, MediaError> {
        let writer = self.writer.as_mut().ok_or(MediaError::Cancelled)?;
        self.encoder.push(Some(frame), &mut |packet, tb| writer.write(packet, tb))?;
        Ok(Flow::Continue)
    }
    fn finish(&mut self) -> Result<(), MediaError> {
        let mut writer = self.writer.take().ok_or(MediaError::Cancelled)?;
        self.encoder.push(None, &mut |packet, tb| writer.write(packet, tb))?;
        writer.finish()
    }
}

/// End every lane (normally, or with `error`) and return the first failure.
fn close_all(lanes: Vec<Lane<()>>, error: Option<MediaError>) -> Result<(), MediaError> {
    let mut lanes = lanes;
    for lane in lanes.iter_mut() {
        lane.close(error.clone());
    }
    let mut first = error.map(Err).unwrap_or(Ok(()));
    for lane in lanes {
        let result = lane.join();
        if first.is_ok() {
            first = result;
        }
    }
    first
}

/// What a lane does with its result: nothing here, the caller joins it.
type Report = Box<dyn FnOnce(&Result<(), MediaError>) + Send>;

fn quiet() -> Report {
    Box::new(|_| {})
}

/// Encode the frames of `range` with every plan, into `pieces` (one per plan), each
/// with its sample aspect ratio (numerator, denominator: 1:1 but for package rungs).
/// The first frame of each piece is a keyframe (an encoder's first frame always is).
/// `input` is the whole input, or with `cut` the chunk's own file (see
/// [`super::cut_chunks`]). `progress` sees the share of the chunk done. The decode is
/// held to `limits` (the chunk's times are the whole input's). Returns the frames encoded.
#[allow(clippy::too_many_arguments)]
pub fn encode_video_chunk(
    input: &Path,
    cut: bool,
    range: ChunkRange,
    plans: &[(VideoPlan, (i32, i32))],
    pieces: &[PathBuf],
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
    limits: &DecodeLimits,
) -> Result<u64, MediaError> {
    super::ffmpeg_init::init();
    let mut demuxer = if cut { Demuxer::open_cut(input, limits)? } else { Demuxer::open(input, limits)? };
    let format = demuxer.video_format().ok_or_else(|| MediaError::Unsupported("the input has no video".into()))?;
    if let Some(start) = range.start.filter(|_| !cut) {
        demuxer.seek_video(start)?;
    }
    let unit = f64::from(format.time_base);
    let first = range.start.map_or(0.0, |s| s as f64 * unit);
    let length = range.end.map_or(demuxer.duration, |e| e as f64 * unit) - first;
    let mut lanes: Vec<Lane<()>> = Vec::with_capacity(plans.len());
    for (index, ((plan, (num, den)), path)) in plans.iter().zip(pieces).enumerate() {
        let setup = VideoSetup { global_header: true, sar: ffmpeg::Rational::new(*num, *den), ..VideoSetup::plain() };
        let opened = VideoEncoder::open(plan, &format, setup).and_then(|encoder| {
            let writer = PieceWriter::create(path, encoder.context(), encoder.time_base, Some(encoder.frame_rate))?;
            Lane::spawn(format!("copra-chunk-{index}"), Box::new(PieceSink { encoder, writer: Some(writer) }), quiet())
        });
        match opened {
            Ok(lane) => lanes.push(lane),
            Err(err) => return close_all(lanes, Some(err)).map(|()| 0),
        }
    }
    let (mut frames, mut past_end) = (0u64, false);
    let outcome = loop {
        if cancel.load(Ordering::Relaxed) {
            break Err(MediaError::Cancelled);
        }
        let step = demuxer.step(true, false, &mut |decoded| {
            let Decoded::Video(frame, seconds) = decoded else { return };
            let Some(pts) = frame.pts() else { return };
            if past_end || range.start.is_some_and(|s| pts < s) {
                return;
            }
            if range.end.is_some_and(|e| pts >= e) {
                past_end = true;
                return;
            }
            frames += 1;
            for lane in lanes.iter_mut() {
                lane.send_video(frame);
            }
            if length > 0.0 {
                progress(((seconds - first) / length).clamp(0.0, 1.0));
            }
        });
        match step {
            Ok(true) if !past_end => {}
            Ok(_) => break Ok(()),
            Err(err) => break Err(err),
        }
    };
    close_all(lanes, outcome.err())?;
    progress(1.0);
    Ok(frames)
}

/// Encode the whole input's audio with every plan, into `pieces` (one per plan), the
/// decode held to `limits`.
pub fn encode_audio(input: &Path, plans: &[AudioPlan], pieces: &[PathBuf], cancel: &AtomicBool, limits: &DecodeLimits) -> Result<(), MediaError> {
    super::ffmpeg_init::init();
    let mut demuxer = Demuxer::open(input, limits)?;
    let format = demuxer.audio_format().ok_or_else(|| MediaError::Unsupported("the input has no audio".into()))?;
    let mut lanes: Vec<Lane<()>> = Vec::with_capacity(plans.len());
    for (index, (plan, path)) in plans.iter().zip(pieces).enumerate() {
        let opened = AudioEncoder::open(plan, &format, None, true).and_then(|encoder| {
            let writer = PieceWriter::create(path, encoder.context(), encoder.time_base, None)?;
            Lane::spawn(format!("copra-audio-{index}"), Box::new(PieceSink { encoder, writer: Some(writer) }), quiet())
        });
        match opened {
            Ok(lane) => lanes.push(lane),
            Err(err) => return close_all(lanes, Some(err)),
        }
    }
    let outcome = loop {
        if cancel.load(Ordering::Relaxed) {
            break Err(MediaError::Cancelled);
        }
        let step = demuxer.step(false, true, &mut |decoded| {
            if let Decoded::Audio(frame, _) = decoded {
                for lane in lanes.iter_mut() {
                    lane.send_audio(frame);
                }
            }
        });
        match step {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(err) => break Err(err),
        }
    };
    close_all(lanes, outcome.err())
}
