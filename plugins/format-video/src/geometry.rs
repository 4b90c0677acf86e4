//! Output sizes. The host scales after turning the picture upright, so every size here
//! is the final, upright one: the input's rotation metadata and `rotate` are applied
//! before a requested size is interpreted.

use copra_sdk::Error;
use copra_sdk::format::{Fit, MediaInfo};

/// The requested frame size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// Keep the input's.
    Input,
    /// `720p`, `x720`.
    Height(u32),
    /// `1280x`.
    Width(u32),
    /// `1280x720`: both sides, the only form that may upscale.
    Exact(u32, u32),
}

pub const NAMED_HEIGHTS: &[u32] = &[240, 360, 480, 540, 576, 720, 1080, 1440, 2160];

/// Round to the nearest even number, at least 2 (encoders want even 4:2:0 sizes).
pub fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32).saturating_mul(2).max(2)
}

/// The input's picture size as it will be shown: after its own rotation metadata and an
/// extra clockwise `rotate`. Unknown sizes count as 2x2 so that no size is zero.
pub fn upright(input: &MediaInfo, rotate: i32) -> (f64, f64) {
    // Quarter turns swap the sides (-90 is 270, in case a prober reports it that way).
    let turn = input.rotation.rem_euclid(360) + rotate.rem_euclid(360);
    let (w, h) = if turn % 180 == 90 { (input.height, input.width) } else { (input.width, input.height) };
    (f64::from(w.max(2)), f64::from(h.max(2)))
}

/// The output size for an upright input size, aspect kept where a side is open, never
/// larger than the input unless both sides were given.
pub fn output_size(size: Size, (in_w, in_h): (f64, f64)) -> (u32, u32) {
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

/// The fit when none is asked for: letterbox an exact size whose aspect may differ;
/// one-sided sizes keep the aspect, so nothing needs cutting or padding.
pub fn default_fit(size: Size) -> Fit {
    match size {
        Size::Exact(..) => Fit::Pad,
        _ => Fit::Stretch,
    }
}

pub fn fit(name: &str) -> Option<Fit> {
    Some(match name {
        "stretch" => Fit::Stretch,
        "crop" => Fit::Crop,
        "pad" => Fit::Pad,
        _ => return None,
    })
}

/// swscale algorithm names, with Octet's `scale_interp_algo` names mapped onto them.
pub fn scaler(name: &str) -> Option<&'static str> {
    Some(match name {
        "nn" | "neighbor" => "neighbor",
        "linear" | "bilinear" => "bilinear",
        "cubic" | "bicubic" => "bicubic",
        "lanczos" => "lanczos",
        _ => return None,
    })
}

pub const DEFAULT_SCALER: &str = "bicubic";

/// `rotate=0|90|180|270`.
pub fn rotate(value: &str) -> Option<i32> {
    value.parse().ok().filter(|r| [0, 90, 180, 270].contains(r))
}

/// The side of a square picture: the asked side, or the input's shorter one, never
/// larger than the input's shorter side unless both sides were given (`300x300`).
pub fn square_side(size: Size, (in_w, in_h): (f64, f64)) -> Result<u32, Error> {
    let short = in_w.min(in_h);
    Ok(match size {
        Size::Input => even(short),
        Size::Width(s) | Size::Height(s) => even(f64::from(s).min(short)),
        Size::Exact(w, h) if w == h => even(f64::from(w)),
        Size::Exact(w, h) => {
            return Err(Error::param(format!("'square' needs one side or equal sides, not {w}x{h}.")));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::input;

    fn size(s: Size, i: &MediaInfo) -> (u32, u32) {
        output_size(s, upright(i, 0))
    }

    #[test]
    fn named_sizes_keep_aspect_and_are_even() {
        let hd = input(1280, 720, 0);
        assert_eq!(size(Size::Height(720), &hd), (1280, 720));
        assert_eq!(size(Size::Height(360), &hd), (640, 360));
        assert_eq!(size(Size::Height(240), &hd), (426, 240));
        assert_eq!(size(Size::Height(480), &hd), (854, 480));
    }

    #[test]
    fn never_upscales_unless_both_sides() {
        let hd = input(1280, 720, 0);
        assert_eq!(size(Size::Height(1080), &hd), (1280, 720));
        assert_eq!(size(Size::Width(1920), &hd), (1280, 720));
        assert_eq!(size(Size::Exact(1920, 1080), &hd), (1920, 1080));
        assert_eq!(size(Size::Input, &hd), (1280, 720));
    }

    #[test]
    fn rotation_swaps_before_sizing() {
        let portrait = input(1920, 1080, 90);
        assert_eq!(size(Size::Height(720), &portrait), (406, 720));
        assert_eq!(size(Size::Width(1024), &portrait), (1024, 1820));
        assert_eq!(size(Size::Height(720), &input(1920, 1080, 270)), (406, 720));
        assert_eq!(size(Size::Height(720), &input(1920, 1080, -90)), (406, 720));
        // An extra quarter turn on top of the input's own turns it back.
        assert_eq!(output_size(Size::Input, upright(&portrait, 90)), (1920, 1080));
        assert_eq!(output_size(Size::Input, upright(&input(1920, 1080, 0), 270)), (1080, 1920));
        assert_eq!(output_size(Size::Input, upright(&input(1920, 1080, 180), 180)), (1920, 1080));
    }

    #[test]
    fn odd_and_unknown_inputs_give_even_sizes() {
        let (w, h) = size(Size::Input, &input(1279, 719, 0));
        assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h}");
        let (w, h) = size(Size::Height(361), &input(1920, 1080, 0));
        assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h}");
        assert_eq!(size(Size::Input, &input(0, 0, 0)), (2, 2));
        assert_eq!(size(Size::Exact(301, 301), &input(1920, 1080, 0)), (302, 302));
    }

    #[test]
    fn names() {
        assert_eq!(scaler("nn"), Some("neighbor"));
        assert_eq!(scaler("linear"), Some("bilinear"));
        assert_eq!(scaler("cubic"), Some("bicubic"));
        assert_eq!(scaler("lanczos"), Some("lanczos"));
        assert_eq!(scaler("spline"), None);
        assert_eq!(fit("crop"), Some(Fit::Crop));
        assert_eq!(fit("cover"), None);
        assert_eq!(rotate("270"), Some(270));
        assert_eq!(rotate("45"), None);
        assert_eq!(rotate("-90"), None);
        assert_eq!(default_fit(Size::Exact(2, 2)), Fit::Pad);
        assert_eq!(default_fit(Size::Width(2)), Fit::Stretch);
    }

    #[test]
    fn squares() {
        let hd = (1280.0, 720.0);
        assert_eq!(square_side(Size::Input, hd).unwrap(), 720);
        assert_eq!(square_side(Size::Width(200), hd).unwrap(), 200);
        assert_eq!(square_side(Size::Height(1000), hd).unwrap(), 720);
        assert_eq!(square_side(Size::Exact(1000, 1000), hd).unwrap(), 1000);
        let err = square_side(Size::Exact(300, 200), hd).unwrap_err();
        assert!(err.message.contains("300x200"));
    }
}
