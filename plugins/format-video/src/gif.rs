//! Animated GIFs: `gif`, `gif:320x_15fps`, with params `offset`, `duration` and `fps`.
//! GIFs are heavy per second, so without a `duration` only the first 10 seconds (from
//! the offset) are taken; a `duration` asks for more.

use copra_sdk::format::{AudioSelection, Fit, MediaInfo, OutputPlan, OutputType, TimeRange, VideoPlan};
use copra_sdk::{Error, Json};

use crate::geometry::{DEFAULT_SCALER, Size, default_fit, output_size, upright};
use crate::grammar::{self, Parts, items};
use crate::options;
use crate::params::{Params, Span};
use crate::video::is_hdr;

pub const PARAMS: &[&str] = &["offset", "duration", "fps"];
const OPTION_KEYS: &[&str] = &["fit", "scale", "rotate"];

const DEFAULT_WIDTH: u32 = 320;
const DEFAULT_FPS: f64 = 10.0;
const MAX_FPS: f64 = 30.0;
/// Seconds taken when no `duration` is given.
pub const DEFAULT_SECONDS: f64 = 10.0;

#[derive(Debug, Clone, PartialEq)]
pub struct GifOutput {
    pub size: Size,
    pub fps: f64,
    pub span: Span,
    pub fit: Option<Fit>,
    pub scaler: &'static str,
    pub rotate: i32,
}

pub fn gif_output(parts: &Parts<'_>, params: &Json) -> Result<GifOutput, Error> {
    let f = parts.format;
    parts.refuse(parts.audio, "audio", "GIFs have no audio.")?;
    let mut size = None;
    let mut fps = None;
    for item in items(parts.video) {
        let twice = |what: &str| Error::format(format!("The GIF {what} is given twice ('{item}') in format '{f}'."));
        if let Some(rate) = grammar::fps(item, MAX_FPS, f) {
            if fps.replace(rate?).is_some() {
                return Err(twice("frame rate"));
            }
        } else if let Some(s) = grammar::size(item) {
            if size.replace(s).is_some() {
                return Err(twice("size"));
            }
        } else {
            return Err(Error::format(format!(
                "Unknown GIF parameter '{item}' in format '{f}'; GIFs take a size and a frame rate such as 320x_15fps."
            )));
        }
    }
    let o = options::parse(parts.options, OPTION_KEYS, "GIFs", f)?;
    let p = Params::new(params, PARAMS, "gif")?;
    let param_fps = p.number("fps")?;
    if let Some(x) = param_fps.filter(|x| !(1.0..=MAX_FPS).contains(x)) {
        return Err(Error::param(format!("The parameter 'fps' must be 1 to {MAX_FPS}, not {x}.")));
    }
    if let (Some(_), Some(_)) = (fps, param_fps) {
        return Err(Error::param("The parameter 'fps' repeats the frame rate of the format string; give one."));
    }
    Ok(GifOutput {
        size: size.unwrap_or(Size::Width(DEFAULT_WIDTH)),
        fps: fps.or(param_fps).unwrap_or(DEFAULT_FPS),
        span: p.span()?,
        fit: o.fit,
        scaler: o.scaler.unwrap_or(DEFAULT_SCALER),
        rotate: o.rotate,
    })
}

impl GifOutput {
    pub fn plan(&self, input: &MediaInfo) -> Result<OutputPlan, Error> {
        if !input.has_video {
            return Err(Error::format("The input has no video to make a GIF from."));
        }
        let (offset, end) = self.span.bounds(input.duration)?;
        let wanted = self.span.duration.unwrap_or(DEFAULT_SECONDS);
        let duration = end.map_or(wanted, |end| wanted.min(end - offset));
        let (width, height) = output_size(self.size, upright(input, self.rotate));
        Ok(OutputPlan {
            output_type: OutputType::Image,
            container: "gif".into(),
            extension: "gif".into(),
            mime_type: "image/gif".into(),
            video: Some(VideoPlan {
                codec: "gif".into(),
                width,
                height,
                fps: Some(self.fps),
                bitrate_kbps: None,
                crf: None,
                // The host builds the palette graph for this.
                pix_fmt: "pal8".into(),
                gop: None,
                keyframe_interval: None,
                encoder_options: Vec::new(),
                scaler: self.scaler.into(),
                fit: self.fit.unwrap_or(default_fit(self.size)),
                rotate: self.rotate,
                // A GIF is 8-bit SDR: an HDR input always needs mapping down.
                tone_map: is_hdr(input),
                overlays: Vec::new(),
                burn_in: None,
            }),
            audio: None,
            range: Some(TimeRange { offset, duration: Some(duration) }),
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
    use crate::tests::{check, input, plan_with};
    use serde_json::json;

    fn gif(format: &str, params: Json, i: &MediaInfo) -> Result<OutputPlan, Error> {
        plan_with(format, params, i)
    }

    fn long() -> MediaInfo {
        let mut i = input(1920, 1080, 0);
        i.duration = 60.0;
        i
    }

    #[test]
    fn defaults() {
        assert!(matches!(check("gif", &json!({})), Ok(OutputType::Image)));
        let p = gif("gif", json!({}), &long()).unwrap();
        assert!(matches!(p.output_type, OutputType::Image));
        assert_eq!((p.container.as_str(), p.extension.as_str(), p.mime_type.as_str()), ("gif", "gif", "image/gif"));
        assert!(p.audio.is_none() && p.image.is_none());
        let v = p.video.unwrap();
        assert_eq!((v.codec.as_str(), v.pix_fmt.as_str(), v.width, v.height, v.fps), ("gif", "pal8", 320, 180, Some(10.0)));
        assert_eq!((v.bitrate_kbps, v.crf, v.gop, v.keyframe_interval, v.tone_map), (None, None, None, None, false));
        assert!(v.encoder_options.is_empty());
        let r = p.range.unwrap();
        assert_eq!((r.offset, r.duration), (0.0, Some(10.0)), "the first 10 seconds");
        let small = input(200, 100, 0);
        let v = gif("gif", json!({}), &small).unwrap().video.unwrap();
        assert_eq!((v.width, v.height), (200, 100), "never upscaled to 320");
        let r = gif("gif", json!({}), &small).unwrap().range.unwrap();
        assert_eq!(r.duration, Some(5.0), "a short input is taken whole");
    }

    #[test]
    fn sizes_rates_and_ranges() {
        let i = long();
        let v = gif("gif:480x_15fps", json!({}), &i).unwrap().video.unwrap();
        assert_eq!((v.width, v.height, v.fps), (480, 270, Some(15.0)));
        let v = gif("gif:x120", json!({"fps": 24}), &i).unwrap().video.unwrap();
        assert_eq!((v.width, v.height, v.fps), (214, 120, Some(24.0)));
        let v = gif("gif:200x200::fit=crop,rotate=90,scale=lanczos", json!({}), &i).unwrap().video.unwrap();
        assert_eq!((v.width, v.height, v.fit, v.rotate, v.scaler.as_str()), (200, 200, Fit::Crop, 90, "lanczos"));
        let r = gif("gif", json!({"offset": 5, "duration": 30}), &i).unwrap().range.unwrap();
        assert_eq!((r.offset, r.duration), (5.0, Some(30.0)), "a duration asks for more");
        let r = gif("gif", json!({"offset": 55}), &i).unwrap().range.unwrap();
        assert_eq!((r.offset, r.duration), (55.0, Some(5.0)));
        assert!(gif("gif", json!({"offset": 60}), &i).unwrap_err().message.contains("offset"));
        let mut hdr = long();
        hdr.color_transfer = "smpte2084".into();
        assert!(gif("gif", json!({}), &hdr).unwrap().video.unwrap().tone_map);
    }

    #[test]
    fn refusals() {
        for (format, params, code, needle) in [
            ("gif:h264", json!({}), "format_not_valid", "'h264'"),
            ("gif:31fps", json!({}), "format_not_valid", "31fps"),
            ("gif:320x_480x", json!({}), "format_not_valid", "twice"),
            ("gif::aac", json!({}), "format_not_valid", "'aac'"),
            ("gif:::quality=4", json!({}), "format_not_valid", "'quality'"),
            ("gif:1000k", json!({}), "format_not_valid", "'1000k'"),
            ("gif", json!({"fps": 60}), "output_param_not_valid", "'fps'"),
            ("gif", json!({"fps": 0}), "output_param_not_valid", "'fps'"),
            ("gif:15fps", json!({"fps": 15}), "output_param_not_valid", "'fps'"),
            ("gif", json!({"number": 3}), "output_param_not_valid", "'number'"),
            ("gif", json!({"duration": -1}), "output_param_not_valid", "'duration'"),
        ] {
            let err = check(format, &params).unwrap_err();
            assert_eq!(err.code, code, "{format} {params}");
            assert!(err.message.contains(needle), "{format} {params}: {}", err.message);
        }
        let mut silent = long();
        silent.has_video = false;
        assert!(gif("gif", json!({}), &silent).is_err());
    }
}
