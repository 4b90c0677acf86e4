//! What the worker and the engine's process say to each other: one [`Request`] as a JSON
//! line on the child's standard input, then [`Report`]s as JSON lines on its standard
//! output, the last one [`Report::Done`]. Its standard error carries its log lines.
//!
//! The parent treats every report as a claim to check: the child parses strangers'
//! files and may be under an attacker's control by the time it answers.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::MediaFailure;
use super::self_check::Check;
use crate::media::{ChunkRange, DecodeLimits, LoudnessRequest, OutputTarget, Package, Produced, Quality, QualityTarget, SubtitleTrack, InputSubtitles};
use crate::types::{AudioPlan, Loudness, MediaInfo, StreamPlan, VideoPlan};

/// One call of the media room, with everything it needs by value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// Describe an input (`media::probe`).
    Probe { input: PathBuf },
    /// Describe a file the engine made (`media::probe_output`).
    ProbeOutput { file: PathBuf },
    /// Every output of a job from one decode (`media::transcode`).
    Transcode { input: PathBuf, targets: Vec<OutputTarget> },
    /// Where an ultrafast job's chunks start (`media::chunk_ranges_aligned`).
    ChunkRanges { input: PathBuf, chunk_secs: f64, grids: Vec<f64> },
    /// Each chunk copied to a file of its own (`media::cut_chunks`).
    CutChunks { input: PathBuf, ranges: Vec<ChunkRange>, paths: Vec<PathBuf> },
    /// One chunk's video in every plan (`media::encode_video_chunk`).
    EncodeVideoChunk { input: PathBuf, cut: bool, range: ChunkRange, plans: Vec<(VideoPlan, (i32, i32))>, pieces: Vec<PathBuf> },
    /// The whole input's audio in every plan (`media::encode_audio`).
    EncodeAudio { input: PathBuf, plans: Vec<AudioPlan>, pieces: Vec<PathBuf> },
    /// An output's pieces put together (`media::join`).
    Join { video: Vec<PathBuf>, audio: Option<PathBuf>, container: String, output: PathBuf },
    /// A package made from encoded rungs by stream copy (`media::package_encoded`).
    PackageEncoded { video: Vec<Vec<PathBuf>>, audio: Vec<PathBuf>, package: StreamPlan, dir: PathBuf },
    /// Each output's quality against the input (`media::measure`).
    Measure { input: PathBuf, targets: Vec<QualityTarget> },
    /// The loudness of parts of the input's audio (`media::measure_loudness`).
    Loudness { input: PathBuf, requests: Vec<LoudnessRequest> },
    /// The loudness of a file the engine made (`media::measure_output_loudness`).
    OutputLoudness { file: PathBuf },
    /// Subtitle tracks put into a finished file (`media::add_subtitles`).
    AddSubtitles { file: PathBuf, container: String, tracks: Vec<SubtitleTrack> },
    /// An input's text subtitle tracks (`media::extract_subtitles`).
    ExtractSubtitles { input: PathBuf },
    /// Try what the confinement should refuse (`copra engine-check`): read `outside`,
    /// link in `writable`, open sockets, start programs.
    SelfCheck { outside: PathBuf, writable: PathBuf },
}

/// What the child may touch and spend. Set by the parent from the call and the limits;
/// the child applies it to itself before it opens any input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confinement {
    /// Files and directories it may read.
    pub reads: Vec<PathBuf>,
    /// Directories it may read and write (create, replace and remove files in).
    pub writes: Vec<PathBuf>,
    /// Bytes of private writable memory (`RLIMIT_DATA`): the backstop above the
    /// parent's watch of its resident memory.
    pub data_bytes: u64,
    /// Seconds of CPU time, all threads together (`RLIMIT_CPU`).
    pub cpu_secs: u64,
    /// Largest file it may write (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
    /// Open descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
}

/// The one message the parent sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub call: Call,
    pub confinement: Confinement,
    /// Which of the child's log lines are worth sending (a `tracing` filter directive).
    pub log: String,
    /// What the call may decode: held on decoded frames and timestamps.
    pub decode: DecodeLimits,
}

/// What the child reports, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    /// How the child confined itself: said once, before the call runs.
    Confined { landlock: String },
    /// Share of the work done, 0.0 to 1.0.
    Progress { fraction: f64 },
    /// A file of output `index` is complete (a segment of a package).
    FileReady { index: usize, path: PathBuf },
    /// Output `index` of a transcode is finished, or failed; with the description of
    /// the file that stands for it (see `Produced::described_by`), read back at once.
    OutputFinished {
        index: usize,
        result: Result<Produced, MediaFailure>,
        #[serde(default)]
        described: Option<Result<Value, MediaFailure>>,
    },
    /// The call's answer; the last report.
    Done { result: Result<Outcome, MediaFailure> },
}

/// A call's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Probed { info: MediaInfo, metadata: Value },
    Ranges { ranges: Vec<ChunkRange> },
    Frames { frames: u64 },
    Package { package: Package },
    Checked { landlock: String, checks: Vec<Check> },
    /// Each target's quality, or why it could not be measured, in the targets' order.
    Measured { results: Vec<Result<Quality, MediaFailure>> },
    /// Each request's loudness, or why it could not be measured, in the requests' order.
    Loudness { results: Vec<Result<Loudness, MediaFailure>> },
    /// An input's text subtitle tracks.
    Subtitles { tracks: Vec<InputSubtitles> },
    Finished,
}
