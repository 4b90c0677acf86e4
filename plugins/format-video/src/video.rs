//! Video and audio files: `mp4:720p_30fps:aac_96k:quality=4`, `mp3:128k`. The format
//! string and params are parsed into a spec before the input is known (so `check`
//! refuses what would fail); planning then only applies the spec to the input.

use copra_sdk::format::{AudioPlan, AudioSelection, Fit, MediaInfo, OutputPlan, OutputType, VideoPlan};
use copra_sdk::{Error, Json};

use crate::audio::{self, Audio, AudioSpec};
use crate::codecs::VideoCodec;
use crate::containers::{Container, list};
use crate::encode::{Encoding, encoding};
use crate::loudness;
use crate::watermark::{self, Watermark};
use crate::geometry::{DEFAULT_SCALER, Size, default_fit, output_size, upright};
use crate::grammar::{self, Parts, items, kbps};
use crate::options::{self, KEYS};
use crate::params::{Params, Span};

/// Params of video and audio outputs.
pub const PARAMS: &[&str] = &["offset", "duration", loudness::KEY, watermark::KEY, BURN_IN, crate::audio_tracks::KEY];

/// The muxers that hold several audio streams, for `"audio"` on a video output.
const MULTI_AUDIO: &[&str] = &["mp4", "mov", "matroska", "webm", "mpegts"];

/// The most a `3000k` video bitrate may ask for.
const MAX_VIDEO_KBPS: u32 = 200_000;

/// HDR inputs are PQ (`smpte2084`) or HLG (`arib-std-b67`).
pub fn is_hdr(input: &MediaInfo) -> bool {
    matches!(input.color_transfer.as_str(), "smpte2084" | "arib-std-b67")
}

/// A video format string, parsed and checked against the container and codec.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSpec {
    pub container: &'static Container,
    pub size: Size,
    pub fps: Option<f64>,
    pub audio: Audio,
    pub encoding: Encoding,
    pub rotate: i32,
    pub fit: Option<Fit>,
    pub scaler: &'static str,
    pub force_sdr: bool,
    /// The target mean VMAF (`vmaf=`), whose setting the host searches with
    /// [`crate::search`].
    pub vmaf: Option<f32>,
}

/// A target quality searches a constant-quality setting: the encoding must be plain
/// constant quality (no bitrate, `cq`, `qp` or ceiling to fight it).
fn check_target(vmaf: f32, encoding: &Encoding, format: &str) -> Result<(), Error> {
    if matches!(encoding.rate, crate::encode::Rate::Crf(_)) && encoding.maxrate.is_none() {
        return Ok(());
    }
    Err(Error::format(format!(
        "vmaf={vmaf} in format '{format}' searches {}'s constant-quality setting: it takes no video bitrate, cq, qp, maxrate \
         or rc other than crf, and needs a codec with a crf (h264, hevc, vp9, av1).",
        encoding.codec.name()
    )))
}

/// Parse a video container's format string; `option_keys` are the options this kind of
/// output takes (ladders own the keyframes, for instance).
pub fn parse(parts: &Parts<'_>, container: &'static Container, option_keys: &[&str], what: &str) -> Result<VideoSpec, Error> {
    let format = parts.format;
    let mut codec = None;
    let mut size = None;
    let mut fps = None;
    let mut bitrate = None;
    for item in items(parts.video) {
        let twice = |what: &str| Error::format(format!("The video {what} is given twice ('{item}') in format '{format}'."));
        if let Some(c) = VideoCodec::from_item(item) {
            if codec.replace(c).is_some() {
                return Err(twice("codec"));
            }
        } else if let Some(rate) = grammar::fps(item, 240.0, format) {
            if fps.replace(rate?).is_some() {
                return Err(twice("frame rate"));
            }
        } else if let Some(k) = kbps(item) {
            if k > MAX_VIDEO_KBPS {
                return Err(Error::format(format!("The video bitrate '{item}' in format '{format}' is above {MAX_VIDEO_KBPS}k.")));
            }
            if bitrate.replace(k).is_some() {
                return Err(twice("bitrate"));
            }
        } else if let Some(s) = grammar::size(item) {
            if size.replace(s).is_some() {
                return Err(twice("size"));
            }
        } else {
            return Err(Error::format(format!("Unknown video parameter '{item}' in format '{format}'.")));
        }
    }
    let Some(codec) = codec.or(container.video_codecs.first().copied()) else {
        return Err(Error::format(format!("The container '{}' holds no video.", container.name())));
    };
    if !container.video_codecs.contains(&codec) {
        return Err(Error::format(format!(
            "The container '{}' cannot hold {}; it takes {}.",
            container.name(),
            codec.name(),
            list(container.video_codecs, VideoCodec::name)
        )));
    }
    let audio = audio::parse(items(parts.audio), container, true, format)?;
    let o = options::parse(parts.options, option_keys, what, format)?;
    let encoding = encoding(codec, bitrate, &o, container.muxer == "mpegts")?;
    if let Some(vmaf) = o.vmaf {
        check_target(vmaf, &encoding, format)?;
    }
    Ok(VideoSpec {
        container,
        size: size.unwrap_or(Size::Input),
        fps,
        audio,
        encoding,
        rotate: o.rotate,
        fit: o.fit,
        scaler: o.scaler.unwrap_or(DEFAULT_SCALER),
        force_sdr: o.force_sdr,
        vmaf: o.vmaf,
    })
}

impl VideoSpec {
    /// The video stream for an input that has one.
    pub fn video_plan(&self, input: &MediaInfo) -> VideoPlan {
        let (width, height) = output_size(self.size, upright(input, self.rotate));
        let fps = self.fps.unwrap_or(input.fps);
        let r = self.encoding.resolve(width, height, fps);
        VideoPlan {
            codec: self.encoding.codec.name().into(),
            width,
            height,
            fps: self.fps,
            bitrate_kbps: r.bitrate_kbps,
            crf: r.crf,
            pix_fmt: self.encoding.pix_fmt.into(),
            gop: self.encoding.gop,
            keyframe_interval: self.encoding.keyframe_interval,
            encoder_options: r.encoder_options,
            scaler: self.scaler.into(),
            fit: self.fit.unwrap_or(default_fit(self.size)),
            rotate: self.rotate,
            // Only on request: tone-mapping changes the look, and 10-bit outputs may
            // want the HDR kept.
            tone_map: self.force_sdr && is_hdr(input),
            overlays: Vec::new(),
            burn_in: None,
        }
    }

    pub fn audio_spec(&self) -> Option<&AudioSpec> {
        match &self.audio {
            Audio::Keep(spec) => Some(spec),
            Audio::Drop => None,
        }
    }
}

/// A video output, checked.
pub struct VideoOutput {
    pub spec: VideoSpec,
    pub span: Span,
    pub loudness: Option<loudness::Target>,
    pub watermarks: Vec<Watermark>,
    /// The job's subtitle track drawn into the picture (`burn_in`).
    pub burn_in: Option<String>,
    /// The input's audio tracks kept, each a stream of its own (`"audio"`).
    pub audio_tracks: crate::audio_tracks::Tracks,
}

/// The parameter naming the subtitle language drawn into the picture.
pub const BURN_IN: &str = "burn_in";

/// `burn_in`: a language tag (which the host then finds among the job's subtitles).
pub fn burn_in(params: &Params<'_>) -> Result<Option<String>, Error> {
    let Some(language) = params.string(BURN_IN)? else { return Ok(None) };
    let language = language.trim();
    let ok = (2..=35).contains(&language.len()) && language.split('-').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !ok {
        return Err(Error::param(format!("The parameter 'burn_in' must be the language tag of one of the job's subtitles, such as \"en\", not {language:?}.")));
    }
    Ok(Some(language.to_string()))
}

pub fn video_output(parts: &Parts<'_>, container: &'static Container, params: &Json) -> Result<VideoOutput, Error> {
    let spec = parse(parts, container, KEYS, "video outputs")?;
    let params = Params::new(params, PARAMS, "video")?;
    let loudness = loudness::parse(&params)?;
    if loudness.is_some() && spec.audio_spec().is_none() {
        return Err(Error::param(format!("The parameter 'loudness' is for audio, which the format '{}' drops.", parts.format)));
    }
    let watermarks = watermark::parse(&params)?;
    let audio_tracks = crate::audio_tracks::parse(&params)?;
    if audio_tracks != crate::audio_tracks::Tracks::Main {
        if spec.audio_spec().is_none() {
            return Err(Error::param(format!("The parameter 'audio' chooses audio tracks, which the format '{}' drops.", parts.format)));
        }
        if !MULTI_AUDIO.contains(&container.muxer) {
            return Err(Error::param(format!(
                "The parameter 'audio' keeps several audio tracks, which {} cannot hold (mp4, mov, mkv, webm and ts can).",
                container.name()
            )));
        }
    }
    Ok(VideoOutput { spec, span: params.span()?, loudness, watermarks, burn_in: burn_in(&params)?, audio_tracks })
}

impl VideoOutput {
    pub fn plan(&self, input: &MediaInfo) -> Result<OutputPlan, Error> {
        let c = self.spec.container;
        let video = input.has_video.then(|| self.spec.video_plan(input)).map(|v| VideoPlan { burn_in: self.burn_in.clone(), ..with_watermarks(v, &self.watermarks) });
        let audio = self.spec.audio_spec().filter(|_| input.has_audio).map(|a| AudioPlan { loudness: self.loudness.map(|l| l.plan()), ..a.plan(input, None) });
        if video.is_none() && audio.is_none() {
            let why = if input.has_audio { "has no video and the format drops the audio" } else { "has neither video nor audio" };
            return Err(Error::format(format!("The input {why}: nothing to write as {}.", c.name())));
        }
        Ok(OutputPlan {
            output_type: OutputType::Video,
            container: c.muxer.into(),
            extension: c.extension.into(),
            mime_type: c.mime_type.into(),
            video,
            audio,
            range: self.span.range(input.duration)?,
            image: None,
            packaging: None,
            target_vmaf: self.spec.vmaf.filter(|_| input.has_video),
            audio_tracks: self.audio_tracks.plan(),
        })
    }
}

/// `video` with the watermarks drawn over it, sized for its picture.
pub fn with_watermarks(video: VideoPlan, watermarks: &[Watermark]) -> VideoPlan {
    let overlays = watermarks.iter().map(|w| w.plan(video.width, video.height)).collect();
    VideoPlan { overlays, ..video }
}

/// An audio-only output (`mp3:128k`, `ogg::opus_96k`), checked.
pub struct AudioOutput {
    pub container: &'static Container,
    pub spec: AudioSpec,
    pub span: Span,
    pub loudness: Option<loudness::Target>,
}

pub fn audio_output(parts: &Parts<'_>, container: &'static Container, params: &Json) -> Result<AudioOutput, Error> {
    parts.refuse(parts.options, "options", "audio formats take no options.")?;
    // Audio items may sit in the video position too: `mp3:128k` is `mp3::128k`.
    let spec = match audio::parse(items(parts.video).chain(items(parts.audio)), container, false, parts.format)? {
        Audio::Keep(spec) => spec,
        Audio::Drop => AudioSpec::default_for(container),
    };
    let params = Params::new(params, PARAMS, "audio")?;
    if crate::audio_tracks::parse(&params)? != crate::audio_tracks::Tracks::Main {
        return Err(Error::param(format!("The parameter 'audio' keeps several audio tracks; {} holds one.", container.name())));
    }
    Ok(AudioOutput { container, spec, span: params.span()?, loudness: loudness::parse(&params)? })
}

impl AudioOutput {
    pub fn plan(&self, input: &MediaInfo) -> Result<OutputPlan, Error> {
        let c = self.container;
        if !input.has_audio {
            return Err(Error::format(format!("The input has no audio to write as {}.", c.name())));
        }
        Ok(OutputPlan {
            output_type: OutputType::Audio,
            container: c.muxer.into(),
            extension: c.extension.into(),
            mime_type: c.mime_type.into(),
            video: None,
            audio: Some(AudioPlan { loudness: self.loudness.map(|l| l.plan()), ..self.spec.plan(input, None) }),
            range: self.span.range(input.duration)?,
            image: None,
            packaging: None,
            target_vmaf: None,
            audio_tracks: AudioSelection::Main,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::{AUDIO, VIDEO};
    use crate::tests::{check, input, plan, plan_with};
    use copra_sdk::format::AudioPlan;
    use serde_json::json;

    fn size(format: &str, i: &MediaInfo) -> (u32, u32) {
        let v = plan(format, i).unwrap().video.unwrap();
        (v.width, v.height)
    }

    fn video(format: &str) -> VideoPlan {
        plan(format, &input(1920, 1080, 0)).unwrap().video.unwrap()
    }

    fn audio_of(format: &str) -> AudioPlan {
        plan(format, &input(1920, 1080, 0)).unwrap().audio.unwrap()
    }

    fn has(v: &VideoPlan, key: &str, value: &str) -> bool {
        v.encoder_options.iter().any(|(k, x)| k == key && x == value)
    }

    #[test]
    fn every_container_and_codec_pair() {
        let hd = input(1920, 1080, 0);
        for c in VIDEO {
            for name in c.names {
                let p = plan(name, &hd).unwrap();
                assert_eq!((p.container.as_str(), p.extension.as_str(), p.mime_type.as_str()), (c.muxer, c.extension, c.mime_type));
                assert!(matches!(p.output_type, OutputType::Video));
                assert_eq!(p.video.unwrap().codec, c.video_codecs[0].name(), "{name}");
                assert_eq!(p.audio.unwrap().codec, c.audio_codecs[0].name(), "{name}");
            }
            for codec in VideoCodec::ALL {
                let format = format!("{}:{}", c.name(), codec.name());
                let result = check(&format, &json!({}));
                if c.video_codecs.contains(codec) {
                    assert!(matches!(result, Ok(OutputType::Video)), "{format}");
                    assert_eq!(plan(&format, &hd).unwrap().video.unwrap().codec, codec.name());
                } else {
                    let err = result.unwrap_err();
                    assert_eq!(err.code, copra_sdk::codes::FORMAT_NOT_VALID);
                    assert!(err.message.contains(&format!("'{}' cannot hold {}", c.name(), codec.name())), "{}", err.message);
                }
            }
            for codec in ["aac", "opus", "vorbis", "mp3", "flac"] {
                let format = format!("{}::{codec}", c.name());
                let allowed = c.audio_codecs.iter().any(|a| a.name() == codec);
                assert_eq!(check(&format, &json!({})).is_ok(), allowed, "{format}");
                if allowed {
                    assert_eq!(plan(&format, &hd).unwrap().audio.unwrap().codec, codec);
                }
            }
        }
        let err = check("webm:h264", &json!({})).unwrap_err();
        assert_eq!(err.message, "The container 'webm' cannot hold h264; it takes vp9, vp8, av1.");
    }

    #[test]
    fn audio_only_formats() {
        let hd = input(1920, 1080, 0);
        for c in AUDIO {
            let p = plan(c.name(), &hd).unwrap();
            assert!(matches!(p.output_type, OutputType::Audio));
            assert!(p.video.is_none());
            assert_eq!((p.container.as_str(), p.extension.as_str(), p.mime_type.as_str()), (c.muxer, c.extension, c.mime_type));
            assert_eq!(p.audio.unwrap().codec, c.audio_codecs[0].name());
            assert!(matches!(check(c.name(), &json!({})), Ok(OutputType::Audio)));
        }
        let a = audio_of("mp3:192k");
        assert_eq!((a.codec.as_str(), a.bitrate_kbps, a.sample_rate), ("mp3", 192, 44100));
        let b = audio_of("mp3::192k");
        assert_eq!((b.bitrate_kbps, b.sample_rate), (192, 44100));
        let a = audio_of("ogg:opus_64k_24000_mono");
        assert_eq!((a.codec.as_str(), a.bitrate_kbps, a.sample_rate, a.channels), ("opus", 64, 24000, 1));
        assert_eq!(audio_of("ogg").codec, "vorbis");
        assert_eq!(audio_of("ogg:flac").codec, "flac");
        assert_eq!(audio_of("m4a:96k").codec, "aac");
        assert_eq!(audio_of("wav").codec, "pcm_s16le");
        assert_eq!(audio_of("opus").sample_rate, 48000);
        for (format, needle) in [
            ("mp3:aac", "cannot hold aac"),
            ("mp3:none", "'none'"),
            ("mp3:h264", "'h264'"),
            ("mp3:720p", "'720p'"),
            ("opus:44100", "44100"),
            ("mp3:::quality=4", "no options"),
            ("flac:500k", "lossless"),
            ("mp3:128k:128k", "twice"),
        ] {
            let err = check(format, &json!({})).unwrap_err();
            assert!(err.message.contains(needle), "{format}: {}", err.message);
        }
        let mut silent = hd.clone();
        silent.has_audio = false;
        assert!(plan("mp3", &silent).unwrap_err().message.contains("no audio"));
    }

    #[test]
    fn named_sizes_keep_aspect_and_never_upscale() {
        let hd = input(1280, 720, 0);
        assert_eq!(size("mp4:720p", &hd), (1280, 720));
        assert_eq!(size("mp4:360p", &hd), (640, 360));
        assert_eq!(size("mp4:240p", &hd), (426, 240));
        assert_eq!(size("mp4:480p", &hd), (854, 480));
        assert_eq!(size("mp4:1080p", &hd), (1280, 720));
        assert_eq!(size("mp4:2160p", &hd), (1280, 720));
        assert_eq!(size("mp4:1920x", &hd), (1280, 720));
        let full = input(1920, 1080, 0);
        assert_eq!(size("mp4:1280x", &full), (1280, 720));
        assert_eq!(size("mp4:x540", &full), (960, 540));
        assert_eq!(size("mp4:300x300", &full), (300, 300));
        assert_eq!(size("mp4", &full), (1920, 1080));
        assert_eq!(size("mp4:3840x2160", &full), (3840, 2160), "both sides may upscale");
    }

    #[test]
    fn rotation_fit_and_scaler() {
        let portrait = input(1920, 1080, 90);
        assert_eq!(size("mp4:720p", &portrait), (406, 720));
        assert_eq!(size("mp4:1024x", &portrait), (1024, 1820));
        assert_eq!(size("mp4:720p", &input(1920, 1080, 270)), (406, 720));
        assert_eq!(size("mp4:720p", &input(1920, 1080, -90)), (406, 720));
        let v = plan("mp4:720p::rotate=90", &input(1920, 1080, 0)).unwrap().video.unwrap();
        assert_eq!((v.width, v.height, v.rotate), (406, 720, 90), "the size is the final upright one");
        let v = plan("mp4:::rotate=270", &portrait).unwrap().video.unwrap();
        assert_eq!((v.width, v.height, v.rotate), (1920, 1080, 270));
        let v = video("mp4:640x480");
        assert_eq!((v.width, v.height, v.fit), (640, 480, Fit::Pad), "exact sizes letterbox by default");
        assert_eq!(video("mp4:640x480::fit=crop").fit, Fit::Crop);
        assert_eq!(video("mp4:640x480::fit=stretch").fit, Fit::Stretch);
        assert_eq!(video("mp4:720p").fit, Fit::Stretch);
        assert_eq!(video("mp4").scaler, "bicubic");
        assert_eq!(video("mp4:::scale=nn").scaler, "neighbor");
        assert_eq!(video("mp4:::scale=lanczos").scaler, "lanczos");
        let (w, h) = size("mp4", &input(1279, 719, 0));
        assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h}");
        let (w, h) = size("mp4:x361", &input(1920, 1080, 0));
        assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h}");
    }

    #[test]
    fn quality_bitrate_codec_and_options() {
        let v = video("mp4:360p::quality=4");
        assert_eq!(v.crf, Some(21.0));
        let v = video("mp4:hevc_1080p");
        assert_eq!((v.codec.as_str(), v.crf), ("hevc", Some(28.0)));
        let p =
            plan("mp4:720p_3000k_30fps:aac_96k_48000_mono:preset=fast,maxrate=4000k,gop=60,profile=high", &input(1920, 1080, 0)).unwrap();
        let v = p.video.unwrap();
        assert_eq!((v.bitrate_kbps, v.crf, v.fps, v.gop), (Some(3000), None, Some(30.0), Some(60)));
        assert!(has(&v, "preset", "fast") && has(&v, "maxrate", "4000k") && has(&v, "bufsize", "8000k") && has(&v, "profile", "high"));
        let a = p.audio.unwrap();
        assert_eq!((a.bitrate_kbps, a.sample_rate, a.channels), (96, 48000, 1));
        assert_eq!(video("mp4:29.97fps").fps, Some(29.97));
        assert_eq!(video("mp4:::keyframe_interval=2").keyframe_interval, Some(2.0));
        assert_eq!(video("mp4:::keyint=50").gop, Some(50));
        assert_eq!(video("mp4:::pix_fmt=yuv444p").pix_fmt, "yuv444p");
        let v = video("webm:vp9_720p::quality=5");
        assert_eq!((v.crf, v.bitrate_kbps, v.width), (Some(24.0), None, 1280));
        let v = video("mkv:mpeg4_480p::quality=4");
        assert_eq!((v.crf, v.bitrate_kbps), (None, Some(2100)));
        let v = video("ts:2000k::rc=cbr");
        assert!(has(&v, "nal-hrd", "cbr") && has(&v, "maxrate", "2000k") && has(&v, "bufsize", "2000k"));
        let v = video("mp4:2000k::rc=cbr");
        assert!(!has(&v, "nal-hrd", "cbr") && has(&v, "maxrate", "2000k"));
        let v = video("ogv:720p");
        assert_eq!((v.codec.as_str(), v.crf, v.bitrate_kbps), ("theora", None, Some(3000)));
    }

    #[test]
    fn quality_to_crf_table() {
        let hd = input(1920, 1080, 0);
        for (q, h264, hevc) in [(1, 30.0, 35.0), (2, 27.0, 32.0), (3, 23.0, 28.0), (4, 21.0, 26.0), (5, 18.0, 23.0)] {
            let crf = |codec: &str| plan(&format!("mp4:{codec}::quality={q}"), &hd).unwrap().video.unwrap().crf;
            assert_eq!((crf("h264"), crf("h265")), (Some(h264), Some(hevc)), "quality {q}");
        }
        assert_eq!(video("mp4").crf, Some(23.0), "quality 3 by default");
        assert_eq!(video("mp4:av1::quality=1").crf, Some(45.0));
        assert_eq!(video("webm:vp9::quality=1").crf, Some(40.0));
    }

    #[test]
    fn defaults_and_stream_presence() {
        let p = plan("mp4:::quality=4", &input(1280, 720, 0)).unwrap();
        let (v, a) = (p.video.unwrap(), p.audio.unwrap());
        assert_eq!((v.codec.as_str(), v.width, v.crf, v.pix_fmt.as_str()), ("h264", 1280, Some(21.0), "yuv420p"));
        assert_eq!((v.fps, v.gop, v.keyframe_interval, v.rotate, v.tone_map), (None, None, None, 0, false));
        assert_eq!((a.codec.as_str(), a.bitrate_kbps, a.sample_rate, a.channels), ("aac", 128, 44100, 2));
        let p = plan("mp4", &input(1280, 720, 0)).unwrap();
        assert_eq!(p.video.unwrap().encoder_options, [("preset".to_string(), "medium".to_string())]);
        assert!(p.range.is_none() && p.image.is_none() && p.packaging.is_none());
        let mut silent = input(1280, 720, 0);
        silent.has_audio = false;
        assert!(plan("mp4:720p", &silent).unwrap().audio.is_none());
        let mut audio_only = input(0, 0, 0);
        audio_only.has_video = false;
        let p = plan("mp4:720p", &audio_only).unwrap();
        assert!(p.video.is_none() && p.audio.is_some());
        assert!(plan("mp4::none", &audio_only).unwrap_err().message.contains("drops the audio"));
        let mut mono = input(1280, 720, 0);
        mono.channels = 1;
        assert_eq!(plan("mp4", &mono).unwrap().audio.unwrap().channels, 1);
        mono.channels = 6;
        assert_eq!(plan("mp4", &mono).unwrap().audio.unwrap().channels, 2);
        let mut nothing = input(0, 0, 0);
        (nothing.has_video, nothing.has_audio) = (false, false);
        assert!(plan("mp4", &nothing).is_err());
        assert!(plan("mp4::none", &input(1280, 720, 0)).unwrap().audio.is_none());
        let mut ten_bit = input(1280, 720, 0);
        ten_bit.pix_fmt = "yuv420p10le".into();
        assert_eq!(plan("mp4", &ten_bit).unwrap().video.unwrap().pix_fmt, "yuv420p", "8-bit unless asked");
    }

    #[test]
    fn force_sdr_tone_maps_hdr_inputs_only() {
        let mut hdr = input(3840, 2160, 0);
        hdr.pix_fmt = "yuv420p10le".into();
        for transfer in ["smpte2084", "arib-std-b67"] {
            hdr.color_transfer = transfer.into();
            let v = plan("mp4:1080p::force_sdr", &hdr).unwrap().video.unwrap();
            assert!(v.tone_map, "{transfer}");
            assert_eq!(v.pix_fmt, "yuv420p");
            let v = plan("mp4:hevc::force_sdr=1,pix_fmt=yuv420p10le", &hdr).unwrap().video.unwrap();
            assert!(v.tone_map && v.pix_fmt == "yuv420p10le");
            assert!(!plan("mp4:::force_sdr=0", &hdr).unwrap().video.unwrap().tone_map);
            assert!(!plan("mp4", &hdr).unwrap().video.unwrap().tone_map, "only on request");
        }
        let mut sdr = input(1920, 1080, 0);
        sdr.color_transfer = "bt709".into();
        assert!(!plan("mp4:::force_sdr", &sdr).unwrap().video.unwrap().tone_map);
        sdr.color_transfer = String::new();
        assert!(!plan("mp4:::force_sdr=true", &sdr).unwrap().video.unwrap().tone_map);
    }

    #[test]
    fn offset_and_duration() {
        let i = input(1280, 720, 0);
        let r = plan_with("mp4", json!({"offset": 1.5, "duration": 2}), &i).unwrap().range.unwrap();
        assert_eq!((r.offset, r.duration), (1.5, Some(2.0)));
        let r = plan_with("mp4", json!({"offset": 4}), &i).unwrap().range.unwrap();
        assert_eq!((r.offset, r.duration), (4.0, None));
        let r = plan_with("mp4", json!({"offset": 4, "duration": 60}), &i).unwrap().range.unwrap();
        assert_eq!(r.duration, Some(1.0), "clipped to the 5 s input");
        let r = plan_with("mp3", json!({"duration": 3}), &i).unwrap().range.unwrap();
        assert_eq!((r.offset, r.duration), (0.0, Some(3.0)));
        let err = plan_with("mp4", json!({"offset": 5}), &i).unwrap_err();
        assert_eq!(err.code, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID);
        for (params, key) in [
            (json!({"offset": -1}), "offset"),
            (json!({"duration": 0}), "duration"),
            (json!({"duration": "soon"}), "duration"),
            (json!({"number": 3}), "number"),
            (json!({"hls": {}}), "hls"),
        ] {
            for format in ["mp4", "mp3"] {
                let err = check(format, &params).unwrap_err();
                assert_eq!(err.code, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID);
                assert!(err.message.contains(&format!("'{key}'")), "{format} {params}: {}", err.message);
            }
        }
    }

    #[test]
    fn unknown_parts_are_named() {
        for (format, part) in [
            ("mp4:720p_sparkly", "sparkly"),
            ("mp4:720p:aac_loud", "loud"),
            ("mp4:720p::quality=9", "quality"),
            ("mp4:720p::colour=red", "colour"),
            ("mp4:720p:::extra", "extra"),
            ("mp5:720p", "mp5"),
            ("mp4:720p_1080p", "twice"),
            ("mp4:h264_hevc", "twice"),
            ("mp4:30fps_25fps", "twice"),
            ("mp4:1000k_2000k", "twice"),
            ("mp4:300fps", "300fps"),
            ("mp4:999999k", "999999k"),
            ("mp4:::force_sdr=yes", "force_sdr"),
            ("mp4:::rotate", "rotate"),
            ("webm:vp9::coder=cabac", "coder"),
            ("mp4:::tune=film+grain", "film+grain"),
        ] {
            let err = check(format, &json!({})).unwrap_err();
            assert_eq!(err.code, copra_sdk::codes::FORMAT_NOT_VALID);
            assert!(err.message.contains(part), "{format}: {}", err.message);
        }
        let err = check("mp4:foo", &json!({})).unwrap_err();
        assert_eq!(err.message, "Unknown video parameter 'foo' in format 'mp4:foo'.");
    }
}
