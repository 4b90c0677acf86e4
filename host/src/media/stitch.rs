//! Several inputs decoded one after another as one timeline (a job's `inputs`: an intro,
//! the programme, an outro). Each later input is conformed to the first: its pictures
//! turned, scaled to fit and padded to the first's size, in its pixel format and at its
//! frame rate; its audio resampled to the joined audio's rate, format and channels. At
//! each join the audio is cut or padded with silence to the end of the pictures, so the
//! next input starts in sync: the joins are frame-exact and the audio never drifts.
//!
//! Every reader of "the input" (the transcode, loudness, quality references, GIFs) opens
//! it as a [`Source`], which is the one file when nothing is joined.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use ffmpeg::{Rational, filter, frame};
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

use super::MediaError;
use super::decode_limits::DecodeLimits;
use super::filters::{close, feed, pull, sink_time_base};
use super::input::{AudioFormat, Decoded, Demuxer, VideoFormat};
use super::probe::pixel_name;
use crate::types::TimeRange;

/// The most inputs one job joins (the first and those after it).
pub const MAX_JOINED: usize = 20;

/// A file joined after the input, with the ranges of it kept (none: all of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinedFile {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clips: Vec<TimeRange>,
}

/// The input as every output is made from it: one file, or files joined.
pub(super) enum Source {
    One(Demuxer),
    Joined(Box<Stitched>),
}

impl Source {
    /// Open the input at `path` and, when `limits` names files joined after it, those too.
    pub fn open(path: &Path, limits: &DecodeLimits) -> Result<Source, MediaError> {
        let first = Demuxer::open(path, limits)?;
        if limits.joined.is_empty() {
            return Ok(Source::One(first));
        }
        Ok(Source::Joined(Box::new(Stitched::open(first, limits)?)))
    }

    pub fn video_format(&self) -> Option<VideoFormat> {
        match self {
            Source::One(d) => d.video_format(),
            Source::Joined(s) => s.video.clone(),
        }
    }

    /// Seconds, 0 when unknown.
    pub fn duration(&self) -> f64 {
        match self {
            Source::One(d) => d.duration,
            Source::Joined(s) => s.duration,
        }
    }

    /// Decode these alternate audio tracks too. Joined inputs have their main track only
    /// (the tracks of different files do not line up), so this opens nothing for them.
    pub fn open_tracks(&mut self, streams: &[usize], limits: &DecodeLimits) {
        if let Source::One(d) = self {
            d.open_tracks(streams, limits);
        }
    }

    /// The main audio track's stream index (for joined inputs, the first file's, or 0
    /// when only a later one has audio: the one track of the joined input).
    pub fn main_audio(&self) -> Option<usize> {
        match self {
            Source::One(d) => d.main_audio(),
            Source::Joined(s) => s.audio.as_ref().map(|_| s.main_stream),
        }
    }

    /// Every decoded audio track's stream index and format, the main one first.
    pub fn track_formats(&self) -> Vec<(usize, AudioFormat)> {
        match self {
            Source::One(d) => d.track_formats(),
            Source::Joined(s) => s.audio.iter().map(|a| (s.main_stream, a.clone())).collect(),
        }
    }

    /// Hand the next decoded frames to `each`; `false` at the end of the (last) input.
    pub fn step(&mut self, want_video: bool, want_audio: bool, each: &mut dyn FnMut(Decoded<'_>)) -> Result<bool, MediaError> {
        match self {
            Source::One(d) => d.step(want_video, want_audio, each),
            Source::Joined(s) => s.step(want_video, want_audio, each),
        }
    }
}

/// Files decoded in turn onto one timeline.
pub(super) struct Stitched {
    /// The file being decoded and how its frames are conformed.
    part: Part,
    /// The files still to come.
    rest: VecDeque<JoinedFile>,
    limits: DecodeLimits,
    /// The joined video: the first file's.
    video: Option<VideoFormat>,
    /// The joined audio: the first file's that has audio, in a time base of one sample.
    audio: Option<AudioFormat>,
    /// The joined audio's stream index: the first file's main audio stream, else 0.
    main_stream: usize,
    /// The files' durations together (as their containers say), seconds.
    duration: f64,
    /// Where the current file starts on the joined timeline, seconds.
    start: f64,
    /// The last video timestamp handed out (joined, in the video's time base).
    last_video: Option<i64>,
}

/// One file of the join, being decoded.
struct Part {
    demuxer: Demuxer,
    flow: Flow,
}

/// How one file's frames flow onto the joined timeline.
struct Flow {
    /// The file's own video, as decoded.
    format: Option<VideoFormat>,
    /// Pictures of a later file made like the first's; none for the first file.
    video: Option<filter::Graph>,
    /// The file's audio made like the joined audio; none when it has no audio.
    audio: Option<filter::Graph>,
    /// The end of the file's last picture so far, seconds from its start.
    video_end: f64,
    /// The last decoded picture's pts and duration, in the file's time base (to close
    /// the conforming graph at the end of that picture).
    last_input: Option<(i64, i64)>,
    /// A later file's first picture time, seconds from its start: its timeline starts
    /// there (a join is frame-exact), and its audio is cut by as much to stay in sync.
    lead: Option<f64>,
    /// Whether the audio before `lead` has been dropped.
    lead_cut: bool,
    /// Samples handed out for this file (at the joined rate).
    samples: u64,
    /// Conformed audio not handed out yet: it waits for the pictures, so that a file's
    /// audio running past its last picture can be cut there.
    held: VecDeque<frame::Audio>,
}

impl Stitched {
    fn open(first: Demuxer, limits: &DecodeLimits) -> Result<Stitched, MediaError> {
        let video = first.video_format();
        let mut audio = first.audio_format();
        let mut duration = first.duration;
        let main_stream = first.main_audio().unwrap_or(0);
        // Every file is opened now: one that cannot be read fails the job before any
        // encode, and the joined audio takes the first file's that has audio.
        for (i, file) in limits.joined.iter().enumerate() {
            let demuxer = Demuxer::open_clips(&file.path, limits, &file.clips).map_err(|e| at_input(i + 2, e))?;
            if video.is_some() && demuxer.video_format().is_none() {
                return Err(MediaError::Unsupported(format!("input {} has no video, but the first input has: every joined input needs pictures", i + 2)));
            }
            if audio.is_none() {
                audio = demuxer.audio_format();
            }
            duration += demuxer.duration;
        }
        let audio = audio.map(|a| AudioFormat { time_base: Rational::new(1, a.rate.max(1) as i32), ..a });
        let mut stitched = Stitched {
            part: Part::new(first),
            rest: limits.joined.iter().cloned().collect(),
            limits: limits.clone(),
            main_stream,
            video,
            audio,
            duration,
            start: 0.0,
            last_video: None,
        };
        stitched.part.flow.audio = stitched.audio_graph()?;
        Ok(stitched)
    }

    fn step(&mut self, want_video: bool, want_audio: bool, each: &mut dyn FnMut(Decoded<'_>)) -> Result<bool, MediaError> {
        let Stitched { part: Part { demuxer, flow }, video, audio, start, last_video, .. } = self;
        let mut failed = None;
        let more = demuxer.step(want_video, want_audio && audio.is_some(), &mut |decoded| {
            let result = match decoded {
                Decoded::Video(frame, _) => flow.take_video(frame, video.as_ref(), *start, last_video, each),
                Decoded::Audio(frame, _) => flow.take_audio(frame),
                Decoded::Track(..) => Ok(()),
            };
            if let Err(err) = result {
                failed.get_or_insert(err);
            }
        })?;
        if let Some(err) = failed {
            return Err(err);
        }
        if more {
            // Audio is handed out up to the pictures so far (all of it when there are none).
            let until = if self.video.is_some() && want_video { Some(self.part.flow.video_end) } else { None };
            self.part.flow.give_audio(until, false, self.audio.as_ref(), self.start, each);
            return Ok(true);
        }
        self.finish_part(want_video, want_audio, each)?;
        let Some(next) = self.rest.pop_front() else { return Ok(false) };
        let index = self.limits.joined.len() - self.rest.len() + 1;
        let demuxer = Demuxer::open_clips(&next.path, &self.limits, &next.clips).map_err(|e| at_input(index, e))?;
        let mut part = Part::new(demuxer);
        part.flow.video = match (&self.video, &part.flow.format) {
            (Some(target), Some(format)) => Some(conform_video(format, target)?),
            _ => None,
        };
        self.part = part;
        self.part.flow.audio = self.audio_graph()?;
        Ok(true)
    }

    /// The end of a file: its last pictures out of the conforming graph, its audio cut
    /// or padded to their end, and the next file's start moved there.
    fn finish_part(&mut self, want_video: bool, want_audio: bool, each: &mut dyn FnMut(Decoded<'_>)) -> Result<(), MediaError> {
        let Stitched { part: Part { flow, .. }, video, start, last_video, .. } = self;
        if let (Some(graph), Some((pts, duration))) = (flow.video.as_mut(), flow.last_input) {
            close(graph, pts + duration)?;
            flow.drain_video(video.as_ref(), *start, last_video, each)?;
        }
        if let Some(graph) = flow.audio.as_mut() {
            feed(graph, None)?;
            flow.drain_audio()?;
        }
        // Where the file ends: its last picture's end. Without pictures decoded (a
        // reader of the audio alone), the container's duration stands in.
        let end = match (&self.video, want_video) {
            (Some(_), true) => self.part.flow.video_end,
            (Some(_), false) => self.part.demuxer.duration,
            (None, _) => self.part.flow.samples as f64 / f64::from(self.audio.as_ref().map_or(1, |a| a.rate.max(1))),
        };
        if let Some(audio) = self.audio.as_ref().filter(|_| want_audio) {
            self.part.flow.give_audio(Some(end), true, Some(audio), self.start, each);
            self.part.flow.pad_audio(end, audio, self.start, each);
        }
        self.start += end;
        Ok(())
    }

    /// The graph that makes the current file's audio like the joined audio: resampled
    /// (and its gaps filled), in the joined sample format and channels.
    fn audio_graph(&self) -> Result<Option<filter::Graph>, MediaError> {
        let (Some(target), Some(format)) = (&self.audio, self.part.demuxer.audio_format()) else { return Ok(None) };
        let spec = format!(
            "aresample={rate}:async=1:first_pts=0,aformat=sample_fmts={fmt}:sample_rates={rate}:channel_layouts=0x{layout:x}",
            rate = target.rate,
            fmt = target.sample_format.name(),
            layout = target.layout.bits(),
        );
        super::filters::audio_graph(&format, &spec, |_| {}).map(Some)
    }
}

impl Part {
    fn new(demuxer: Demuxer) -> Part {
        let flow = Flow { format: demuxer.video_format(), video: None, audio: None, video_end: 0.0, last_input: None, lead: None, lead_cut: false, samples: 0, held: VecDeque::new() };
        Part { demuxer, flow }
    }
}

impl Flow {
    /// A decoded picture: straight out for the first file, through the conforming graph
    /// for a later one.
    fn take_video(
        &mut self,
        frame: &frame::Video,
        target: Option<&VideoFormat>,
        start: f64,
        last: &mut Option<i64>,
        each: &mut dyn FnMut(Decoded<'_>),
    ) -> Result<(), MediaError> {
        let Some(target) = target else { return Ok(()) };
        if let (Some(pts), Some(format)) = (frame.pts(), self.format.as_ref()) {
            let duration = (f64::from(format.frame_rate.invert()) / f64::from(format.time_base)).round().max(1.0) as i64;
            self.last_input = Some((pts, duration));
            if self.video.is_some() && self.lead.is_none() {
                self.lead = Some(pts as f64 * f64::from(format.time_base));
            }
        }
        let Some(graph) = self.video.as_mut() else {
            // The first file is the joined video's own: its frames go as they are.
            // (It starts the timeline: its times are the joined times.)
            let pts = frame.pts().unwrap_or(0);
            let seconds = pts as f64 * f64::from(target.time_base);
            self.video_end = self.video_end.max(seconds + f64::from(target.frame_rate.invert()));
            *last = Some(pts);
            each(Decoded::Video(frame, seconds));
            return Ok(());
        };
        feed(graph, Some(frame))?;
        self.drain_video(Some(target), start, last, each)
    }

    /// Hand out what the conforming graph has made, retimed onto the joined timeline.
    fn drain_video(&mut self, target: Option<&VideoFormat>, start: f64, last: &mut Option<i64>, each: &mut dyn FnMut(Decoded<'_>)) -> Result<(), MediaError> {
        let (Some(graph), Some(target)) = (self.video.as_mut(), target) else { return Ok(()) };
        let time_base = sink_time_base(graph, target.time_base);
        let mut out = frame::Video::empty();
        while pull(graph, &mut out)? {
            // The graph starts the file's pictures at zero (`setpts`): at its first picture.
            let seconds = out.pts().unwrap_or(0) as f64 * f64::from(time_base);
            self.video_end = self.video_end.max(seconds + f64::from(target.frame_rate.invert()));
            let joined = ((start + seconds) / f64::from(target.time_base)).round() as i64;
            if last.is_some_and(|l| joined <= l) {
                continue;
            }
            *last = Some(joined);
            out.set_pts(Some(joined));
            out.set_kind(ffmpeg::picture::Type::None);
            each(Decoded::Video(&out, start + seconds));
        }
        Ok(())
    }

    /// Decoded audio into the conforming graph; what it makes waits in `held`.
    fn take_audio(&mut self, frame: &frame::Audio) -> Result<(), MediaError> {
        let Some(graph) = self.audio.as_mut() else { return Ok(()) };
        feed(graph, Some(frame))?;
        self.drain_audio()
    }

    fn drain_audio(&mut self) -> Result<(), MediaError> {
        let Some(graph) = self.audio.as_mut() else { return Ok(()) };
        loop {
            let mut out = frame::Audio::empty();
            if !pull(graph, &mut out)? {
                return Ok(());
            }
            self.held.push_back(out);
        }
    }

    /// Hand out held audio up to `until` seconds from the file's start (all of it for
    /// none), stamped by the samples counted: the graph filled the gaps, so the count is
    /// the time. While the file is read, audio past `until` waits for more pictures; at
    /// its end (`last`), a frame across `until` is cut there and the rest dropped.
    fn give_audio(&mut self, until: Option<f64>, last: bool, target: Option<&AudioFormat>, start: f64, each: &mut dyn FnMut(Decoded<'_>)) {
        let Some(target) = target else {
            self.held.clear();
            return;
        };
        let rate = f64::from(target.rate.max(1));
        if !self.lead_cut && self.video.is_some() {
            // The audio before a later file's first picture is not joined.
            let Some(lead) = self.lead else { return };
            self.lead_cut = true;
            let mut skip = (lead * rate).round() as usize;
            while skip > 0 && let Some(frame) = self.held.pop_front() {
                if frame.samples() > skip {
                    self.held.push_front(super::clips::cut_samples(&frame, skip, frame.samples(), target.layout));
                    break;
                }
                skip -= frame.samples();
            }
        }
        let limit = until.map(|t| (t * rate).round().max(0.0) as u64);
        while let Some(mut frame) = self.held.pop_front() {
            let count = frame.samples() as u64;
            let room = limit.map_or(count, |l| l.saturating_sub(self.samples));
            if count <= room {
                self.emit(&mut frame, start, rate, each);
            } else if last {
                if room > 0 {
                    let mut part = super::clips::cut_samples(&frame, 0, room as usize, target.layout);
                    self.emit(&mut part, start, rate, each);
                }
                self.held.clear();
            } else {
                self.held.push_front(frame);
                return;
            }
        }
    }

    fn emit(&mut self, frame: &mut frame::Audio, start: f64, rate: f64, each: &mut dyn FnMut(Decoded<'_>)) {
        let seconds = start + self.samples as f64 / rate;
        frame.set_pts(Some((seconds * rate).round() as i64));
        self.samples += frame.samples() as u64;
        each(Decoded::Audio(frame, seconds));
    }

    /// Silence from the audio handed out to `end` seconds (a file without audio, or
    /// whose audio stops before its pictures).
    fn pad_audio(&mut self, end: f64, target: &AudioFormat, start: f64, each: &mut dyn FnMut(Decoded<'_>)) {
        let rate = f64::from(target.rate.max(1));
        let end = (end * rate).round().max(0.0) as u64;
        while self.samples < end {
            let count = (end - self.samples).min(1024) as usize;
            let mut silence = silence(target, count);
            self.emit(&mut silence, start, rate, each);
        }
    }
}

/// `count` samples of silence in `format`.
fn silence(format: &AudioFormat, count: usize) -> frame::Audio {
    let mut frame = frame::Audio::new(format.sample_format, count, format.layout);
    frame.set_rate(format.rate);
    // SAFETY: ffmpeg-next's `data_mut(i)` is sized by `linesize[i]`, which FFmpeg sets
    // for the first plane of audio only, so FFmpeg itself writes the silence (zero, or
    // the midpoint of unsigned samples) into every plane. The frame was allocated for
    // `count` samples of its format and channels; `extended_data` points to each plane.
    unsafe {
        let ptr = frame.as_mut_ptr();
        ffmpeg::ffi::av_samples_set_silence(
            (*ptr).extended_data,
            0,
            count as i32,
            frame.channels() as i32,
            ffmpeg::ffi::AVSampleFormat::from(format.sample_format),
        );
    }
    frame
}

/// The chain that makes a later file's pictures like the first's: turned to the first's
/// stored orientation, fitted in its size with black bars, in its pixel format, pixel
/// aspect and frame rate.
fn conform_chain(from: &VideoFormat, to: &VideoFormat) -> String {
    // The file's timeline starts at its first picture: the join is frame-exact.
    let mut chain = vec!["setpts=PTS-STARTPTS".to_string()];
    match (from.rotation - to.rotation).rem_euclid(360) {
        90 => chain.push("transpose=clock".to_string()),
        180 => chain.push("hflip,vflip".to_string()),
        270 => chain.push("transpose=cclock".to_string()),
        _ => {}
    }
    let (w, h) = (to.width, to.height);
    chain.push(format!("scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic"));
    chain.push(format!("pad={w}:{h}:(ow-iw)/2:(oh-ih)/2"));
    chain.push(format!("setsar={}/{}", to.aspect.numerator(), to.aspect.denominator()));
    chain.push(format!("format={}", pixel_name(to.pix_fmt)));
    chain.push(format!("fps={}/{}", to.frame_rate.numerator(), to.frame_rate.denominator()));
    chain.join(",")
}

fn conform_video(from: &VideoFormat, to: &VideoFormat) -> Result<filter::Graph, MediaError> {
    super::filters::video_graph(from, &conform_chain(from, to))
}

/// An error of joined input `number` (counted from 1, the first input), saying which.
fn at_input(number: usize, err: MediaError) -> MediaError {
    match err {
        MediaError::Unsupported(message) => MediaError::Unsupported(format!("input {number}: {message}")),
        MediaError::Corrupt(message) => MediaError::Corrupt(format!("input {number}: {message}")),
        other => other,
    }
}
