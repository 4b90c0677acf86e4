//! The input, demuxed and decoded once for every output of a job.
//!
//! Frame timestamps are made relative to the file's start (as the ffmpeg command does),
//! filled in when missing and kept increasing, so that every output sees one clean
//! timeline whatever the container did.

use std::path::Path;
use std::time::Duration;

use ffmpeg::media::Type;
use ffmpeg::{ChannelLayout, Rational, Rescale, codec, format, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::decode_limits::{Clock, DecodeLimits, PixelGuard};
use super::clips::Timeline;
use super::streams::{main_stream, rotation_of};

/// Read errors in a row after which the input is declared broken. Demuxers report a
/// single damaged packet and resync; a truncated file keeps failing.
const MAX_READ_ERRORS: u32 = 32;

/// The colour description of decoded video, passed on to encoders so that what the
/// input said about its pictures (HDR transfer, full range, ...) is not lost.
#[derive(Debug, Clone, Copy)]
pub(super) struct Colors {
    pub primaries: ffmpeg::ffi::AVColorPrimaries,
    pub transfer: ffmpeg::ffi::AVColorTransferCharacteristic,
    pub space: ffmpeg::ffi::AVColorSpace,
    pub range: ffmpeg::ffi::AVColorRange,
}

/// What a filter graph needs to know about the decoded video.
#[derive(Debug, Clone)]
pub(super) struct VideoFormat {
    pub width: u32,
    pub height: u32,
    pub pix_fmt: format::Pixel,
    pub time_base: Rational,
    pub frame_rate: Rational,
    pub aspect: Rational,
    /// Degrees clockwise a player turns the pictures.
    pub rotation: i32,
    pub colors: Colors,
}

/// What a filter graph needs to know about the decoded audio.
#[derive(Debug, Clone)]
pub(super) struct AudioFormat {
    pub rate: u32,
    pub sample_format: format::Sample,
    pub layout: ChannelLayout,
    pub time_base: Rational,
}

/// The input's decoded audio tracks, for outputs that carry several.
pub(super) struct Tracks {
    /// The main track's stream index.
    pub main: Option<usize>,
    /// Each decoded track's stream index and format, the main one first.
    pub formats: Vec<(usize, AudioFormat)>,
}

/// A decoded frame and its time in seconds from the start of the input.
pub(super) enum Decoded<'a> {
    Video(&'a frame::Video, f64),
    /// The main audio track.
    Audio(&'a frame::Audio, f64),
    /// Another audio track (an alternate language), by its stream index.
    Track(usize, &'a frame::Audio, f64),
}

/// The open input: its demuxer and a decoder for the main video and audio streams,
/// each held to the decode limits.
pub(super) struct Demuxer {
    context: super::open::LocalInput,
    video: Option<VideoInput>,
    audio: Option<AudioInput>,
    /// Other audio tracks, decoded only when an output asked for them (`open_tracks`).
    tracks: Vec<AudioInput>,
    /// The file's start and clips, for the tracks opened later.
    start_time: i64,
    timeline: Option<Timeline>,
    /// Seconds, 0 when the container does not say.
    pub duration: f64,
    read_errors: u32,
    /// Seconds decoded so far, for error messages.
    position: f64,
}

impl Demuxer {
    pub fn open(path: &Path, limits: &DecodeLimits) -> Result<Self, MediaError> {
        Self::open_clips(path, limits, &limits.clips)
    }

    /// Open an input decoding only `clips` of it (none: all of it): a file joined after
    /// the input, which has clips of its own.
    pub fn open_clips(path: &Path, limits: &DecodeLimits, clips: &[crate::types::TimeRange]) -> Result<Self, MediaError> {
        Self::from_context(super::open::open_local(path, limits)?, limits, clips)
    }

    /// Open a file the host made itself: an output, or a package's media playlist with
    /// the segments below its directory (see `open::open_own_output`).
    pub fn open_own(path: &Path, limits: &DecodeLimits) -> Result<Self, MediaError> {
        Self::from_context(super::open::open_own_output(path)?, limits, &[])
    }

    /// The demuxer of an open file, decoding only `clips` of it (none: all of it).
    fn from_context(context: super::open::LocalInput, limits: &DecodeLimits, clips: &[crate::types::TimeRange]) -> Result<Self, MediaError> {
        // SAFETY: plain field of an open format context.
        let start_time = unsafe { (*context.as_ptr()).start_time };
        let start_time = if start_time == ffmpeg::ffi::AV_NOPTS_VALUE { 0 } else { start_time };
        let duration = if context.duration() > 0 { context.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) } else { 0.0 };
        let timeline = Timeline::new(clips);
        let video = match main_stream(&context, Type::Video).and_then(|i| context.stream(i)) {
            Some(stream) => Some(VideoInput { timeline: timeline.clone(), ..VideoInput::open(&stream, start_time, limits)? }),
            None => None,
        };
        let audio = match main_stream(&context, Type::Audio).and_then(|i| context.stream(i)) {
            Some(stream) => Some(AudioInput { timeline: timeline.clone(), ..AudioInput::open(&stream, start_time, limits)? }),
            None => None,
        };
        let duration = super::clips::joined_duration(clips, duration);
        if video.is_none() && audio.is_none() {
            return Err(MediaError::NoStreams);
        }
        Ok(Demuxer { context, video, audio, tracks: Vec::new(), start_time, timeline, duration, read_errors: 0, position: 0.0 })
    }

    /// Decode the audio tracks at these stream indexes too (the main one always is).
    /// A stream that is not audio, or not decodable, is left out: the outputs asking
    /// for it fail when they find no format for it.
    pub fn open_tracks(&mut self, streams: &[usize], limits: &DecodeLimits) {
        for &index in streams {
            let open = self.audio.iter().chain(&self.tracks).any(|a| a.index == index);
            let Some(stream) = self.context.stream(index).filter(|s| !open && s.parameters().medium() == Type::Audio) else { continue };
            match AudioInput::open(&stream, self.start_time, limits) {
                Ok(track) => self.tracks.push(AudioInput { timeline: self.timeline.clone(), ..track }),
                Err(err) => tracing::warn!(stream = index, %err, "an audio track cannot be decoded"),
            }
        }
    }

    /// The main audio track's stream index.
    pub fn main_audio(&self) -> Option<usize> {
        self.audio.as_ref().map(|a| a.index)
    }

    /// Every decoded audio track's stream index and format, the main one first.
    pub fn track_formats(&self) -> Vec<(usize, AudioFormat)> {
        self.audio.iter().chain(&self.tracks).map(|a| (a.index, a.format())).collect()
    }

    /// Open a chunk file made by `cut_chunks`: its frames come out timed
    /// as the same frames of the whole input, described as the whole input's are.
    pub fn open_cut(path: &Path, limits: &DecodeLimits) -> Result<Self, MediaError> {
        let mut demuxer = Self::from_context(super::open::open_local(path, limits)?, limits, &[])?;
        let info = super::cut_info::CutInfo::of(&demuxer.context, path)?;
        let video = demuxer.video.as_mut().ok_or_else(|| MediaError::Corrupt(format!("{} has no video", path.display())))?;
        video.restamp = Some(video.time_base);
        video.time_base = info.time_base;
        video.frame_rate = info.frame_rate;
        video.rotation = info.rotation;
        video.offset = info.shift;
        video.frame_duration = 1i64.rescale(info.frame_rate.invert(), info.time_base).max(1);
        // Its frames carry the whole input's times: the limit counts from its start.
        video.clock.count_from_start();
        demuxer.duration = info.duration;
        Ok(demuxer)
    }

    pub fn video_format(&self) -> Option<VideoFormat> {
        self.video.as_ref().map(VideoInput::format)
    }

    pub fn audio_format(&self) -> Option<AudioFormat> {
        self.audio.as_ref().map(AudioInput::format)
    }

    /// Move to the video keyframe at or before `pts` (the video stream's time base, from
    /// the file's start as decoded frames are), for an ultrafast chunk.
    pub fn seek_video(&mut self, pts: i64) -> Result<(), MediaError> {
        let video = self.video.as_ref().ok_or_else(|| MediaError::Unsupported("the input has no video".into()))?;
        let (index, target, time_base) = (video.index, pts + video.offset, video.time_base);
        // A container without an index (MPEG-TS: a search by timestamps) can land on the
        // keyframe after the one asked for, and that chunk would lose its first GOP. So
        // look at where the seek landed and ask again from further back until the first
        // video packet is at or before the target; the frames before the chunk's start
        // are decoded and dropped by the caller.
        let second = i64::from(time_base.denominator()) / i64::from(time_base.numerator()).max(1);
        let mut back = 0i64;
        let mut landed = None;
        for _ in 0..12 {
            self.seek_to(index, target - back)?;
            let first = self.first_video_timestamp(index)?;
            let settled = match first {
                None => true,
                Some(first) => first <= target || landed == Some(first),
            };
            if settled {
                break;
            }
            landed = first;
            back = if back == 0 { second.max(1) } else { back.saturating_mul(2) };
        }
        // The chunk's frames carry the whole input's times: the limit counts from its start.
        if let Some(video) = self.video.as_mut() {
            video.clock.count_from_start();
        }
        // Back to where the last look started: the caller reads from there.
        self.seek_to(index, target - back)
    }

    fn seek_to(&mut self, index: usize, timestamp: i64) -> Result<(), MediaError> {
        // SAFETY: an open format context and one of its stream indexes.
        let status = unsafe { ffmpeg::ffi::av_seek_frame(self.context.as_mut_ptr(), index as i32, timestamp, ffmpeg::ffi::AVSEEK_FLAG_BACKWARD) };
        if status < 0 {
            return Err(MediaError::Ffmpeg { stage: "seeking to a chunk", source: ffmpeg::Error::from(status) });
        }
        Ok(())
    }

    /// The timestamp of the next video packet (pts, else dts), read and not decoded.
    fn first_video_timestamp(&mut self, index: usize) -> Result<Option<i64>, MediaError> {
        for _ in 0..10_000 {
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.context) {
                Ok(()) if packet.stream() == index => return Ok(packet.pts().or(packet.dts())),
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(err) => return Err(MediaError::Ffmpeg { stage: "seeking to a chunk", source: err }),
            }
        }
        Ok(None)
    }

    /// Read one packet and hand every frame it decodes to `each`; at the end of the
    /// input, drain the decoders (frame threads and reordering hold some back) and
    /// return `false`. Streams nobody wants are not decoded.
    pub fn step(&mut self, want_video: bool, want_audio: bool, each: &mut dyn FnMut(Decoded<'_>)) -> Result<bool, MediaError> {
        // av_read_frame does not release the packet it fills: start from a fresh one (the
        // decoder took its own reference to the previous one's data).
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut self.context) {
            Ok(()) => self.read_errors = 0,
            Err(ffmpeg::Error::Eof) => {
                if let Some(video) = self.video.as_mut().filter(|_| want_video) {
                    video.decode(None, &mut |f, t| each(Decoded::Video(f, t)))?;
                }
                if let Some(audio) = self.audio.as_mut().filter(|_| want_audio) {
                    audio.decode(None, &mut |f, t| each(Decoded::Audio(f, t)))?;
                }
                for track in self.tracks.iter_mut() {
                    let stream = track.index;
                    track.decode(None, &mut |f, t| each(Decoded::Track(stream, f, t)))?;
                }
                return Ok(false);
            }
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                std::thread::sleep(Duration::from_millis(5));
                return Ok(true);
            }
            Err(err) => {
                self.read_errors += 1;
                tracing::debug!(%err, read_errors = self.read_errors, "input read error");
                if self.read_errors >= MAX_READ_ERRORS {
                    return Err(MediaError::Corrupt(format!("reading the input failed at {:.1} s: {err}", self.position)));
                }
                return Ok(true);
            }
        }
        let index = packet.stream();
        let position = &mut self.position;
        if let Some(video) = self.video.as_mut().filter(|v| v.index == index) {
            if let Some(from) = video.restamp {
                packet.rescale_ts(from, video.time_base);
            }
            if want_video {
                video.decode(Some(&packet), &mut |f, t| {
                    *position = position.max(t);
                    each(Decoded::Video(f, t))
                })?;
            }
        } else if let Some(audio) = self.audio.as_mut().filter(|a| a.index == index)
            && want_audio
        {
            audio.decode(Some(&packet), &mut |f, t| {
                *position = position.max(t);
                each(Decoded::Audio(f, t))
            })?;
        } else if let Some(track) = self.tracks.iter_mut().find(|a| a.index == index) {
            track.decode(Some(&packet), &mut |f, t| each(Decoded::Track(index, f, t)))?;
        }
        Ok(true)
    }
}

/// Threads "auto" and both kinds, as the ffmpeg command sets for every codec: frame
/// threads for throughput, slice threads where a codec only has those.
pub(super) fn auto_threads(context: &mut codec::context::Context) {
    // SAFETY: plain fields of a codec context not yet opened.
    unsafe {
        let ctx = context.as_mut_ptr();
        (*ctx).thread_count = 0;
        (*ctx).thread_type = ffmpeg::ffi::FF_THREAD_FRAME | ffmpeg::ffi::FF_THREAD_SLICE;
    }
}

struct VideoInput {
    index: usize,
    // Declared before the guard: the decoder (whose context points to it) goes first.
    decoder: ffmpeg::decoder::Video,
    /// Where FFmpeg's refusal of a picture above `max_pixels` is noted.
    guard: Box<PixelGuard>,
    max_pixels: u64,
    /// The stream's decoded time, held to `max_duration_secs`.
    clock: Clock,
    /// Frames handed out, and the most the limits allow.
    frames: u64,
    max_frames: u64,
    frame: frame::Video,
    time_base: Rational,
    frame_rate: Rational,
    rotation: i32,
    /// The file's start time in this stream's time base, subtracted from every pts.
    offset: i64,
    frame_duration: i64,
    last_pts: Option<i64>,
    /// A chunk file's own time base, which its packets are rescaled from (to `time_base`).
    restamp: Option<Rational>,
    /// The input's clips: frames outside them are dropped, the others retimed.
    timeline: Option<Timeline>,
}

impl VideoInput {
    fn open(stream: &format::stream::Stream, start_time: i64, limits: &DecodeLimits) -> Result<Self, MediaError> {
        let mut context = codec::context::Context::from_parameters(stream.parameters()).map_err(MediaError::at("video decoder"))?;
        auto_threads(&mut context);
        let guard = PixelGuard::new();
        // SAFETY: a context not yet opened; the guard is kept beside the decoder and
        // outlives it (see the field order).
        unsafe { guard.attach(context.as_mut_ptr(), limits.ffmpeg_max_pixels()) };
        let decoder = context
            .decoder()
            .video()
            .map_err(|_| MediaError::Unsupported(format!("cannot decode the {} video in this file", stream.parameters().id().name())))?;
        let time_base = stream.time_base();
        let frame_rate = [stream.avg_frame_rate(), stream.rate()]
            .into_iter()
            .find(|r| r.numerator() > 0 && r.denominator() > 0)
            .unwrap_or(Rational::new(25, 1));
        let frame_duration = 1i64.rescale(frame_rate.invert(), time_base).max(1);
        Ok(VideoInput {
            index: stream.index(),
            decoder,
            guard,
            max_pixels: limits.max_pixels,
            clock: Clock::new(limits, "video"),
            frames: 0,
            max_frames: limits.max_frames(),
            frame: frame::Video::empty(),
            time_base,
            frame_rate,
            rotation: rotation_of(stream),
            offset: start_time.rescale(ffmpeg::rescale::TIME_BASE, time_base),
            frame_duration,
            last_pts: None,
            restamp: None,
            timeline: None,
        })
    }

    fn format(&self) -> VideoFormat {
        let aspect = self.decoder.aspect_ratio();
        let aspect = if aspect.numerator() > 0 && aspect.denominator() > 0 { aspect } else { Rational::new(1, 1) };
        // SAFETY: plain fields of an open decoder.
        let colors = unsafe {
            let ctx = self.decoder.as_ptr();
            Colors { primaries: (*ctx).color_primaries, transfer: (*ctx).color_trc, space: (*ctx).colorspace, range: (*ctx).color_range }
        };
        VideoFormat {
            width: self.decoder.width(),
            height: self.decoder.height(),
            pix_fmt: self.decoder.format(),
            time_base: self.time_base,
            frame_rate: self.frame_rate,
            aspect,
            rotation: self.rotation,
            colors,
        }
    }

    /// Decode one packet (or, with `None`, drain at end of input) and hand each frame and
    /// its time in seconds to `each`. A damaged packet is skipped, as the ffmpeg command
    /// does; a picture above `max_pixels`, a time past `max_duration_secs` or more frames
    /// than it allows end the decode.
    fn decode(&mut self, packet: Option<&ffmpeg::Packet>, each: &mut dyn FnMut(&frame::Video, f64)) -> Result<(), MediaError> {
        send(&mut self.decoder, packet, "video");
        self.check_pixels(None)?;
        while receive(&mut self.decoder, &mut self.frame, "video") {
            self.check_pixels(Some((self.frame.width(), self.frame.height())))?;
            let pts = match self.frame.timestamp() {
                Some(pts) => pts - self.offset,
                None => self.last_pts.map_or(0, |p| p + self.frame_duration),
            };
            if self.last_pts.is_some_and(|last| pts <= last) {
                // A repeated or backwards timestamp cannot be muxed; drop the frame.
                tracing::debug!(pts, "video frame with a non-increasing timestamp dropped");
                continue;
            }
            self.last_pts = Some(pts);
            self.frame.set_pts(Some(pts));
            // The decoder's picture types would otherwise force each encoder's GOP
            // structure to copy the input's (the ffmpeg command clears them too).
            self.frame.set_kind(ffmpeg::picture::Type::None);
            let seconds = pts as f64 * f64::from(self.time_base);
            self.clock.check(seconds)?;
            self.frames += 1;
            if self.frames > self.max_frames {
                return Err(MediaError::FrameLimit { frames: self.max_frames, limit: self.clock.limit() });
            }
            if let Some(timeline) = &self.timeline {
                let Some(joined) = timeline.video(pts, self.time_base) else { continue };
                self.frame.set_pts(Some(joined));
                each(&self.frame, joined as f64 * f64::from(self.time_base));
                continue;
            }
            each(&self.frame, seconds);
        }
        self.check_pixels(None)
    }

    /// Fail if FFmpeg refused a picture for `max_pixels` (noted on the guard by the log
    /// callback), or if `size`, a decoded picture's, is above it.
    fn check_pixels(&self, size: Option<(u32, u32)>) -> Result<(), MediaError> {
        let over = size.filter(|(w, h)| u64::from(*w) * u64::from(*h) > self.max_pixels);
        match over.or_else(|| self.guard.refused()) {
            Some((width, height)) => Err(MediaError::PixelLimit { width, height, limit: self.max_pixels }),
            None => Ok(()),
        }
    }
}

struct AudioInput {
    index: usize,
    decoder: ffmpeg::decoder::Audio,
    /// The stream's decoded time, held to `max_duration_secs`.
    clock: Clock,
    frame: frame::Audio,
    time_base: Rational,
    offset: i64,
    next_pts: i64,
    /// The input's clips: samples outside them are dropped, the others retimed.
    timeline: Option<Timeline>,
}

impl AudioInput {
    fn open(stream: &format::stream::Stream, start_time: i64, limits: &DecodeLimits) -> Result<Self, MediaError> {
        let context = codec::context::Context::from_parameters(stream.parameters()).map_err(MediaError::at("audio decoder"))?;
        let mut decoder = context
            .decoder()
            .audio()
            .map_err(|_| MediaError::Unsupported(format!("cannot decode the {} audio in this file", stream.parameters().id().name())))?;
        // Some demuxers leave the packet time base unset; decoded pts are in the stream's.
        decoder.set_packet_time_base(stream.time_base());
        let time_base = stream.time_base();
        Ok(AudioInput {
            index: stream.index(),
            decoder,
            clock: Clock::new(limits, "audio"),
            frame: frame::Audio::empty(),
            time_base,
            offset: start_time.rescale(ffmpeg::rescale::TIME_BASE, time_base),
            next_pts: 0,
            timeline: None,
        })
    }

    fn format(&self) -> AudioFormat {
        let layout = if self.decoder.channel_layout().bits() != 0 {
            self.decoder.channel_layout()
        } else {
            ChannelLayout::default(i32::from(self.decoder.channels()))
        };
        AudioFormat { rate: self.decoder.rate(), sample_format: self.decoder.format(), layout, time_base: self.time_base }
    }

    fn decode(&mut self, packet: Option<&ffmpeg::Packet>, each: &mut dyn FnMut(&frame::Audio, f64)) -> Result<(), MediaError> {
        send(&mut self.decoder, packet, "audio");
        while receive(&mut self.decoder, &mut self.frame, "audio") {
            let pts = self.frame.timestamp().map_or(self.next_pts, |pts| pts - self.offset);
            let rate = self.frame.rate().max(1) as i32;
            self.next_pts = pts + (self.frame.samples() as i64).rescale(Rational::new(1, rate), self.time_base);
            self.frame.set_pts(Some(pts));
            let seconds = pts as f64 * f64::from(self.time_base);
            self.clock.check(seconds)?;
            if let Some(timeline) = &self.timeline {
                let samples = self.frame.samples();
                for (from, to, joined) in timeline.audio(seconds, samples, rate as u32) {
                    let joined_pts = (joined / f64::from(self.time_base)).round() as i64;
                    if (from, to) == (0, samples) {
                        self.frame.set_pts(Some(joined_pts));
                        each(&self.frame, joined);
                    } else {
                        let mut part = super::clips::cut_samples(&self.frame, from, to, self.format().layout);
                        part.set_pts(Some(joined_pts));
                        each(&part, joined);
                    }
                }
                continue;
            }
            each(&self.frame, seconds);
        }
        Ok(())
    }
}

/// Give a decoder one packet, or with `None` the end of its stream. A damaged packet is
/// skipped, as the ffmpeg command does.
fn send(decoder: &mut ffmpeg::decoder::Opened, packet: Option<&ffmpeg::Packet>, medium: &'static str) {
    let sent = match packet {
        Some(packet) => decoder.send_packet(packet),
        None => decoder.send_eof(),
    };
    if let Err(err) = sent {
        tracing::debug!(%err, medium, "packet skipped");
    }
}

/// Take the decoder's next frame into `frame`, if it has one ready.
fn receive(decoder: &mut ffmpeg::decoder::Opened, frame: &mut frame::Frame, medium: &'static str) -> bool {
    match decoder.receive_frame(frame) {
        Ok(()) => true,
        Err(ffmpeg::Error::Eof) => false,
        Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => false,
        Err(err) => {
            tracing::debug!(%err, medium, "frame lost");
            false
        }
    }
}
