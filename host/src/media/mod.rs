//! The media room: FFmpeg through its libraries (ffmpeg-next), never the `ffmpeg`
//! command. It probes inputs and runs a job's outputs from one decode. It knows nothing
//! of HTTP, databases or plugins: it takes plans and paths, and gives back files.
//!
//! `input` demuxes and decodes; `engine` fans decoded frames out to one thread per
//! output; `filters` builds the graphs; `encode` wraps encoders; `file`, `image` and
//! `package` (HLS/DASH, with `codecs` for their codec strings) are the kinds of output;
//! `probe` describes files.

mod codecs;
mod encode;
mod engine;
mod file;
mod filters;
mod image;
mod input;
mod package;
mod probe;

pub use engine::{EventSink, OutputTarget, Produced, TranscodeEvent, transcode};
pub use image::SpriteTile;
pub use package::Package;
pub use probe::probe;

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

/// Initialise FFmpeg once and keep its own logging to errors (ours goes through `tracing`).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(err) = ffmpeg::init() {
            tracing::error!(%err, "FFmpeg failed to initialise");
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
        tracing::debug!(svt_log = ?std::env::var("SVT_LOG").ok(), "FFmpeg initialised");
    });
}

#[cfg(test)]
mod tests;
