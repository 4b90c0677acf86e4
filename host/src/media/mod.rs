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
mod cut_info;
mod decode_limits;
mod encode;
mod engine;
mod error;
mod sink;
#[cfg(test)]
pub(crate) mod test_fixtures;
mod ffmpeg_init;
mod file;
mod filters;
mod gif;
mod image;
mod input;
mod job_check;
mod join;
mod lane;
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
mod streams;
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
pub use error::MediaError;
pub use ffmpeg_init::init;
pub use engine::{EventSink, TranscodeEvent, transcode};
pub use sink::{OutputTarget, Produced};
pub use sink::SpriteTile;
pub use sink::Package;
pub use package::{Ladder, audio_playlists, ladder, package_encoded, video_playlists};
pub use plan_check::{
    MAX_LADDER_PROBES, MAX_LADDER_ROUNDS, MAX_SEARCH_ROUNDS, MAX_SEARCH_SETTINGS, check_input, check_ladder_step, check_plan, check_search_step,
    ladder_probe_plan, plan_at_setting, plan_with_ladder,
};
pub use refusal::{InputRefused, PlanRefused};
pub use probe::{probe, probe_output};
pub use quality::{LadderReport, LadderRung, Metric, Quality, QualityReport, QualityTarget, TargetSearch, VariantQuality, measure};

#[cfg(test)]
mod tests;
