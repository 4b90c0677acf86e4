//! What a package is made of: its renditions (each video rung, each distinct audio plan
//! once) and the variants that pair them. The encoding packager and packages made from
//! an ultrafast job's joined renditions read the plan the same way.

use ffmpeg::Rational;
use ffmpeg_next as ffmpeg;

use super::manifest::{safe_name, unique};
use super::muxers::rung_sar;
use crate::media::error::MediaError;
use crate::types::{AudioPlan, AudioTrack, StreamPlan, VideoPlan};

/// The renditions of a package, named as their directories under `hls/`.
pub(super) struct Layout<'a> {
    pub video: Vec<(String, &'a VideoPlan)>,
    pub audio: Vec<AudioRung<'a>>,
    /// For each variant: its video rendition and its audio rendition (the default one
    /// of its group), as indexes into the renditions (video first, then audio).
    pub variants: Vec<(Option<usize>, Option<usize>)>,
}

/// One audio rendition: an audio plan made from one of the input's tracks.
pub(super) struct AudioRung<'a> {
    pub name: String,
    pub plan: &'a AudioPlan,
    /// The input's track it is made from; none: the main track.
    pub track: Option<&'a AudioTrack>,
    /// The index (into `Layout::audio`) of its group's default rendition: the same plan
    /// from the other tracks are its alternates.
    pub group: usize,
}

impl<'a> Layout<'a> {
    /// The renditions of `plan` an input with or without video and audio can give,
    /// each audio plan made from each of `tracks` (none: from the main track).
    pub fn of(plan: &'a StreamPlan, tracks: &'a [AudioTrack], has_video: bool, has_audio: bool) -> Result<Self, MediaError> {
        if plan.hls.is_none() && !plan.dash {
            return Err(MediaError::Unsupported("the package asks for neither HLS nor DASH".into()));
        }
        if plan.variants.is_empty() {
            return Err(MediaError::Unsupported("the package has no rendition".into()));
        }
        if !(plan.segment_duration > 0.0) {
            return Err(MediaError::Unsupported(format!("invalid segment duration {}", plan.segment_duration)));
        }
        // Every audio plan is made from each track; no tracks: from the main one.
        let tracks: Vec<Option<&AudioTrack>> = if tracks.is_empty() { vec![None] } else { tracks.iter().map(Some).collect() };
        let mut video: Vec<(String, &VideoPlan)> = Vec::new();
        let mut audio: Vec<AudioRung<'a>> = Vec::new();
        let mut variants = Vec::new();
        for variant in &plan.variants {
            let v = match &variant.video {
                Some(v) if has_video => {
                    video.push((safe_name(&variant.name), v));
                    Some(video.len() - 1)
                }
                _ => None,
            };
            let a = match &variant.audio {
                // A group's default rendition comes first: the first with the plan.
                Some(a) if has_audio => Some(match audio.iter().position(|r| r.plan == a) {
                    Some(i) => i,
                    None => {
                        let base = if variant.video.is_none() { safe_name(&variant.name) } else { "audio".to_string() };
                        let group = audio.len();
                        for track in &tracks {
                            let name = match track {
                                None => base.clone(),
                                Some(t) => safe_name(&format!("{base}-{}", t.language.clone().unwrap_or_else(|| t.stream.to_string()))),
                            };
                            let taken: Vec<&str> = audio.iter().map(|r| r.name.as_str()).collect();
                            audio.push(AudioRung { name: unique(&taken, name), plan: a, track: *track, group });
                        }
                        group
                    }
                }),
                _ => None,
            };
            if v.is_some() || a.is_some() {
                variants.push((v, a));
            }
        }
        if variants.is_empty() {
            return Err(MediaError::Unsupported("the input has none of the streams the package needs".into()));
        }
        let nv = video.len();
        let variants = variants.into_iter().map(|(v, a)| (v, a.map(|a| nv + a))).collect();
        Ok(Layout { video, audio, variants })
    }

    /// The DASH adaptation sets, as rendition indexes: the video rungs, then the audio
    /// renditions of each track (players switch bitrates within a set, languages
    /// between sets).
    pub fn dash_sets(&self) -> Vec<Vec<usize>> {
        let nv = self.video.len();
        let mut sets: Vec<Vec<usize>> = Vec::new();
        if nv > 0 {
            sets.push((0..nv).collect());
        }
        let mut by_track: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
        for (i, rung) in self.audio.iter().enumerate() {
            let stream = rung.track.map(|t| t.stream);
            match by_track.iter_mut().find(|(s, _)| *s == stream) {
                Some((_, set)) => set.push(nv + i),
                None => by_track.push((stream, vec![nv + i])),
            }
        }
        sets.extend(by_track.into_iter().map(|(_, set)| set));
        sets
    }

    /// Each video rung's sample aspect ratio: every rung displays at the top rung's aspect.
    pub fn sars(&self) -> Vec<Rational> {
        let top = self.video.iter().map(|(_, v)| (v.width, v.height)).max_by_key(|(w, h)| u64::from(*w) * u64::from(*h));
        self.video.iter().map(|(_, v)| top.map_or(Rational::new(1, 1), |top| rung_sar(top, (v.width, v.height)))).collect()
    }
}

/// What an ultrafast job encodes for a package, in the order [`super::package_encoded`]
/// takes the results: each video rung with the sample aspect ratio it is encoded at
/// (numerator, denominator), then each distinct audio rendition.
#[derive(Debug, Clone)]
pub struct Ladder {
    pub video: Vec<(VideoPlan, (i32, i32))>,
    pub audio: Vec<AudioPlan>,
}

/// The media playlists of `plan`'s video rungs under a package's directory, by rung
/// name (`720p` → `hls/720p/index.m3u8`); empty without HLS.
pub fn video_playlists(plan: &StreamPlan) -> Result<Vec<(String, std::path::PathBuf)>, MediaError> {
    if plan.hls.is_none() {
        return Ok(Vec::new());
    }
    let layout = Layout::of(plan, &[], true, true)?;
    Ok(layout.video.iter().map(|(name, _)| (name.clone(), std::path::Path::new("hls").join(name).join(super::MEDIA_PLAYLIST))).collect())
}

/// The media playlists of `plan`'s audio renditions under a package's directory
/// (`hls/audio/index.m3u8`), for an input with audio; empty without HLS.
pub fn audio_playlists(plan: &StreamPlan) -> Result<Vec<std::path::PathBuf>, MediaError> {
    if plan.hls.is_none() {
        return Ok(Vec::new());
    }
    let layout = Layout::of(plan, &[], true, true)?;
    Ok(layout.audio.iter().map(|r| std::path::Path::new("hls").join(&r.name).join(super::MEDIA_PLAYLIST)).collect())
}

/// The renditions of `plan` for an input with video and, if the plan has audio, audio
/// (plans have audio only when their input does).
pub fn ladder(plan: &StreamPlan) -> Result<Ladder, MediaError> {
    let layout = Layout::of(plan, &[], true, true)?;
    let video = layout.video.iter().zip(layout.sars()).map(|((_, v), sar)| ((*v).clone(), (sar.numerator(), sar.denominator()))).collect();
    let audio = layout.audio.iter().map(|r| r.plan.clone()).collect();
    Ok(Ladder { video, audio })
}
