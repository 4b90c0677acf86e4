//! Coconut format strings → encode plans: `container:video:audio:options`, e.g.
//! `mp4:720p`, `mp4:hevc_1080p`, `mp4:1280x:aac_96k`, `mp4:::quality=4`.
//!
//! The plugin decides sizes, codecs and rate control; the host encodes natively.

mod grammar;

use copra_sdk::Error;
use copra_sdk::format::{AudioPlan, Format, MediaInfo, OutputPlan, OutputType, VideoPlan};

pub use grammar::{FormatSpec, Size, parse};

/// A container this plugin plans. Adding one (webm with vp9/opus, mov, ...) is a new
/// entry here: the grammar checks codecs against the lists.
pub struct Container {
    /// The part before the first `:` and the FFmpeg muxer name.
    pub name: &'static str,
    pub extension: &'static str,
    pub mime_type: &'static str,
    /// Logical video codecs, the first is the default.
    pub video_codecs: &'static [&'static str],
    /// Logical audio codecs, the first is the default.
    pub audio_codecs: &'static [&'static str],
}

/// Containers this plugin plans.
pub const CONTAINERS: &[Container] = &[Container {
    name: "mp4",
    extension: "mp4",
    mime_type: "video/mp4",
    video_codecs: &["h264", "hevc"],
    audio_codecs: &["aac"],
}];

/// The container of a name, if this plugin plans it.
pub fn container(name: &str) -> Option<&'static Container> {
    CONTAINERS.iter().find(|c| c.name == name)
}

/// Round to the nearest even number, at least 2 (encoders want even 4:2:0 sizes).
fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// The output size for an input, aspect kept where a side is open, never larger than
/// the (upright) input unless both sides were given.
pub fn output_size(size: Size, input: &MediaInfo) -> (u32, u32) {
    // Quarter turns swap the sides (-90 is 270, in case a prober reports it that way).
    let quarter_turn = input.rotation.rem_euclid(180) == 90;
    let (in_w, in_h) = if quarter_turn { (input.height, input.width) } else { (input.width, input.height) };
    let (in_w, in_h) = (f64::from(in_w.max(2)), f64::from(in_h.max(2)));
    let keep = (even(in_w), even(in_h));
    match size {
        Size::Input => keep,
        Size::Height(h) if f64::from(h) >= in_h => keep,
        Size::Height(h) => (even(f64::from(h) * in_w / in_h), even(f64::from(h))),
        Size::Width(w) if f64::from(w) >= in_w => keep,
        Size::Width(w) => (even(f64::from(w)), even(f64::from(w) * in_h / in_w)),
        Size::Exact(w, h) => (even(f64::from(w)), even(f64::from(h))),
    }
}

/// Constant rate factor for a Coconut quality (1 lowest .. 5 highest).
pub fn crf(codec: &str, quality: u8) -> f32 {
    let h264 = match quality {
        1 => 30.0,
        2 => 27.0,
        4 => 21.0,
        5 => 18.0,
        _ => 23.0,
    };
    if codec == "hevc" { h264 + 5.0 } else { h264 }
}

/// Plan one output.
pub fn plan(format: &str, input: &MediaInfo) -> Result<OutputPlan, String> {
    let spec = parse(format)?;
    let container = container(&spec.container).ok_or_else(|| format!("Unknown container '{}'.", spec.container))?;
    let video = input.has_video.then(|| {
        let (width, height) = output_size(spec.size, input);
        let mut encoder_options = vec![("preset".to_string(), spec.preset.clone().unwrap_or_else(|| "medium".into()))];
        if let Some(profile) = &spec.profile {
            encoder_options.push(("profile".into(), profile.clone()));
        }
        if let Some(maxrate) = spec.maxrate_kbps {
            encoder_options.push(("maxrate".into(), format!("{maxrate}k")));
            encoder_options.push(("bufsize".into(), format!("{}k", maxrate * 2)));
        }
        VideoPlan {
            codec: spec.video_codec.clone(),
            width,
            height,
            fps: spec.fps,
            bitrate_kbps: spec.video_bitrate_kbps,
            crf: spec.video_bitrate_kbps.is_none().then(|| crf(&spec.video_codec, spec.quality.unwrap_or(3))),
            pix_fmt: "yuv420p".into(),
            gop: spec.gop,
            encoder_options,
        }
    });
    let audio = input.has_audio.then(|| AudioPlan {
        codec: spec.audio_codec.clone(),
        bitrate_kbps: spec.audio_bitrate_kbps.unwrap_or(128),
        sample_rate: spec.sample_rate.unwrap_or(44100),
        // Mono stays mono; everything else (stereo, 5.1, unknown) becomes stereo.
        channels: spec.channels.unwrap_or(if input.channels == 1 { 1 } else { 2 }),
    });
    if video.is_none() && audio.is_none() {
        return Err("The input has neither video nor audio.".into());
    }
    Ok(OutputPlan {
        output_type: OutputType::Video,
        container: container.name.into(),
        extension: container.extension.into(),
        mime_type: container.mime_type.into(),
        video,
        audio,
    })
}

pub struct FormatVideo;

impl Format for FormatVideo {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn formats() -> Vec<String> {
        CONTAINERS.iter().map(|c| c.name.to_string()).collect()
    }

    fn check(format: &str) -> Result<OutputType, Error> {
        parse(format).map(|_| OutputType::Video).map_err(Error::format)
    }

    fn plan(format: &str, input: &MediaInfo) -> Result<OutputPlan, Error> {
        plan(format, input).map_err(Error::format)
    }
}

copra_sdk::format_plugin!(FormatVideo);

#[cfg(test)]
mod tests {
    use super::*;

    fn input(width: u32, height: u32, rotation: i32) -> MediaInfo {
        MediaInfo {
            width,
            height,
            duration: 5.0,
            rotation,
            fps: 25.0,
            bitrate: 0,
            has_video: true,
            has_audio: true,
            video_codec: "h264".into(),
            audio_codec: "aac".into(),
            pix_fmt: "yuv420p".into(),
            sample_rate: 48000,
            channels: 2,
            size: 0,
            format_name: "mp4".into(),
        }
    }

    fn size(format: &str, i: &MediaInfo) -> (u32, u32) {
        let v = plan(format, i).unwrap().video.unwrap();
        (v.width, v.height)
    }

    #[test]
    fn named_sizes_keep_aspect_and_are_even() {
        let hd = input(1280, 720, 0);
        assert_eq!(size("mp4:720p", &hd), (1280, 720));
        assert_eq!(size("mp4:360p", &hd), (640, 360));
        assert_eq!(size("mp4:240p", &hd), (426, 240));
        assert_eq!(size("mp4:480p", &hd), (854, 480));
    }

    #[test]
    fn never_upscales() {
        let hd = input(1280, 720, 0);
        assert_eq!(size("mp4:1080p", &hd), (1280, 720));
        assert_eq!(size("mp4:2160p", &hd), (1280, 720));
        assert_eq!(size("mp4:1920x", &hd), (1280, 720));
    }

    #[test]
    fn width_height_forms() {
        let hd = input(1920, 1080, 0);
        assert_eq!(size("mp4:1280x", &hd), (1280, 720));
        assert_eq!(size("mp4:x540", &hd), (960, 540));
        assert_eq!(size("mp4:300x300", &hd), (300, 300));
        assert_eq!(size("mp4", &hd), (1920, 1080));
    }

    #[test]
    fn rotation_is_applied_before_sizing() {
        let portrait = input(1920, 1080, 90);
        assert_eq!(size("mp4:720p", &portrait), (406, 720));
        assert_eq!(size("mp4:1024x", &portrait), (1024, 1820));
    }

    #[test]
    fn quality_bitrate_codec_and_options() {
        let hd = input(1920, 1080, 0);
        let p = plan("mp4:360p::quality=4", &hd).unwrap();
        assert_eq!(p.video.as_ref().unwrap().crf, Some(21.0));
        let p = plan("mp4:hevc_1080p", &hd).unwrap();
        let v = p.video.unwrap();
        assert_eq!((v.codec.as_str(), v.crf), ("hevc", Some(28.0)));
        let p = plan("mp4:720p_3000k_30fps:aac_96k_48000_mono:preset=fast,maxrate=4000k,gop=60,profile=high", &hd).unwrap();
        let v = p.video.unwrap();
        assert_eq!((v.bitrate_kbps, v.crf, v.fps, v.gop), (Some(3000), None, Some(30.0), Some(60)));
        assert!(v.encoder_options.contains(&("preset".into(), "fast".into())));
        assert!(v.encoder_options.contains(&("maxrate".into(), "4000k".into())));
        assert!(v.encoder_options.contains(&("profile".into(), "high".into())));
        let a = p.audio.unwrap();
        assert_eq!((a.bitrate_kbps, a.sample_rate, a.channels), (96, 48000, 1));
    }

    #[test]
    fn defaults() {
        let p = plan("mp4:::quality=4", &input(1280, 720, 0)).unwrap();
        let (v, a) = (p.video.unwrap(), p.audio.unwrap());
        assert_eq!((v.codec.as_str(), v.width, v.crf, v.pix_fmt.as_str()), ("h264", 1280, Some(21.0), "yuv420p"));
        assert_eq!((a.codec.as_str(), a.bitrate_kbps, a.sample_rate, a.channels), ("aac", 128, 44100, 2));
        let mut silent = input(1280, 720, 0);
        silent.has_audio = false;
        assert!(plan("mp4:720p", &silent).unwrap().audio.is_none());
    }

    #[test]
    fn quality_to_crf_table() {
        let hd = input(1920, 1080, 0);
        for (q, h264, hevc) in [(1, 30.0, 35.0), (2, 27.0, 32.0), (3, 23.0, 28.0), (4, 21.0, 26.0), (5, 18.0, 23.0)] {
            let crf = |codec: &str| plan(&format!("mp4:{codec}::quality={q}"), &hd).unwrap().video.unwrap().crf;
            assert_eq!((crf("h264"), crf("h265")), (Some(h264), Some(hevc)), "quality {q}");
        }
        assert_eq!(plan("mp4", &hd).unwrap().video.unwrap().crf, Some(23.0), "quality 3 by default");
    }

    #[test]
    fn plan_shape_and_stream_presence() {
        let p = plan("mp4", &input(1280, 720, 0)).unwrap();
        assert_eq!((p.container.as_str(), p.extension.as_str(), p.mime_type.as_str()), ("mp4", "mp4", "video/mp4"));
        assert!(matches!(p.output_type, OutputType::Video));
        assert_eq!(p.video.unwrap().encoder_options, [("preset".to_string(), "medium".to_string())]);
        let mut audio_only = input(0, 0, 0);
        audio_only.has_video = false;
        let p = plan("mp4:720p", &audio_only).unwrap();
        assert!(p.video.is_none() && p.audio.is_some());
        let mut mono = input(1280, 720, 0);
        mono.channels = 1;
        assert_eq!(plan("mp4", &mono).unwrap().audio.unwrap().channels, 1);
        mono.channels = 6;
        assert_eq!(plan("mp4", &mono).unwrap().audio.unwrap().channels, 2);
        let mut nothing = input(0, 0, 0);
        (nothing.has_video, nothing.has_audio) = (false, false);
        assert!(plan("mp4", &nothing).is_err());
    }

    #[test]
    fn odd_inputs_give_even_sizes() {
        let odd = input(1279, 719, 0);
        let (w, h) = size("mp4", &odd);
        assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h}");
        let (w, h) = size("mp4:x361", &input(1920, 1080, 0));
        assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h}");
        assert_eq!(size("mp4:720p", &input(1920, 1080, 270)), (406, 720));
        assert_eq!(size("mp4:720p", &input(1920, 1080, -90)), (406, 720));
    }

    #[test]
    fn check_reports_format_not_valid() {
        assert!(matches!(FormatVideo::check("mp4:::quality=4"), Ok(OutputType::Video)));
        let err = FormatVideo::check("mp4:foo").unwrap_err();
        assert_eq!(err.code, copra_sdk::codes::FORMAT_NOT_VALID);
        assert_eq!(err.message, "Unknown video parameter 'foo' in format 'mp4:foo'.");
    }

    #[test]
    fn unknown_parts_are_named() {
        for (format, part) in [
            ("mp4:720p_sparkly", "sparkly"),
            ("mp4:720p:aac_loud", "loud"),
            ("mp4:720p::quality=9", "quality"),
            ("mp4:720p::colour=red", "colour"),
            ("webm:720p", "webm"),
            ("mp4:720p:::extra", "extra"),
        ] {
            let err = parse(format).unwrap_err();
            assert!(err.contains(part), "{format}: {err}");
        }
    }
}
