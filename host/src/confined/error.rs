//! How a call of the confined engine can end badly, in words a user can act on: the
//! call as a whole ([`EngineError`]), one output or measurement of it ([`MediaFailure`],
//! which crosses the process boundary), and what the process said that it may not
//! ([`ProtocolError`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::media::MediaError;

/// Why a call of the engine's process gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The media room's own refusal or failure (a corrupt file, an encoder's error).
    #[error("{0}")]
    Media(MediaFailure),
    /// The process died of a signal it did not ask for: a crash, or someone killed it.
    #[error("The media engine stopped: signal {signal} ({name})")]
    Signal { signal: i32, name: &'static str },
    /// The process ended without answering.
    #[error("The media engine stopped: exit code {0}")]
    Exit(i32),
    #[error("The media engine exceeded max_job_memory_mib ({0})")]
    Memory(u64),
    #[error("The media engine exceeded max_job_cpu_secs ({0})")]
    Cpu(u64),
    #[error("The job's files exceeded max_output_bytes ({0})")]
    OutputBytes(u64),
    #[error("The media engine could not be started: {0}")]
    Spawn(String),
    /// It said something it may not: a path outside its files, a malformed report.
    #[error("The media engine was stopped: {0}")]
    Protocol(#[from] ProtocolError),
    /// The caller asked it to stop (the job's lease was lost, the server is stopping).
    #[error("cancelled")]
    Cancelled,
}

impl EngineError {
    /// The `kind` label of `copra_media_failures_total`; `None` for a call cancelled on
    /// purpose.
    pub fn metric_kind(&self) -> Option<&'static str> {
        Some(match self {
            EngineError::Media(failure) => failure.kind.as_str(),
            EngineError::Signal { .. } | EngineError::Exit(_) => "crash",
            EngineError::Memory(_) => "memory",
            EngineError::Cpu(_) => "cpu",
            EngineError::OutputBytes(_) => "output_bytes",
            EngineError::Spawn(_) => "spawn",
            EngineError::Protocol(_) => "protocol",
            EngineError::Cancelled => return None,
        })
    }

    /// A crash that another attempt may not meet (a limit hit or a media error would be
    /// met again, and is not).
    pub fn is_crash(&self) -> bool {
        matches!(self, EngineError::Signal { .. } | EngineError::Exit(_) | EngineError::Spawn(_))
    }
}

/// Why the media room failed one output or one measurement, or the whole call: as the
/// engine's process says it (it crosses the pipe as JSON), so the worker can tell a bad
/// input from a limit, an encoder's failure or a measurement's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct MediaFailure {
    /// What failed.
    pub kind: FailureKind,
    /// The media room's own sentence (what [`MediaError`] displays).
    pub message: String,
}

/// What a [`MediaFailure`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The input: it cannot be opened, is corrupt, or holds what is not supported.
    Input,
    /// One of the operator's decode limits (duration, frames, pixels).
    Limit,
    /// An encoder, a filter or a muxer failed.
    Encoder,
    /// Measuring the quality or the loudness failed.
    Measure,
    /// The call was cancelled.
    Cancelled,
    /// The engine's call as a whole ended badly (an [`EngineError`]), so this part of it
    /// has no answer.
    Engine,
}

impl From<&MediaError> for MediaFailure {
    fn from(err: &MediaError) -> MediaFailure {
        let kind = match err {
            MediaError::Open { .. } | MediaError::NoStreams | MediaError::Corrupt(_) | MediaError::Unsupported(_) => FailureKind::Input,
            MediaError::DurationLimit { .. } | MediaError::FrameLimit { .. } | MediaError::PixelLimit { .. } => FailureKind::Limit,
            MediaError::Encoder { .. } | MediaError::Ffmpeg { .. } => FailureKind::Encoder,
            MediaError::Quality(_) => FailureKind::Measure,
            MediaError::Cancelled => FailureKind::Cancelled,
        };
        MediaFailure { kind, message: err.to_string() }
    }
}

impl FailureKind {
    /// The word the metrics and the wire use.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Input => "input",
            FailureKind::Limit => "limit",
            FailureKind::Encoder => "encoder",
            FailureKind::Measure => "measure",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Engine => "engine",
        }
    }
}

impl MediaFailure {
    /// A part of a call the engine gave no answer for.
    pub fn no_answer() -> MediaFailure {
        MediaFailure { kind: FailureKind::Engine, message: "no answer for it".into() }
    }
}

impl From<MediaError> for MediaFailure {
    fn from(err: MediaError) -> MediaFailure {
        MediaFailure::from(&err)
    }
}

impl From<&EngineError> for MediaFailure {
    fn from(err: &EngineError) -> MediaFailure {
        match err {
            EngineError::Media(failure) => failure.clone(),
            other => MediaFailure { kind: FailureKind::Engine, message: other.to_string() },
        }
    }
}

/// What the engine's process said that it may not (each stops it), or a request of the
/// worker's that the call refuses before starting it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("a report that is not one ({0})")]
    NotAReport(String),
    #[error("a report of output {0}, which does not exist")]
    UnknownOutput(usize),
    #[error("a file outside its output's directory ({})", .0.display())]
    FileOutside(PathBuf),
    #[error("a picture outside its output's directory ({})", .0.display())]
    PictureOutside(PathBuf),
    #[error("a package file outside its directory ({})", .0.display())]
    PackageFileOutside(PathBuf),
    #[error("per-frame scores outside their output's directory ({})", .0.display())]
    ScoresOutside(PathBuf),
    #[error("subtitle tracks no extraction gives")]
    ImpossibleSubtitles,
    #[error("a loudness no measurement gives ({0})")]
    ImpossibleLoudness(String),
    #[error("an answer of the wrong kind ({0})")]
    WrongAnswer(String),
}

/// The usual name of a signal that ends a process.
pub(super) fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confined::protocol::{Outcome, Report};

    #[test]
    fn a_media_error_crosses_the_pipe_with_its_kind_and_its_sentence() {
        let cases = [
            (MediaError::Corrupt("a truncated moov atom".into()), FailureKind::Input),
            (MediaError::FrameLimit { frames: 10, limit: 1.0 }, FailureKind::Limit),
            (MediaError::Quality("libvmaf refused the picture".into()), FailureKind::Measure),
            (MediaError::Cancelled, FailureKind::Cancelled),
        ];
        for (err, kind) in cases {
            let line = serde_json::to_string(&Report::Done { result: Err(MediaFailure::from(&err)) }).unwrap();
            let Report::Done { result: Err(failure) } = serde_json::from_str::<Report>(&line).unwrap() else { panic!("{line}") };
            assert_eq!(failure.kind, kind, "{line}");
            // The user reads the media room's own sentence, whichever side says it.
            assert_eq!(EngineError::Media(failure).to_string(), err.to_string());
        }
        // A report whose failure is only a string (an older or a lying engine) is not one.
        assert!(serde_json::from_str::<Report>(r#"{"report":"done","result":{"Err":"x"}}"#).is_err());
        assert!(serde_json::from_str::<Report>(r#"{"report":"done","result":{"Ok":{"outcome":"finished"}}}"#).is_ok_and(|r| matches!(
            r,
            Report::Done { result: Ok(Outcome::Finished) }
        )));
    }

    #[test]
    fn a_call_that_ended_badly_is_each_parts_failure() {
        let failure = MediaFailure::from(&EngineError::Memory(512));
        assert_eq!(failure.kind, FailureKind::Engine);
        assert_eq!(failure.message, "The media engine exceeded max_job_memory_mib (512)");
        let refused = EngineError::from(ProtocolError::FileOutside("/etc/passwd".into()));
        assert_eq!(refused.to_string(), "The media engine was stopped: a file outside its output's directory (/etc/passwd)");
    }
}
