//! The media engine in a confined process of its own. FFmpeg's demuxers and decoders
//! parse strangers' files; here each call of the media room (probe, transcode, chunk
//! encode, cut, join, packaging, quality) runs in a child process (a re-exec of `copra` with a
//! hidden subcommand) that has an empty environment, no descriptor but its three pipes,
//! no capabilities, resource limits, Landlock rules on its input and work directory and
//! a seccomp allowlist. A crash, a hang or an exploit in FFmpeg reaches that one job's
//! files and nothing else: the database, the keys, the plugins and the network stay in
//! the worker, which uploads what the child reports finished.
//!
//! Each method here is one call: it says what the call may read and write, starts the
//! process ([`process`]), and checks every report against the call before it is used
//! (a file reported finished must be one of the call's own).

mod child;
mod confine;
mod error;
mod process;
mod protocol;
mod self_check;
mod syscalls;

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde_json::Value;
use tokio::sync::mpsc;

pub use child::{SUBCOMMAND, main as child_main};
pub use confine::keep_server_private;
pub use error::{EngineError, FailureKind, MediaFailure, ProtocolError};
pub use process::Engine;
pub use self_check::Check;

use crate::media::{ChunkRange, LoudnessRequest, OutputTarget, Package, Produced, Quality, QualityTarget, SubtitleTrack, InputSubtitles};
use crate::types::{AudioPlan, Loudness, MediaInfo, StreamPlan, VideoPlan};
use process::Access;
use protocol::{Call, Outcome, Report};

/// What a transcode reports while it runs, checked.
#[derive(Debug)]
pub enum Event {
    /// Share of the input done, 0.0 to 1.0.
    Progress(f64),
    /// A file of output `index` (a segment) is complete: it can be sent.
    FileReady { index: usize, path: PathBuf },
    /// Output `index` is finished, or failed; with its description when the engine
    /// read it back.
    OutputFinished { index: usize, result: Result<Produced, EngineError>, described: Option<Result<Value, MediaFailure>> },
}

impl Engine {
    /// Describe an input.
    pub async fn probe(&self, label: &str, input: &Path) -> Result<(MediaInfo, Value), EngineError> {
        let access = Access { reads: vec![input.to_path_buf()], writes: Vec::new() };
        match self.run(label, Call::Probe { input: input.to_path_buf() }, access, None, &mut no_reports).await? {
            Outcome::Probed { info, metadata } => Ok((info, metadata)),
            other => Err(unexpected(&other)),
        }
    }

    /// Describe a file the engine made; a playlist or manifest may read its directory.
    pub async fn probe_output(&self, label: &str, file: &Path) -> Result<(MediaInfo, Value), EngineError> {
        let readable = file.parent().map_or_else(|| file.to_path_buf(), Path::to_path_buf);
        let access = Access { reads: vec![readable], writes: Vec::new() };
        match self.run(label, Call::ProbeOutput { file: file.to_path_buf() }, access, None, &mut no_reports).await? {
            Outcome::Probed { info, metadata } => Ok((info, metadata)),
            other => Err(unexpected(&other)),
        }
    }

    /// Every output of `targets` from one decode of `input`, reporting to `events`.
    /// Outputs that finished are reported as they finish; an error here means those
    /// not reported did not.
    pub async fn transcode(
        &self,
        label: &str,
        input: &Path,
        targets: &[OutputTarget],
        cancel: &AtomicBool,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<(), EngineError> {
        let mut reads = vec![input.to_path_buf()];
        reads.extend(drawn_files(targets.iter().flat_map(|t| t.plan.video_plans())));
        let access = Access { reads, writes: parents(targets.iter().map(|t| t.path.as_path())) };
        let call = Call::Transcode { input: input.to_path_buf(), targets: targets.to_vec() };
        let mut on_report = |report: Report| -> Result<(), ProtocolError> {
            let event = match report {
                Report::Progress { fraction } => Event::Progress(fraction.clamp(0.0, 1.0)),
                Report::FileReady { index, path } => {
                    let target = targets.get(index).ok_or(ProtocolError::UnknownOutput(index))?;
                    if !within(&target.path, &path) {
                        return Err(ProtocolError::FileOutside(path));
                    }
                    Event::FileReady { index, path }
                }
                Report::OutputFinished { index, result, described } => {
                    let target = targets.get(index).ok_or(ProtocolError::UnknownOutput(index))?;
                    match &result {
                        Ok(produced) => check_produced(&target.path, produced)?,
                        Err(failure) => counted(failure),
                    }
                    Event::OutputFinished { index, result: result.map_err(EngineError::Media), described }
                }
                Report::Confined { .. } | Report::Done { .. } => return Ok(()),
            };
            let _ = events.send(event);
            Ok(())
        };
        match self.run(label, call, access, Some(cancel), &mut on_report).await? {
            Outcome::Finished => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Each target's quality against `input`, from one decode of it; `progress` sees the
    /// share of the input read. A target's per-frame CSV may only be written beside the
    /// target's own file.
    pub async fn measure(
        &self,
        label: &str,
        input: &Path,
        targets: &[QualityTarget],
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<Vec<Result<Quality, MediaFailure>>, EngineError> {
        // A target is read with its directory: a package's rung is a playlist and its
        // segments.
        let mut reads = vec![input.to_path_buf()];
        reads.extend(targets.iter().map(|t| t.file.parent().map_or_else(|| t.file.clone(), Path::to_path_buf)));
        reads.dedup();
        let mut writes = Vec::new();
        for target in targets {
            if let Some(csv) = &target.per_frame {
                if csv.parent() != target.file.parent() {
                    return Err(ProtocolError::ScoresOutside(csv.clone()).into());
                }
                writes.extend(csv.parent().map(Path::to_path_buf));
            }
        }
        writes.dedup();
        let access = Access { reads, writes };
        let call = Call::Measure { input: input.to_path_buf(), targets: targets.to_vec() };
        let mut on_report = |report: Report| -> Result<(), ProtocolError> {
            if let Report::Progress { fraction } = report {
                progress(fraction.clamp(0.0, 1.0));
            }
            Ok(())
        };
        match self.run(label, call, access, None, &mut on_report).await? {
            Outcome::Measured { results } if results.len() == targets.len() => {
                count_failures(&results);
                Ok(results)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The loudness of each request's part of `input`'s audio, from one decode of it;
    /// `progress` sees the share of the input read.
    pub async fn loudness(
        &self,
        label: &str,
        input: &Path,
        requests: &[LoudnessRequest],
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<Vec<Result<Loudness, MediaFailure>>, EngineError> {
        let access = Access { reads: vec![input.to_path_buf()], writes: Vec::new() };
        let call = Call::Loudness { input: input.to_path_buf(), requests: requests.to_vec() };
        let mut on_report = |report: Report| -> Result<(), ProtocolError> {
            if let Report::Progress { fraction } = report {
                progress(fraction.clamp(0.0, 1.0));
            }
            Ok(())
        };
        match self.run(label, call, access, None, &mut on_report).await? {
            Outcome::Loudness { results } if results.len() == requests.len() => {
                count_failures(&results);
                results.into_iter().map(checked_loudness).collect()
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The loudness of a file the engine made: a file, or a package's media playlist
    /// (read with its directory, where its segments are).
    pub async fn output_loudness(&self, label: &str, file: &Path) -> Result<Loudness, MediaFailure> {
        let dir = file.parent().map_or_else(|| file.to_path_buf(), Path::to_path_buf);
        let access = Access { reads: vec![dir], writes: Vec::new() };
        let call = Call::OutputLoudness { file: file.to_path_buf() };
        let outcome = self.run(label, call, access, None, &mut no_reports).await.map_err(|e| MediaFailure::from(&e))?;
        match outcome {
            Outcome::Loudness { mut results } if results.len() == 1 => {
                count_failures(&results);
                checked_loudness(results.remove(0)).map_err(|e| MediaFailure::from(&e))?
            }
            other => Err(MediaFailure::from(&unexpected(&other))),
        }
    }

    /// Where an ultrafast job's chunks start, aligned to the outputs' GOP grids.
    pub async fn chunk_ranges(&self, label: &str, input: &Path, chunk_secs: f64, grids: &[f64]) -> Result<Vec<ChunkRange>, EngineError> {
        let access = Access { reads: vec![input.to_path_buf()], writes: Vec::new() };
        let call = Call::ChunkRanges { input: input.to_path_buf(), chunk_secs, grids: grids.to_vec() };
        match self.run(label, call, access, None, &mut no_reports).await? {
            Outcome::Ranges { ranges } => Ok(ranges),
            other => Err(unexpected(&other)),
        }
    }

    /// Each chunk of `input` copied to its file in `paths`.
    pub async fn cut_chunks(&self, label: &str, input: &Path, ranges: &[ChunkRange], paths: &[PathBuf]) -> Result<(), EngineError> {
        let access = Access { reads: vec![input.to_path_buf()], writes: parents(paths.iter().map(PathBuf::as_path)) };
        let call = Call::CutChunks { input: input.to_path_buf(), ranges: ranges.to_vec(), paths: paths.to_vec() };
        self.finished(label, call, access, None).await
    }

    /// One chunk's video encoded with every plan into `pieces`; `progress` sees the share
    /// done. Returns the frames encoded.
    #[allow(clippy::too_many_arguments)]
    pub async fn encode_video_chunk(
        &self,
        label: &str,
        input: &Path,
        cut: bool,
        range: ChunkRange,
        plans: &[(VideoPlan, (i32, i32))],
        pieces: &[PathBuf],
        progress: &(dyn Fn(f64) + Send + Sync),
        cancel: &AtomicBool,
    ) -> Result<u64, EngineError> {
        let mut reads = vec![input.to_path_buf()];
        reads.extend(drawn_files(plans.iter().map(|(plan, _)| plan)));
        let access = Access { reads, writes: parents(pieces.iter().map(PathBuf::as_path)) };
        let call = Call::EncodeVideoChunk { input: input.to_path_buf(), cut, range, plans: plans.to_vec(), pieces: pieces.to_vec() };
        let mut on_report = |report: Report| -> Result<(), ProtocolError> {
            if let Report::Progress { fraction } = report {
                progress(fraction.clamp(0.0, 1.0));
            }
            Ok(())
        };
        match self.run(label, call, access, Some(cancel), &mut on_report).await? {
            Outcome::Frames { frames } => Ok(frames),
            other => Err(unexpected(&other)),
        }
    }

    /// The whole input's audio encoded with every plan into `pieces`.
    pub async fn encode_audio(&self, label: &str, input: &Path, plans: &[AudioPlan], pieces: &[PathBuf], cancel: &AtomicBool) -> Result<(), EngineError> {
        let access = Access { reads: vec![input.to_path_buf()], writes: parents(pieces.iter().map(PathBuf::as_path)) };
        let call = Call::EncodeAudio { input: input.to_path_buf(), plans: plans.to_vec(), pieces: pieces.to_vec() };
        self.finished(label, call, access, Some(cancel)).await
    }

    /// An output's video pieces (and its audio) put together into `output`.
    pub async fn join(&self, label: &str, video: &[PathBuf], audio: Option<&Path>, container: &str, output: &Path) -> Result<(), EngineError> {
        // Each piece has a side file of its frames' times beside it.
        let reads = parents(video.iter().map(PathBuf::as_path).chain(audio));
        let access = Access { reads, writes: parents([output]) };
        let call = Call::Join { video: video.to_vec(), audio: audio.map(Path::to_path_buf), container: container.to_string(), output: output.to_path_buf() };
        self.finished(label, call, access, None).await
    }

    /// `tracks` put into `file` (a `container` file the engine made) as subtitle
    /// streams; the file is replaced by one with them, in its own directory.
    pub async fn add_subtitles(&self, label: &str, file: &Path, container: &str, tracks: &[SubtitleTrack]) -> Result<(), EngineError> {
        let access = Access { reads: parents([file]), writes: parents([file]) };
        let call = Call::AddSubtitles { file: file.to_path_buf(), container: container.to_string(), tracks: tracks.to_vec() };
        self.finished(label, call, access, None).await
    }

    /// The text subtitle tracks of `input`, each checked: within the track and cue
    /// limits, times finite and in order.
    pub async fn extract_subtitles(&self, label: &str, input: &Path) -> Result<Vec<InputSubtitles>, EngineError> {
        let access = Access { reads: vec![input.to_path_buf()], writes: Vec::new() };
        match self.run(label, Call::ExtractSubtitles { input: input.to_path_buf() }, access, None, &mut no_reports).await? {
            Outcome::Subtitles { tracks } => {
                let claim = |t: &InputSubtitles| {
                    let bytes: usize = t.cues.iter().map(|c| c.text.len()).sum();
                    t.cues.len() <= crate::media::MAX_INPUT_CUES
                        && bytes <= crate::media::MAX_INPUT_TEXT_BYTES
                        && t.cues.iter().all(|c| c.start.is_finite() && c.end.is_finite() && c.start >= 0.0 && c.end > c.start)
                };
                if tracks.len() > crate::media::MAX_SUBTITLE_TRACKS || !tracks.iter().all(claim) {
                    return Err(ProtocolError::ImpossibleSubtitles.into());
                }
                Ok(tracks)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// A package made in `dir` from encoded rungs by stream copy.
    pub async fn package_encoded(
        &self,
        label: &str,
        video: &[Vec<PathBuf>],
        audio: &[PathBuf],
        package: &StreamPlan,
        dir: &Path,
        cancel: &AtomicBool,
    ) -> Result<Package, EngineError> {
        // Each piece has a side file of its frames' times beside it.
        let reads = parents(video.iter().flatten().chain(audio).map(PathBuf::as_path));
        let access = Access { reads, writes: parents([dir]) };
        let call = Call::PackageEncoded { video: video.to_vec(), audio: audio.to_vec(), package: package.clone(), dir: dir.to_path_buf() };
        match self.run(label, call, access, Some(cancel), &mut no_reports).await? {
            Outcome::Package { package } => {
                check_produced(dir, &Produced::Package(package.clone())).map_err(EngineError::Protocol)?;
                Ok(package)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Start an engine confined to `writable` and have it try what it should not be
    /// able to do. Returns how far Landlock went and each check.
    pub async fn self_check(&self, outside: &Path, writable: &Path) -> Result<(String, Vec<Check>), EngineError> {
        let access = Access { reads: Vec::new(), writes: vec![writable.to_path_buf()] };
        let call = Call::SelfCheck { outside: outside.to_path_buf(), writable: writable.to_path_buf() };
        match self.run("check", call, access, None, &mut no_reports).await? {
            Outcome::Checked { landlock, checks } => Ok((landlock, checks)),
            other => Err(unexpected(&other)),
        }
    }

    async fn finished(&self, label: &str, call: Call, access: Access, cancel: Option<&AtomicBool>) -> Result<(), EngineError> {
        match self.run(label, call, access, cancel, &mut no_reports).await? {
            Outcome::Finished => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

/// A measurement is a claim: its figures must be numbers a measurement can give, as
/// they decide a gain.
fn checked_loudness(result: Result<Loudness, MediaFailure>) -> Result<Result<Loudness, MediaFailure>, EngineError> {
    let Ok(l) = result else { return Ok(result) };
    let within = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
    if within(l.integrated, -70.0, 20.0) && within(l.lra, 0.0, 100.0) && within(l.true_peak, -144.0, 40.0) {
        Ok(Ok(l))
    } else {
        Err(ProtocolError::ImpossibleLoudness(format!("{l:?}")).into())
    }
}

/// Where fontconfig and libass find fonts, for subtitles drawn into the picture.
const FONT_READS: &[&str] = &["/usr/share/fonts", "/usr/local/share/fonts", "/etc/fonts", "/var/cache/fontconfig", "/usr/share/fontconfig"];

/// What the plans draw from files the worker made (watermark images, subtitle scripts),
/// each once, and the fonts when subtitles are drawn.
fn drawn_files<'a>(plans: impl Iterator<Item = &'a VideoPlan>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut fonts = false;
    for plan in plans {
        fonts |= plan.burn_in_file.is_some();
        for file in plan.overlays.iter().filter_map(|o| o.file.clone()).chain(plan.burn_in_file.clone()) {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    if fonts {
        files.extend(FONT_READS.iter().map(PathBuf::from));
    }
    files
}

/// One output or measurement the engine says failed, counted by its kind (a failed call
/// as a whole is counted where it ends, in `process`).
fn counted(failure: &MediaFailure) {
    crate::metrics::media_failure(failure.kind.as_str());
}

/// Each failed measurement of a call's answer, counted.
fn count_failures<T>(results: &[Result<T, MediaFailure>]) {
    results.iter().filter_map(|r| r.as_ref().err()).for_each(counted);
}

/// For calls that report nothing but their answer (progress is ignored).
fn no_reports(_: Report) -> Result<(), ProtocolError> {
    Ok(())
}

fn unexpected(outcome: &Outcome) -> EngineError {
    ProtocolError::WrongAnswer(format!("{outcome:?}")).into()
}

/// The directories files are written in (for a target that is a directory, the one it
/// is made in), each once.
fn parents<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for path in paths {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Whether `path` is `root` or below it, with no `..` on the way.
fn within(root: &Path, path: &Path) -> bool {
    path.starts_with(root) && !path.components().any(|c| matches!(c, Component::ParentDir))
}

/// Whether a relative path stays below the directory it is relative to.
fn plain_relative(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_))) && path.components().next().is_some()
}

/// Every file an output says it made must be its own.
fn check_produced(target: &Path, produced: &Produced) -> Result<(), ProtocolError> {
    match produced {
        Produced::File => Ok(()),
        Produced::Images { files, .. } => match files.iter().find(|f| !within(target, f)) {
            Some(file) => Err(ProtocolError::PictureOutside(file.clone())),
            None => Ok(()),
        },
        Produced::Package(package) => {
            let named = package.files.iter().chain(&package.hls_master).chain(&package.dash_manifest);
            match named.into_iter().find(|f| !plain_relative(f)) {
                Some(file) => Err(ProtocolError::PackageFileOutside(file.clone())),
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_files_must_be_the_outputs_own() {
        let dir = Path::new("/data/work/j/output-0");
        assert!(within(dir, Path::new("/data/work/j/output-0/hls/720p/s_1.ts")));
        assert!(!within(dir, Path::new("/data/work/j/output-0/../../../secret-key")));
        assert!(!within(dir, Path::new("/data/secret-key")));
        assert!(!within(dir, Path::new("/data/work/j/output-01/x.ts")));
        let package = |file: &str| Produced::Package(Package { files: vec![PathBuf::from(file)], hls_master: None, dash_manifest: None });
        assert!(check_produced(dir, &package("hls/720p/s_1.ts")).is_ok());
        assert!(check_produced(dir, &package("../secret-key")).is_err());
        assert!(check_produced(dir, &package("/etc/passwd")).is_err());
        let images = Produced::Images { files: vec![dir.join("t_1.jpg"), PathBuf::from("/data/db.sqlite")], tiles: Vec::new() };
        assert!(check_produced(dir, &images).is_err());
    }

    #[test]
    fn writes_are_the_directories_outputs_are_made_in() {
        let dirs = parents([Path::new("/w/output-0.mp4"), Path::new("/w/output-1"), Path::new("/w/x/y.ts")]);
        assert_eq!(dirs, vec![PathBuf::from("/w"), PathBuf::from("/w/x")]);
    }
}
