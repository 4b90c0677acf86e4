//! Adaptive streaming: a ladder encoded once and packaged as HLS and/or DASH.
//!
//! Every video rung runs on a lane of its own (filter graph and encoder), fed with the
//! shared decoded frames; each distinct audio rendition is encoded once, on this
//! output's own lane. Each encoded packet goes to every package at once: FFmpeg's `hls`
//! muxer (one per rendition, MPEG-TS or fMP4 segments and a media playlist) and its
//! `dash` muxer (all renditions, one MPD). Keyframes are forced at the same instants
//! in every rung, so segments line up and players can switch at any boundary.
//!
//! Segments are reported as soon as the muxer has closed (and renamed) them, so they
//! can be uploaded while the rest is encoded. The HLS master playlist is written at
//! the end, from the bitrates the segments actually have (`packager`).
//!
//! An ultrafast job's package is not encoded here: its rungs are encoded in chunks and
//! [`package_encoded`] copies the joined renditions into the same muxers (`copy`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ffmpeg::{Rational, format, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use ladder::Layout;
use manifest::declared_kbps;
use muxers::StreamSpec;
use packager::Packager;
use segment_hooks::FileWatch;
use super::encode::{AudioEncoder, VideoEncoder, VideoSetup};
use super::lane::Lane;
use super::sink::{Flow, Produced, Sink};
use super::file::write_packet;
use super::input::{Tracks, VideoFormat};
use crate::types::{AudioTrack, StreamPlan, TimeRange};

/// Called with each finished segment's path, from whichever thread closed it.
pub(super) type Ready = Box<dyn Fn(PathBuf) + Send + Sync>;

pub(super) const HLS_MASTER: &str = "master.m3u8";
pub(super) const DASH_MANIFEST: &str = "master.mpd";
const MEDIA_PLAYLIST: &str = "index.m3u8";

/// One encoded stream of the package, as the master playlist describes it.
#[derive(Debug, Clone)]
struct Rendition {
    /// Directory name under `hls/`.
    name: String,
    codec: Option<String>,
    /// For video.
    size: Option<(u32, u32)>,
    frame_rate: Option<f64>,
    channels: Option<u32>,
    /// An audio rendition's language (BCP 47) and name, from its track.
    language: Option<String>,
    title: Option<String>,
    /// For an alternate audio rendition: its group's default rendition.
    group: Option<usize>,
}

/// Bytes per segment-long window of one rendition, for peak and average bitrates.
#[derive(Debug, Default, Clone)]
struct Meter {
    windows: Vec<u64>,
    end: f64,
}

impl Meter {
    fn add(&mut self, bytes: usize, seconds: f64, duration: f64, segment: f64) {
        let window = ((seconds.max(0.0) + 1e-3) / segment) as usize;
        if self.windows.len() <= window {
            self.windows.resize(window + 1, 0);
        }
        self.windows[window] += bytes as u64;
        self.end = self.end.max(seconds + duration);
    }

    /// (peak, average) in bits per second, scaled by the container's overhead.
    fn rates(&self, segment: f64, overhead: f64) -> (u64, u64) {
        let total: u64 = self.windows.iter().sum();
        let duration = self.end.max(1e-3);
        let last = self.windows.len().saturating_sub(1);
        let peak = self
            .windows
            .iter()
            .enumerate()
            .map(|(i, &bytes)| {
                // The last window is as long as what is left, not a full segment.
                let length = if i == last { (duration - segment * i as f64).max(segment / 4.0) } else { segment };
                bytes as f64 * 8.0 / length
            })
            .fold(0.0, f64::max);
        let average = total as f64 * 8.0 / duration;
        ((peak * overhead).round() as u64, (average * overhead).round() as u64)
    }
}

/// The package's muxers, shared by the rung lanes (each packet is written under the lock).
struct Muxers {
    /// One `hls` muxer per rendition, in rendition order.
    hls: Vec<format::context::Output>,
    dash: Option<format::context::Output>,
    meters: Vec<Meter>,
    segment: f64,
    watch: Arc<FileWatch>,
}

impl Muxers {
    /// Write one packet of rendition `r` (in `time_base`) to every package.
    fn write(&mut self, r: usize, packet: &mut ffmpeg::Packet, time_base: Rational) -> Result<(), MediaError> {
        let seconds = packet.pts().or(packet.dts()).map_or(0.0, |t| t as f64 * f64::from(time_base));
        let duration = packet.duration() as f64 * f64::from(time_base);
        if let Some(meter) = self.meters.get_mut(r) {
            meter.add(packet.size(), seconds, duration, self.segment);
        }
        if let Some(muxer) = self.hls.get_mut(r) {
            let mut copy = packet.clone();
            write_packet(muxer, 0, &mut copy, time_base)?;
        }
        if let Some(muxer) = self.dash.as_mut() {
            write_packet(muxer, r, packet, time_base)?;
        }
        self.watch.settle();
        Ok(())
    }
}

fn lock(muxers: &Mutex<Muxers>) -> MutexGuard<'_, Muxers> {
    muxers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A video rung on its own lane: graph and encoder, packets into the shared muxers.
struct RungSink {
    rendition: usize,
    encoder: VideoEncoder,
    muxers: Arc<Mutex<Muxers>>,
}

impl Sink for RungSink {
    type Done = ();

    fn wants_video(&self) -> bool {
        true
    }

    fn wants_audio(&self) -> bool {
        false
    }

    fn video(&mut self, frame: &frame::Video) -> Result<Flow, MediaError> {
        let (muxers, r) = (&self.muxers, self.rendition);
        self.encoder.push(Some(frame), &mut |packet, tb| lock(muxers).write(r, packet, tb))?;
        Ok(Flow::Continue)
    }

    fn audio(&mut self, _frame: &frame::Audio) -> Result<Flow, MediaError> {
        Ok(Flow::Continue)
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        let (muxers, r) = (&self.muxers, self.rendition);
        self.encoder.push(None, &mut |packet, tb| lock(muxers).write(r, packet, tb))
    }
}

struct AudioRendition {
    rendition: usize,
    encoder: AudioEncoder,
    /// The input's other audio track it is made from (a stream index); none: the main.
    track: Option<usize>,
}

pub(super) struct PackageSink {
    rungs: Vec<Lane<()>>,
    audio: Vec<AudioRendition>,
    out: Packager,
}

impl PackageSink {
    pub fn open(
        plan: &StreamPlan,
        range: Option<&TimeRange>,
        dir: &Path,
        video_in: Option<&VideoFormat>,
        chosen: &[AudioTrack],
        tracks: &Tracks,
        ready: Ready,
    ) -> Result<Self, MediaError> {
        let layout = Layout::of(plan, chosen, video_in.is_some(), tracks.main.is_some())?;
        std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;

        // Encoders first: their parameters describe the muxers' streams. Global headers
        // always: fMP4 and DASH need them, and the TS muxer repeats them before keyframes.
        let mut video_encoders = Vec::new();
        for ((_, v), sar) in layout.video.iter().zip(layout.sars()) {
            let input = video_in.ok_or_else(|| MediaError::Unsupported("the package needs video".into()))?;
            let setup = VideoSetup { range, sar, global_header: true, constant_rate: false, palette: None };
            video_encoders.push(VideoEncoder::open(v, input, setup)?);
        }
        let mut audio_encoders = Vec::new();
        let mut sources = Vec::new();
        for rung in &layout.audio {
            // The track's stream, or the main one's; the main track's frames come as
            // the main audio whichever way it was named.
            let stream = rung.track.map(|t| t.stream).or(tracks.main).ok_or_else(|| MediaError::Unsupported("the package needs audio".into()))?;
            let (_, input) = tracks.formats.iter().find(|(s, _)| *s == stream).ok_or_else(|| {
                MediaError::Unsupported(format!("the input's audio track (stream {stream}) cannot be decoded"))
            })?;
            audio_encoders.push(AudioEncoder::open(&rung.plan.for_track(stream), input, range, true)?);
            sources.push((Some(stream) != tracks.main).then_some(stream));
        }
        let streams: Vec<StreamSpec> = video_encoders
            .iter()
            .zip(&layout.video)
            .map(|(e, (_, v))| StreamSpec::of_encoder(e.context(), e.time_base, Some(e.frame_rate), declared_kbps(v)))
            .chain(audio_encoders.iter().zip(&layout.audio).map(|(e, r)| StreamSpec::of_encoder(e.context(), e.time_base, None, r.plan.bitrate_kbps)))
            .collect();
        let out = Packager::open(plan, dir, &layout, &streams, ready)?;

        let mut rungs = Vec::new();
        for (r, encoder) in video_encoders.into_iter().enumerate() {
            let sink = Box::new(RungSink { rendition: r, encoder, muxers: out.muxers.clone() });
            let name = format!("copra-rung-{}", out.name(r));
            rungs.push(Lane::spawn(name, sink, Box::new(|_| {}))?);
        }
        let nv = layout.video.len();
        let audio = audio_encoders
            .into_iter()
            .zip(sources)
            .enumerate()
            .map(|(i, (encoder, track))| AudioRendition { rendition: nv + i, encoder, track })
            .collect();
        Ok(PackageSink { rungs, audio, out })
    }

    /// Encode a frame of the main audio (`None`) or of another track into the
    /// renditions made from it.
    fn encode(&mut self, track: Option<usize>, frame: &frame::Audio) -> Result<Flow, MediaError> {
        let muxers = &self.out.muxers;
        for rendition in self.audio.iter_mut().filter(|a| a.track == track) {
            let r = rendition.rendition;
            rendition.encoder.push(Some(frame), &mut |packet, tb| lock(muxers).write(r, packet, tb))?;
        }
        Ok(Flow::Continue)
    }

    /// A rung that stopped taking frames has failed: its error fails the package.
    fn check_rungs(&mut self) -> Result<(), MediaError> {
        if let Some(i) = self.rungs.iter().position(|lane| !lane.open()) {
            let lane = self.rungs.remove(i);
            return Err(lane.join().err().unwrap_or_else(|| MediaError::Unsupported("a rendition stopped early".into())));
        }
        Ok(())
    }
}

impl Sink for PackageSink {
    type Done = Produced;

    fn wants_video(&self) -> bool {
        !self.rungs.is_empty()
    }

    fn wants_audio(&self) -> bool {
        self.audio.iter().any(|a| a.track.is_none())
    }

    fn tracks(&self) -> Vec<usize> {
        self.audio.iter().filter_map(|a| a.track).collect()
    }

    fn video(&mut self, frame: &frame::Video) -> Result<Flow, MediaError> {
        for lane in self.rungs.iter_mut() {
            lane.send_video(frame);
        }
        self.check_rungs()?;
        Ok(Flow::Continue)
    }

    fn audio(&mut self, frame: &frame::Audio) -> Result<Flow, MediaError> {
        self.encode(None, frame)
    }

    fn track(&mut self, stream: usize, frame: &frame::Audio) -> Result<Flow, MediaError> {
        self.encode(Some(stream), frame)
    }

    fn finish(&mut self) -> Result<Produced, MediaError> {
        for lane in self.rungs.iter_mut() {
            lane.close(None);
        }
        // Join every rung before answering: none may still be writing once we return.
        let mut failed = None;
        for lane in std::mem::take(&mut self.rungs) {
            if let Err(err) = lane.join() {
                failed.get_or_insert(err);
            }
        }
        if let Some(err) = failed {
            return Err(err);
        }
        let muxers = &self.out.muxers;
        for rendition in self.audio.iter_mut() {
            let r = rendition.rendition;
            rendition.encoder.push(None, &mut |packet, tb| lock(muxers).write(r, packet, tb))?;
        }
        self.out.close().map(Produced::Package)
    }
}

impl Drop for PackageSink {
    /// A package given up half way: stop the rung threads before the muxers go.
    fn drop(&mut self) {
        for lane in self.rungs.iter_mut() {
            lane.close(Some(MediaError::Cancelled));
        }
        for lane in std::mem::take(&mut self.rungs) {
            let _ = lane.join();
        }
    }
}

mod copy;
mod ladder;
mod manifest;
mod muxers;
mod packager;
mod segment_hooks;

pub use copy::package_encoded;
pub use ladder::{Ladder, audio_playlists, ladder, video_playlists};

#[cfg(test)]
mod copy_tests;
#[cfg(test)]
mod tests;
