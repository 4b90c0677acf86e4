//! The media room: FFmpeg through its libraries (ffmpeg-next), never the `ffmpeg`
//! command. It probes inputs and runs a job's outputs from one decode. It knows nothing
//! of HTTP, databases or plugins: it takes plans and paths, and gives back files.
//!
//! `input` demuxes and decodes; `engine` fans decoded frames out to one thread per
//! output, each a `sink` (what a lane runs); `filters` builds the graphs; `encode`
//! wraps encoders; `file`, `image` and `package` (HLS/DASH, with `codecs` for their
//! codec strings) are the kinds of output;
//! `probe` describes files; `quality` measures outputs against their source (VMAF, PSNR,
//! SSIM, with libvmaf); `plan_check` (with `allowlist`) holds a format plugin's plan
//! and a probed input to the host's bounds before any of that runs, and `job_check` a
//! job's plans together (pictures, and the memory `memory` estimates); `gif` makes a
//! GIF's palette in a first pass; `decode_limits` holds what is decoded, not what a
//! file declares, to the operator's duration and pixel limits. For ultrafast jobs,
//! `split` chooses cuts on the input's keyframes (and `cut` copies each chunk to a file
//! of its own, for workers without a shared file system), `chunk` encodes one chunk (or
//! the whole audio) into `piece` files, and `join` puts an output's pieces together by
//! stream copy. `subtitle_mux` puts subtitle tracks into a finished file by remuxing it, and
//! `subtitle_extract` reads an input's own text subtitle tracks.

mod allowlist;
pub mod audio_tracks;
mod chunk;
mod clips;
mod codecs;
mod cut;
mod decode_limits;
mod encode;
mod engine;
mod sink;
#[cfg(test)]
pub(crate) mod test_fixtures;
mod file;
mod filters;
mod gif;
mod image;
mod input;
mod job_check;
mod join;
mod loudness;
mod memory;
mod open;
mod overlay;
mod package;
mod piece;
mod plan_check;
mod probe;
mod quality;
mod refusal;
mod split;
mod stitch;
mod stitch_audio;
mod subtitle_extract;
mod subtitle_mux;

pub use chunk::{encode_audio, encode_video_chunk};
pub use clips::joined_duration;
pub use cut::cut_chunks;
pub use decode_limits::{DecodeLimits, JoinedFile};
pub use job_check::{JobRefusal, check_job, smallest_input};
pub use join::join;
pub use loudness::{Adjustment, LoudnessRequest, SILENCE_LUFS, adjustment, is_lossy, limiter_request, measure_loudness, measure_output_loudness};
pub use memory::{MemoryEstimate, memory_breakdown, memory_estimate};
pub use stitch::MAX_JOINED;
pub use stitch_audio::{joined_tracks, source_track};
pub use split::{ChunkRange, chunk_ranges, chunk_ranges_aligned};
pub use subtitle_extract::{InputSubtitles, MAX_INPUT_CUES, MAX_INPUT_TEXT_BYTES, extract_subtitles};
pub use subtitle_mux::{MAX_SUBTITLE_TRACKS, SubtitleEvent, SubtitleTrack, add_subtitles, subtitle_codec};
pub use engine::{EventSink, TranscodeEvent, transcode};
pub use sink::{OutputTarget, Produced};
pub use image::SpriteTile;
pub use package::{Ladder, Package, audio_playlists, ladder, package_encoded, video_playlists};
pub use plan_check::{
    MAX_LADDER_PROBES, MAX_LADDER_ROUNDS, MAX_SEARCH_ROUNDS, MAX_SEARCH_SETTINGS, check_input, check_ladder_step, check_plan, check_search_step,
    ladder_probe_plan, plan_at_setting, plan_with_ladder,
};
pub use refusal::{InputRefused, PlanRefused};
pub use probe::{probe, probe_output};
pub use quality::{LadderReport, LadderRung, Metric, Quality, QualityReport, QualityTarget, TargetSearch, VariantQuality, measure};

use ffmpeg_next as ffmpeg;

/// What went wrong, in words a user can act on. `Clone` so the same error can be both
/// delivered as an event (while other outputs still run) and returned at the end.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MediaError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: ffmpeg::Error },
    #[error("the file has no audio or video stream")]
    NoStreams,
    /// The file is recognised but damaged: truncated, or its streams cannot be decoded.
    #[error("the file is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Unsupported(String),
    /// An encoder refused its settings or failed while encoding.
    #[error("the {codec} encoder failed ({stage}): {source}")]
    Encoder { codec: String, stage: &'static str, source: ffmpeg::Error },
    #[error("{stage}: {source}")]
    Ffmpeg { stage: &'static str, source: ffmpeg::Error },
    #[error("cancelled")]
    Cancelled,
    /// A decoded stream ran past `max_duration_secs`: its timestamps, whatever the file
    /// declares.
    #[error(
        "the input's {medium} runs past this server's limit of {limit} seconds (a frame at {seconds:.2} s from its first, \
         counted on what is decoded, whatever the file declares); the operator sets it with [limits] max_duration_secs or \
         COPRA_LIMITS_MAX_DURATION_SECS"
    )]
    DurationLimit { medium: &'static str, seconds: f64, limit: f64 },
    /// More video frames than `max_duration_secs` allows at 240 a second.
    #[error(
        "the input's video holds more than {frames} frames, more than this server's limit of {limit} seconds allows at \
         240 frames a second; the operator sets it with [limits] max_duration_secs or COPRA_LIMITS_MAX_DURATION_SECS"
    )]
    FrameLimit { frames: u64, limit: f64 },
    /// A decoded picture larger than `max_pixels` (a stream whose size changed mid-way).
    #[error(
        "the input's video has a picture of {}, above this server's limit of {limit} pixels (counted on what is decoded, \
         whatever the file declares); the operator sets it with [limits] max_pixels or COPRA_LIMITS_MAX_PIXELS",
        decode_limits::shown_size(*width, *height)
    )]
    PixelLimit { width: u32, height: u32, limit: u64 },
    /// libvmaf refused a step of measuring an output, or its scores could not be
    /// written.
    #[error("measuring the quality failed: {0}")]
    Quality(String),
}

impl MediaError {
    fn at(stage: &'static str) -> impl FnOnce(ffmpeg::Error) -> MediaError {
        move |source| MediaError::Ffmpeg { stage, source }
    }

    fn encoder(codec: &str, stage: &'static str) -> impl FnOnce(ffmpeg::Error) -> MediaError {
        let codec = codec.to_string();
        move |source| MediaError::Encoder { codec, stage, source }
    }
}

/// Initialise FFmpeg once, with its messages going through `tracing`.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(err) = ffmpeg::init() {
            tracing::error!(%err, "FFmpeg failed to initialise");
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Warning);
        // SAFETY: installs a callback that only formats and forwards each message.
        unsafe { ffmpeg::ffi::av_log_set_callback(Some(log_to_tracing)) };
    });
}

/// FFmpeg's own messages, as events of target `ffmpeg`: its errors are warnings here
/// (the engine reports what failed, with context; FFmpeg's line is the detail), its
/// warnings debug. A damaged input makes hundreds of them, so they are only formatted
/// when someone listens, or when the message is a decoder refusing a picture for
/// `max_pixels`, which is how the decode learns of it (see [`decode_limits`]).
unsafe extern "C" fn log_to_tracing(
    context: *mut std::ffi::c_void,
    level: std::ffi::c_int,
    format: *const std::ffi::c_char,
    args: *mut ffmpeg::ffi::__va_list_tag,
) {
    let error = level <= ffmpeg::ffi::AV_LOG_ERROR;
    // SAFETY: FFmpeg passes a NUL-terminated format string (or null).
    let refusal = error && unsafe { decode_limits::is_pixel_refusal(format) };
    let listened = if error {
        tracing::enabled!(target: "ffmpeg", tracing::Level::WARN)
    } else {
        tracing::enabled!(target: "ffmpeg", tracing::Level::DEBUG)
    };
    if !refusal && (!listened || level > ffmpeg::ffi::AV_LOG_WARNING) {
        return;
    }
    let mut line = [0 as std::ffi::c_char; 1024];
    let mut print_prefix: std::ffi::c_int = 1;
    // SAFETY: FFmpeg's own formatter, writing a NUL-terminated line of at most
    // `line.len()`; `args` is read once, here.
    let text = unsafe {
        ffmpeg::ffi::av_log_format_line2(context, level, format, args, line.as_mut_ptr(), line.len() as i32, &mut print_prefix);
        std::ffi::CStr::from_ptr(line.as_ptr()).to_string_lossy()
    };
    if refusal {
        // SAFETY: `context` is the context FFmpeg logged with.
        unsafe { decode_limits::note_pixel_refusal(context, &text) };
    }
    let text = text.trim_end();
    if !listened || text.is_empty() {
        return;
    }
    // FFmpeg's messages quote the input's bytes (tags, names): escaped, so a file
    // cannot write a log line of its own.
    let text = text.escape_debug();
    if error {
        tracing::warn!(target: "ffmpeg", "{text}");
    } else {
        tracing::debug!(target: "ffmpeg", "{text}");
    }
}

#[cfg(test)]
mod tests;
