//! One decode, N outputs, in parallel.
//!
//! This thread demuxes and decodes the input once. Every output runs on a thread of its
//! own (a "lane") that owns its filter graph, encoders and muxer; decoded frames reach
//! each lane as new references to the same buffers (nothing is copied) through a
//! bounded channel. The slowest lane sets the pace, and memory stays flat whatever the
//! input's length: at most `lane::LANE_DEPTH` frames wait per lane.
//!
//! Scaling and encoding of N outputs therefore run side by side, where the ffmpeg
//! command (5.x) filters every output on its one main thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};


use super::decode_limits::DecodeLimits;
use super::error::MediaError;
use super::sink::{OutputTarget, Produced, Sink};
use super::encode::VideoSetup;
use super::file::FileSink;
use super::lane::Lane;
use super::image::ImageSink;
use super::package::PackageSink;
use super::input::{Decoded, Tracks, VideoFormat};
use super::stitch::Source;

/// Progress is for people watching a bar: four updates a second is plenty.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub enum TranscodeEvent {
    /// Share of the input decoded, 0.0 to 1.0.
    Progress(f64),
    /// A file of output `index` (a segment of a package) is complete and will not change:
    /// it can be uploaded while the rest is still being made.
    FileReady { index: usize, path: PathBuf },
    /// Output `index` is complete and closed (or has failed).
    OutputFinished { index: usize, result: Result<Produced, MediaError> },
}

/// Where the engine reports; called from the lanes' threads too.
pub type EventSink = Arc<dyn Fn(TranscodeEvent) + Send + Sync>;

/// Produce every output from one decode of `input`, held to `limits` (a stream that
/// decodes past them fails every output still running, naming the limit). Blocking:
/// run it on a blocking thread. An output that fails does not stop the others; each
/// result is reported as `OutputFinished` as soon as it is known and returned, in
/// order, at the end. `Progress` comes while the input is decoded, even when its
/// duration is unknown (then as 0), so that a watcher can tell a live decode from a
/// hung one.
pub fn transcode(
    input: &std::path::Path,
    targets: &[OutputTarget],
    events: EventSink,
    cancel: &AtomicBool,
    limits: &DecodeLimits,
) -> Vec<Result<Produced, MediaError>> {
    super::ffmpeg_init::init();
    let started = Instant::now();
    tracing::info!(input = %input.display(), outputs = targets.len(), "transcode starting");
    let mut results: Vec<Option<Result<Produced, MediaError>>> = vec![None; targets.len()];
    let settle = |results: &mut Vec<Option<Result<Produced, MediaError>>>, index: usize, result: Result<Produced, MediaError>| {
        if let Err(err) = &result {
            tracing::warn!(output = index, %err, "output failed");
            remove_output(&targets[index].path);
        }
        events(TranscodeEvent::OutputFinished { index, result: result.clone() });
        results[index] = Some(result);
    };

    let mut demuxer = match Source::open(input, limits) {
        Ok(demuxer) => demuxer,
        Err(err) => {
            for index in 0..targets.len() {
                settle(&mut results, index, Err(err.clone()));
            }
            return results.into_iter().map(|r| r.unwrap_or(Err(MediaError::Cancelled))).collect();
        }
    };
    // Alternate audio tracks packages carry are decoded beside the main one.
    let streams: Vec<usize> = targets.iter().flat_map(|t| t.plan.tracks.iter().map(|t| t.stream)).collect();
    demuxer.open_tracks(&streams, limits);
    let video_format = demuxer.video_format();
    let tracks = Tracks { main: demuxer.main_audio(), formats: demuxer.track_formats() };
    let mut lanes: Vec<(usize, Lane<Produced>)> = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let opening = Opening { input, limits, cancel, events: &events, tracks: &tracks };
        let lane = open_sink(index, target, video_format.as_ref(), demuxer.duration(), &opening)
            .and_then(|sink| Lane::spawn(format!("copra-output-{index}"), sink, report(index, target.path.clone(), events.clone())));
        match lane {
            Ok(lane) => lanes.push((index, lane)),
            Err(err) => settle(&mut results, index, Err(err)),
        }
    }

    let mut progress = Progress { duration: demuxer.duration(), seconds: 0.0, last: None };
    // Lanes that stopped taking frames (done early, or failed), joined at the end.
    let mut closed: Vec<(usize, Lane<Produced>)> = Vec::new();
    let outcome = loop {
        if cancel.load(Ordering::Relaxed) {
            break Err(MediaError::Cancelled);
        }
        closed.extend(lanes.extract_if(.., |(_, lane)| !lane.open()));
        if lanes.is_empty() {
            // Every output is done or has failed: decoding further would feed no one.
            break Ok(());
        }
        let want_video = lanes.iter().any(|(_, l)| l.wants_video);
        let want_audio = lanes.iter().any(|(_, l)| l.wants_audio);
        let step = demuxer.step(want_video, want_audio, &mut |decoded| {
            let seconds = match decoded {
                Decoded::Video(_, t) | Decoded::Audio(_, t) | Decoded::Track(_, _, t) => t,
            };
            if let Some(fraction) = progress.at(seconds) {
                events(TranscodeEvent::Progress(fraction));
            }
            for (_, lane) in lanes.iter_mut() {
                match decoded {
                    Decoded::Video(frame, _) => lane.send_video(frame),
                    Decoded::Audio(frame, _) => lane.send_audio(frame),
                    Decoded::Track(stream, frame, _) => lane.send_track(stream, frame),
                }
            }
        });
        match step {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(err) => break Err(err),
        }
    };
    match &outcome {
        Ok(()) => events(TranscodeEvent::Progress(1.0)),
        Err(err) => tracing::warn!(input = %input.display(), %err, "transcode stopped"),
    }
    for (_, lane) in lanes.iter_mut() {
        lane.close(outcome.as_ref().err().cloned());
    }
    for (index, lane) in lanes.into_iter().chain(closed) {
        results[index] = Some(lane.join());
    }
    let results: Vec<Result<Produced, MediaError>> = results.into_iter().map(|r| r.unwrap_or(Err(MediaError::Cancelled))).collect();
    tracing::info!(
        input = %input.display(),
        ok = results.iter().filter(|r| r.is_ok()).count(),
        failed = results.iter().filter(|r| r.is_err()).count(),
        seconds = started.elapsed().as_secs_f64(),
        "transcode finished"
    );
    results
}

/// What opening an output may need beyond its plan: a GIF reads the input once more
/// for its palette.
struct Opening<'a> {
    input: &'a std::path::Path,
    limits: &'a DecodeLimits,
    cancel: &'a AtomicBool,
    events: &'a EventSink,
    tracks: &'a Tracks,
}


fn open_sink(
    index: usize,
    target: &OutputTarget,
    video: Option<&VideoFormat>,
    duration: f64,
    opening: &Opening<'_>,
) -> Result<Box<dyn Sink<Done = Produced>>, MediaError> {
    let events = opening.events;
    let plan = &target.plan;
    if let Some(image) = &plan.image {
        let video = video.ok_or_else(|| MediaError::Unsupported("pictures need a video stream but the input has none".into()))?;
        return Ok(Box::new(ImageSink::open(image, &target.path, video, duration)?));
    }
    if let Some(packaging) = &plan.packaging {
        let events = events.clone();
        let ready = Box::new(move |path| events(TranscodeEvent::FileReady { index, path }));
        return Ok(Box::new(PackageSink::open(packaging, plan.range.as_ref(), &target.path, video, &plan.tracks, opening.tracks, ready)?));
    }
    let palette = match &plan.video {
        Some(video_plan) if video_plan.codec == "gif" && video.is_some() => {
            let setup = VideoSetup {
                range: plan.range.as_ref(),
                constant_rate: super::file::constant_rate(&plan.container, &video_plan.codec),
                ..VideoSetup::plain()
            };
            // The first pass makes no output: it tells the watcher it is alive.
            let last = std::cell::Cell::new(None::<Instant>);
            let alive = || {
                if last.get().is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                    last.set(Some(Instant::now()));
                    events(TranscodeEvent::Progress(0.0));
                }
            };
            Some(super::gif::palette(opening.input, video_plan, &setup, opening.limits, opening.cancel, &alive)?)
        }
        _ => None,
    };
    Ok(Box::new(FileSink::open(plan, &target.path, video, opening.tracks, palette.as_ref())?))
}

/// What a lane does with its output's result: log it, clean up after a failure, and
/// tell the caller at once (other outputs may still be running).
fn report(index: usize, path: PathBuf, events: EventSink) -> Box<dyn FnOnce(&Result<Produced, MediaError>) + Send> {
    Box::new(move |result| {
        match result {
            Ok(_) => tracing::info!(output = index, path = %path.display(), "output finished"),
            Err(err) => {
                tracing::warn!(output = index, path = %path.display(), %err, "output failed");
                remove_output(&path);
            }
        }
        events(TranscodeEvent::OutputFinished { index, result: result.clone() });
    })
}

/// A failed output leaves nothing behind that could be mistaken for a result.
fn remove_output(path: &std::path::Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// Seconds decoded so far, reported at most every [`PROGRESS_EVERY`].
struct Progress {
    duration: f64,
    seconds: f64,
    last: Option<Instant>,
}

impl Progress {
    fn at(&mut self, seconds: f64) -> Option<f64> {
        self.seconds = self.seconds.max(seconds);
        if self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        // Without a duration the share is unknown: 0, which still says the decode moves.
        Some(if self.duration > 0.0 { (self.seconds / self.duration).clamp(0.0, 1.0) } else { 0.0 })
    }
}
