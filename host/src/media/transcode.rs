//! One decode, N outputs. The input is demuxed and decoded once; every decoded frame is
//! handed (by reference, not copied) to each output's own filter graph, encoder and
//! muxer. Encoders use their own threads (x264/x265 are multi-threaded), so the loop
//! itself stays simple and memory stays flat: nothing is queued beyond what FFmpeg holds.
//!
//! Everything one output needs lives in [`Output`], which takes frames and hands back
//! nothing: moving each `Output` onto its own thread behind a bounded channel later is a
//! change to [`Fanout`] only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ffmpeg::media::Type;
use ffmpeg::{Rational, Rescale, codec, filter, format, frame};
use ffmpeg_next as ffmpeg;

use super::MediaError;
use super::probe::{main_stream, pixel_name, rotation_of};
use crate::types::{AudioPlan, OutputPlan, VideoPlan};

/// One file to produce.
#[derive(Debug, Clone)]
pub struct OutputTarget {
    pub plan: OutputPlan,
    pub path: PathBuf,
}

#[derive(Debug)]
pub enum TranscodeEvent {
    /// Share of the input decoded, 0.0 to 1.0.
    Progress(f64),
    /// Output `index` is written and closed (or has failed).
    OutputFinished { index: usize, result: Result<(), MediaError> },
}

/// Progress is for people watching a bar: four updates a second is plenty.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Read errors in a row after which the input is declared broken. Demuxers report a
/// single damaged packet and resync; a truncated file keeps failing.
const MAX_READ_ERRORS: u32 = 32;

/// Produce every output from one decode of `input`. Blocking: run it on a blocking
/// thread. An output that fails does not stop the others; results come back in order and
/// each is also sent as `OutputFinished` as soon as it is known.
pub fn transcode(
    input: &Path,
    outputs: &[OutputTarget],
    on_event: &mut dyn FnMut(TranscodeEvent),
    cancel: &AtomicBool,
) -> Vec<Result<(), MediaError>> {
    super::init();
    let started = Instant::now();
    tracing::info!(input = %input.display(), outputs = outputs.len(), "transcode starting");
    let mut fan = Fanout::new(outputs, on_event);
    if let Err(err) = run(input, cancel, &mut fan) {
        tracing::warn!(input = %input.display(), %err, "transcode failed");
        fan.fail_remaining(err);
    }
    let results = fan.into_results();
    tracing::info!(
        input = %input.display(),
        ok = results.iter().filter(|r| r.is_ok()).count(),
        failed = results.iter().filter(|r| r.is_err()).count(),
        seconds = started.elapsed().as_secs_f64(),
        "transcode finished"
    );
    results
}

fn run(input: &Path, cancel: &AtomicBool, fan: &mut Fanout) -> Result<(), MediaError> {
    let mut ictx = format::input(input).map_err(|source| MediaError::Open { path: input.display().to_string(), source })?;
    // SAFETY: plain field of an open format context.
    let start_time = unsafe { (*ictx.as_ptr()).start_time };
    let start_time = if start_time == ffmpeg::ffi::AV_NOPTS_VALUE { 0 } else { start_time };
    let duration = if ictx.duration() > 0 { ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) } else { 0.0 };
    fan.progress.duration = duration;

    let open_stream = |kind: Type| -> Option<usize> { main_stream(&ictx, kind) };
    let mut video_in = match open_stream(Type::Video).and_then(|i| ictx.stream(i)) {
        Some(stream) => Some(VideoInput::open(&stream, start_time)?),
        None => None,
    };
    let mut audio_in = match open_stream(Type::Audio).and_then(|i| ictx.stream(i)) {
        Some(stream) => Some(AudioInput::open(&stream, start_time)?),
        None => None,
    };

    fan.open_all(video_in.as_ref(), audio_in.as_ref());

    let mut read_errors = 0u32;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        if !fan.any_live() {
            // Every output has failed: decoding further would feed no one.
            return Ok(());
        }
        // av_read_frame does not release the packet it fills: start from a fresh one (the
        // decoder took its own reference to the previous one's data).
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut ictx) {
            Ok(()) => read_errors = 0,
            Err(ffmpeg::Error::Eof) => break,
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(err) => {
                read_errors += 1;
                tracing::debug!(%err, read_errors, "input read error");
                if read_errors >= MAX_READ_ERRORS {
                    return Err(MediaError::Corrupt(format!(
                        "reading the input failed at {:.1} s: {err}",
                        fan.progress.seconds
                    )));
                }
                continue;
            }
        }
        let index = packet.stream();
        if let Some(video) = video_in.as_mut().filter(|v| v.index == index) {
            if fan.wants_video() {
                video.decode(Some(&packet), |frame, seconds| {
                    fan.progress_at(seconds);
                    fan.each(|o| o.push_video(Some(frame)));
                });
            }
        } else if let Some(audio) = audio_in.as_mut().filter(|a| a.index == index)
            && fan.wants_audio()
        {
            audio.decode(Some(&packet), |frame, seconds| {
                fan.progress_at(seconds);
                fan.each(|o| o.push_audio(Some(frame)));
            });
        }
    }

    // End of input: drain the decoders (frame threads and B-frame reordering hold some
    // back), then each output's filters, encoder and muxer.
    if let Some(video) = video_in.as_mut().filter(|_| fan.wants_video()) {
        video.decode(None, |frame, _| fan.each(|o| o.push_video(Some(frame))));
    }
    if let Some(audio) = audio_in.as_mut().filter(|_| fan.wants_audio()) {
        audio.decode(None, |frame, _| fan.each(|o| o.push_audio(Some(frame))));
    }
    fan.progress_done();
    fan.finish_all();
    Ok(())
}

/// Seconds decoded so far, reported at most every [`PROGRESS_EVERY`].
struct Progress {
    duration: f64,
    seconds: f64,
    last: Option<Instant>,
}

/// The outputs of one transcode, their results so far, and the caller's event sink.
struct Fanout<'a> {
    targets: &'a [OutputTarget],
    outputs: Vec<Option<Output>>,
    results: Vec<Option<Result<(), MediaError>>>,
    on_event: &'a mut dyn FnMut(TranscodeEvent),
    progress: Progress,
}

impl<'a> Fanout<'a> {
    fn new(targets: &'a [OutputTarget], on_event: &'a mut dyn FnMut(TranscodeEvent)) -> Self {
        Fanout {
            targets,
            outputs: (0..targets.len()).map(|_| None).collect(),
            results: (0..targets.len()).map(|_| None).collect(),
            on_event,
            progress: Progress { duration: 0.0, seconds: 0.0, last: None },
        }
    }

    fn open_all(&mut self, video_in: Option<&VideoInput>, audio_in: Option<&AudioInput>) {
        for index in 0..self.targets.len() {
            let target = &self.targets[index];
            match Output::open(target, video_in, audio_in) {
                Ok(output) => {
                    tracing::debug!(output = index, path = %target.path.display(), "output ready");
                    self.outputs[index] = Some(output);
                }
                Err(err) => self.settle(index, Err(err)),
            }
        }
    }

    fn any_live(&self) -> bool {
        self.outputs.iter().any(Option::is_some)
    }

    /// Whether any live output encodes video: an audio-only job need not decode pictures.
    fn wants_video(&self) -> bool {
        self.outputs.iter().flatten().any(|o| o.video.is_some())
    }

    fn wants_audio(&self) -> bool {
        self.outputs.iter().flatten().any(|o| o.audio.is_some())
    }

    /// Apply `step` to every live output; an output whose step fails is closed and reported.
    fn each(&mut self, mut step: impl FnMut(&mut Output) -> Result<(), MediaError>) {
        for index in 0..self.outputs.len() {
            let Some(output) = self.outputs[index].as_mut() else { continue };
            if let Err(err) = step(output) {
                self.outputs[index] = None;
                self.settle(index, Err(err));
            }
        }
    }

    fn finish_all(&mut self) {
        for index in 0..self.outputs.len() {
            if let Some(mut output) = self.outputs[index].take() {
                let result = output.finish();
                // Close the file before telling anyone it is ready.
                drop(output);
                self.settle(index, result);
            }
        }
    }

    /// Record an output's outcome once and tell the caller. A failed output's partial
    /// file is removed so nothing downstream mistakes it for a result.
    fn settle(&mut self, index: usize, result: Result<(), MediaError>) {
        if self.results[index].is_some() {
            return;
        }
        let path = &self.targets[index].path;
        match &result {
            Ok(()) => tracing::info!(output = index, path = %path.display(), "output finished"),
            Err(err) => {
                tracing::warn!(output = index, path = %path.display(), %err, "output failed");
                let _ = std::fs::remove_file(path);
            }
        }
        (self.on_event)(TranscodeEvent::OutputFinished { index, result: result.clone() });
        self.results[index] = Some(result);
    }

    /// A failure of the whole run (unreadable input, cancellation) fails every output
    /// that has not finished yet.
    fn fail_remaining(&mut self, err: MediaError) {
        for index in 0..self.outputs.len() {
            self.outputs[index] = None;
            self.settle(index, Err(err.clone()));
        }
    }

    fn progress_at(&mut self, seconds: f64) {
        let progress = &mut self.progress;
        progress.seconds = progress.seconds.max(seconds);
        if progress.duration <= 0.0 || progress.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        progress.last = Some(Instant::now());
        let fraction = (progress.seconds / progress.duration).clamp(0.0, 1.0);
        (self.on_event)(TranscodeEvent::Progress(fraction));
    }

    fn progress_done(&mut self) {
        (self.on_event)(TranscodeEvent::Progress(1.0));
    }

    fn into_results(self) -> Vec<Result<(), MediaError>> {
        self.results.into_iter().map(|r| r.unwrap_or(Err(MediaError::Cancelled))).collect()
    }
}

/// Threads "auto" and both kinds, as the ffmpeg command sets for every codec: frame
/// threads for throughput, slice threads where a codec only has those.
fn auto_threads(context: &mut codec::context::Context) {
    // SAFETY: plain fields of a codec context not yet opened.
    unsafe {
        let ctx = context.as_mut_ptr();
        (*ctx).thread_count = 0;
        (*ctx).thread_type = ffmpeg::ffi::FF_THREAD_FRAME | ffmpeg::ffi::FF_THREAD_SLICE;
    }
}

/// The decoded video stream. Frame timestamps are made relative to the file's start
/// (as the ffmpeg command does), filled in when missing and kept increasing.
struct VideoInput {
    index: usize,
    decoder: ffmpeg::decoder::Video,
    frame: frame::Video,
    time_base: Rational,
    frame_rate: Rational,
    rotation: i32,
    /// The file's start time in this stream's time base, subtracted from every pts.
    offset: i64,
    frame_duration: i64,
    last_pts: Option<i64>,
}

impl VideoInput {
    fn open(stream: &format::stream::Stream, start_time: i64) -> Result<Self, MediaError> {
        let mut context = codec::context::Context::from_parameters(stream.parameters()).map_err(MediaError::at("video decoder"))?;
        auto_threads(&mut context);
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
            frame: frame::Video::empty(),
            time_base,
            frame_rate,
            rotation: rotation_of(stream),
            offset: start_time.rescale(ffmpeg::rescale::TIME_BASE, time_base),
            frame_duration,
            last_pts: None,
        })
    }

    /// Decode one packet (or, with `None`, drain at end of input) and hand each frame and
    /// its time in seconds to `each`. A damaged packet is skipped, as the ffmpeg command does.
    fn decode(&mut self, packet: Option<&ffmpeg::Packet>, mut each: impl FnMut(&frame::Video, f64)) {
        let sent = match packet {
            Some(packet) => self.decoder.send_packet(packet),
            None => self.decoder.send_eof(),
        };
        if let Err(err) = sent {
            tracing::debug!(%err, "video packet skipped");
        }
        loop {
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => break,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => break,
                Err(err) => {
                    tracing::debug!(%err, "video frame lost");
                    break;
                }
            }
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
            each(&self.frame, pts as f64 * f64::from(self.time_base));
        }
    }
}

/// The decoded audio stream, timestamps treated as for video.
struct AudioInput {
    index: usize,
    decoder: ffmpeg::decoder::Audio,
    frame: frame::Audio,
    time_base: Rational,
    offset: i64,
    next_pts: i64,
}

impl AudioInput {
    fn open(stream: &format::stream::Stream, start_time: i64) -> Result<Self, MediaError> {
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
            frame: frame::Audio::empty(),
            time_base,
            offset: start_time.rescale(ffmpeg::rescale::TIME_BASE, time_base),
            next_pts: 0,
        })
    }

    fn decode(&mut self, packet: Option<&ffmpeg::Packet>, mut each: impl FnMut(&frame::Audio, f64)) {
        let sent = match packet {
            Some(packet) => self.decoder.send_packet(packet),
            None => self.decoder.send_eof(),
        };
        if let Err(err) = sent {
            tracing::debug!(%err, "audio packet skipped");
        }
        loop {
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => break,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => break,
                Err(err) => {
                    tracing::debug!(%err, "audio frame lost");
                    break;
                }
            }
            let pts = self.frame.timestamp().map_or(self.next_pts, |pts| pts - self.offset);
            let rate = self.frame.rate().max(1) as i32;
            self.next_pts = pts + (self.frame.samples() as i64).rescale(Rational::new(1, rate), self.time_base);
            self.frame.set_pts(Some(pts));
            each(&self.frame, pts as f64 * f64::from(self.time_base));
        }
    }
}

/// One output file: its muxer and, per kept medium, a filter graph and an encoder.
struct Output {
    muxer: format::context::Output,
    video: Option<Branch<ffmpeg::encoder::video::Encoder, frame::Video>>,
    audio: Option<Branch<ffmpeg::encoder::audio::Encoder, frame::Audio>>,
}

/// Filter graph → encoder → one muxer stream, with reusable scratch frame and packet.
struct Branch<E, F> {
    graph: filter::Graph,
    encoder: E,
    /// Encoder's name, for error messages.
    codec: &'static str,
    stream_index: usize,
    /// Time base of frames leaving the graph; rescaled to the encoder's if different.
    sink_time_base: Rational,
    encoder_time_base: Rational,
    filtered: F,
    packet: ffmpeg::Packet,
}

impl Output {
    fn open(target: &OutputTarget, video_in: Option<&VideoInput>, audio_in: Option<&AudioInput>) -> Result<Self, MediaError> {
        let result = Self::open_inner(target, video_in, audio_in);
        if result.is_err() {
            // The muxer may have created the file before failing.
            let _ = std::fs::remove_file(&target.path);
        }
        result
    }

    fn open_inner(target: &OutputTarget, video_in: Option<&VideoInput>, audio_in: Option<&AudioInput>) -> Result<Self, MediaError> {
        let plan = &target.plan;
        if plan.video.is_some() && video_in.is_none() && plan.audio.is_none() {
            return Err(MediaError::Unsupported("the output needs video but the input has none".into()));
        }
        if plan.audio.is_some() && audio_in.is_none() && plan.video.is_none() {
            return Err(MediaError::Unsupported("the output needs audio but the input has none".into()));
        }
        let path = target.path.display().to_string();
        let mut muxer =
            format::output_as(&target.path, &plan.container).map_err(|source| MediaError::Open { path: path.clone(), source })?;
        let global_header = muxer.format().flags().contains(format::Flags::GLOBAL_HEADER);

        let video = match (&plan.video, video_in) {
            (Some(video_plan), Some(input)) => Some(open_video(&mut muxer, video_plan, input, global_header, &plan.container)?),
            _ => None,
        };
        let audio = match (&plan.audio, audio_in) {
            (Some(audio_plan), Some(input)) => Some(open_audio(&mut muxer, audio_plan, input, global_header)?),
            _ => None,
        };
        if video.is_none() && audio.is_none() {
            return Err(MediaError::Unsupported("the output would have no stream: the input lacks what the format needs".into()));
        }
        muxer.write_header().map_err(MediaError::at("writing the container header"))?;
        Ok(Output { muxer, video, audio })
    }

    /// Filter and encode one decoded frame, or with `None` flush the graph.
    fn push_video(&mut self, frame: Option<&frame::Video>) -> Result<(), MediaError> {
        let Some(branch) = self.video.as_mut() else { return Ok(()) };
        feed(&mut branch.graph, frame.map(|f| f as &frame::Frame))?;
        while pull(&mut branch.graph, &mut branch.filtered)? {
            // The decoder's picture types would otherwise force the encoder's GOP
            // structure to copy the input's (the ffmpeg command clears them too).
            branch.filtered.set_kind(ffmpeg::picture::Type::None);
            retime(&mut branch.filtered, branch.sink_time_base, branch.encoder_time_base);
            branch.encoder.send_frame(&branch.filtered).map_err(MediaError::encoder(branch.codec, "encoding"))?;
            drain(&mut branch.encoder, branch.codec, &mut branch.packet, branch.stream_index, branch.encoder_time_base, &mut self.muxer)?;
        }
        Ok(())
    }

    fn push_audio(&mut self, frame: Option<&frame::Audio>) -> Result<(), MediaError> {
        let Some(branch) = self.audio.as_mut() else { return Ok(()) };
        feed(&mut branch.graph, frame.map(|f| f as &frame::Frame))?;
        while pull(&mut branch.graph, &mut branch.filtered)? {
            retime(&mut branch.filtered, branch.sink_time_base, branch.encoder_time_base);
            branch.encoder.send_frame(&branch.filtered).map_err(MediaError::encoder(branch.codec, "encoding"))?;
            drain(&mut branch.encoder, branch.codec, &mut branch.packet, branch.stream_index, branch.encoder_time_base, &mut self.muxer)?;
        }
        Ok(())
    }

    /// Flush filters and encoders, then write the trailer.
    fn finish(&mut self) -> Result<(), MediaError> {
        self.push_video(None)?;
        self.push_audio(None)?;
        if let Some(b) = self.video.as_mut() {
            b.encoder.send_eof().map_err(MediaError::encoder(b.codec, "flushing"))?;
            drain(&mut b.encoder, b.codec, &mut b.packet, b.stream_index, b.encoder_time_base, &mut self.muxer)?;
        }
        if let Some(b) = self.audio.as_mut() {
            b.encoder.send_eof().map_err(MediaError::encoder(b.codec, "flushing"))?;
            drain(&mut b.encoder, b.codec, &mut b.packet, b.stream_index, b.encoder_time_base, &mut self.muxer)?;
        }
        self.muxer.write_trailer().map_err(MediaError::at("writing the container trailer"))
    }
}

/// Give a frame (or, with `None`, end of stream) to a graph's source without giving up
/// our reference: the same decoded frame goes to every output, and FFmpeg only counts
/// one more reference to its buffers instead of copying pixels.
fn feed(graph: &mut filter::Graph, frame: Option<&frame::Frame>) -> Result<(), MediaError> {
    let mut source = graph.get("in").ok_or_else(|| MediaError::Unsupported("filter graph has no input".into()))?;
    // SAFETY: with KEEP_REF, buffersrc takes a new reference and leaves the frame as it
    // was; it never writes through the pointer.
    let ptr = frame.map(|f| unsafe { f.as_ptr() } as *mut ffmpeg::ffi::AVFrame).unwrap_or(std::ptr::null_mut());
    // SAFETY: `source` is a buffersrc of this graph.
    let status = unsafe {
        ffmpeg::ffi::av_buffersrc_add_frame_flags(source.as_mut_ptr(), ptr, ffmpeg::ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32)
    };
    if status < 0 { Err(MediaError::Ffmpeg { stage: "filtering", source: ffmpeg::Error::from(status) }) } else { Ok(()) }
}

/// Take the next filtered frame, if the graph has one ready.
fn pull(graph: &mut filter::Graph, frame: &mut frame::Frame) -> Result<bool, MediaError> {
    let mut sink = graph.get("out").ok_or_else(|| MediaError::Unsupported("filter graph has no output".into()))?;
    // The sink moves its frame into ours without releasing what ours held (the encoder
    // took its own reference to it): release it first or every frame would leak.
    // SAFETY: `frame` is a valid, owned AVFrame.
    unsafe { ffmpeg::ffi::av_frame_unref(frame.as_mut_ptr()) };
    match sink.sink().frame(frame) {
        Ok(()) => Ok(true),
        Err(ffmpeg::Error::Eof) => Ok(false),
        Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => Ok(false),
        Err(source) => Err(MediaError::Ffmpeg { stage: "filtering", source }),
    }
}

fn retime(frame: &mut frame::Frame, from: Rational, to: Rational) {
    if from != to
        && let Some(pts) = frame.pts()
    {
        frame.set_pts(Some(pts.rescale(from, to)));
    }
}

/// Move every packet the encoder has ready into the muxer, in the stream's time base
/// (which the muxer may have changed when writing the header).
fn drain(
    encoder: &mut ffmpeg::encoder::Encoder,
    codec: &str,
    packet: &mut ffmpeg::Packet,
    stream_index: usize,
    encoder_time_base: Rational,
    muxer: &mut format::context::Output,
) -> Result<(), MediaError> {
    let stream_time_base = muxer.stream(stream_index).map(|s| s.time_base()).unwrap_or(encoder_time_base);
    loop {
        match encoder.receive_packet(packet) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => return Ok(()),
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => return Ok(()),
            Err(source) => return Err(MediaError::Encoder { codec: codec.to_string(), stage: "encoding", source }),
        }
        packet.set_stream(stream_index);
        packet.rescale_ts(encoder_time_base, stream_time_base);
        packet.set_position(-1);
        packet.write_interleaved(muxer).map_err(MediaError::at("writing the output"))?;
    }
}

/// The FFmpeg encoder for a logical codec name.
fn encoder_name(codec: &str) -> Result<&'static str, MediaError> {
    Ok(match codec {
        "h264" => "libx264",
        "hevc" | "h265" => "libx265",
        "vp8" => "libvpx",
        "vp9" => "libvpx-vp9",
        "av1" => "libsvtav1",
        "mpeg4" => "mpeg4",
        "theora" => "libtheora",
        "aac" => "aac",
        "opus" => "libopus",
        "vorbis" => "libvorbis",
        "mp3" => "libmp3lame",
        "flac" => "flac",
        other => return Err(MediaError::Unsupported(format!("no encoder for codec '{other}'"))),
    })
}

fn find_encoder(codec: &str) -> Result<(ffmpeg::Codec, &'static str), MediaError> {
    let name = encoder_name(codec)?;
    let found = ffmpeg::encoder::find_by_name(name)
        .ok_or_else(|| MediaError::Unsupported(format!("the encoder {name} is not available in this FFmpeg")))?;
    Ok((found, name))
}

fn find_filter(name: &str) -> Result<filter::Filter, MediaError> {
    filter::find(name).ok_or_else(|| MediaError::Unsupported(format!("FFmpeg lacks the {name} filter")))
}

/// The filter chain from decoded frames to what the encoder takes: at the planned rate,
/// scaled, upright, square pixels, in the encoder's pixel format. Rate first so dropped
/// frames are never scaled; scaling before turning so the transpose moves output-sized
/// pictures, not input-sized ones.
fn video_filter_spec(plan: &VideoPlan, rotation: i32) -> String {
    let mut chain: Vec<String> = Vec::new();
    if let Some(fps) = plan.fps {
        chain.push(format!("fps={fps}"));
    }
    let turned = rotation == 90 || rotation == 270;
    let (width, height) = if turned { (plan.height, plan.width) } else { (plan.width, plan.height) };
    chain.push(format!("scale={width}:{height}:flags=bicubic"));
    match rotation {
        90 => chain.push("transpose=clock".into()),
        180 => chain.push("hflip,vflip".into()),
        270 => chain.push("transpose=cclock".into()),
        _ => {}
    }
    chain.push("setsar=1".into());
    chain.push(format!("format={}", plan.pix_fmt));
    chain.join(",")
}

fn open_video(
    muxer: &mut format::context::Output,
    plan: &VideoPlan,
    input: &VideoInput,
    global_header: bool,
    container: &str,
) -> Result<Branch<ffmpeg::encoder::video::Encoder, frame::Video>, MediaError> {
    let (codec, name) = find_encoder(&plan.codec)?;
    let pixel: format::Pixel =
        plan.pix_fmt.parse().map_err(|_| MediaError::Unsupported(format!("unknown pixel format '{}'", plan.pix_fmt)))?;
    if plan.width == 0 || plan.height == 0 {
        return Err(MediaError::Unsupported(format!("invalid output size {}x{}", plan.width, plan.height)));
    }

    // The graph first: its output time base is the encoder's.
    let mut graph = filter::Graph::new();
    let decoder = &input.decoder;
    let aspect = decoder.aspect_ratio();
    let aspect = if aspect.numerator() > 0 && aspect.denominator() > 0 { aspect } else { Rational::new(1, 1) };
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}:frame_rate={}/{}",
        decoder.width(),
        decoder.height(),
        pixel_name(decoder.format()),
        input.time_base.numerator(),
        input.time_base.denominator(),
        aspect.numerator(),
        aspect.denominator(),
        input.frame_rate.numerator(),
        input.frame_rate.denominator(),
    );
    graph.add(&find_filter("buffer")?, "in", &args).map_err(MediaError::at("video filter source"))?;
    graph.add(&find_filter("buffersink")?, "out", "").map_err(MediaError::at("video filter sink"))?;
    let spec = video_filter_spec(plan, input.rotation);
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&spec))
        .map_err(MediaError::at("video filter graph"))?;
    graph.validate().map_err(MediaError::at("video filter graph"))?;
    let time_base = graph.get("out").map(|mut sink| sink.sink().time_base()).unwrap_or(input.time_base);
    let frame_rate = match plan.fps {
        // SAFETY: pure arithmetic.
        Some(fps) => Rational::from(unsafe { ffmpeg::ffi::av_d2q(fps, 1_001_000) }),
        None => input.frame_rate,
    };
    tracing::debug!(encoder = name, filters = %spec, %time_base, %frame_rate, "video branch");

    let mut stream = muxer.add_stream(codec).map_err(MediaError::at("adding the video stream"))?;
    let mut context = codec::context::Context::new_with_codec(codec);
    auto_threads(&mut context);
    let mut encoder = context.encoder().video().map_err(MediaError::encoder(name, "setting up"))?;
    encoder.set_width(plan.width);
    encoder.set_height(plan.height);
    encoder.set_format(pixel);
    encoder.set_time_base(time_base);
    encoder.set_frame_rate(Some(frame_rate));
    encoder.set_aspect_ratio(Rational::new(1, 1));
    if let Some(gop) = plan.gop {
        encoder.set_gop(gop);
    }
    if let Some(kbps) = plan.bitrate_kbps {
        encoder.set_bit_rate(kbps as usize * 1000);
    }
    if global_header {
        encoder.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut options = ffmpeg::Dictionary::new();
    if let Some(crf) = plan.crf {
        // With both crf and a bitrate, x264/x265 use crf (the bitrate then only informs
        // VBV via maxrate/bufsize), as with `ffmpeg -crf N -b:v R`.
        options.set("crf", &crf.to_string());
    }
    if name == "libx265" && !plan.encoder_options.iter().any(|(k, _)| k == "x265-params") {
        // x265 prints its banner and statistics straight to stderr otherwise.
        options.set("x265-params", "log-level=error");
    }
    for (key, value) in &plan.encoder_options {
        options.set(key, value);
    }
    let encoder = encoder.open_as_with(codec, options).map_err(MediaError::encoder(name, "opening"))?;
    stream.set_parameters(&encoder);
    stream.set_time_base(time_base);
    stream.set_avg_frame_rate(frame_rate);
    if name == "libx265" && matches!(container, "mp4" | "mov") {
        // `hvc1` (parameter sets in the header only) is what Apple players require.
        // SAFETY: plain field of the stream's codec parameters, before the header is written.
        unsafe {
            (*(*stream.as_mut_ptr()).codecpar).codec_tag = u32::from_le_bytes(*b"hvc1");
        }
    }
    let stream_index = stream.index();
    Ok(Branch {
        graph,
        encoder,
        codec: name,
        stream_index,
        sink_time_base: time_base,
        encoder_time_base: time_base,
        filtered: frame::Video::empty(),
        packet: ffmpeg::Packet::empty(),
    })
}

fn open_audio(
    muxer: &mut format::context::Output,
    plan: &AudioPlan,
    input: &AudioInput,
    global_header: bool,
) -> Result<Branch<ffmpeg::encoder::audio::Encoder, frame::Audio>, MediaError> {
    let (codec, name) = find_encoder(&plan.codec)?;
    if plan.sample_rate == 0 || plan.channels == 0 {
        return Err(MediaError::Unsupported(format!("invalid audio plan: {} Hz, {} channels", plan.sample_rate, plan.channels)));
    }
    let audio_codec = codec.audio().map_err(MediaError::encoder(name, "setting up"))?;
    let sample_format = audio_codec
        .formats()
        .and_then(|mut formats| formats.next())
        .ok_or_else(|| MediaError::Unsupported(format!("the {name} encoder lists no sample format")))?;
    let layout = ffmpeg::ChannelLayout::default(plan.channels as i32);
    let time_base = Rational::new(1, plan.sample_rate as i32);

    // The encoder first: its frame size decides what the sink hands out.
    let mut stream = muxer.add_stream(codec).map_err(MediaError::at("adding the audio stream"))?;
    let context = codec::context::Context::new_with_codec(codec);
    let mut encoder = context.encoder().audio().map_err(MediaError::encoder(name, "setting up"))?;
    encoder.set_rate(plan.sample_rate as i32);
    encoder.set_channel_layout(layout);
    encoder.set_channels(layout.channels());
    encoder.set_format(sample_format);
    encoder.set_bit_rate(plan.bitrate_kbps as usize * 1000);
    encoder.set_time_base(time_base);
    if global_header {
        encoder.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let encoder = encoder.open_as(codec).map_err(MediaError::encoder(name, "opening"))?;
    stream.set_parameters(&encoder);
    stream.set_time_base(time_base);
    let stream_index = stream.index();

    let decoder = &input.decoder;
    let in_layout = if decoder.channel_layout().bits() != 0 {
        decoder.channel_layout()
    } else {
        ffmpeg::ChannelLayout::default(i32::from(decoder.channels()))
    };
    let args = format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
        input.time_base.numerator(),
        input.time_base.denominator(),
        decoder.rate(),
        decoder.format().name(),
        in_layout.bits()
    );
    let mut graph = filter::Graph::new();
    graph.add(&find_filter("abuffer")?, "in", &args).map_err(MediaError::at("audio filter source"))?;
    graph.add(&find_filter("abuffersink")?, "out", "").map_err(MediaError::at("audio filter sink"))?;
    {
        let mut out = graph.get("out").ok_or_else(|| MediaError::Unsupported("audio sink missing".into()))?;
        out.set_sample_format(sample_format);
        out.set_channel_layout(layout);
        out.set_sample_rate(plan.sample_rate);
    }
    // async=1 stretches or pads over timestamp gaps so audio stays in sync; first_pts=0
    // makes audio start with the video at zero.
    let spec = format!(
        "aresample={}:async=1:first_pts=0,aformat=sample_fmts={}:channel_layouts=0x{:x}",
        plan.sample_rate,
        sample_format.name(),
        layout.bits()
    );
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&spec))
        .map_err(MediaError::at("audio filter graph"))?;
    graph.validate().map_err(MediaError::at("audio filter graph"))?;
    let sink_time_base = graph.get("out").map(|mut sink| sink.sink().time_base()).unwrap_or(time_base);
    if !audio_codec.capabilities().contains(codec::capabilities::Capabilities::VARIABLE_FRAME_SIZE)
        && encoder.frame_size() > 0
        && let Some(mut out) = graph.get("out")
    {
        out.sink().set_frame_size(encoder.frame_size());
    }
    tracing::debug!(encoder = name, filters = %spec, "audio branch");
    Ok(Branch {
        graph,
        encoder,
        codec: name,
        stream_index,
        sink_time_base,
        encoder_time_base: time_base,
        filtered: frame::Audio::empty(),
        packet: ffmpeg::Packet::empty(),
    })
}
