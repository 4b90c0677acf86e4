//! Why ultrafast does not: why an output (or a package) is not encoded in chunks (the
//! words of the job's `job.note`; the output takes the normal path), and why a chunked
//! output failed (its error message, as its user reads it).

use super::stage::StageError;
use crate::confined::EngineError;
use crate::media::MediaError;

/// Why an output cannot be encoded in chunks: the words the job's `job.note` puts in
/// brackets (`ultrafast: output <key> (<why>) is encoded in one piece`). None is a
/// failure; the output takes the normal path.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unchunkable {
    #[error("pictures")]
    Pictures,
    /// Only the whole input is cut into chunks.
    #[error("an output of part of the input")]
    Range,
    #[error("several audio tracks")]
    Tracks,
    /// Its quality is measured on its whole encode, in one decode with the other outputs.
    #[error("quality metrics")]
    Metrics,
    #[error(transparent)]
    Package(#[from] PackageUnchunkable),
    #[error("an output without video")]
    NoVideo,
    /// A frame rate other than the input's would retime frames across chunk edges.
    #[error("an output with its own frame rate")]
    OwnFrameRate,
    /// Joined by stream copy: H.264 or HEVC in MP4, MOV or Matroska, VP9 in WebM.
    #[error("{codec} in {container}")]
    Codec { codec: String, container: String },
}

/// Why a chunked output failed: its chunks, or making it from their pieces. The
/// output's error message, as its user reads it.
#[derive(Debug, thiserror::Error)]
pub(super) enum JoinFailed {
    /// A chunk failed for good (`why`: its last error, or that its worker stopped).
    #[error("Chunk {number} of {count} failed after {attempts} attempts: {why}")]
    Chunk { number: i64, count: usize, attempts: i32, why: String },
    #[error("Fetching the chunks' pieces failed: {0}")]
    Fetch(#[source] StageError),
    #[error("Joining the chunks failed: {0}")]
    Join(#[source] EngineError),
    #[error("Packaging the chunks failed: {0}")]
    Package(#[source] EngineError),
    #[error("the output is not a package")]
    NotPackage,
}

/// Why a package cannot be made from chunks: the words the job's `job.note` puts in
/// brackets before saying the output is encoded in one piece (the normal path, which
/// every package takes).
#[derive(Debug, thiserror::Error)]
pub(super) enum PackageUnchunkable {
    /// The package's ladder is not one the host can make (the planning error's words).
    #[error(transparent)]
    Ladder(#[from] MediaError),
    #[error("a package without video")]
    NoVideo,
    /// A rung's frame rate is not the input's: chunk edges could drop or repeat a frame.
    #[error("a package with its own frame rate")]
    OwnFrameRate,
    /// A rung has no keyframe interval: its joins would not fall on segment instants.
    #[error("a package without keyframes at its segment instants")]
    NoSegmentKeyframes,
    /// Only H.264 and HEVC rungs are joined by stream copy.
    #[error("{codec} rungs")]
    Codec { codec: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reasons_read_as_their_users_see_them() {
        assert_eq!(Unchunkable::Codec { codec: "vp8".into(), container: "webm".into() }.to_string(), "vp8 in webm");
        assert_eq!(Unchunkable::from(PackageUnchunkable::Codec { codec: "av1".into() }).to_string(), "av1 rungs");
        assert_eq!(PackageUnchunkable::NoSegmentKeyframes.to_string(), "a package without keyframes at its segment instants");
        assert_eq!(JoinFailed::NotPackage.to_string(), "the output is not a package");
        let failed = JoinFailed::Chunk { number: 2, count: 5, attempts: 3, why: "its worker stopped each time".into() };
        assert_eq!(failed.to_string(), "Chunk 2 of 5 failed after 3 attempts: its worker stopped each time");
    }
}
