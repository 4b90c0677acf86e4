//! Options checked against the codec, and the encoder settings they become. Everything
//! here is decided before the input is known (so `check` refuses what an encoder would);
//! only the bitrates that depend on the output size are filled in at plan time.

use copra_sdk::Error;

use crate::codecs::{H264_LEVELS, HEVC_LEVELS, MEDIUM, VideoCodec, X264_PSY_TUNES, X265_TUNES, table_bitrate};
use crate::options::{Rc, VideoOptions};

use VideoCodec::*;

/// How the encoder spends bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Constant quality.
    Crf(f32),
    /// Constant quality under a bitrate ceiling from the size table at this quality
    /// (libvpx's VP8 needs a target bitrate beside its crf).
    CrfTable(f32, u8),
    /// A bitrate from the size table at this quality (encoders without a crf).
    Table(u8),
    /// An average bitrate.
    Average(u32),
    /// A constant bitrate.
    Cbr(u32),
    /// A constant quantiser.
    ConstQp(u8),
}

/// The encoder settings of one video stream, before the output size is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoding {
    pub codec: VideoCodec,
    pub pix_fmt: &'static str,
    pub rate: Rate,
    /// The VBV ceiling (kbit/s) and buffer, emitted as the generic `maxrate`/`bufsize`.
    pub maxrate: Option<u32>,
    pub bufsize: Option<u32>,
    /// Encoder options that do not depend on the size (`preset`, `profile`, ...).
    pub options: Vec<(String, String)>,
    pub gop: Option<u32>,
    pub keyframe_interval: Option<f64>,
}

/// The settings that depend on the output size and frame rate.
pub struct Resolved {
    pub bitrate_kbps: Option<u32>,
    pub crf: Option<f32>,
    pub encoder_options: Vec<(String, String)>,
}

fn opt(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_string(), value.into())
}

fn error(codec: VideoCodec, message: impl std::fmt::Display) -> Error {
    Error::format(format!("{message} (codec {}).", codec.name()))
}

fn not_for(codec: VideoCodec, option: &str, takes: &str) -> Error {
    Error::format(format!("The option '{option}' does not apply to {}; {takes}.", codec.name()))
}

/// Check `o` against `codec` and decide the encoder settings. `bitrate` is the video
/// part's `3000k`. `signal_hrd` lets a constant-bitrate h264 carry HRD signalling and
/// filler data: broadcast MPEG-TS wants it, MP4 muxing of filler data is not portable.
pub fn encoding(codec: VideoCodec, bitrate: Option<u32>, o: &VideoOptions, signal_hrd: bool) -> Result<Encoding, Error> {
    let pix_fmt = pix_fmt(codec, o)?;
    let mut options = Vec::new();
    speed_and_tune(codec, o, &mut options)?;
    profile(codec, o, pix_fmt, &mut options)?;
    let mut x265_params = vec!["log-level=error".to_string()];
    level(codec, o, &mut options, &mut x265_params)?;
    if let Some(coder) = o.coder {
        if codec != H264 {
            return Err(not_for(codec, "coder", "it is an h264 option"));
        }
        if coder == "cabac" && o.profile.as_deref() == Some("baseline") {
            return Err(error(codec, "The baseline profile has no CABAC: drop coder=cabac or pick another profile"));
        }
        options.push(opt("coder", coder));
    }
    let rate = rate(codec, bitrate, o)?;
    let (maxrate, bufsize) = vbv(codec, bitrate, rate, o)?;
    if let Rate::Cbr(_) = rate {
        match codec {
            H264 if signal_hrd => options.push(opt("nal-hrd", "cbr")),
            H264 => {}
            Hevc => x265_params.push("strict-cbr=1".into()),
            // libvpx and mpeg4 hold the rate when min, max and target are equal.
            Vp8 | Vp9 | Mpeg4 => {
                if let Some(b) = bitrate {
                    options.push(opt("minrate", format!("{b}k")));
                }
            }
            Av1 | Theora => {}
        }
    }
    if codec == Hevc {
        // x265 prints its banner and statistics to stderr otherwise.
        options.push(opt("x265-params", x265_params.join(":")));
    }
    Ok(Encoding { codec, pix_fmt, rate, maxrate, bufsize, options, gop: o.gop, keyframe_interval: o.keyframe_interval })
}

fn pix_fmt(codec: VideoCodec, o: &VideoOptions) -> Result<&'static str, Error> {
    match o.pix_fmt {
        Some(p) if codec.pix_fmts().contains(&p) => Ok(p),
        Some(p) => Err(Error::format(format!(
            "The pix_fmt '{p}' is not available for {}; it takes {}.",
            codec.name(),
            codec.pix_fmts().join(", ")
        ))),
        // 8-bit 4:2:0 plays everywhere, so it is the default even for 10-bit inputs.
        None => Ok(o.profile.as_deref().map_or("yuv420p", |p| codec.profile_pix_fmt(p))),
    }
}

fn speed_and_tune(codec: VideoCodec, o: &VideoOptions, options: &mut Vec<(String, String)>) -> Result<(), Error> {
    let preset = o.preset.unwrap_or(crate::options::Preset { speed: MEDIUM, zerolatency: false });
    if o.preset.is_some() && matches!(codec, Mpeg4 | Theora) {
        return Err(not_for(codec, "preset", "it has no speed presets"));
    }
    let mut tunes = o.tune.clone();
    if preset.zerolatency && !tunes.contains(&"zerolatency") {
        tunes.push("zerolatency");
    }
    match codec {
        H264 | Hevc | Av1 => {}
        Vp8 | Vp9 => options.push(opt("deadline", if preset.zerolatency { "realtime" } else { "good" })),
        Mpeg4 | Theora => {}
    }
    if let Some((key, value)) = codec.speed(preset.speed) {
        options.push(opt(key, value));
    }
    if codec == Vp9 {
        options.push(opt("row-mt", "1"));
    }
    if tunes.is_empty() {
        return Ok(());
    }
    match codec {
        H264 => {
            let psy = tunes.iter().filter(|t| X264_PSY_TUNES.contains(t)).count();
            if psy > 1 {
                return Err(error(
                    codec,
                    format!("x264 takes one of film, animation, grain, stillimage, psnr, ssim, not '{}'", tunes.join("+")),
                ));
            }
            options.push(opt("tune", tunes.join(",")));
        }
        Hevc => {
            if let Some(bad) = tunes.iter().find(|t| !X265_TUNES.contains(t)) {
                return Err(error(codec, format!("x265 has no tune '{bad}'; it takes {}", X265_TUNES.join(", "))));
            }
            if tunes.len() > 1 {
                return Err(error(codec, format!("x265 takes a single tune, not '{}'", tunes.join("+"))));
            }
            options.push(opt("tune", tunes.join(",")));
        }
        // libvpx has no tunes; low latency is its realtime deadline without lookahead.
        Vp8 | Vp9 if o.tune.is_empty() => options.push(opt("lag-in-frames", "0")),
        _ if !o.tune.is_empty() => return Err(not_for(codec, "tune", "tunes are x264 and x265 options")),
        _ => return Err(not_for(codec, "preset", "it has no low-latency preset (ll, llhq, llhp)")),
    }
    Ok(())
}

fn profile(codec: VideoCodec, o: &VideoOptions, pix_fmt: &str, options: &mut Vec<(String, String)>) -> Result<(), Error> {
    let Some(profile) = o.profile.as_deref() else {
        // x264 and x265 pick the lowest profile that carries the pixel format.
        return Ok(());
    };
    if codec.profiles().is_empty() {
        return Err(not_for(codec, "profile", "it has no profiles to choose"));
    }
    if !codec.profiles().contains(&profile) {
        return Err(error(codec, format!("Unknown profile '{profile}'; it takes {}", codec.profiles().join(", "))));
    }
    if !codec.profile_allows(profile, pix_fmt) {
        return Err(error(codec, format!("The profile '{profile}' cannot carry pix_fmt {pix_fmt}")));
    }
    match codec {
        // SVT-AV1 only encodes main, which it signals by itself.
        Av1 => {}
        _ => options.push(opt("profile", profile)),
    }
    Ok(())
}

fn level(codec: VideoCodec, o: &VideoOptions, options: &mut Vec<(String, String)>, x265_params: &mut Vec<String>) -> Result<(), Error> {
    let Some(level) = o.level.as_deref() else { return Ok(()) };
    let levels = match codec {
        H264 => H264_LEVELS,
        Hevc => HEVC_LEVELS,
        _ => return Err(not_for(codec, "level", "levels are h264 and hevc options")),
    };
    if level == "auto" {
        return Ok(());
    }
    if !levels.contains(&level) {
        return Err(error(codec, format!("Unknown level '{level}'; it takes auto, {}", levels.join(", "))));
    }
    match codec {
        Hevc => x265_params.push(format!("level-idc={level}")),
        _ => options.push(opt("level", level)),
    }
    Ok(())
}

/// The rate-control mode from `rc`, `quality`, `cq`, `qp` and the video bitrate.
fn rate(codec: VideoCodec, bitrate: Option<u32>, o: &VideoOptions) -> Result<Rate, Error> {
    let quality = o.quality.unwrap_or(3);
    if o.qp.is_some() && !matches!(o.rc, None | Some(Rc::ConstQp)) {
        return Err(error(codec, "qp is the constant quantiser of rc=constqp; drop it or rc"));
    }
    if let Some(cq) = o.cq {
        let (lo, hi) = codec.crf_range();
        if !codec.has_crf() {
            return Err(not_for(codec, "cq", "it has no constant-quality mode"));
        }
        if cq < lo || cq > hi {
            return Err(error(codec, format!("cq={cq} is outside the encoder's crf range {lo}..{hi}")));
        }
    }
    let needs_bitrate = |mode: &str| error(codec, format!("rc={mode} needs a video bitrate such as 3000k in the video part"));
    match o.rc {
        Some(Rc::ConstQp) | None if o.rc == Some(Rc::ConstQp) || o.qp.is_some() => {
            if !codec.has_qp() {
                return Err(not_for(codec, "rc=constqp", "constant QP is an h264, hevc and av1 mode"));
            }
            if bitrate.is_some() || o.cq.is_some() || o.maxrate.is_some() || o.bufsize.is_some() {
                return Err(error(codec, "rc=constqp takes no bitrate, cq, maxrate or bufsize"));
            }
            let qp = o.qp.or_else(|| codec.crf(quality).map(|c| c.round() as u8)).unwrap_or(23);
            Ok(Rate::ConstQp(qp))
        }
        Some(Rc::Cbr) => {
            let kbps = bitrate.ok_or_else(|| needs_bitrate("cbr"))?;
            if codec == Av1 {
                return Err(not_for(codec, "rc=cbr", "SVT-AV1 has no constant-bitrate mode for files; use rc=vbr"));
            }
            if o.cq.is_some() || o.maxrate.is_some() {
                return Err(error(codec, "rc=cbr sets maxrate to the bitrate itself and takes no cq or maxrate"));
            }
            Ok(Rate::Cbr(kbps))
        }
        Some(Rc::Vbr) if bitrate.is_none() => Err(needs_bitrate("vbr")),
        Some(Rc::Crf) if bitrate.is_some() => Err(error(codec, "rc=crf takes no video bitrate; cap it with maxrate=... instead")),
        Some(Rc::Crf) if !codec.has_crf() => Err(not_for(codec, "rc=crf", "it has no constant-quality mode; give a bitrate")),
        _ => Ok(match (o.cq, bitrate) {
            // A target quality with a bitrate: constant quality capped at the bitrate.
            (Some(cq), _) if codec == Vp8 && bitrate.is_none() => Rate::CrfTable(f32::from(cq), quality),
            (Some(cq), _) => Rate::Crf(f32::from(cq)),
            (None, Some(kbps)) => Rate::Average(kbps),
            (None, None) => match codec.crf(quality) {
                Some(crf) if codec == Vp8 => Rate::CrfTable(crf, quality),
                Some(crf) => Rate::Crf(crf),
                None => Rate::Table(quality),
            },
        }),
    }
}

/// The VBV ceiling and buffer: `maxrate` (+ a two-second buffer), a cq's bitrate as a
/// cap, or a CBR's one-second buffer.
fn vbv(codec: VideoCodec, bitrate: Option<u32>, rate: Rate, o: &VideoOptions) -> Result<(Option<u32>, Option<u32>), Error> {
    let maxrate = match rate {
        Rate::Cbr(kbps) => Some(kbps),
        Rate::Crf(_) if o.cq.is_some() => o.maxrate.or(bitrate),
        Rate::ConstQp(_) => None,
        _ => o.maxrate,
    };
    if let (Rate::Average(kbps), Some(max)) = (rate, maxrate)
        && max < kbps
    {
        return Err(error(codec, format!("maxrate={max}k is below the video bitrate {kbps}k")));
    }
    let Some(max) = maxrate else {
        if o.bufsize.is_some() {
            return Err(error(codec, "bufsize only applies with maxrate (or rc=cbr)"));
        }
        return Ok((None, None));
    };
    let default_buffer = if matches!(rate, Rate::Cbr(_)) { max } else { max.saturating_mul(2) };
    Ok((Some(max), Some(o.bufsize.unwrap_or(default_buffer))))
}

impl Encoding {
    /// Fill in what depends on the output size and frame rate.
    pub fn resolve(&self, width: u32, height: u32, fps: f64) -> Resolved {
        let table = |quality: u8| table_bitrate(width, height, fps, quality);
        let vpx = matches!(self.codec, Vp8 | Vp9);
        let (bitrate_kbps, crf) = match self.rate {
            // libvpx's constrained quality: the ceiling is its target bitrate.
            Rate::Crf(crf) => (self.maxrate.filter(|_| vpx), Some(crf)),
            Rate::CrfTable(crf, quality) => (Some(self.maxrate.unwrap_or_else(|| table(quality))), Some(crf)),
            Rate::Table(quality) => (Some(table(quality)), None),
            Rate::Average(kbps) | Rate::Cbr(kbps) => (Some(kbps), None),
            Rate::ConstQp(_) => (None, None),
        };
        let mut encoder_options = self.options.clone();
        if let Rate::ConstQp(qp) = self.rate {
            encoder_options.push(opt("qp", qp.to_string()));
        }
        if let (Some(max), Some(buf)) = (self.maxrate, self.bufsize) {
            encoder_options.push(opt("maxrate", format!("{max}k")));
            encoder_options.push(opt("bufsize", format!("{buf}k")));
        }
        Resolved { bitrate_kbps, crf, encoder_options }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options;

    fn enc(codec: VideoCodec, bitrate: Option<u32>, part: &str) -> Result<Encoding, Error> {
        let o = options::parse(part, options::KEYS, "video", part)?;
        encoding(codec, bitrate, &o, true)
    }

    fn has(e: &[(String, String)], key: &str, value: &str) -> bool {
        e.iter().any(|(k, v)| k == key && v == value)
    }

    fn resolved(codec: VideoCodec, bitrate: Option<u32>, part: &str) -> Resolved {
        enc(codec, bitrate, part).unwrap().resolve(1280, 720, 25.0)
    }

    #[test]
    fn defaults_per_codec() {
        let r = resolved(H264, None, "");
        assert_eq!((r.crf, r.bitrate_kbps), (Some(23.0), None));
        assert_eq!(r.encoder_options, [opt("preset", "medium")]);
        let r = resolved(Hevc, None, "");
        assert_eq!(r.crf, Some(28.0));
        assert_eq!(r.encoder_options, [opt("preset", "medium"), opt("x265-params", "log-level=error")]);
        let r = resolved(Vp9, None, "");
        assert_eq!((r.crf, r.bitrate_kbps), (Some(32.0), None), "vp9 quality mode: b 0");
        assert_eq!(r.encoder_options, [opt("deadline", "good"), opt("cpu-used", "4"), opt("row-mt", "1")]);
        let r = resolved(Vp8, None, "");
        assert_eq!((r.crf, r.bitrate_kbps), (Some(12.0), Some(3000)), "vp8 crf under a bitrate cap");
        assert_eq!(r.encoder_options, [opt("deadline", "good"), opt("cpu-used", "4")]);
        let r = resolved(Av1, None, "");
        assert_eq!((r.crf, r.bitrate_kbps), (Some(35.0), None));
        assert_eq!(r.encoder_options, [opt("preset", "8")]);
        for codec in [Mpeg4, Theora] {
            let r = resolved(codec, None, "");
            assert_eq!((r.crf, r.bitrate_kbps), (None, Some(3000)), "{codec:?}");
            assert!(r.encoder_options.is_empty());
        }
        assert_eq!(resolved(Mpeg4, None, "quality=5").bitrate_kbps, Some(6000));
        assert_eq!(resolved(Theora, None, "quality=1").bitrate_kbps, Some(1500));
    }

    #[test]
    fn quality_tables_per_codec() {
        for (codec, table) in [
            (H264, [30.0, 27.0, 23.0, 21.0, 18.0]),
            (Hevc, [35.0, 32.0, 28.0, 26.0, 23.0]),
            (Vp9, [40.0, 36.0, 32.0, 28.0, 24.0]),
            (Av1, [45.0, 40.0, 35.0, 30.0, 25.0]),
            (Vp8, [32.0, 20.0, 12.0, 8.0, 4.0]),
        ] {
            for (q, crf) in (1..=5).zip(table) {
                assert_eq!(resolved(codec, None, &format!("quality={q}")).crf, Some(crf), "{codec:?} {q}");
            }
        }
        for (q, kbps) in (1..=5).zip([1500, 2100, 3000, 4200, 6000]) {
            assert_eq!(resolved(Vp8, None, &format!("quality={q}")).bitrate_kbps, Some(kbps));
        }
    }

    #[test]
    fn bitrates_and_caps() {
        let r = resolved(H264, Some(3000), "quality=5");
        assert_eq!((r.crf, r.bitrate_kbps), (None, Some(3000)), "a bitrate overrides quality");
        let r = resolved(H264, None, "maxrate=4000k");
        assert_eq!((r.crf, r.bitrate_kbps), (Some(23.0), None));
        assert!(has(&r.encoder_options, "maxrate", "4000k") && has(&r.encoder_options, "bufsize", "8000k"));
        let r = resolved(H264, None, "maxrate=4000k,bufsize=4000k");
        assert!(has(&r.encoder_options, "bufsize", "4000k"));
        let r = resolved(Vp9, None, "maxrate=2000k");
        assert_eq!((r.crf, r.bitrate_kbps), (Some(32.0), Some(2000)), "vp9 constrained quality");
        let r = resolved(Vp8, None, "maxrate=2000k");
        assert_eq!(r.bitrate_kbps, Some(2000));
        let r = resolved(Mpeg4, Some(1000), "");
        assert_eq!(r.bitrate_kbps, Some(1000));
        assert!(enc(H264, None, "bufsize=4000k").unwrap_err().message.contains("bufsize"));
        assert!(enc(H264, Some(3000), "maxrate=2000k").unwrap_err().message.contains("maxrate"));
        let r = resolved(H264, Some(3000), "maxrate=6000k");
        assert_eq!(r.bitrate_kbps, Some(3000));
        assert!(has(&r.encoder_options, "maxrate", "6000k"));
    }

    #[test]
    fn rate_control_modes() {
        // cbr: a bitrate, maxrate = bufsize = bitrate, HRD signalled.
        let r = resolved(H264, Some(3000), "rc=cbr");
        assert_eq!((r.crf, r.bitrate_kbps), (None, Some(3000)));
        for (k, v) in [("nal-hrd", "cbr"), ("maxrate", "3000k"), ("bufsize", "3000k")] {
            assert!(has(&r.encoder_options, k, v), "{k}");
        }
        let o = options::parse("rc=cbr", options::KEYS, "video", "").unwrap();
        let r = encoding(H264, Some(3000), &o, false).unwrap().resolve(1280, 720, 25.0);
        assert!(!r.encoder_options.iter().any(|(k, _)| k == "nal-hrd"), "no filler data outside MPEG-TS");
        assert!(has(&r.encoder_options, "maxrate", "3000k"));
        let r = resolved(Hevc, Some(3000), "rc=cbr_hq");
        assert!(has(&r.encoder_options, "x265-params", "log-level=error:strict-cbr=1"));
        let r = resolved(Vp9, Some(3000), "rc=cbr");
        assert!(has(&r.encoder_options, "minrate", "3000k") && has(&r.encoder_options, "maxrate", "3000k"));
        let r = resolved(Theora, Some(3000), "rc=cbr");
        assert_eq!(r.bitrate_kbps, Some(3000));
        assert!(enc(H264, None, "rc=cbr").unwrap_err().message.contains("needs a video bitrate"));
        assert!(enc(Av1, Some(3000), "rc=cbr").is_err());
        assert!(enc(H264, Some(3000), "rc=cbr,maxrate=4000k").is_err());
        assert!(enc(H264, Some(3000), "rc=cbr,cq=20").is_err());
        // vbr: the bitrate as an average; with cq, constant quality capped at it.
        let r = resolved(H264, Some(3000), "rc=vbr");
        assert_eq!((r.crf, r.bitrate_kbps), (None, Some(3000)));
        let r = resolved(H264, Some(3000), "rc=vbr_hq,cq=20");
        assert_eq!((r.crf, r.bitrate_kbps), (Some(20.0), None));
        assert!(has(&r.encoder_options, "maxrate", "3000k") && has(&r.encoder_options, "bufsize", "6000k"));
        assert!(enc(H264, None, "rc=vbr").unwrap_err().message.contains("needs a video bitrate"));
        let r = resolved(H264, None, "cq=19");
        assert_eq!((r.crf, r.bitrate_kbps), (Some(19.0), None));
        assert_eq!(resolved(Vp8, None, "cq=10").crf, Some(10.0));
        assert!(enc(Vp8, None, "cq=2").unwrap_err().message.contains("4..63"));
        assert!(enc(Mpeg4, None, "cq=20").is_err());
        assert!(enc(Theora, None, "rc=crf").is_err());
        // crf explicitly.
        assert_eq!(resolved(H264, None, "rc=crf,quality=4").crf, Some(21.0));
        assert!(enc(H264, Some(3000), "rc=crf").unwrap_err().message.contains("maxrate"));
        // constqp: the qp option, no crf or bitrate.
        let r = resolved(H264, None, "rc=constqp,qp=20");
        assert_eq!((r.crf, r.bitrate_kbps), (None, None));
        assert!(has(&r.encoder_options, "qp", "20"));
        assert!(has(&resolved(Hevc, None, "qp=30").encoder_options, "qp", "30"), "qp alone means constqp");
        assert!(has(&resolved(Av1, None, "rc=constqp").encoder_options, "qp", "35"), "qp from quality");
        assert_eq!(resolved(H264, None, "qp=-1").crf, Some(23.0), "qp=-1 is automatic");
        assert!(enc(Vp9, None, "rc=constqp").is_err());
        assert!(enc(H264, Some(3000), "rc=constqp").is_err());
        assert!(enc(H264, None, "qp=20,maxrate=3000k").is_err());
        assert!(enc(H264, Some(3000), "rc=vbr,qp=20").unwrap_err().message.contains("qp"));
    }

    #[test]
    fn pixel_formats_per_codec() {
        assert_eq!(enc(H264, None, "").unwrap().pix_fmt, "yuv420p");
        for (codec, ok, refused) in [
            (H264, "yuv444p10le", "yuv420p12le"),
            (Hevc, "yuv422p12le", ""),
            (Vp9, "yuv420p10le", "yuv420p12le"),
            (Av1, "yuv420p10le", "yuv444p"),
            (Vp8, "yuv420p", "yuv422p"),
            (Mpeg4, "yuv420p", "yuv420p10le"),
            (Theora, "yuv444p", "yuv420p10le"),
        ] {
            assert_eq!(enc(codec, None, &format!("pix_fmt={ok}")).unwrap().pix_fmt, ok);
            if !refused.is_empty() {
                let err = enc(codec, None, &format!("pix_fmt={refused}")).unwrap_err();
                assert!(err.message.contains(refused) && err.message.contains(codec.name()), "{}", err.message);
            }
        }
    }

    #[test]
    fn profiles_levels_tunes_coders() {
        let e = enc(H264, None, "profile=high,level=4.1,tune=film,coder=cabac").unwrap();
        for (k, v) in [("profile", "high"), ("level", "4.1"), ("tune", "film"), ("coder", "cabac")] {
            assert!(has(&e.options, k, v), "{k}");
        }
        assert!(enc(H264, None, "level=1b").is_ok());
        assert!(!enc(H264, None, "level=auto").unwrap().options.iter().any(|(k, _)| k == "level"));
        assert!(enc(H264, None, "level=7").unwrap_err().message.contains("'7'"));
        assert!(enc(H264, None, "profile=high,pix_fmt=yuv420p10le").unwrap_err().message.contains("high"));
        assert!(enc(H264, None, "profile=high10,pix_fmt=yuv420p10le").is_ok());
        assert!(enc(H264, None, "pix_fmt=yuv420p10le").unwrap().options.iter().all(|(k, _)| k != "profile"), "x264 picks high10 itself");
        assert!(enc(H264, None, "profile=main10").unwrap_err().message.contains("main10"));
        assert!(enc(H264, None, "profile=baseline,coder=cabac").unwrap_err().message.contains("CABAC"));
        assert!(enc(H264, None, "profile=baseline,coder=cavlc").is_ok());
        let e = enc(Hevc, None, "profile=main10,level=5.1,tune=grain,pix_fmt=yuv420p10le").unwrap();
        assert!(has(&e.options, "profile", "main10") && has(&e.options, "tune", "grain"));
        assert!(has(&e.options, "x265-params", "log-level=error:level-idc=5.1"));
        assert!(enc(Hevc, None, "level=1.1").is_err());
        assert!(enc(Hevc, None, "tune=film").unwrap_err().message.contains("film"));
        assert!(enc(Hevc, None, "tune=grain+fastdecode").is_err());
        assert!(enc(Hevc, None, "coder=cabac").unwrap_err().message.contains("coder"));
        let e = enc(Vp9, None, "profile=2").unwrap();
        assert_eq!(e.pix_fmt, "yuv420p10le", "vp9 profile 2 implies 10-bit");
        assert!(has(&e.options, "profile", "2"));
        assert!(enc(Vp9, None, "profile=2,pix_fmt=yuv420p").is_err());
        assert!(enc(Vp9, None, "profile=high").is_err());
        assert!(enc(Vp9, None, "level=4.1").unwrap_err().message.contains("level"));
        assert!(enc(Vp9, None, "tune=film").unwrap_err().message.contains("tune"));
        assert!(enc(Av1, None, "profile=main").unwrap().options.iter().all(|(k, _)| k != "profile"));
        assert!(enc(Av1, None, "profile=high").is_err());
        for codec in [Vp8, Mpeg4, Theora] {
            assert!(enc(codec, None, "profile=main").unwrap_err().message.contains("profile"), "{codec:?}");
        }
        assert!(enc(H264, None, "tune=film+grain").is_err());
        assert!(has(&enc(H264, None, "tune=film+fastdecode").unwrap().options, "tune", "film,fastdecode"));
    }

    #[test]
    fn presets_per_codec() {
        let e = enc(H264, None, "preset=ll").unwrap();
        assert!(has(&e.options, "preset", "ultrafast") && has(&e.options, "tune", "zerolatency"));
        let e = enc(H264, None, "preset=llhq,tune=film").unwrap();
        assert!(has(&e.options, "preset", "medium") && has(&e.options, "tune", "film,zerolatency"));
        assert!(has(&enc(H264, None, "preset=hp").unwrap().options, "preset", "veryfast"));
        assert!(has(&enc(H264, None, "preset=hq").unwrap().options, "preset", "slow"));
        assert!(has(&enc(Hevc, None, "preset=llhp").unwrap().options, "preset", "superfast"));
        assert!(enc(Hevc, None, "preset=ll,tune=grain").is_err(), "x265 takes one tune");
        let e = enc(Vp9, None, "preset=veryslow").unwrap();
        assert!(has(&e.options, "cpu-used", "0") && has(&e.options, "deadline", "good"));
        let e = enc(Vp9, None, "preset=ll").unwrap();
        assert!(has(&e.options, "deadline", "realtime") && has(&e.options, "lag-in-frames", "0") && has(&e.options, "cpu-used", "8"));
        assert!(has(&enc(Av1, None, "preset=fast").unwrap().options, "preset", "9"));
        assert!(enc(Av1, None, "preset=ll").is_err());
        assert!(enc(Mpeg4, None, "preset=fast").unwrap_err().message.contains("preset"));
        assert!(enc(Theora, None, "preset=fast").is_err());
    }

    #[test]
    fn gop_and_keyframes() {
        let e = enc(H264, None, "gop=48,keyframe_interval=2").unwrap();
        assert_eq!((e.gop, e.keyframe_interval), (Some(48), Some(2.0)));
    }
}
