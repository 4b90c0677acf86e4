//! Still pictures: `jpg:320x`, `png:300x300`, `webp:x240::quality=4`, with params
//! `number` or `interval`, `square`, `offset`/`duration` and `sprite`/`vtt`.

use copra_sdk::format::{AudioSelection, Fit, ImagePlan, MediaInfo, OutputPlan, OutputType, SpritePlan};
use copra_sdk::{Error, Json};

use crate::containers::{IMAGE_MUXER, ImageFormat};
use crate::geometry::{Size, default_fit, output_size, square_side, upright};
use crate::grammar::{self, Parts, items};
use crate::options;
use crate::params::{Params, Span};

pub const PARAMS: &[&str] = &["number", "interval", "square", "offset", "duration", "sprite", "vtt"];
const OPTION_KEYS: &[&str] = &["quality", "fit"];

const MAX_NUMBER: u32 = 1000;
/// `interval` pictures beyond this many are not taken.
pub const MAX_PICTURES: usize = 10_000;
/// Sprite sheets wider or taller than this cannot be written as WebP (and are unwieldy
/// as anything else).
const MAX_SHEET_SIDE: u32 = 16383;
const MAX_SPRITE_GRID: u32 = 50;
const DEFAULT_SPRITE_GRID: u32 = 10;
/// Sprite tiles are scrubbing previews: small unless a size is asked for.
const DEFAULT_TILE_WIDTH: u32 = 160;

/// Which pictures to take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pick {
    /// This many, spread evenly over the span.
    Number(u32),
    /// One every this many seconds from the start of the span.
    Interval(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageOutput {
    pub format: &'static ImageFormat,
    pub size: Size,
    pub quality: Option<u8>,
    pub fit: Option<Fit>,
    pub pick: Pick,
    pub square: bool,
    pub span: Span,
    pub sprite: Option<(u32, u32)>,
}

pub fn image_output(parts: &Parts<'_>, format: &'static ImageFormat, params: &Json) -> Result<ImageOutput, Error> {
    let f = parts.format;
    parts.refuse(parts.audio, "audio", "pictures have no audio.")?;
    let mut size = None;
    for item in items(parts.video) {
        match grammar::size(item) {
            Some(s) if size.replace(s).is_none() => {}
            Some(_) => return Err(Error::format(format!("The picture size is given twice ('{item}') in format '{f}'."))),
            None => {
                return Err(Error::format(format!("Unknown image parameter '{item}' in format '{f}'; pictures take a size such as 320x.")));
            }
        }
    }
    let size = size.unwrap_or(Size::Input);
    let o = options::parse(parts.options, OPTION_KEYS, "pictures", f)?;
    if o.quality.is_some() && format.codec == "png" {
        return Err(Error::format(format!("PNG is lossless: quality does not apply (format '{f}').")));
    }

    let p = Params::new(params, PARAMS, "image")?;
    let number = p.integer("number")?;
    if let Some(n) = number.filter(|n| !(1..=MAX_NUMBER).contains(n)) {
        return Err(Error::param(format!("The parameter 'number' must be 1 to {MAX_NUMBER}, not {n}.")));
    }
    let interval = p.number("interval")?;
    if let Some(i) = interval.filter(|&i| i <= 0.0) {
        return Err(Error::param(format!("The parameter 'interval' must be more than 0 seconds, not {i}.")));
    }
    let pick = match (number, interval) {
        (Some(_), Some(_)) => return Err(Error::param("The parameters 'number' and 'interval' exclude each other; give one.")),
        (_, Some(i)) => Pick::Interval(i),
        (n, None) => Pick::Number(n.unwrap_or(1)),
    };
    let square = p.bool("square")?.unwrap_or(false);
    if square {
        if o.fit.is_some() {
            return Err(Error::param("The parameter 'square' crops the pictures; drop the fit option."));
        }
        // Unequal sides are known to be wrong without the input.
        square_side(size, (2.0, 2.0))?;
    }
    let sprite = sprite(&p)?;
    // With both sides given the tile size is known now.
    if let (Some(grid), Size::Exact(w, h)) = (sprite, size) {
        let (w, h) = if square { (w, w) } else { (w, h) };
        sheet_fits(grid, w, h)?;
    }
    if p.has("vtt") {
        p.string("vtt")?;
        if sprite.is_none() {
            return Err(Error::param("The parameter 'vtt' maps sprite sheets; it needs 'sprite'."));
        }
    }
    Ok(ImageOutput { format, size, quality: o.quality, fit: o.fit, pick, square, span: p.span()?, sprite })
}

/// `sprite`: `true` for 10x10 sheets, or `{"columns": C, "rows": R}`.
fn sprite(p: &Params<'_>) -> Result<Option<(u32, u32)>, Error> {
    let Some(value) = p.get("sprite") else { return Ok(None) };
    match value {
        Json::Bool(false) => Ok(None),
        Json::Bool(true) => Ok(Some((DEFAULT_SPRITE_GRID, DEFAULT_SPRITE_GRID))),
        Json::Object(_) => {
            let grid = Params::nested(value, &["columns", "rows"], "sprite")?;
            let side = |key: &str| -> Result<u32, Error> {
                let n = grid.integer(key)?.unwrap_or(DEFAULT_SPRITE_GRID);
                if !(1..=MAX_SPRITE_GRID).contains(&n) {
                    return Err(Error::param(format!("The parameter 'sprite.{key}' must be 1 to {MAX_SPRITE_GRID}, not {n}.")));
                }
                Ok(n)
            };
            Ok(Some((side("columns")?, side("rows")?)))
        }
        other => Err(Error::param(format!("The parameter 'sprite' must be true, false or {{\"columns\": C, \"rows\": R}}, not {other}."))),
    }
}

/// Sprite sheets must stay within [`MAX_SHEET_SIDE`] on each side.
fn sheet_fits((columns, rows): (u32, u32), width: u32, height: u32) -> Result<(), Error> {
    let (sheet_w, sheet_h) = (columns.saturating_mul(width), rows.saturating_mul(height));
    if sheet_w > MAX_SHEET_SIDE || sheet_h > MAX_SHEET_SIDE {
        return Err(Error::param(format!(
            "The sprite sheets would be {sheet_w}x{sheet_h} pixels ({columns}x{rows} pictures of {width}x{height}); keep them \
             within {MAX_SHEET_SIDE} by asking for a smaller size or fewer columns or rows."
        )));
    }
    Ok(())
}

/// Input times of the pictures: `number` spread over the span (each in the middle of
/// its share), or every `interval` seconds from its start.
pub fn times(pick: Pick, span: &Span, input_duration: f64) -> Result<Vec<f64>, Error> {
    let (start, end) = span.bounds(input_duration)?;
    let unknown = || Error::param("The input's duration is unknown, so only a single picture can be placed.");
    Ok(match (pick, end) {
        (Pick::Number(n), Some(end)) => {
            let share = (end - start) / f64::from(n);
            (0..n).map(|i| start + (f64::from(i) + 0.5) * share).collect()
        }
        (Pick::Number(1), None) => vec![start],
        (Pick::Number(_), None) | (Pick::Interval(_), None) => return Err(unknown()),
        (Pick::Interval(step), Some(end)) => (0..MAX_PICTURES).map(|k| start + k as f64 * step).take_while(|&t| t < end).collect(),
    })
}

impl ImageOutput {
    pub fn plan(&self, input: &MediaInfo) -> Result<OutputPlan, Error> {
        if !input.has_video {
            return Err(Error::format("The input has no video to take pictures from."));
        }
        let dims = upright(input, 0);
        let (width, height, fit) = if self.square {
            let side = square_side(self.size, dims)?;
            (side, side, Fit::Crop)
        } else {
            let size = match self.size {
                Size::Input if self.sprite.is_some() => Size::Width(DEFAULT_TILE_WIDTH),
                s => s,
            };
            let (w, h) = output_size(size, dims);
            (w, h, self.fit.unwrap_or(default_fit(size)))
        };
        if let Some(grid) = self.sprite {
            sheet_fits(grid, width, height)?;
        }
        let sprite = self.sprite.map(|(columns, rows)| SpritePlan { columns, rows });
        let f = self.format;
        Ok(OutputPlan {
            output_type: OutputType::Image,
            container: IMAGE_MUXER.into(),
            extension: f.extension.into(),
            mime_type: f.mime_type.into(),
            video: None,
            audio: None,
            range: None,
            image: Some(ImagePlan {
                codec: f.codec.into(),
                width,
                height,
                fit,
                times: times(self.pick, &self.span, input.duration)?,
                sprite,
                encoder_options: quality_options(f.codec, self.quality.unwrap_or(3)),
            }),
            packaging: None,
            target_vmaf: None,
            audio_tracks: AudioSelection::Main,
        })
    }
}

/// Encoder options for a Coconut quality (1 lowest .. 5 highest). MJPEG has no quality
/// AVOption: pinning the generic quantiser bounds to one value (2 best .. 31 worst) fixes it.
fn quality_options(codec: &str, quality: u8) -> Vec<(String, String)> {
    let at = usize::from(quality.clamp(1, 5)) - 1;
    match codec {
        "mjpeg" => {
            let q = [12, 8, 5, 3, 2][at].to_string();
            vec![("qmin".into(), q.clone()), ("qmax".into(), q)]
        }
        "webp" => vec![("quality".into(), [40, 60, 75, 85, 95][at].to_string())],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check, input, plan_with};
    use serde_json::json;

    fn image(format: &str, params: Json, i: &MediaInfo) -> Result<ImagePlan, Error> {
        plan_with(format, params, i).map(|p| p.image.unwrap())
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    /// A 100-second 1280x720 input.
    fn long() -> MediaInfo {
        let mut i = input(1280, 720, 0);
        i.duration = 100.0;
        i
    }

    #[test]
    fn formats_and_defaults() {
        for (format, codec, ext, mime) in [
            ("jpg", "mjpeg", "jpg", "image/jpeg"),
            ("jpeg", "mjpeg", "jpg", "image/jpeg"),
            ("png", "png", "png", "image/png"),
            ("webp", "webp", "webp", "image/webp"),
        ] {
            assert!(matches!(check(format, &json!({})), Ok(OutputType::Image)));
            let p = plan_with(format, json!({}), &long()).unwrap();
            assert!(matches!(p.output_type, OutputType::Image));
            assert_eq!((p.container.as_str(), p.extension.as_str(), p.mime_type.as_str()), ("image2", ext, mime));
            assert!(p.video.is_none() && p.audio.is_none());
            let img = p.image.unwrap();
            assert_eq!((img.codec.as_str(), img.width, img.height), (codec, 1280, 720));
            assert!(close(&img.times, &[50.0]), "one picture in the middle: {:?}", img.times);
            assert!(img.sprite.is_none());
        }
    }

    #[test]
    fn sizes_and_squares() {
        let i = long();
        let size = |format: &str, params: Json| {
            let img = image(format, params, &i).unwrap();
            (img.width, img.height, img.fit)
        };
        assert_eq!(size("jpg:320x", json!({})), (320, 180, Fit::Stretch));
        assert_eq!(size("jpg:x240", json!({})), (426, 240, Fit::Stretch));
        assert_eq!(size("png:300x300", json!({})), (300, 300, Fit::Pad));
        assert_eq!(size("png:300x300::fit=crop", json!({})), (300, 300, Fit::Crop));
        assert_eq!(size("jpg:4000x", json!({})), (1280, 720, Fit::Stretch), "never upscales");
        assert_eq!(size("jpg", json!({"square": true})), (720, 720, Fit::Crop));
        assert_eq!(size("jpg:200x", json!({"square": true})), (200, 200, Fit::Crop));
        assert_eq!(size("jpg:x100", json!({"square": true})), (100, 100, Fit::Crop));
        assert_eq!(size("jpg:2000x", json!({"square": true})), (720, 720, Fit::Crop));
        assert_eq!(size("jpg:150x150", json!({"square": true})), (150, 150, Fit::Crop));
        assert_eq!(size("jpg", json!({"square": false})), (1280, 720, Fit::Stretch));
        let portrait = input(1920, 1080, 90);
        let img = image("jpg:x320", json!({}), &portrait).unwrap();
        assert_eq!((img.width, img.height), (180, 320));
    }

    #[test]
    fn quality_options_per_codec() {
        let i = long();
        let opts = |format: &str| image(format, json!({}), &i).unwrap().encoder_options;
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(opts("jpg"), [pair("qmin", "5"), pair("qmax", "5")]);
        assert_eq!(opts("jpg:::quality=5"), [pair("qmin", "2"), pair("qmax", "2")]);
        assert_eq!(opts("jpg:::quality=1"), [pair("qmin", "12"), pair("qmax", "12")]);
        assert_eq!(opts("jpg:::quality=4"), [pair("qmin", "3"), pair("qmax", "3")]);
        assert_eq!(opts("jpg:::quality=2"), [pair("qmin", "8"), pair("qmax", "8")]);
        assert_eq!(opts("webp:::quality=4"), [pair("quality", "85")]);
        assert_eq!(opts("webp"), [pair("quality", "75")]);
        assert!(opts("png").is_empty());
    }

    #[test]
    fn times_for_number_and_interval() {
        let i = long();
        let t = |params: Json| image("jpg", params, &i).unwrap().times;
        assert!(close(&t(json!({"number": 4})), &[12.5, 37.5, 62.5, 87.5]));
        assert!(close(&t(json!({"number": 2, "offset": 20})), &[40.0, 80.0]));
        assert!(close(&t(json!({"number": 2, "offset": 20, "duration": 40})), &[30.0, 50.0]));
        assert!(close(&t(json!({"number": 2, "duration": 400})), &[25.0, 75.0]), "duration clipped to the input");
        assert!(close(&t(json!({"interval": 30})), &[0.0, 30.0, 60.0, 90.0]));
        assert!(close(&t(json!({"interval": 25})), &[0.0, 25.0, 50.0, 75.0]), "each time before the end");
        assert!(close(&t(json!({"interval": 10, "offset": 75})), &[75.0, 85.0, 95.0]));
        assert!(close(&t(json!({"interval": 10, "offset": 10, "duration": 20})), &[10.0, 20.0]));
        assert_eq!(t(json!({"interval": 0.001})).len(), MAX_PICTURES, "capped");
        assert_eq!(t(json!({"number": 1000})).len(), 1000);
        for times in [t(json!({"number": 7, "offset": 3.3})), t(json!({"interval": 0.7}))] {
            assert!(times.windows(2).all(|w| w[0] < w[1]) && times.iter().all(|&x| (0.0..100.0).contains(&x)));
        }
        assert!(image("jpg", json!({"offset": 100}), &i).unwrap_err().message.contains("offset"));
        let mut still = input(640, 480, 0);
        still.duration = 0.0;
        assert!(close(&image("jpg", json!({}), &still).unwrap().times, &[0.0]));
        assert!(image("jpg", json!({"number": 3}), &still).is_err());
        let mut audio_only = long();
        audio_only.has_video = false;
        assert!(image("jpg", json!({}), &audio_only).is_err());
    }

    #[test]
    fn sprites() {
        let i = long();
        let img = image("jpg", json!({"sprite": true, "number": 100, "vtt": "thumbs.vtt"}), &i).unwrap();
        let s = img.sprite.unwrap();
        assert_eq!((s.columns, s.rows, img.width, img.height), (10, 10, 160, 90), "small tiles by default");
        let img = image("jpg:200x", json!({"sprite": {"columns": 5, "rows": 4}, "interval": 2}), &i).unwrap();
        let s = img.sprite.unwrap();
        assert_eq!((s.columns, s.rows, img.width), (5, 4, 200));
        let img = image("jpg", json!({"sprite": {"columns": 3}}), &i).unwrap();
        assert_eq!((img.sprite.as_ref().unwrap().columns, img.sprite.as_ref().unwrap().rows), (3, 10));
        assert!(image("jpg", json!({"sprite": false}), &i).unwrap().sprite.is_none());
        let err = image("jpg:3840x2160", json!({"sprite": true}), &input(3840, 2160, 0)).unwrap_err();
        assert_eq!(err.code, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID);
        assert!(err.message.contains("sprite"), "{}", err.message);
    }

    #[test]
    fn params_errors_name_the_param() {
        for (format, params, needle) in [
            ("jpg", json!({"number": 0}), "'number'"),
            ("jpg", json!({"number": 1001}), "'number'"),
            ("jpg", json!({"number": 2.5}), "'number'"),
            ("jpg", json!({"number": "many"}), "'number'"),
            ("jpg", json!({"interval": 0}), "'interval'"),
            ("jpg", json!({"interval": -3}), "'interval'"),
            ("jpg", json!({"number": 3, "interval": 2}), "'interval'"),
            ("jpg", json!({"square": "yes"}), "'square'"),
            ("jpg:300x200", json!({"square": true}), "square"),
            ("jpg:::fit=pad", json!({"square": true}), "square"),
            ("jpg", json!({"sprite": 3}), "'sprite'"),
            ("jpg:2000x200", json!({"sprite": true}), "sprite sheets"),
            ("jpg:800x800", json!({"sprite": {"columns": 30, "rows": 1}}), "sprite sheets"),
            ("jpg", json!({"sprite": {"columns": 0}}), "'sprite.columns'"),
            ("jpg", json!({"sprite": {"rows": 51}}), "'sprite.rows'"),
            ("jpg", json!({"sprite": {"rows": 1.5}}), "'sprite.rows'"),
            ("jpg", json!({"sprite": {"cols": 5}}), "'sprite.cols'"),
            ("jpg", json!({"vtt": "a.vtt"}), "'vtt'"),
            ("jpg", json!({"sprite": true, "vtt": 3}), "'vtt'"),
            ("jpg", json!({"sprite": true, "vtt": ""}), "'vtt'"),
            ("jpg", json!({"offset": -1}), "'offset'"),
            ("jpg", json!({"duration": 0}), "'duration'"),
            ("jpg", json!({"fps": 10}), "'fps'"),
        ] {
            let err = check(format, &params).unwrap_err();
            assert_eq!(err.code, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID, "{format} {params}");
            assert!(err.message.contains(needle), "{format} {params}: {}", err.message);
        }
    }

    #[test]
    fn format_errors_name_the_part() {
        for (format, needle) in [
            ("jpg:h264", "'h264'"),
            ("jpg:320x_240p", "twice"),
            ("jpg:320x:aac", "'aac'"),
            ("jpg:::quality=6", "quality"),
            ("png:::quality=4", "PNG"),
            ("jpg:::preset=fast", "'preset'"),
            ("jpg:::colour=red", "'colour'"),
        ] {
            let err = check(format, &json!({})).unwrap_err();
            assert_eq!(err.code, copra_sdk::codes::FORMAT_NOT_VALID, "{format}");
            assert!(err.message.contains(needle), "{format}: {}", err.message);
        }
    }
}
