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
use std::path::Path;

use ffmpeg::{Rational, filter, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::decode_limits::{DecodeLimits, JoinedFile};
use super::filters::{close, feed, pull, sink_time_base};
use super::input::{AudioFormat, Decoded, Demuxer, VideoFormat};
use super::probe::audio_tracks;
use super::streams::pixel_name;
use super::stitch_audio::{Lead, TrackLane, joined_tracks, source_track};
use crate::types::AudioTrack;

/// The most inputs one job joins (the first and those after it).
pub const MAX_JOINED: usize = 20;

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
        Ok(Source::Joined(Box::new(Stitched::open(path, first, limits)?)))
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

    /// Decode these alternate audio tracks too (for joined inputs, joined tracks).
    pub fn open_tracks(&mut self, streams: &[usize], limits: &DecodeLimits) {
        match self {
            Source::One(d) => d.open_tracks(streams, limits),
            Source::Joined(s) => s.open_tracks(streams),
        }
    }

    /// The main audio track's stream index (for joined inputs, the joined main track's id).
    pub fn main_audio(&self) -> Option<usize> {
        match self {
            Source::One(d) => d.main_audio(),
            Source::Joined(s) => s.main_audio(),
        }
    }

    /// Every decoded audio track's stream index and format, the main one first.
    pub fn track_formats(&self) -> Vec<(usize, AudioFormat)> {
        match self {
            Source::One(d) => d.track_formats(),
            Source::Joined(s) => s.track_formats(),
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
    /// The files still to come, with their number (the first input is 1) and their
    /// audio tracks (listed once, at open).
    rest: VecDeque<(usize, JoinedFile, Vec<AudioTrack>)>,
    limits: DecodeLimits,
    /// The joined video: the first file's.
    video: Option<VideoFormat>,
    /// The joined audio: the first file's that has audio, in a time base of one sample.
    audio: Option<AudioFormat>,
    /// The joined audio tracks (see [`joined_tracks`]), the main one first.
    tracks: Vec<AudioTrack>,
    /// The ids of the joined tracks decoded: the main one and those asked for.
    wanted: Vec<usize>,
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
    /// Its audio tracks, as the probe lists them.
    tracks: Vec<AudioTrack>,
    /// Whether it is the first file (whose timeline is the joined one's start).
    first: bool,
    flow: Flow,
    /// One lane per joined track decoded.
    lanes: Vec<TrackLane>,
}

/// How one file's pictures flow onto the joined timeline.
struct Flow {
    /// The file's own video, as decoded.
    format: Option<VideoFormat>,
    /// Pictures of a later file made like the first's; none for the first file.
    video: Option<filter::Graph>,
    /// The end of the file's last picture so far, seconds from its start.
    video_end: f64,
    /// The last decoded picture's pts and duration, in the file's time base (to close
    /// the conforming graph at the end of that picture).
    last_input: Option<(i64, i64)>,
    /// A later file's first picture time, seconds from its start: its timeline starts
    /// there (a join is frame-exact), and its audio is cut by as much to stay in sync.
    lead: Option<f64>,
}

impl Stitched {
    fn open(path: &Path, first: Demuxer, limits: &DecodeLimits) -> Result<Stitched, MediaError> {
        let video = first.video_format();
        let mut audio = first.audio_format();
        let mut duration = first.duration;
        let mut listed = vec![audio_tracks(path, limits)?];
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
            listed.push(audio_tracks(&file.path, limits).map_err(|e| at_input(i + 2, e))?);
        }
        let audio = audio.map(|a| AudioFormat { time_base: Rational::new(1, a.rate.max(1) as i32), ..a });
        let tracks = joined_tracks(listed.iter().map(Vec::as_slice));
        let mut listed = listed.into_iter();
        let first_tracks = listed.next().unwrap_or_default();
        let mut stitched = Stitched {
            part: Part::new(first, first_tracks, true),
            rest: limits.joined.iter().cloned().zip(listed).enumerate().map(|(i, (f, t))| (i + 2, f, t)).collect(),
            limits: limits.clone(),
            wanted: tracks.first().map(|t| t.stream).into_iter().collect(),
            tracks,
            video,
            audio,
            duration,
            start: 0.0,
            last_video: None,
        };
        stitched.open_lanes()?;
        Ok(stitched)
    }

    /// The joined main track's id, when there is audio.
    pub fn main_audio(&self) -> Option<usize> {
        self.audio.as_ref().and(self.wanted.first().copied())
    }

    /// Every decoded joined track's id, each in the joined audio's format.
    pub fn track_formats(&self) -> Vec<(usize, AudioFormat)> {
        let Some(audio) = &self.audio else { return Vec::new() };
        self.wanted.iter().map(|&id| (id, audio.clone())).collect()
    }

    /// Decode these joined tracks too (before the first step).
    pub fn open_tracks(&mut self, ids: &[usize]) {
        for &id in ids {
            if self.tracks.iter().any(|t| t.stream == id) && !self.wanted.contains(&id) {
                self.wanted.push(id);
            }
        }
        if let Err(err) = self.open_lanes() {
            tracing::warn!(%err, "joined audio tracks cannot be decoded");
        }
    }

    /// The current file's lanes: for each joined track decoded, the file's stream that
    /// plays it (decoded beside its main audio when it is another).
    fn open_lanes(&mut self) -> Result<(), MediaError> {
        let Some(target) = &self.audio else { return Ok(()) };
        let part = &mut self.part;
        let main_stream = part.demuxer.main_audio();
        let sources: Vec<Option<usize>> = self
            .wanted
            .iter()
            .map(|id| self.tracks.iter().find(|t| t.stream == *id).and_then(|t| source_track(t, &part.tracks)))
            .collect();
        let others: Vec<usize> = sources.iter().flatten().copied().filter(|s| Some(*s) != main_stream).collect();
        part.demuxer.open_tracks(&others, &self.limits);
        let formats = part.demuxer.track_formats();
        part.lanes = Vec::with_capacity(self.wanted.len());
        for (i, (&id, source)) in self.wanted.iter().zip(sources).enumerate() {
            let source = source.and_then(|s| formats.iter().find(|(index, _)| *index == s)).map(|(s, f)| (*s, f));
            part.lanes.push(TrackLane::open(id, i == 0, source, target)?);
        }
        Ok(())
    }

    fn step(&mut self, want_video: bool, want_audio: bool, each: &mut dyn FnMut(Decoded<'_>)) -> Result<bool, MediaError> {
        let Stitched { part: Part { demuxer, flow, lanes, .. }, video, audio, start, last_video, .. } = self;
        let main_stream = demuxer.main_audio();
        let mut failed = None;
        let more = demuxer.step(want_video, want_audio && audio.is_some(), &mut |decoded| {
            let result = match decoded {
                Decoded::Video(frame, _) => flow.take_video(frame, video.as_ref(), *start, last_video, each),
                Decoded::Audio(frame, _) => take_audio(lanes, main_stream, frame),
                Decoded::Track(stream, frame, _) => take_audio(lanes, Some(stream), frame),
            };
            if let Err(err) = result {
                failed.get_or_insert(err);
            }
        });
        let more = match (more, failed) {
            (_, Some(err)) | (Err(err), None) => return Err(self.on_joined_timeline(err)),
            (Ok(more), None) => more,
        };
        if more {
            // Audio is handed out up to the pictures so far (all of it when there are none).
            if let Some(target) = self.audio.as_ref().filter(|_| want_audio) {
                let until = if self.video.is_some() && want_video { Some(self.part.flow.video_end) } else { None };
                let lead = self.part.lead(want_video);
                for lane in &mut self.part.lanes {
                    lane.give(until, false, lead, target, self.start, each);
                }
            }
            return Ok(true);
        }
        self.finish_part(want_video, want_audio, each)?;
        let Some((number, next, tracks)) = self.rest.pop_front() else { return Ok(false) };
        // The duration limit holds on the joined timeline: each file may decode what
        // the files before it left.
        let limits = DecodeLimits { max_duration_secs: (self.limits.max_duration_secs - self.start).max(0.0), ..self.limits.clone() };
        let demuxer = Demuxer::open_clips(&next.path, &limits, &next.clips).map_err(|e| at_input(number, e))?;
        let mut part = Part::new(demuxer, tracks, false);
        part.flow.video = match (&self.video, &part.flow.format) {
            (Some(target), Some(format)) => Some(conform_video(format, target)?),
            _ => None,
        };
        self.part = part;
        self.open_lanes()?;
        Ok(true)
    }

    /// A limit a later file reached, said of the joined timeline (each file is held to
    /// what the files before it left of the limit).
    fn on_joined_timeline(&self, err: MediaError) -> MediaError {
        match err {
            MediaError::DurationLimit { medium, seconds, .. } => {
                MediaError::DurationLimit { medium, seconds: seconds + self.start, limit: self.limits.max_duration_secs }
            }
            MediaError::FrameLimit { .. } => MediaError::FrameLimit { frames: self.limits.max_frames(), limit: self.limits.max_duration_secs },
            other => other,
        }
    }

    /// The end of a file: its last pictures out of the conforming graph, its audio cut
    /// or padded to their end, and the next file's start moved there.
    fn finish_part(&mut self, want_video: bool, want_audio: bool, each: &mut dyn FnMut(Decoded<'_>)) -> Result<(), MediaError> {
        let Stitched { part: Part { flow, lanes, .. }, video, start, last_video, .. } = self;
        if let (Some(graph), Some((pts, duration))) = (flow.video.as_mut(), flow.last_input) {
            close(graph, pts + duration)?;
            flow.drain_video(video.as_ref(), *start, last_video, each)?;
        }
        for lane in lanes.iter_mut() {
            lane.flush()?;
        }
        // Where the file ends: its last picture's end. Without pictures decoded (a
        // reader of the audio alone), the container's duration stands in.
        let rate = f64::from(self.audio.as_ref().map_or(1, |a| a.rate.max(1)));
        let end = match (&self.video, want_video) {
            (Some(_), true) => self.part.flow.video_end,
            (Some(_), false) => self.part.demuxer.duration,
            (None, _) => self.part.lanes.iter().map(|l| l.samples).max().unwrap_or(0) as f64 / rate,
        };
        if let Some(target) = self.audio.as_ref().filter(|_| want_audio) {
            let lead = self.part.lead(want_video);
            for lane in &mut self.part.lanes {
                lane.give(Some(end), true, lead, target, self.start, each);
                lane.pad(end, target, self.start, each);
            }
        }
        self.start += end;
        Ok(())
    }
}

/// A decoded frame of the file's `stream`, to every lane it plays.
fn take_audio(lanes: &mut [TrackLane], stream: Option<usize>, frame: &frame::Audio) -> Result<(), MediaError> {
    for lane in lanes.iter_mut().filter(|l| stream.is_some() && l.source == stream) {
        lane.take(frame)?;
    }
    Ok(())
}

impl Part {
    fn new(demuxer: Demuxer, tracks: Vec<AudioTrack>, first: bool) -> Part {
        let flow = Flow { format: demuxer.video_format(), video: None, video_end: 0.0, last_input: None, lead: None };
        Part { demuxer, tracks, first, flow, lanes: Vec::new() }
    }

    /// Where this file's timeline starts against its audio's. A reader of the audio
    /// alone (`want_video` false) never learns it: its audio is not held back for it.
    fn lead(&self, want_video: bool) -> Lead {
        match (self.first || !want_video, self.flow.format.is_some(), self.flow.lead) {
            (true, _, _) | (false, false, _) => Lead::None,
            (false, true, None) => Lead::Unknown,
            (false, true, Some(lead)) => Lead::At(lead),
        }
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
