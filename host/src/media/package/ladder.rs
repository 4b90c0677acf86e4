//! What a package is made of: its renditions (each video rung, each distinct audio plan
//! once) and the variants that pair them. The encoding packager and packages made from
//! an ultrafast job's joined renditions read the plan the same way.

use ffmpeg::Rational;
use ffmpeg_next as ffmpeg;

use super::manifest::{safe_name, unique};
use super::muxers::rung_sar;
use crate::media::MediaError;
use crate::types::{AudioPlan, StreamPlan, VideoPlan};

/// The renditions of a package, named as their directories under `hls/`.
pub(super) struct Layout<'a> {
    pub video: Vec<(String, &'a VideoPlan)>,
    pub audio: Vec<(String, &'a AudioPlan)>,
    /// For each variant: its video rendition and its audio rendition, as indexes into
    /// the renditions (video first, then audio).
    pub variants: Vec<(Option<usize>, Option<usize>)>,
}

impl<'a> Layout<'a> {
    /// The renditions of `plan` an input with or without video and audio can give.
    pub fn of(plan: &'a StreamPlan, has_video: bool, has_audio: bool) -> Result<Self, MediaError> {
        if plan.hls.is_none() && !plan.dash {
            return Err(MediaError::Unsupported("the package asks for neither HLS nor DASH".into()));
        }
        if plan.variants.is_empty() {
            return Err(MediaError::Unsupported("the package has no rendition".into()));
        }
        if !(plan.segment_duration > 0.0) {
            return Err(MediaError::Unsupported(format!("invalid segment duration {}", plan.segment_duration)));
        }
        let mut video: Vec<(String, &VideoPlan)> = Vec::new();
        let mut audio: Vec<(String, &AudioPlan)> = Vec::new();
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
                Some(a) if has_audio => Some(match audio.iter().position(|(_, p)| *p == a) {
                    Some(i) => i,
                    None => {
                        let name = if variant.video.is_none() { safe_name(&variant.name) } else { "audio".to_string() };
                        audio.push((unique(&audio, name), a));
                        audio.len() - 1
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
    let layout = Layout::of(plan, true, true)?;
    Ok(layout.video.iter().map(|(name, _)| (name.clone(), std::path::Path::new("hls").join(name).join(super::MEDIA_PLAYLIST))).collect())
}

/// The media playlists of `plan`'s audio renditions under a package's directory
/// (`hls/audio/index.m3u8`), for an input with audio; empty without HLS.
pub fn audio_playlists(plan: &StreamPlan) -> Result<Vec<std::path::PathBuf>, MediaError> {
    if plan.hls.is_none() {
        return Ok(Vec::new());
    }
    let layout = Layout::of(plan, true, true)?;
    Ok(layout.audio.iter().map(|(name, _)| std::path::Path::new("hls").join(name).join(super::MEDIA_PLAYLIST)).collect())
}

/// The renditions of `plan` for an input with video and, if the plan has audio, audio
/// (plans have audio only when their input does).
pub fn ladder(plan: &StreamPlan) -> Result<Ladder, MediaError> {
    let layout = Layout::of(plan, true, true)?;
    let video = layout.video.iter().zip(layout.sars()).map(|((_, v), sar)| ((*v).clone(), (sar.numerator(), sar.denominator()))).collect();
    let audio = layout.audio.iter().map(|(_, a)| (*a).clone()).collect();
    Ok(Ladder { video, audio })
}
