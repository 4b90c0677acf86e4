//! The `watermark` parameter of video and `httpstream` outputs: one image or a list,
//! each drawn over the picture.
//!
//! ```json
//! "watermark": {"url": "https://example.com/logo.png", "position": "bottom-right",
//!               "margin": 16, "width": "10%", "opacity": 0.8, "offset": 2, "duration": 10, "fade": 0.5}
//! ```

use copra_sdk::format::{OverlayAnchor, OverlayPlan};
use copra_sdk::{Error, Json};

use crate::params::{Params, number};

/// The parameter's name.
pub const KEY: &str = "watermark";

const KEYS: &[&str] = &["url", "storage", "position", "margin", "width", "opacity", "offset", "duration", "fade"];

/// The most overlays an output takes (the host holds plans to its own bound too).
const MAX_OVERLAYS: usize = 8;
const MAX_URL: usize = 2048;
const DEFAULT_MARGIN: f64 = 16.0;
const DEFAULT_WIDTH_PERCENT: f64 = 10.0;
const MAX_FADE: f64 = 60.0;

/// A length: pixels of the output, or a share of its width (or height, for `y`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Length {
    Pixels(f64),
    Percent(f64),
}

impl Length {
    fn parse(value: &Json, key: &str) -> Result<Self, Error> {
        if let Some(s) = value.as_str().map(str::trim).filter(|s| s.ends_with('%')) {
            let p = s[..s.len() - 1].trim().parse::<f64>().ok().filter(|p| p.is_finite() && (0.0..=100.0).contains(p));
            return p.map(Length::Percent).ok_or_else(|| Error::param(format!("The parameter '{key}' must be 0% to 100% or pixels, not {value}.")));
        }
        let px = number(value, key)?;
        if !(0.0..=16384.0).contains(&px) {
            return Err(Error::param(format!("The parameter '{key}' must be 0 to 16384 pixels, not {px}.")));
        }
        Ok(Length::Pixels(px))
    }

    fn pixels(&self, of: u32) -> f64 {
        match *self {
            Length::Pixels(px) => px,
            Length::Percent(p) => f64::from(of) * p / 100.0,
        }
    }
}

/// One watermark as the user asked for it, before the output's size is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    url: String,
    anchor: OverlayAnchor,
    /// Margins from the anchor's edges (or the `{"x", "y"}` position from the top left).
    x: Length,
    y: Length,
    width: Length,
    opacity: f32,
    offset: f64,
    duration: Option<f64>,
    fade: f64,
}

/// The output's watermarks (none without the parameter).
pub fn parse(params: &Params<'_>) -> Result<Vec<Watermark>, Error> {
    let Some(value) = params.get(KEY) else { return Ok(Vec::new()) };
    let name = params.name(KEY);
    let items: Vec<&Json> = match value {
        Json::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    if items.is_empty() || items.len() > MAX_OVERLAYS {
        return Err(Error::param(format!("The parameter '{name}' takes 1 to {MAX_OVERLAYS} images, not {}.", items.len())));
    }
    items.iter().enumerate().map(|(i, item)| one(item, &if items.len() == 1 { name.clone() } else { format!("{name}[{i}]") })).collect()
}

fn one(value: &Json, name: &str) -> Result<Watermark, Error> {
    let p = Params::nested(value, KEYS, name)?;
    if p.has("storage") {
        return Err(Error::param(format!("The parameter '{name}.storage' is not supported yet: give the image's 'url'.")));
    }
    let url = p.string("url")?.ok_or_else(|| Error::param(format!("The parameter '{name}.url' is required (an http or https URL of the image).")))?;
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.len() > MAX_URL {
        return Err(Error::param(format!("The parameter '{name}.url' must be an http or https URL of at most {MAX_URL} characters.")));
    }
    let margin = match p.get("margin") {
        Some(v) => Length::parse(v, &format!("{name}.margin"))?,
        None => Length::Pixels(DEFAULT_MARGIN),
    };
    let (anchor, x, y) = match p.get("position") {
        None => (OverlayAnchor::BottomRight, margin, margin),
        Some(Json::String(s)) => {
            let anchor = match s.trim().to_ascii_lowercase().as_str() {
                "top-left" => OverlayAnchor::TopLeft,
                "top-right" => OverlayAnchor::TopRight,
                "bottom-left" => OverlayAnchor::BottomLeft,
                "bottom-right" => OverlayAnchor::BottomRight,
                "center" | "centre" => OverlayAnchor::Center,
                _ => {
                    return Err(Error::param(format!(
                        "The parameter '{name}.position' must be top-left, top-right, bottom-left, bottom-right, center or {{\"x\", \"y\"}}, not {s:?}."
                    )));
                }
            };
            let shift = if anchor == OverlayAnchor::Center { Length::Pixels(0.0) } else { margin };
            (anchor, shift, shift)
        }
        Some(position @ Json::Object(_)) => {
            let at = Params::nested(position, &["x", "y"], &format!("{name}.position"))?;
            let coordinate = |k: &str| -> Result<Length, Error> {
                let v = at.get(k).ok_or_else(|| Error::param(format!("The parameter '{name}.position.{k}' is required.")))?;
                Length::parse(v, &format!("{name}.position.{k}"))
            };
            (OverlayAnchor::TopLeft, coordinate("x")?, coordinate("y")?)
        }
        Some(other) => return Err(Error::param(format!("The parameter '{name}.position' must be a corner's name or {{\"x\", \"y\"}}, not {other}."))),
    };
    let width = match p.get("width") {
        Some(v) => Length::parse(v, &format!("{name}.width"))?,
        None => Length::Percent(DEFAULT_WIDTH_PERCENT),
    };
    let opacity = p.number("opacity")?.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&opacity) {
        return Err(Error::param(format!("The parameter '{name}.opacity' must be 0 to 1, not {opacity}.")));
    }
    let offset = p.number("offset")?.unwrap_or(0.0);
    if offset < 0.0 {
        return Err(Error::param(format!("The parameter '{name}.offset' must be 0 or more seconds, not {offset}.")));
    }
    let duration = p.number("duration")?;
    if let Some(d) = duration.filter(|d| *d <= 0.0) {
        return Err(Error::param(format!("The parameter '{name}.duration' must be more than 0 seconds, not {d}.")));
    }
    let fade = p.number("fade")?.unwrap_or(0.0);
    if !(0.0..=MAX_FADE).contains(&fade) || duration.is_some_and(|d| 2.0 * fade > d) {
        return Err(Error::param(format!("The parameter '{name}.fade' must be 0 to {MAX_FADE} seconds and fit twice in its duration, not {fade}.")));
    }
    Ok(Watermark { url: url.trim().to_string(), anchor, x, y, width, opacity: opacity as f32, offset, duration, fade })
}

impl Watermark {
    /// The overlay for a picture of `width` × `height`.
    pub fn plan(&self, width: u32, height: u32) -> OverlayPlan {
        let w = self.width.pixels(width).round().clamp(2.0, f64::from(width.max(2)));
        OverlayPlan {
            url: self.url.clone(),
            width: w as u32,
            anchor: self.anchor,
            x: self.x.pixels(width).round() as i32,
            y: self.y.pixels(height).round() as i32,
            opacity: self.opacity,
            start: self.offset,
            end: self.duration.map(|d| self.offset + d),
            fade: self.fade,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: Json) -> Result<Vec<Watermark>, Error> {
        let params = json!({ "watermark": v });
        parse(&Params::new(&params, &["watermark"], "video").unwrap())
    }

    #[test]
    fn corners_shares_and_times() {
        let marks = of(json!({"url": "https://example.com/logo.png", "position": "top-right", "margin": 20, "width": "25%", "opacity": 0.5, "offset": 2, "duration": 4, "fade": 1})).unwrap();
        let o = marks[0].plan(1280, 720);
        assert_eq!((o.width, o.anchor, o.x, o.y, o.opacity), (320, OverlayAnchor::TopRight, 20, 20, 0.5));
        assert_eq!((o.start, o.end, o.fade), (2.0, Some(6.0), 1.0));
        let o = of(json!({"url": "http://x/l.png"})).unwrap()[0].plan(640, 360);
        assert_eq!((o.width, o.anchor, o.x, o.y, o.opacity, o.end), (64, OverlayAnchor::BottomRight, 16, 16, 1.0, None), "defaults");
        let o = of(json!({"url": "http://x/l.png", "position": {"x": "50%", "y": 10}, "width": 100})).unwrap()[0].plan(640, 360);
        assert_eq!((o.anchor, o.x, o.y, o.width), (OverlayAnchor::TopLeft, 320, 10, 100));
        assert_eq!(of(json!([{"url": "http://x/a.png"}, {"url": "http://x/b.png", "position": "center"}])).unwrap().len(), 2);
    }

    #[test]
    fn refusals_name_the_key() {
        for (v, says) in [
            (json!({}), "'watermark.url' is required"),
            (json!({"url": "file:///etc/passwd"}), "http or https"),
            (json!({"url": "http://x/l.png", "position": "middle"}), "'watermark.position'"),
            (json!({"url": "http://x/l.png", "opacity": 2}), "'watermark.opacity'"),
            (json!({"url": "http://x/l.png", "width": "150%"}), "'watermark.width'"),
            (json!({"url": "http://x/l.png", "duration": 1, "fade": 1}), "'watermark.fade'"),
            (json!({"url": "http://x/l.png", "glow": 1}), "'watermark.glow' is not valid"),
            (json!({"storage": "logo.png"}), "'watermark.storage' is not supported yet"),
            (json!(vec![json!({"url": "http://x/l.png"}); 9]), "1 to 8 images"),
            (json!([{"url": "http://x/l.png"}, {"url": "http://x/l.png", "opacity": -1}]), "'watermark[1].opacity'"),
        ] {
            let err = of(v.clone()).unwrap_err();
            assert_eq!(err.code, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID, "{v}");
            assert!(err.message.contains(says), "{v}: {}", err.message);
        }
    }
}
