//! Sidecar subtitles, as job steps: before the encode, the job's subtitle files are
//! fetched once (through the outbound policy, under a byte cap) and read, and each
//! package output gets them on its own timeline; an output that draws one (`burn_in`)
//! gets it as an ASS script on its timeline, which its encoder draws (libass); once a
//! package is made, its subtitle renditions are written into it before it is uploaded
//! (`subtitles::package`).

use std::path::{Path, PathBuf};

use super::Planned;
use super::record::JobRun;
use crate::media::Produced;
use crate::subtitles::{self, package::Track};
use crate::types::MediaInfo;

impl JobRun<'_> {
    /// Fetch and read the job's subtitle files, and give every package output its
    /// tracks. A file that cannot be fetched or read fails the packages (naming the
    /// language and why); other outputs go on.
    pub(super) async fn fetch_subtitles(&self, work: &Path, info: &MediaInfo, planned: Vec<Planned>) -> anyhow::Result<Vec<Planned>> {
        let needs = |p: &Planned| (p.target.plan.packaging.is_some() && !self.spec.subtitles.is_empty()) || burn_in(p).is_some();
        if !planned.iter().any(needs) {
            return Ok(planned);
        }
        let max_bytes = subtitles::MAX_BYTES.min(self.worker.config.limits.max_input_bytes);
        let mut read: Vec<(crate::job::subtitles::SubtitleSpec, Vec<subtitles::Cue>)> = Vec::new();
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
                let Some((_, cues)) = read.iter().find(|(spec, _)| spec.language.eq_ignore_ascii_case(&language)) else {
                    let have: Vec<&str> = self.spec.subtitles.iter().map(|s| s.language.as_str()).collect();
                    let have = if have.is_empty() { "none".to_string() } else { have.join(", ") };
                    self.fail_output(&p.row, format!("burn_in names '{language}', which is not among the job's subtitles ({have}).")).await?;
                    continue;
                };
                let script = work.join(format!("burn-in-{}.ass", p.row.position));
                tokio::fs::write(&script, subtitles::ass(&subtitles::retime(cues, &self.spec.input.clips, range.as_ref()))).await?;
                for video in p.target.plan.video_plans_mut() {
                    video.burn_in_file = video.burn_in.is_some().then(|| script.clone());
                }
            }
            if p.target.plan.packaging.is_none() {
                kept.push(p);
                continue;
            }
            p.subtitles = read
                .iter()
                .map(|(spec, cues)| Track {
                    language: spec.language.clone(),
                    name: spec.name.clone(),
                    default: spec.default,
                    cues: subtitles::retime(cues, &self.spec.input.clips, range.as_ref()),
                })
                .collect();
            p.duration = output_duration(info, range.as_ref());
            kept.push(p);
        }
        Ok(kept)
    }

    /// `produced` with its output's subtitle renditions written in, when it is a package
    /// that has tracks; as it was (with a warning) if they could not be written.
    pub(super) async fn with_subtitles(&self, planned: &Planned, produced: Produced) -> Produced {
        let Produced::Package(mut package) = produced else { return produced };
        let (Some(stream), false) = (&planned.target.plan.packaging, planned.subtitles.is_empty()) else {
            return Produced::Package(package);
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
        Produced::Package(package)
    }
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
