//! The options part (`quality=4,maxrate=4000k,force_sdr`): each key's value is checked
//! here on its own; whether it suits the codec is decided in `encode`.

use copra_sdk::Error;
use copra_sdk::format::Fit;

use crate::codecs::{self, PRESETS, X264_TUNES};
use crate::geometry;
use crate::grammar::{self, Opt, kbps};

/// Every option key the grammar knows (`keyint` is `gop`).
pub const KEYS: &[&str] = &[
    "quality",
    "vmaf",
    "maxrate",
    "bufsize",
    "pix_fmt",
    "profile",
    "level",
    "preset",
    "tune",
    "gop",
    "keyint",
    "keyframe_interval",
    "force_sdr",
    "rotate",
    "fit",
    "scale",
    "rc",
    "cq",
    "qp",
    "coder",
];

/// Rate control modes, with Octet's (NVENC-style) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rc {
    /// Constant quality (`quality`, `cq`).
    Crf,
    /// The video bitrate as an average (`vbr_hq` is the same here).
    Vbr,
    /// The video bitrate as a constant rate with a one-second buffer.
    Cbr,
    /// A constant quantiser (`qp`).
    ConstQp,
}

/// A speed preset: an index into the x264 names and whether it asks for low latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub speed: usize,
    pub zerolatency: bool,
}

fn preset(value: &str) -> Option<Preset> {
    let at = |name: &str| PRESETS.iter().position(|p| *p == name);
    // Octet's NVENC preset names.
    let (speed, zerolatency) = match value {
        "hp" => (at("veryfast")?, false),
        "hq" => (at("slow")?, false),
        "ll" => (at("ultrafast")?, true),
        "llhq" => (at("medium")?, true),
        "llhp" => (at("superfast")?, true),
        _ => (at(value)?, false),
    };
    Some(Preset { speed, zerolatency })
}

/// The options of a video-like output, each checked on its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoOptions {
    pub quality: Option<u8>,
    /// A target mean VMAF (`vmaf=93`): the setting is searched on samples of the input.
    pub vmaf: Option<f32>,
    pub maxrate: Option<u32>,
    pub bufsize: Option<u32>,
    pub pix_fmt: Option<&'static str>,
    pub profile: Option<String>,
    /// `auto` is kept, so that it is checked against the codec like any level.
    pub level: Option<String>,
    pub preset: Option<Preset>,
    pub tune: Vec<&'static str>,
    pub gop: Option<u32>,
    pub keyframe_interval: Option<f64>,
    pub force_sdr: bool,
    pub rotate: i32,
    pub fit: Option<Fit>,
    pub scaler: Option<&'static str>,
    pub rc: Option<Rc>,
    pub cq: Option<u8>,
    /// `qp=-1` (automatic) is `None`.
    pub qp: Option<u8>,
    pub coder: Option<&'static str>,
}

fn ranged<T: std::str::FromStr + PartialOrd>(value: &str, lo: T, hi: T) -> Option<T> {
    value.parse().ok().filter(|v| *v >= lo && *v <= hi)
}

fn pick(value: &str, names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|n| *n == value)
}

/// Parse the options part. `allowed` is the subset of [`KEYS`] this output takes; `what`
/// names the output kind for the message about the others.
pub fn parse(part: &str, allowed: &[&str], what: &str, format: &str) -> Result<VideoOptions, Error> {
    let mut o = VideoOptions::default();
    for opt in grammar::options(part, format)? {
        if !KEYS.contains(&opt.key) {
            return Err(Error::format(format!("Unknown option '{}' in format '{format}'.", opt.key)));
        }
        if !allowed.contains(&opt.key) {
            return Err(Error::format(format!(
                "The option '{}' in format '{format}' does not apply to {what}; these take: {}.",
                opt.key,
                if allowed.is_empty() { "no options".to_string() } else { allowed.join(", ") }
            )));
        }
        if opt.key == "force_sdr" {
            o.force_sdr = match opt.value {
                None | Some("1" | "true") => true,
                Some("0" | "false") => false,
                Some(_) => return Err(opt.bad(format, "force_sdr is a flag: force_sdr, force_sdr=1 or force_sdr=0.")),
            };
            continue;
        }
        apply(&mut o, opt, format)?;
    }
    Ok(o)
}

fn apply(o: &mut VideoOptions, opt: Opt<'_>, format: &str) -> Result<(), Error> {
    let value = opt.value(format)?;
    let bad = |takes: &str| opt.bad(format, takes);
    match opt.key {
        "quality" => o.quality = Some(ranged(value, 1, 5).ok_or_else(|| bad("quality is 1 to 5."))?),
        "vmaf" => o.vmaf = Some(ranged(value, 50.0, 99.0).ok_or_else(|| bad("vmaf is a target mean VMAF from 50 to 99."))?),
        "maxrate" => o.maxrate = Some(kbps(value).filter(|&k| k <= 200_000).ok_or_else(|| bad("a rate such as 4000k."))?),
        "bufsize" => o.bufsize = Some(kbps(value).filter(|&k| k <= 400_000).ok_or_else(|| bad("a size such as 8000k."))?),
        "pix_fmt" => {
            let takes = format!("one of {}.", codecs::PIX_FMTS.join(", "));
            o.pix_fmt = Some(pick(value, codecs::PIX_FMTS).ok_or_else(|| bad(&takes))?);
        }
        "profile" => o.profile = Some(value.to_string()),
        "level" => o.level = Some(value.to_string()),
        "preset" => {
            let takes = format!("one of {} or hp, hq, ll, llhq, llhp.", PRESETS.join(", "));
            o.preset = Some(preset(value).ok_or_else(|| bad(&takes))?);
        }
        "tune" => {
            let takes = format!("one or more of {} joined by '+'.", X264_TUNES.join(", "));
            for tune in value.split('+') {
                let tune = pick(tune, X264_TUNES).ok_or_else(|| bad(&takes))?;
                if o.tune.contains(&tune) {
                    return Err(bad("a tune is given twice."));
                }
                o.tune.push(tune);
            }
        }
        "gop" | "keyint" => {
            if o.gop.is_some() {
                return Err(bad("gop and keyint are the same option."));
            }
            o.gop = Some(ranged(value, 1, 1000).ok_or_else(|| bad("a number of frames from 1 to 1000."))?);
        }
        "keyframe_interval" => {
            let secs: f64 =
                value.parse().ok().filter(|s: &f64| *s > 0.0 && *s <= 60.0).ok_or_else(|| bad("seconds, more than 0 and at most 60."))?;
            o.keyframe_interval = Some(secs);
        }
        "rotate" => o.rotate = geometry::rotate(value).ok_or_else(|| bad("0, 90, 180 or 270."))?,
        "fit" => o.fit = Some(geometry::fit(value).ok_or_else(|| bad("stretch, crop or pad."))?),
        "scale" => {
            o.scaler = Some(geometry::scaler(value).ok_or_else(|| bad("nn, neighbor, linear, bilinear, cubic, bicubic or lanczos."))?)
        }
        "rc" => {
            o.rc = Some(match value {
                "crf" => Rc::Crf,
                "vbr" | "vbr_hq" => Rc::Vbr,
                "cbr" | "cbr_hq" => Rc::Cbr,
                "constqp" => Rc::ConstQp,
                _ => return Err(bad("crf, vbr, vbr_hq, cbr, cbr_hq or constqp.")),
            })
        }
        "cq" => o.cq = Some(ranged(value, 0, 51).ok_or_else(|| bad("cq is 0 to 51."))?),
        "qp" => {
            let qp: i32 = ranged(value, -1, 51).ok_or_else(|| bad("qp is -1 (automatic) to 51."))?;
            o.qp = u8::try_from(qp).ok();
        }
        "coder" => o.coder = Some(pick(value, &["cabac", "cavlc"]).ok_or_else(|| bad("cabac or cavlc."))?),
        _ => return Err(Error::format(format!("Unknown option '{}' in format '{format}'.", opt.key))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(part: &str) -> Result<VideoOptions, Error> {
        parse(part, KEYS, "video", part)
    }

    #[test]
    fn every_option_parses() {
        let o = parse_all(
            "quality=4,maxrate=4000k,bufsize=8000k,pix_fmt=yuv420p10le,profile=high10,level=4.1,preset=slow,tune=film+zerolatency,\
             keyint=48,keyframe_interval=2,force_sdr,rotate=90,fit=crop,scale=nn,rc=vbr_hq,cq=20,qp=-1,coder=cavlc",
        )
        .unwrap();
        assert_eq!(o.quality, Some(4));
        assert_eq!((o.maxrate, o.bufsize), (Some(4000), Some(8000)));
        assert_eq!(o.pix_fmt, Some("yuv420p10le"));
        assert_eq!((o.profile.as_deref(), o.level.as_deref()), (Some("high10"), Some("4.1")));
        assert_eq!(o.preset, Some(Preset { speed: 6, zerolatency: false }));
        assert_eq!(o.tune, ["film", "zerolatency"]);
        assert_eq!((o.gop, o.keyframe_interval), (Some(48), Some(2.0)));
        assert!(o.force_sdr);
        assert_eq!((o.rotate, o.fit, o.scaler), (90, Some(Fit::Crop), Some("neighbor")));
        assert_eq!((o.rc, o.cq, o.qp, o.coder), (Some(Rc::Vbr), Some(20), None, Some("cavlc")));
        assert_eq!(parse_all("qp=30").unwrap().qp, Some(30));
        assert_eq!(parse_all("rc=cbr_hq").unwrap().rc, Some(Rc::Cbr));
        assert_eq!(parse_all("rc=constqp").unwrap().rc, Some(Rc::ConstQp));
        assert_eq!(parse_all("gop=250").unwrap().gop, Some(250));
    }

    #[test]
    fn octet_preset_aliases() {
        let p = |v: &str| parse_all(&format!("preset={v}")).unwrap().preset.unwrap();
        assert_eq!(p("hp"), Preset { speed: 2, zerolatency: false });
        assert_eq!(p("hq"), Preset { speed: 6, zerolatency: false });
        assert_eq!(p("ll"), Preset { speed: 0, zerolatency: true });
        assert_eq!(p("llhq"), Preset { speed: 5, zerolatency: true });
        assert_eq!(p("llhp"), Preset { speed: 1, zerolatency: true });
        assert_eq!(p("veryslow"), Preset { speed: 8, zerolatency: false });
    }

    #[test]
    fn force_sdr_forms() {
        for (part, expected) in [
            ("force_sdr", true),
            ("force_sdr=1", true),
            ("force_sdr=true", true),
            ("force_sdr=0", false),
            ("force_sdr=false", false),
            ("", false),
        ] {
            assert_eq!(parse_all(part).unwrap().force_sdr, expected, "{part}");
        }
        assert!(parse_all("force_sdr=maybe").is_err());
    }

    #[test]
    fn bad_values_name_the_option() {
        for part in [
            "quality=0",
            "quality=6",
            "quality=high",
            "maxrate=4000",
            "maxrate=0k",
            "bufsize=x",
            "pix_fmt=rgb24",
            "preset=placebo",
            "preset=",
            "tune=film+film",
            "tune=cinema",
            "gop=0",
            "gop=1001",
            "keyint=2.5",
            "keyframe_interval=0",
            "keyframe_interval=61",
            "keyframe_interval=abc",
            "rotate=45",
            "fit=cover",
            "scale=spline",
            "rc=abr",
            "cq=52",
            "cq=-1",
            "qp=-2",
            "qp=52",
            "coder=ac",
            "gop=10,keyint=10",
        ] {
            let err = parse_all(part).unwrap_err();
            assert_eq!(err.code, copra_sdk::codes::FORMAT_NOT_VALID);
            let key = part.split('=').next().unwrap();
            assert!(err.message.contains(key), "{part}: {}", err.message);
        }
        for bare in ["quality", "preset", "gop"] {
            assert!(parse_all(bare).unwrap_err().message.contains("key=value"), "{bare}");
        }
    }

    #[test]
    fn unknown_and_unwanted_options() {
        let err = parse_all("colour=red").unwrap_err();
        assert_eq!(err.message, "Unknown option 'colour' in format 'colour=red'.");
        let err = parse("quality=3", &["fit"], "gif outputs", "gif:::quality=3").unwrap_err();
        assert!(err.message.contains("'quality'") && err.message.contains("gif outputs"), "{}", err.message);
    }
}
