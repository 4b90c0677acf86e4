//! Subtitles, as job steps: before the encode, the job's subtitle files are fetched once
//! (through the outbound policy, under a byte cap) and read, and each output that carries
//! them (packages; MP4, MOV, Matroska and WebM video files) gets them on its own
//! timeline; an output that draws one (`burn_in`) gets it as an ASS script on its
//! timeline, which its encoder draws (libass). Once a package is made, its subtitle
//! renditions are written into it (`subtitles::package`); once a file is made, the
//! engine puts the tracks into it as subtitle streams (`media::add_subtitles`); then it
//! is uploaded.

use std::path::{Path, PathBuf};

use super::Planned;
use super::record::JobRun;
use serde_json::Value;

use crate::job::subtitles::SubtitleSpec;
use crate::media::{self, Produced};
use crate::languages;
use crate::subtitles::{self, package::Track};
use crate::types::MediaInfo;

impl JobRun<'_> {
    /// Fetch and read the job's subtitle files, and give every output that carries them
    /// its tracks. A file that cannot be fetched or read fails those outputs (naming the
    /// language and why); other outputs go on.
    pub(super) async fn fetch_subtitles(
        &self,
        work: &Path,
        input: &Path,
        input_metadata: &Value,
        info: &MediaInfo,
        planned: Vec<Planned>,
    ) -> anyhow::Result<Vec<Planned>> {
        // Joined inputs: the job's subtitles are timed on the joined timeline, and the
        // inputs' own tracks (of one file each) are not used.
        let embedded = has_text_subtitles(input_metadata) && self.spec.joined.is_empty();
        let clips: &[crate::types::TimeRange] = if self.spec.joined.is_empty() { &self.spec.input.clips } else { &[] };
        let needs = |p: &Planned| (carries(p) && (!self.spec.subtitles.is_empty() || embedded)) || burn_in(p).is_some();
        if !planned.iter().any(needs) {
            return Ok(planned);
        }
        let max_bytes = subtitles::MAX_BYTES.min(self.worker.config.limits.max_input_bytes);
        let mut read: Vec<(SubtitleSpec, Vec<subtitles::Cue>)> = Vec::new();
        let mut failure = None;
        for (i, track) in self.spec.subtitles.iter().enumerate() {
            let dest = work.join(format!("subtitles-{i}"));
            let cues = match crate::storage::fetch_http(&self.worker.http, &track.url, &dest, max_bytes).await {
                Ok(_) => match tokio::fs::read(&dest).await {
                    Ok(bytes) => subtitles::parse(&bytes).map_err(|e| format!("the file is not usable: {e}")),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            match cues {
                Ok(cues) => read.push((track.clone(), cues)),
                Err(why) => {
                    failure = Some(format!("The '{}' subtitles could not be used: {why}", track.language));
                    break;
                }
            }
        }
        if embedded && failure.is_none() {
            read.extend(self.input_subtitles(input, &read).await);
        }
        tracing::info!(tracks = read.len(), "subtitles read");
        let mut kept = Vec::with_capacity(planned.len());
        for mut p in planned {
            if !needs(&p) {
                kept.push(p);
                continue;
            }
            if let Some(message) = &failure {
                self.fail_output(&p.row, message.clone()).await?;
                continue;
            }
            let range = p.target.plan.range;
            if let Some(language) = burn_in(&p) {
                let Some((_, cues)) = read.iter().find(|(spec, _)| languages::same_language(&spec.language, &language)) else {
                    let have: Vec<&str> = read.iter().map(|(s, _)| s.language.as_str()).collect();
                    let have = if have.is_empty() { "none".to_string() } else { have.join(", ") };
                    self.fail_output(&p.row, format!("burn_in names '{language}', which is not among the job's subtitles ({have}).")).await?;
                    continue;
                };
                let script = work.join(format!("burn-in-{}.ass", p.row.position));
                tokio::fs::write(&script, subtitles::ass(&subtitles::retime(cues, clips, range.as_ref()))).await?;
                for video in p.target.plan.video_plans_mut() {
                    video.burn_in_file = video.burn_in.is_some().then(|| script.clone());
                }
            }
            if !carries(&p) {
                kept.push(p);
                continue;
            }
            p.subtitles = read
                .iter()
                .map(|(spec, cues)| Track {
                    language: spec.language.clone(),
                    name: spec.name.clone(),
                    default: spec.default,
                    cues: subtitles::retime(cues, clips, range.as_ref()),
                })
                .collect();
            p.duration = output_duration(info, range.as_ref());
            kept.push(p);
        }
        Ok(kept)
    }

    /// The input's own text subtitle tracks, as the job's tracks after `sidecar`: a
    /// language the job already has is left out, and so is all of it (with a warning)
    /// when the input's tracks cannot be read.
    async fn input_subtitles(&self, input: &Path, sidecar: &[(SubtitleSpec, Vec<subtitles::Cue>)]) -> Vec<(SubtitleSpec, Vec<subtitles::Cue>)> {
        let tracks = match self.engine.extract_subtitles(&self.lease.job_id, input).await {
            Ok(tracks) => tracks,
            Err(err) => {
                tracing::warn!(%err, "the input's subtitle tracks could not be read; the job goes on without them");
                return Vec::new();
            }
        };
        let mut taken: Vec<(SubtitleSpec, Vec<subtitles::Cue>)> = Vec::new();
        let has_default = sidecar.iter().any(|(s, _)| s.default);
        for track in tracks {
            if let Some(why) = &track.refused {
                tracing::warn!(stream = track.stream, why, "an input subtitle track is not used");
                continue;
            }
            let language = checked_language(&track.language);
            let known = sidecar.iter().chain(&taken).any(|(s, _)| languages::same_language(&s.language, &language));
            if known || track.cues.is_empty() || sidecar.len() + taken.len() >= crate::job::subtitles::MAX_TRACKS {
                tracing::info!(stream = track.stream, language, "an input subtitle track is not used: its language is taken, or it is empty, or one too many");
                continue;
            }
            let name = crate::languages::track_name(&track.title, MAX_NAME).unwrap_or_else(|| language.clone());
            let default = track.default && !has_default && !taken.iter().any(|(s, _)| s.default);
            let cues = track.cues.into_iter().map(|c| subtitles::Cue { start: c.start, end: c.end, text: c.text }).collect();
            taken.push((SubtitleSpec { url: String::new(), language, name, default }, cues));
        }
        tracing::info!(tracks = taken.len(), "the input's subtitle tracks read");
        taken
    }

    /// `produced` with its output's subtitle tracks written in: renditions in a package
    /// (as it was, with a warning, if they could not be written), subtitle streams in a
    /// file (an error, which fails that output, if they could not be).
    pub(super) async fn with_subtitles(&self, planned: &Planned, produced: Produced) -> Result<Produced, FileTracksError> {
        if matches!(produced, Produced::File) && !planned.subtitles.is_empty() {
            self.subtitles_into_file(planned).await?;
            return Ok(produced);
        }
        let Produced::Package(mut package) = produced else { return Ok(produced) };
        let (Some(stream), false) = (&planned.target.plan.packaging, planned.subtitles.is_empty()) else {
            return Ok(Produced::Package(package));
        };
        let (dir, tracks, duration) = (planned.target.path.clone(), planned.subtitles.clone(), planned.duration);
        let (master, mpd, segment) = (package.hls_master.clone(), package.dash_manifest.clone(), stream.segment_duration);
        let written = tokio::task::spawn_blocking(move || {
            let hls = master.as_deref().map(|master| subtitles::package::Hls { master, segment });
            subtitles::package::add(&dir, hls, mpd.as_deref(), duration, &tracks)
        })
        .await;
        match written {
            Ok(Ok(files)) => {
                package.files = with_files(std::mem::take(&mut package.files), files);
                tracing::info!(tracks = planned.subtitles.len(), "subtitle renditions written");
            }
            Ok(Err(err)) => tracing::warn!(%err, "the subtitle renditions were not written"),
            Err(err) => tracing::warn!(%err, "the subtitle renditions were not written"),
        }
        Ok(Produced::Package(package))
    }

    /// The output's tracks put into its file by the engine, each cue as an ASS event.
    async fn subtitles_into_file(&self, planned: &Planned) -> Result<(), FileTracksError> {
        let tracks: Vec<media::SubtitleTrack> = planned.subtitles.iter().take(media::MAX_SUBTITLE_TRACKS).map(file_track).collect();
        let bytes: usize = tracks.iter().flat_map(|t| &t.events).map(|e| e.text.len() + 64).sum();
        if bytes > MAX_FILE_TRACK_BYTES {
            return Err(FileTracksError::TooMuchText);
        }
        let plan = &planned.target.plan;
        self.engine.add_subtitles(&self.lease.job_id, &planned.target.path, &plan.container, &tracks).await.map_err(FileTracksError::Engine)?;
        tracing::info!(tracks = tracks.len(), container = %plan.container, "subtitle tracks written");
        Ok(())
    }
}

/// Why a file's subtitle tracks could not be put into it (the output then fails).
#[derive(Debug, thiserror::Error)]
pub(super) enum FileTracksError {
    #[error("The subtitle tracks hold more than {} MiB of text together, more than a file takes.", MAX_FILE_TRACK_BYTES >> 20)]
    TooMuchText,
    #[error("The subtitle tracks could not be written into the file: {0}")]
    Engine(crate::confined::EngineError),
}

/// The text of every track a file carries together: the engine's request (16 MiB of
/// JSON) holds it even with every quote and backslash escaped.
const MAX_FILE_TRACK_BYTES: usize = 6 << 20;

/// A track as the engine writes it into a file: its language as the container stores
/// it (three letters), its name as the stream's title, each cue as ASS event text.
fn file_track(track: &Track) -> media::SubtitleTrack {
    media::SubtitleTrack {
        language: languages::iso639_2(&track.language),
        title: track.name.clone(),
        default: track.default,
        events: track
            .cues
            .iter()
            .map(|c| media::SubtitleEvent { start: c.start, end: c.end, text: subtitles::ass_text(&c.text).chars().filter(|ch| !ch.is_control()).collect() })
            .collect(),
    }
}

/// Whether the input's metadata lists a text subtitle track (which the engine reads).
fn has_text_subtitles(metadata: &Value) -> bool {
    let text = |s: &&Value| s["codec_type"] == "subtitle" && matches!(s["codec_name"].as_str(), Some("mov_text" | "subrip" | "srt" | "webvtt" | "ass" | "ssa" | "text"));
    metadata["streams"].as_array().is_some_and(|streams| streams.iter().any(|s| text(&s)))
}

/// Longest name an input's subtitle track is given.
const MAX_NAME: usize = 100;

/// An input's language tag as a track's: a well-formed tag, or `und`, safe in file
/// names and playlist attributes.
fn checked_language(tag: &str) -> String {
    let tag = tag.trim();
    if crate::languages::is_tag(tag) { tag.to_string() } else { "und".to_string() }
}

/// Whether an output carries the job's subtitle tracks: a package, or a video file in a
/// container that holds text subtitles (see `media::subtitle_codec`).
fn carries(p: &Planned) -> bool {
    let plan = &p.target.plan;
    plan.packaging.is_some() || (plan.image.is_none() && plan.video.is_some() && media::subtitle_codec(&plan.container).is_some())
}

/// The subtitle language an output draws into its picture, if any.
fn burn_in(p: &Planned) -> Option<String> {
    p.target.plan.video_plans().find_map(|v| v.burn_in.clone())
}

/// How long an output of `range` of the input (as its clips join it) lasts.
fn output_duration(info: &MediaInfo, range: Option<&crate::types::TimeRange>) -> f64 {
    match range {
        Some(r) => r.duration.unwrap_or(info.duration - r.offset).min((info.duration - r.offset).max(0.0)),
        None => info.duration,
    }
}

/// A package's file list with `added` in: new media with the media, new playlists
/// before the others, and what was rewritten (masters) at the very end.
fn with_files(files: Vec<PathBuf>, added: Vec<PathBuf>) -> Vec<PathBuf> {
    let manifest = |p: &PathBuf| p.extension().is_some_and(|e| e == "m3u8" || e == "mpd");
    let rewritten: Vec<PathBuf> = added.iter().filter(|f| files.contains(f)).cloned().collect();
    let kept: Vec<PathBuf> = files.into_iter().filter(|f| !rewritten.contains(f)).collect();
    let (media, manifests): (Vec<PathBuf>, Vec<PathBuf>) = kept.into_iter().partition(|f| !manifest(f));
    let (new_media, new_playlists): (Vec<PathBuf>, Vec<PathBuf>) = added.into_iter().filter(|f| !rewritten.contains(f)).partition(|f| !manifest(f));
    media.into_iter().chain(new_media).chain(new_playlists).chain(manifests).chain(rewritten).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_tracks_are_named_safely() {
        assert_eq!(checked_language("fra"), "fra");
        assert_eq!(checked_language("pt-BR"), "pt-BR");
        assert_eq!(checked_language(""), "und");
        assert_eq!(checked_language("en\"/../x"), "und");
        let metadata = serde_json::json!({"streams": [{"codec_type": "video"}, {"codec_type": "subtitle", "codec_name": "hdmv_pgs_subtitle"}]});
        assert!(!has_text_subtitles(&metadata), "a bitmap track is not read");
        let metadata = serde_json::json!({"streams": [{"codec_type": "subtitle", "codec_name": "mov_text"}]});
        assert!(has_text_subtitles(&metadata));
    }

    #[test]
    fn new_files_keep_masters_last() {
        let files = ["hls/720p/segment_00001.ts", "hls/720p/index.m3u8", "hls/master.m3u8"].map(PathBuf::from).to_vec();
        let added = ["hls/subs-en/segment_00001.vtt", "hls/subs-en/index.m3u8", "hls/master.m3u8"].map(PathBuf::from).to_vec();
        let all: Vec<String> = with_files(files, added).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            all,
            ["hls/720p/segment_00001.ts", "hls/subs-en/segment_00001.vtt", "hls/subs-en/index.m3u8", "hls/720p/index.m3u8", "hls/master.m3u8"]
        );
    }
}
