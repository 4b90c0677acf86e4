//! Coconut format strings and output params → encode plans.
//!
//! A format string is `container:video:audio:options`, e.g. `mp4:720p`,
//! `webm:vp9_1080p:opus_96k:quality=4`, `mp3:128k`, `jpg:320x`, `gif:320x_15fps`,
//! `httpstream`. The params are the output's other JSON keys (`offset`, `number`,
//! `sprite`, `hls`, `variants`, ...). The plugin decides sizes, codecs, rate control and
//! timings; the host encodes natively.
//!
//! Everything that does not depend on the input is parsed and checked into an
//! [`Output`] first: `check` stops there (so a bad job is a 400 at submit time), and
//! `plan` goes through the same step again before applying the input, so it never
//! relies on `check` having run.

mod audio;
mod audio_codecs;
mod audio_tracks;
mod codecs;
mod containers;
mod encode;
mod geometry;
mod gif;
mod grammar;
mod image;
mod ladder;
mod loudness;
mod options;
mod params;
mod search;
mod stream;
mod video;
mod watermark;

use copra_sdk::format::{Format, LadderProbe, LadderStep, MediaInfo, OutputPlan, OutputType, QualityProbe, QualityStep};
use copra_sdk::{Error, Json};

use containers::Kind;

/// A format string with its params, checked as far as it can be without the input.
pub enum Output {
    Video(video::VideoOutput),
    Audio(video::AudioOutput),
    Image(image::ImageOutput),
    Gif(gif::GifOutput),
    Stream(stream::StreamOutput),
}

/// Parse and check a format string and its params.
pub fn parse(format: &str, params: &Json) -> Result<Output, Error> {
    let parts = grammar::split(format)?;
    let Some(kind) = containers::lookup(parts.container) else {
        return Err(Error::format(format!(
            "Unknown container '{}' in format '{format}'; supported: {}.",
            parts.container,
            containers::names().join(", ")
        )));
    };
    Ok(match kind {
        Kind::Video(c) => Output::Video(video::video_output(&parts, c, params)?),
        Kind::Audio(c) => Output::Audio(video::audio_output(&parts, c, params)?),
        Kind::Image(i) => Output::Image(image::image_output(&parts, i, params)?),
        Kind::Gif => Output::Gif(gif::gif_output(&parts, params)?),
        Kind::Stream => Output::Stream(stream::stream_output(&parts, params)?),
    })
}

impl Output {
    pub fn output_type(&self) -> OutputType {
        match self {
            Output::Video(_) => OutputType::Video,
            Output::Audio(_) => OutputType::Audio,
            Output::Image(_) | Output::Gif(_) => OutputType::Image,
            Output::Stream(_) => OutputType::Httpstream,
        }
    }

    pub fn plan(&self, input: &MediaInfo) -> Result<OutputPlan, Error> {
        match self {
            Output::Video(o) => o.plan(input),
            Output::Audio(o) => o.plan(input),
            Output::Image(o) => o.plan(input),
            Output::Gif(o) => o.plan(input),
            Output::Stream(o) => o.plan(input),
        }
    }
}

/// Submit-time validation: the output type, or the first problem found.
pub fn check(format: &str, params: &Json) -> Result<OutputType, Error> {
    parse(format, params).map(|o| o.output_type())
}

/// Plan one output for a probed input.
pub fn plan(format: &str, params: &Json, input: &MediaInfo) -> Result<OutputPlan, Error> {
    parse(format, params)?.plan(input)
}

pub struct FormatVideo;

impl Format for FormatVideo {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn formats() -> Vec<String> {
        containers::names().into_iter().map(String::from).collect()
    }

    fn check(format: &str, params: &Json) -> Result<OutputType, Error> {
        check(format, params)
    }

    fn plan(format: &str, params: &Json, input: &MediaInfo) -> Result<OutputPlan, Error> {
        plan(format, params, input)
    }

    fn search_quality(format: &str, params: &Json, input: &MediaInfo, probes: &[QualityProbe]) -> Result<QualityStep, Error> {
        search::search(format, params, input, probes)
    }

    fn plan_ladder(format: &str, params: &Json, input: &MediaInfo, probes: &[LadderProbe]) -> Result<LadderStep, Error> {
        ladder::plan_ladder(format, params, input, probes)
    }
}

copra_sdk::format_plugin!(FormatVideo);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A 5-second SDR input with stereo audio at 25 fps.
    pub fn input(width: u32, height: u32, rotation: i32) -> MediaInfo {
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
            color_transfer: "bt709".into(),
            color_primaries: "bt709".into(),
        }
    }

    pub fn check(format: &str, params: &Json) -> Result<OutputType, Error> {
        FormatVideo::check(format, params)
    }

    pub fn plan(format: &str, input: &MediaInfo) -> Result<OutputPlan, Error> {
        plan_with(format, json!({}), input)
    }

    /// Plan through the trait, after checking that `check` agrees: whatever `check`
    /// accepts with these params must not fail on a format or param problem that
    /// needs no input, and whatever it refuses `plan` refuses the same way.
    pub fn plan_with(format: &str, params: Json, input: &MediaInfo) -> Result<OutputPlan, Error> {
        let checked = FormatVideo::check(format, &params);
        let planned = FormatVideo::plan(format, &params, input);
        if let Err(e) = &checked {
            assert_eq!(planned.as_ref().err(), Some(e), "plan must refuse what check refuses: {format} {params}");
        }
        planned
    }

    #[test]
    fn formats_lists_every_name() {
        let formats = FormatVideo::formats();
        for name in ["mp4", "ts", "mpegts", "mkv", "mp3", "wav", "jpg", "webp", "gif", "httpstream"] {
            assert!(formats.iter().any(|f| f == name), "{name}");
        }
        for name in &formats {
            assert!(containers::lookup(name).is_some());
        }
    }

    #[test]
    fn check_reports_format_not_valid() {
        assert!(matches!(check("mp4:::quality=4", &json!({})), Ok(OutputType::Video)));
        assert!(matches!(check("mp4", &Json::Null), Ok(OutputType::Video)));
        let err = check("mp4:foo", &json!({})).unwrap_err();
        assert_eq!(err.code, copra_sdk::codes::FORMAT_NOT_VALID);
        assert_eq!(err.message, "Unknown video parameter 'foo' in format 'mp4:foo'.");
        let err = check("mp5", &json!({})).unwrap_err();
        assert!(err.message.starts_with("Unknown container 'mp5'"), "{}", err.message);
        let err = check("mp4", &json!("offset")).unwrap_err();
        assert_eq!(err.code, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID);
    }

    #[test]
    fn output_types() {
        for (format, params, expected) in [
            ("mp4", json!({}), OutputType::Video),
            ("webm:vp8", json!({}), OutputType::Video),
            ("flac", json!({}), OutputType::Audio),
            ("png", json!({"number": 3}), OutputType::Image),
            ("gif", json!({}), OutputType::Image),
            ("httpstream", json!({"dash": {"path": "/d"}}), OutputType::Httpstream),
        ] {
            assert_eq!(check(format, &params).unwrap(), expected, "{format}");
        }
    }

    /// Whatever `check` accepts plans (or fails only for input reasons) on an ordinary
    /// input; the strings cover each output kind and option.
    #[test]
    fn check_accepts_only_what_plans() {
        let hd = input(1920, 1080, 0);
        for (format, params) in [
            (
                "mp4:hevc_720p_30fps_2000k:aac_96k_stereo:rc=vbr,maxrate=3000k,bufsize=6000k,preset=slow,profile=main,level=4.1,tune=grain",
                json!({"offset": 1}),
            ),
            ("mkv:vp9_1080p:opus_48000:pix_fmt=yuv420p10le,profile=2,quality=5", json!({"duration": 2})),
            ("webm:av1::preset=veryfast,cq=30", json!({})),
            ("mp4:x264::coder=cavlc,profile=baseline,level=3,preset=ll,rc=constqp,qp=20", json!({})),
            ("mov:mpeg4_480p::quality=2,rotate=180,fit=pad,scale=linear", json!({})),
            ("ogv:theora:vorbis_64k", json!({})),
            ("avi:xvid:mp3_22050_mono", json!({})),
            ("flv:h264:mp3_44100", json!({})),
            ("3gp:240p", json!({})),
            ("ts:1280x720_2000k::rc=cbr,force_sdr", json!({})),
            ("m4a:aac_64k_mono", json!({})),
            ("jpg:200x::quality=5", json!({"interval": 1, "sprite": {"columns": 4, "rows": 4}, "vtt": "s.vtt"})),
            ("webp:x100", json!({"number": 5, "square": true})),
            ("gif:240x_12fps::scale=nn", json!({"offset": 1, "duration": 3})),
            ("httpstream:::segment_duration=4", json!({"hls": {"path": "/h", "hlsfmp4": true}, "variants": ["mp4:720p", "aac:96k"]})),
        ] {
            assert!(check(format, &params).is_ok(), "{format}: {:?}", check(format, &params));
            plan_with(format, params.clone(), &hd).unwrap_or_else(|e| panic!("{format}: {e}"));
        }
    }

    /// A wide sweep of hostile strings: nothing panics, and every refusal carries one
    /// of the two codes.
    #[test]
    fn hostile_strings_never_panic() {
        let hd = input(1920, 1080, 0);
        let pieces = [
            "",
            ":",
            "::",
            "mp4",
            "mp4:",
            "x",
            "_",
            "__",
            "=",
            ",",
            "720p",
            "0x0",
            "99999999999999999999x",
            "x-1",
            "1e400fps",
            "-1fps",
            "NaNk",
            "quality=",
            "=quality",
            "quality=3,",
            ",,,",
            "none",
            "aac_none",
            "\u{0}",
            "é",
            "k",
            "p",
            "fps",
            "1.5p",
            "gif",
            "httpstream",
            "jpg",
            "4294967296k",
            "preset=ll,tune=zerolatency",
            "rotate=-0",
        ];
        let mut n = 0;
        for a in pieces {
            for b in pieces {
                for format in [format!("mp4:{a}:{b}"), format!("{a}:{b}"), format!("mp4:::{a},{b}"), format!("jpg:{a}::{b}")] {
                    for params in [json!({}), json!({"offset": a, "number": b}), json!({"sprite": {"rows": a}})] {
                        n += 1;
                        if let Err(e) = plan_with(&format, params, &hd) {
                            assert!(
                                [copra_sdk::codes::FORMAT_NOT_VALID, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID].contains(&e.code.as_str()),
                                "{format}: {e}"
                            );
                        }
                    }
                }
            }
        }
        assert!(n > 1000);
    }
}
