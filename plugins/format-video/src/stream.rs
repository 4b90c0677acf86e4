//! Adaptive streaming: `httpstream` with params `hls` and/or `dash`, `variants`,
//! `segment_duration` and `hlsfmp4`. Every rung is keyframed at the same instants (a
//! fixed interval that divides the segment) and at the same frame rate, so players can
//! switch between them at any segment boundary.

use copra_sdk::format::{AudioPlan, HlsPlan, MediaInfo, OutputPlan, OutputType, StreamPlan, VariantPlan, VideoPlan};
use copra_sdk::{Error, Json};

use crate::audio::{self, Audio, AudioSpec};
use crate::audio_codecs::AudioCodec;
use crate::codecs::VideoCodec;
use crate::containers::{Kind, STREAM, lookup};
use crate::encode::{Encoding, Rate};
use crate::geometry::{DEFAULT_SCALER, Size, even, upright};
use crate::grammar::{self, Parts, items};
use crate::options::KEYS;
use crate::params::{Params, Span};
use crate::video::{self, VideoSpec};

pub const PARAMS: &[&str] = &["hls", "dash", "hlsfmp4", "variants", "segment_duration", "offset", "duration", crate::loudness::KEY, crate::watermark::KEY, crate::video::BURN_IN, crate::audio_tracks::KEY];

const DEFAULT_SEGMENT: f64 = 6.0;
const SEGMENT_RANGE: (f64, f64) = (1.0, 30.0);
/// The host refuses a package of more renditions than its `[limits] max_variants`
/// (12 by default) at run time; saying so here makes a longer list a 400 at submit.
const MAX_VARIANTS: usize = 12;
/// Rungs of the default ladder (short side) and their bitrate ceilings (kbit/s).
const LADDER: &[(u32, u32)] = &[(1080, 6000), (720, 3500), (480, 1500), (360, 800)];
/// The ceiling of a rung below 360p.
const SMALL_MAXRATE: u32 = 400;
const DEFAULT_CRF: f32 = 23.0;
const MAX_LADDER_FPS: f64 = 60.0;
/// Where the top rung of a ladder planned from the content aims, unless `vmaf=` says.
pub const AUTO_TOP_VMAF: f32 = 95.0;
/// The `vmaf=` a ladder planned from the content may aim its top rung at.
const AUTO_VMAF_RANGE: (f32, f32) = (50.0, 99.0);
/// Ladders use 48 kHz throughout, so that every rung's audio is the same encode.
const LADDER_SAMPLE_RATE: u32 = 48000;

/// One rung asked for in `variants`.
#[derive(Debug, Clone, PartialEq)]
pub enum Rung {
    /// `mp4:720p`, `mpegts:hevc_1080p:aac_96k`.
    Video(Box<VideoSpec>),
    /// `aac:64k`: an audio-only rendition.
    Audio(AudioSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamOutput {
    /// Some(fmp4) when HLS is asked for.
    pub hls: Option<bool>,
    pub dash: bool,
    pub segment_duration: f64,
    /// None: the default ladder.
    pub variants: Option<Vec<Rung>>,
    /// `"variants": "auto"`: the ladder is planned from the content, its top rung
    /// aiming at this VMAF (`vmaf=`, 95 by default).
    pub auto: Option<f32>,
    /// The frame rate given by the variants, which all rungs then share.
    pub fps: Option<f64>,
    pub span: Span,
    /// The `loudness` of every rung's audio.
    pub loudness: Option<crate::loudness::Target>,
    /// Drawn over every rung, sized for each.
    pub watermarks: Vec<crate::watermark::Watermark>,
    /// The job's subtitle track drawn into every rung.
    pub burn_in: Option<String>,
    /// The input's audio tracks carried, each an alternate rendition.
    pub audio_tracks: crate::audio_tracks::Tracks,
}

pub fn stream_output(parts: &Parts<'_>, params: &Json) -> Result<StreamOutput, Error> {
    let why = "httpstream takes its renditions from the 'variants' parameter.";
    parts.refuse(parts.video, "video", why)?;
    parts.refuse(parts.audio, "audio", why)?;
    let mut format_segment = None;
    let mut top_vmaf = None;
    for opt in grammar::options(parts.options, parts.format)? {
        let value = opt.value(parts.format)?;
        match opt.key {
            "segment_duration" => {
                format_segment = Some(
                    value.parse::<f64>().ok().filter(|s| segment_ok(*s)).ok_or_else(|| opt.bad(parts.format, "seconds from 1 to 30."))?,
                );
            }
            "vmaf" => {
                let (lo, hi) = AUTO_VMAF_RANGE;
                top_vmaf = Some(
                    value
                        .parse::<f32>()
                        .ok()
                        .filter(|v| (lo..=hi).contains(v))
                        .ok_or_else(|| opt.bad(parts.format, "a VMAF score from 50 to 99 for the top rung of an auto ladder."))?,
                );
            }
            _ => {
                return Err(Error::format(format!(
                    "Unknown option '{}' in format '{}'; httpstream takes only segment_duration and vmaf.",
                    opt.key, parts.format
                )));
            }
        }
    }

    let p = Params::new(params, PARAMS, "httpstream")?;
    let mut fmp4 = p.bool("hlsfmp4")?.unwrap_or(false);
    let mut package = |key: &str| -> Result<bool, Error> {
        let Some(value) = p.get(key) else { return Ok(false) };
        let block = Params::nested(value, &["path", "hlsfmp4"], key)?;
        block.string("path")?.ok_or_else(|| Error::param(format!("The parameter '{key}.path' is required.")))?;
        fmp4 |= block.bool("hlsfmp4")?.unwrap_or(false);
        Ok(true)
    };
    let (hls, dash) = (package("hls")?, package("dash")?);
    if !hls && !dash {
        return Err(Error::param("httpstream outputs need 'hls' or 'dash' (or both), each with a 'path'."));
    }
    let param_segment = p.number("segment_duration")?;
    if let Some(s) = param_segment.filter(|s| !segment_ok(*s)) {
        return Err(Error::param(format!("The parameter 'segment_duration' must be 1 to 30 seconds, not {s}.")));
    }
    if format_segment.is_some() && param_segment.is_some() {
        return Err(Error::param("The parameter 'segment_duration' repeats the format's segment_duration option; give one."));
    }
    let auto = p.get("variants").and_then(Json::as_str) == Some("auto");
    let variants = if auto { None } else { p.get("variants").map(variants).transpose()? };
    if top_vmaf.is_some() && !auto {
        return Err(Error::format(format!(
            "The option 'vmaf' in format '{}' aims the top rung of a ladder planned from the content; it needs \"variants\": \"auto\".",
            parts.format
        )));
    }
    let fps = match &variants {
        Some(rungs) => shared_fps(rungs)?,
        None => None,
    };
    Ok(StreamOutput {
        hls: hls.then_some(fmp4),
        dash,
        segment_duration: format_segment.or(param_segment).unwrap_or(DEFAULT_SEGMENT),
        variants,
        auto: auto.then(|| top_vmaf.unwrap_or(AUTO_TOP_VMAF)),
        fps,
        span: p.span()?,
        loudness: crate::loudness::parse(&p)?,
        watermarks: crate::watermark::parse(&p)?,
        burn_in: crate::video::burn_in(&p)?,
        audio_tracks: crate::audio_tracks::parse(&p)?,
    })
}

fn segment_ok(seconds: f64) -> bool {
    (SEGMENT_RANGE.0..=SEGMENT_RANGE.1).contains(&seconds)
}

fn variants(value: &Json) -> Result<Vec<Rung>, Error> {
    let list = value
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            Error::param(format!("The parameter 'variants' must be \"auto\" or a non-empty list of format strings, not {value}."))
        })?;
    if list.len() > MAX_VARIANTS {
        return Err(Error::param(format!("The parameter 'variants' lists {} renditions; at most {MAX_VARIANTS}.", list.len())));
    }
    list.iter()
        .map(|v| {
            let format = v.as_str().ok_or_else(|| Error::param(format!("The parameter 'variants' must hold format strings, not {v}.")))?;
            variant(format).map_err(|e| Error::param(format!("The variant '{format}' is not valid: {}", e.message)))
        })
        .collect()
}

/// Option keys of a rung: the ladder owns the keyframes.
fn rung_keys() -> Vec<&'static str> {
    KEYS.iter().copied().filter(|k| !matches!(*k, "gop" | "keyint" | "keyframe_interval")).collect()
}

/// One variant: an mp4 or mpegts video (h264 or hevc, aac or no audio), or `aac:...`.
fn variant(format: &str) -> Result<Rung, Error> {
    let parts = grammar::split(format)?;
    let kinds = "a variant is an mp4 or mpegts video format (h264 or hevc, with aac) such as mp4:720p, or aac audio such as aac:64k.";
    match lookup(parts.container) {
        Some(Kind::Video(c)) if matches!(c.muxer, "mp4" | "mpegts") => {
            let mut spec = video::parse(&parts, c, &rung_keys(), "ladder rungs (segment_duration sets the keyframes)")?;
            // Segments may be fMP4, which should not carry x264's CBR filler data.
            spec.encoding.options.retain(|(key, _)| key != "nal-hrd");
            let codec = spec.encoding.codec;
            if !matches!(codec, VideoCodec::H264 | VideoCodec::Hevc) {
                return Err(Error::format(format!("{} cannot be streamed here; {kinds}", codec.name())));
            }
            if spec.audio_spec().is_some_and(|a| a.codec != AudioCodec::Aac) {
                return Err(Error::format(format!("only aac audio can be streamed; {kinds}")));
            }
            Ok(Rung::Video(Box::new(spec)))
        }
        Some(Kind::Audio(c)) if c.name() == "aac" => {
            parts.refuse(parts.options, "options", "audio variants take no options.")?;
            match audio::parse(items(parts.video).chain(items(parts.audio)), c, false, format)? {
                Audio::Keep(spec) => Ok(Rung::Audio(spec)),
                Audio::Drop => Ok(Rung::Audio(AudioSpec::default_for(c))),
            }
        }
        _ => Err(Error::format(format!("'{}' is not a streamable container; {kinds}", parts.container))),
    }
}

/// The frame rate the variants ask for; rungs asking for different ones cannot switch
/// cleanly, so that is an error.
fn shared_fps(rungs: &[Rung]) -> Result<Option<f64>, Error> {
    let mut shared: Option<f64> = None;
    for rung in rungs {
        if let Rung::Video(spec) = rung
            && let Some(fps) = spec.fps
        {
            match shared {
                Some(s) if s != fps => {
                    return Err(Error::param(format!("The variants ask for different frame rates ({s} and {fps}); a ladder needs one.")));
                }
                _ => shared = Some(fps),
            }
        }
    }
    Ok(shared)
}

/// Force a keyframe about every 2 seconds, at an interval that divides the segment
/// exactly so that every segment starts with one.
pub fn keyframe_interval(segment: f64) -> f64 {
    segment / (segment / 2.0).ceil()
}

/// The default ladder's rung for one short side: h264 high at crf 23, capped.
pub(crate) fn default_rung(short: u32, maxrate: u32, landscape: bool) -> VideoSpec {
    let option = |k: &str, v: &str| (k.to_string(), v.to_string());
    VideoSpec {
        container: crate::containers::MP4,
        size: if landscape { Size::Height(short) } else { Size::Width(short) },
        fps: None,
        audio: Audio::Keep(AudioSpec { codec: AudioCodec::Aac, bitrate_kbps: None, sample_rate: None, channels: None }),
        encoding: Encoding {
            codec: VideoCodec::H264,
            pix_fmt: "yuv420p",
            rate: Rate::Crf(DEFAULT_CRF),
            maxrate: Some(maxrate),
            bufsize: Some(maxrate * 2),
            options: vec![option("preset", "medium"), option("profile", "high")],
            gop: None,
            keyframe_interval: None,
        },
        rotate: 0,
        fit: None,
        scaler: DEFAULT_SCALER,
        // The ladder is 8-bit h264 for every player: an HDR input must be mapped down.
        force_sdr: true,
        vmaf: None,
    }
}

/// The default ladder for an input: each standard rung up to the input's short side
/// (never upscaled), or the input's own size when it is below the smallest.
pub(crate) fn default_ladder(input: &MediaInfo) -> Vec<Rung> {
    let (w, h) = upright(input, 0);
    let short = w.min(h);
    let landscape = w >= h;
    let mut rungs: Vec<Rung> = LADDER
        .iter()
        .filter(|(side, _)| f64::from(*side) <= short)
        .map(|&(side, max)| Rung::Video(Box::new(default_rung(side, max, landscape))))
        .collect();
    if rungs.is_empty() {
        let mut own = default_rung(even(short), SMALL_MAXRATE, landscape);
        own.size = Size::Input;
        rungs.push(Rung::Video(Box::new(own)));
    }
    rungs
}

impl StreamOutput {
    pub fn plan(&self, input: &MediaInfo) -> Result<OutputPlan, Error> {
        let rungs = match &self.variants {
            Some(rungs) => rungs.clone(),
            None if input.has_video => default_ladder(input),
            None if input.has_audio => {
                vec![Rung::Audio(AudioSpec { codec: AudioCodec::Aac, bitrate_kbps: None, sample_rate: None, channels: None })]
            }
            None => return Err(Error::format("The input has neither video nor audio to stream.")),
        };
        let fps = self.fps.or((input.fps > 0.0).then(|| input.fps.min(MAX_LADDER_FPS)));
        let interval = keyframe_interval(self.segment_duration);
        let mut variants: Vec<VariantPlan> = Vec::new();
        for rung in &rungs {
            let (name, video, audio) = match rung {
                Rung::Video(spec) => {
                    if !input.has_video {
                        return Err(Error::format("The input has no video for the ladder's video variants."));
                    }
                    let video = VideoPlan { fps, keyframe_interval: Some(interval), gop: None, ..spec.video_plan(input) };
                    let audio = spec.audio_spec().filter(|_| input.has_audio).map(|a| a.plan(input, Some(LADDER_SAMPLE_RATE)));
                    (format!("{}p", video.width.min(video.height)), Some(video), audio)
                }
                Rung::Audio(spec) => {
                    if !input.has_audio {
                        return Err(Error::format("The input has no audio for the ladder's audio variant."));
                    }
                    ("audio".to_string(), None, Some(spec.plan(input, Some(LADDER_SAMPLE_RATE))))
                }
            };
            let name = unique(&variants, name);
            let audio = audio.map(|a| AudioPlan { loudness: self.loudness.map(|l| l.plan()), ..a });
            let video = video.map(|v| VideoPlan { burn_in: self.burn_in.clone(), ..crate::video::with_watermarks(v, &self.watermarks) });
            variants.push(VariantPlan { name, video, audio });
        }
        let (extension, mime_type) =
            if self.hls.is_some() { ("m3u8", "application/vnd.apple.mpegurl") } else { ("mpd", "application/dash+xml") };
        Ok(OutputPlan {
            output_type: OutputType::Httpstream,
            container: STREAM.into(),
            extension: extension.into(),
            mime_type: mime_type.into(),
            video: None,
            audio: None,
            range: self.span.range(input.duration)?,
            image: None,
            packaging: Some(StreamPlan {
                variants,
                segment_duration: self.segment_duration,
                hls: self.hls.map(|fmp4| HlsPlan { fmp4 }),
                dash: self.dash,
            }),
            // A ladder planned from the content (these rungs are its candidates), or rungs
            // with their own `vmaf=` (the highest is the package's).
            target_vmaf: if input.has_video { self.auto.filter(|_| self.variants.is_none()).or(self.rung_targets()) } else { None },
            audio_tracks: self.audio_tracks.plan(),
        })
    }
}

impl StreamOutput {
    /// The highest `vmaf=` of the rungs that have one.
    fn rung_targets(&self) -> Option<f32> {
        self.variants.iter().flatten().filter_map(|r| if let Rung::Video(spec) = r { spec.vmaf } else { None }).reduce(f32::max)
    }
}

/// `720p`, then `720p-2` for a second rung of the same size.
fn unique(variants: &[VariantPlan], name: String) -> String {
    let taken = |n: &str| variants.iter().any(|v| v.name == n);
    if !taken(&name) {
        return name;
    }
    (2..).map(|i| format!("{name}-{i}")).find(|n| !taken(n)).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check, input, plan_with};
    use serde_json::json;

    fn stream(params: Json, i: &MediaInfo) -> Result<StreamPlan, Error> {
        plan_with("httpstream", params, i).map(|p| p.packaging.unwrap())
    }

    fn hls() -> Json {
        json!({"hls": {"path": "/hls"}})
    }

    fn rungs(s: &StreamPlan) -> Vec<(String, u32, u32)> {
        s.variants.iter().map(|v| v.video.as_ref().map_or((v.name.clone(), 0, 0), |x| (v.name.clone(), x.width, x.height))).collect()
    }

    fn maxrate(v: &VideoPlan) -> Option<&str> {
        v.encoder_options.iter().find(|(k, _)| k == "maxrate").map(|(_, x)| x.as_str())
    }

    fn r(name: &str, w: u32, h: u32) -> (String, u32, u32) {
        (name.to_string(), w, h)
    }

    #[test]
    fn plan_shape() {
        assert!(matches!(check("httpstream", &hls()), Ok(OutputType::Httpstream)));
        let p = plan_with("httpstream", hls(), &input(1920, 1080, 0)).unwrap();
        assert!(matches!(p.output_type, OutputType::Httpstream));
        assert_eq!(
            (p.container.as_str(), p.extension.as_str(), p.mime_type.as_str()),
            ("httpstream", "m3u8", "application/vnd.apple.mpegurl")
        );
        assert!(p.video.is_none() && p.audio.is_none() && p.image.is_none() && p.range.is_none());
        let s = p.packaging.unwrap();
        assert_eq!(s.segment_duration, 6.0);
        assert!(!s.hls.unwrap().fmp4 && !s.dash);
        let p = plan_with("httpstream", json!({"dash": {"path": "/dash"}}), &input(1920, 1080, 0)).unwrap();
        assert_eq!((p.extension.as_str(), p.mime_type.as_str()), ("mpd", "application/dash+xml"));
        let s = p.packaging.unwrap();
        assert!(s.hls.is_none() && s.dash);
        let both = json!({"hls": {"path": "/hls"}, "dash": {"path": "/dash"}, "hlsfmp4": true});
        let s = stream(both, &input(1920, 1080, 0)).unwrap();
        assert!(s.hls.unwrap().fmp4 && s.dash);
        let s = stream(json!({"hls": {"path": "/hls", "hlsfmp4": true}}), &input(1920, 1080, 0)).unwrap();
        assert!(s.hls.unwrap().fmp4);
        let s = stream(json!({"hls": {"path": "/hls"}, "dash": {"path": "/d", "hlsfmp4": true}}), &input(1920, 1080, 0)).unwrap();
        assert!(s.hls.unwrap().fmp4, "hlsfmp4 anywhere");
    }

    #[test]
    fn default_ladders() {
        let s = stream(hls(), &input(1920, 1080, 0)).unwrap();
        assert_eq!(rungs(&s), [r("1080p", 1920, 1080), r("720p", 1280, 720), r("480p", 854, 480), r("360p", 640, 360)]);
        let s = stream(hls(), &input(1280, 720, 0)).unwrap();
        assert_eq!(rungs(&s), [r("720p", 1280, 720), r("480p", 854, 480), r("360p", 640, 360)], "no 1080p from 720p");
        let s = stream(hls(), &input(854, 480, 0)).unwrap();
        assert_eq!(rungs(&s), [r("480p", 854, 480), r("360p", 640, 360)]);
        let s = stream(hls(), &input(426, 240, 0)).unwrap();
        assert_eq!(rungs(&s), [r("240p", 426, 240)], "the input's own size below 360p");
        let s = stream(hls(), &input(3840, 2160, 0)).unwrap();
        assert_eq!(s.variants[0].name, "1080p");
        let s = stream(hls(), &input(1920, 1080, 90)).unwrap();
        assert_eq!(rungs(&s)[..2], [r("1080p", 1080, 1920), r("720p", 720, 1280)], "portrait rungs by the short side");
        let s = stream(hls(), &input(1920, 1080, 0)).unwrap();
        for (v, max) in s.variants.iter().zip(["6000k", "3500k", "1500k", "800k"]) {
            let video = v.video.as_ref().unwrap();
            assert_eq!(
                (video.codec.as_str(), video.crf, video.bitrate_kbps, video.pix_fmt.as_str()),
                ("h264", Some(23.0), None, "yuv420p")
            );
            assert_eq!(maxrate(video), Some(max));
            let bufsize = video.encoder_options.iter().find(|(k, _)| k == "bufsize").map(|(_, x)| x.clone()).unwrap();
            assert_eq!(bufsize, format!("{}k", max.trim_end_matches('k').parse::<u32>().unwrap() * 2));
            assert!(video.encoder_options.iter().any(|(k, x)| k == "profile" && x == "high"));
            assert_eq!((video.fps, video.keyframe_interval, video.gop), (Some(25.0), Some(2.0), None));
            let a = v.audio.as_ref().unwrap();
            assert_eq!((a.codec.as_str(), a.bitrate_kbps, a.sample_rate, a.channels), ("aac", 128, 48000, 2));
        }
        let s = stream(hls(), &input(426, 240, 0)).unwrap();
        assert_eq!(maxrate(s.variants[0].video.as_ref().unwrap()), Some("400k"));
    }

    #[test]
    fn ladder_timing() {
        assert_eq!(keyframe_interval(6.0), 2.0);
        assert_eq!(keyframe_interval(4.0), 2.0);
        assert_eq!(keyframe_interval(1.0), 1.0);
        assert_eq!(keyframe_interval(3.0), 1.5);
        assert!((keyframe_interval(5.0) - 5.0 / 3.0).abs() < 1e-12);
        assert_eq!(keyframe_interval(30.0), 2.0);
        let mut fast = input(1920, 1080, 0);
        fast.fps = 120.0;
        let s = stream(json!({"hls": {"path": "/h"}, "segment_duration": 4}), &fast).unwrap();
        assert_eq!(s.segment_duration, 4.0);
        assert!(s.variants.iter().all(|v| v.video.as_ref().unwrap().fps == Some(60.0)), "capped at 60");
        let s = plan_with("httpstream:::segment_duration=3", hls(), &fast).unwrap().packaging.unwrap();
        assert_eq!((s.segment_duration, s.variants[0].video.as_ref().unwrap().keyframe_interval), (3.0, Some(1.5)));
        let mut hdr = input(1920, 1080, 0);
        hdr.color_transfer = "smpte2084".into();
        assert!(stream(hls(), &hdr).unwrap().variants.iter().all(|v| v.video.as_ref().unwrap().tone_map));
        assert!(!stream(hls(), &input(1920, 1080, 0)).unwrap().variants[0].video.as_ref().unwrap().tone_map);
    }

    #[test]
    fn explicit_variants() {
        let params =
            json!({"hls": {"path": "/h"}, "variants": ["mp4:1080p", "mp4:720p_2500k:aac_96k", "mpegts:hevc_480p::quality=4", "aac:64k"]});
        assert!(matches!(check("httpstream", &params), Ok(OutputType::Httpstream)));
        let s = stream(params, &input(1920, 1080, 0)).unwrap();
        assert_eq!(rungs(&s), [r("1080p", 1920, 1080), r("720p", 1280, 720), r("480p", 854, 480), r("audio", 0, 0)]);
        let v = s.variants[1].video.as_ref().unwrap();
        assert_eq!((v.bitrate_kbps, v.keyframe_interval, v.fps), (Some(2500), Some(2.0), Some(25.0)));
        assert_eq!(s.variants[1].audio.as_ref().unwrap().bitrate_kbps, 96);
        assert_eq!(s.variants[1].audio.as_ref().unwrap().sample_rate, 48000);
        let v = s.variants[2].video.as_ref().unwrap();
        assert_eq!((v.codec.as_str(), v.crf), ("hevc", Some(26.0)));
        let a = s.variants[3].audio.as_ref().unwrap();
        assert!(s.variants[3].video.is_none());
        assert_eq!((a.codec.as_str(), a.bitrate_kbps, a.sample_rate), ("aac", 64, 48000));
        let s = stream(json!({"hls": {"path": "/h"}, "variants": ["mp4:720p_24fps", "mp4:480p"]}), &input(1920, 1080, 0)).unwrap();
        assert!(s.variants.iter().all(|v| v.video.as_ref().unwrap().fps == Some(24.0)), "one frame rate for all");
        let s = stream(
            json!({"hls": {"path": "/h"}, "variants": ["mp4:720p_2000k", "mp4:720p_1000k", "mp4:720p:none"]}),
            &input(1920, 1080, 0),
        )
        .unwrap();
        let names: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["720p", "720p-2", "720p-3"]);
        assert!(s.variants[2].audio.is_none());
        let s = stream(json!({"hls": {"path": "/h"}, "variants": ["ts:720p_2000k::rc=cbr"]}), &input(1920, 1080, 0)).unwrap();
        let v = s.variants[0].video.as_ref().unwrap();
        assert!(v.encoder_options.iter().all(|(k, _)| k != "nal-hrd") && v.bitrate_kbps == Some(2000));
        let s = stream(json!({"hls": {"path": "/h"}, "variants": ["mp4:1080p"]}), &input(1280, 720, 0)).unwrap();
        assert_eq!(rungs(&s), [r("720p", 1280, 720)], "never upscaled");
    }

    #[test]
    fn audio_only_inputs() {
        let mut radio = input(0, 0, 0);
        radio.has_video = false;
        let s = stream(hls(), &radio).unwrap();
        assert_eq!(s.variants.len(), 1);
        assert_eq!(s.variants[0].name, "audio");
        assert!(stream(json!({"hls": {"path": "/h"}, "variants": ["mp4:720p"]}), &radio).is_err());
        let mut silent = input(1280, 720, 0);
        silent.has_audio = false;
        assert!(stream(hls(), &silent).unwrap().variants.iter().all(|v| v.audio.is_none()));
        assert!(stream(json!({"hls": {"path": "/h"}, "variants": ["aac:64k"]}), &silent).is_err());
    }

    #[test]
    fn refusals_name_the_culprit() {
        for (format, params, code, needle) in [
            ("httpstream", json!({}), "output_param_not_valid", "'hls' or 'dash'"),
            ("httpstream", json!({"hls": {}}), "output_param_not_valid", "'hls.path'"),
            ("httpstream", json!({"hls": {"path": ""}}), "output_param_not_valid", "'hls.path'"),
            ("httpstream", json!({"hls": "/hls"}), "output_param_not_valid", "'hls'"),
            ("httpstream", json!({"hls": {"path": "/h", "seg": 1}}), "output_param_not_valid", "'hls.seg'"),
            ("httpstream", json!({"dash": {"path": 3}}), "output_param_not_valid", "'dash.path'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "hlsfmp4": "yes"}), "output_param_not_valid", "'hlsfmp4'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "segment_duration": 0.5}), "output_param_not_valid", "'segment_duration'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "segment_duration": 31}), "output_param_not_valid", "'segment_duration'"),
            (
                "httpstream:::segment_duration=4",
                json!({"hls": {"path": "/h"}, "segment_duration": 4}),
                "output_param_not_valid",
                "'segment_duration'",
            ),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": []}), "output_param_not_valid", "'variants'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": "mp4:720p"}), "output_param_not_valid", "'variants'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": [720]}), "output_param_not_valid", "'variants'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": ["webm:720p"]}), "output_param_not_valid", "'webm:720p'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": ["mp4:vp9_720p"]}), "output_param_not_valid", "vp9"),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": ["mp4::opus"]}), "output_param_not_valid", "aac"),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": ["mp4:720p_sparkly"]}), "output_param_not_valid", "'sparkly'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": ["mp4:720p::gop=48"]}), "output_param_not_valid", "'gop'"),
            (
                "httpstream",
                json!({"hls": {"path": "/h"}, "variants": ["mp4:720p::keyframe_interval=2"]}),
                "output_param_not_valid",
                "keyframe_interval",
            ),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": ["mp3:128k"]}), "output_param_not_valid", "'mp3'"),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": ["aac:64k:::x"]}), "output_param_not_valid", "'x'"),
            (
                "httpstream",
                json!({"hls": {"path": "/h"}, "variants": ["mp4:720p_30fps", "mp4:480p_25fps"]}),
                "output_param_not_valid",
                "frame rates",
            ),
            ("httpstream", json!({"hls": {"path": "/h"}, "variants": vec!["mp4"; 13]}), "output_param_not_valid", "at most"),
            ("httpstream", json!({"hls": {"path": "/h"}, "number": 3}), "output_param_not_valid", "'number'"),
            ("httpstream:720p", hls(), "format_not_valid", "'720p'"),
            ("httpstream::aac", hls(), "format_not_valid", "'aac'"),
            ("httpstream:::quality=4", hls(), "format_not_valid", "'quality'"),
            ("httpstream:::segment_duration=40", hls(), "format_not_valid", "segment_duration"),
        ] {
            let err = check(format, &params).unwrap_err();
            assert_eq!(err.code, code, "{format} {params}");
            assert!(err.message.contains(needle), "{format} {params}: {}", err.message);
        }
    }
}
