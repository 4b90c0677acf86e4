//! What can go wrong in the media engine, as one error type every stage returns: a
//! file that cannot be opened or is corrupt, an encoder or filter that failed, a job
//! cancelled, or one of the operator's decode limits passed (each message says which
//! setting raises it).

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
        shown_size(*width, *height)
    )]
    PixelLimit { width: u32, height: u32, limit: u64 },
    /// libvmaf refused a step of measuring an output, or its scores could not be
    /// written.
    #[error("measuring the quality failed: {0}")]
    Quality(String),
}

impl MediaError {
    pub(super) fn at(stage: &'static str) -> impl FnOnce(ffmpeg::Error) -> MediaError {
        move |source| MediaError::Ffmpeg { stage, source }
    }

    pub(super) fn encoder(codec: &str, stage: &'static str) -> impl FnOnce(ffmpeg::Error) -> MediaError {
        let codec = codec.to_string();
        move |source| MediaError::Encoder { codec, stage, source }
    }
}

/// A refused picture's size for a message (unknown when FFmpeg's line did not say).
fn shown_size(width: u32, height: u32) -> String {
    if width == u32::MAX {
        "more pixels".to_string()
    } else {
        format!("{width}x{height} ({} pixels)", u64::from(width) * u64::from(height))
    }
}
