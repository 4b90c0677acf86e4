//! What the host lets a format plan name: containers (FFmpeg muxers), codecs, pixel
//! formats, scaler algorithms and, per encoder, the AVOptions a plan may set.
//!
//! A plan is a format plugin's answer, and a plugin is not trusted: any string it
//! returns would otherwise reach FFmpeg, where a muxer name like `tee`, a scaler like
//! `bicubic,movie=/etc/passwd` spliced into a filter graph, or an option like x264's
//! `stats` or x265's `csv` opens or writes files. Everything here is an allowlist: the
//! names and options the first-party `format-video` plans, plus a few common, harmless
//! ones. Nothing that names a file, a second pass, a thread count or a raw parameter
//! passthrough (`x264-params`, `svtav1-params`) is on it; `x265-params` is parsed and
//! each of its keys checked against its own list.

use super::refusal::PlanRefused;
use crate::types::rate_kbps;

/// FFmpeg muxers a file output may name, plus `image2` (pictures) and `httpstream`
/// (packages, which the host muxes itself).
pub(super) const CONTAINERS: &[&str] = &[
    "mp4",
    "webm",
    "mov",
    "matroska",
    "mpegts",
    "ogg",
    "avi",
    "flv",
    "3gp",
    "mp3",
    "adts",
    "ipod",
    "opus",
    "flac",
    "wav",
    "gif",
    "image2",
    "httpstream",
];

/// Logical video codecs of a video plan (see `encode::encoder_name`).
pub(super) const VIDEO_CODECS: &[&str] = &["h264", "hevc", "h265", "vp8", "vp9", "av1", "mpeg4", "theora", "gif"];
/// Logical audio codecs of an audio plan.
pub(super) const AUDIO_CODECS: &[&str] = &["aac", "opus", "vorbis", "mp3", "flac", "pcm_s16le"];
/// Codecs of an image plan.
pub(super) const IMAGE_CODECS: &[&str] = &["mjpeg", "jpeg", "png", "webp"];

/// Pixel formats a video plan may ask for: planar YUV at 8, 10 and 12 bits, and GIF's palette.
pub(super) const PIX_FMTS: &[&str] =
    &["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le", "yuv420p12le", "yuv422p12le", "yuv444p12le", "pal8"];

/// swscale algorithm names (the `flags` of the `scale` filter); empty means bicubic.
pub(super) const SCALERS: &[&str] =
    &["", "fast_bilinear", "bilinear", "bicubic", "neighbor", "area", "bicublin", "gauss", "sinc", "lanczos", "spline"];

/// Rate options every encoder takes from its codec context, in kbit/s with a `k`
/// (`4000k`) or in bit/s, and the most each may ask for (kbit/s).
const RATE_OPTIONS: &[(&str, u64)] = &[("maxrate", 500_000), ("minrate", 500_000), ("bufsize", 1_000_000)];

/// The AVOptions each FFmpeg encoder may be given by a plan, beyond [`RATE_OPTIONS`].
/// `crf` and the GOP are plan fields, checked as such, so they are not options here.
#[rustfmt::skip]
const ENCODER_OPTIONS: &[(&str, &[&str])] = &[
    ("libx264", &[
        "preset", "tune", "profile", "level", "coder", "nal-hrd", "qp", "bf", "refs", "b-pyramid", "rc-lookahead", "aq-mode",
        "aq-strength", "psy", "psy-rd", "weightp", "weightb", "8x8dct", "deblock", "fastfirstpass", "forced-idr", "sc_threshold",
        "a53cc",
    ]),
    ("libx265", &["preset", "tune", "profile", "qp", "forced-idr", "x265-params"]),
    ("libvpx", &[
        "deadline", "cpu-used", "lag-in-frames", "auto-alt-ref", "arnr-maxframes", "arnr-strength", "static-thresh",
        "undershoot-pct", "overshoot-pct", "qmin", "qmax", "noise-sensitivity", "sharpness",
    ]),
    ("libvpx-vp9", &[
        "deadline", "cpu-used", "row-mt", "lag-in-frames", "profile", "auto-alt-ref", "arnr-maxframes", "arnr-strength",
        "tile-columns", "tile-rows", "frame-parallel", "aq-mode", "static-thresh", "undershoot-pct", "overshoot-pct", "qmin",
        "qmax", "tune-content",
    ]),
    ("libaom-av1", &["cpu-used", "row-mt", "tiles", "tile-columns", "tile-rows", "lag-in-frames", "aq-mode", "usage", "qmin", "qmax"]),
    ("libsvtav1", &["preset", "qp", "la_depth", "tile_columns", "tile_rows", "sc_detection", "tier"]),
    ("mpeg4", &["qmin", "qmax", "bf", "mbd", "trellis"]),
    ("libtheora", &["qmin", "qmax"]),
    ("gif", &["gifflags", "gifimage"]),
    ("mjpeg", &["qmin", "qmax", "huffman"]),
    ("png", &["pred", "dpi", "dpm", "compression_level"]),
    ("libwebp", &["quality", "lossless", "preset", "compression_level"]),
];

/// Keys of libx265's `x265-params` (`key=value:key=value`) a plan may set. None opens
/// or writes a file (`csv`, `analysis-save`, `qpfile`, `zonefile`, `dolby-vision-rpu`,
/// `lambda-file`, `scaling-list`, ... are not here) or sets threads or passes.
#[rustfmt::skip]
const X265_PARAMS: &[&str] = &[
    "log-level", "strict-cbr", "level-idc", "high-tier", "scenecut", "keyint", "min-keyint", "open-gop", "bframes", "ref",
    "rc-lookahead", "aq-mode", "aq-strength", "psy-rd", "psy-rdoq", "vbv-maxrate", "vbv-bufsize", "vbv-init",
    "repeat-headers", "aud", "hrd", "sao", "deblock", "hdr10", "hdr10-opt", "master-display", "max-cll", "colorprim",
    "transfer", "colormatrix", "range", "chromaloc",
];

/// Longest option name, option value and option list a plan may carry.
const MAX_KEY: usize = 32;
const MAX_VALUE: usize = 128;
const MAX_OPTIONS: usize = 32;

/// Whether `text` is short and plain: at most `max` bytes of printable ASCII (no
/// control characters, no NUL, nothing FFmpeg's dictionary or filter parsers would
/// read as a separator of their own is needed by any allowed option).
pub(super) fn plain(text: &str, max: usize) -> bool {
    text.len() <= max && text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// Check a plan's options for `encoder` (an FFmpeg encoder name); `at` names the part
/// of the plan in the message.
pub(super) fn check_encoder_options(at: &str, encoder: &str, options: &[(String, String)]) -> Result<(), PlanRefused> {
    if options.len() > MAX_OPTIONS {
        return Err(PlanRefused::Value(format!("{at} has {} encoder options; at most {MAX_OPTIONS}", options.len())));
    }
    let allowed = ENCODER_OPTIONS.iter().find(|(name, _)| *name == encoder).map_or(&[][..], |(_, keys)| *keys);
    for (key, value) in options {
        if !plain(key, MAX_KEY) || key.is_empty() {
            return Err(PlanRefused::Value(format!("{at} has an encoder option whose name is not a short plain word")));
        }
        if !plain(value, MAX_VALUE) {
            return Err(PlanRefused::Value(format!(
                "{at} encoder option '{key}' has a value that is not short plain text (at most {MAX_VALUE} printable characters)"
            )));
        }
        if let Some((_, max_kbps)) = RATE_OPTIONS.iter().find(|(name, _)| name == key) {
            let kbps = rate_kbps(value).ok_or_else(|| PlanRefused::Value(format!("{at} encoder option '{key}={value}' is not a rate such as 4000k")))?;
            if kbps == 0 || kbps > *max_kbps {
                return Err(PlanRefused::Value(format!("{at} encoder option '{key}={value}' is outside 1k..={max_kbps}k")));
            }
            continue;
        }
        if !allowed.contains(&key.as_str()) {
            return Err(PlanRefused::Value(format!("{at} encoder option '{key}' is not one the host allows for {encoder}")));
        }
        if key == "x265-params" {
            check_x265_params(at, value)?;
        }
    }
    Ok(())
}


/// `x265-params` is `key=value` pairs joined by `:`; every key must be on [`X265_PARAMS`].
fn check_x265_params(at: &str, value: &str) -> Result<(), PlanRefused> {
    for pair in value.split(':') {
        let Some((key, val)) = pair.split_once('=') else {
            return Err(PlanRefused::Value(format!("{at} x265-params entry '{pair}' is not key=value")));
        };
        if !X265_PARAMS.contains(&key) {
            return Err(PlanRefused::Value(format!("{at} x265-params key '{key}' is not one the host allows")));
        }
        if val.is_empty() || val.contains('=') {
            return Err(PlanRefused::Value(format!("{at} x265-params entry '{pair}' has no plain value")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn check(encoder: &str, pairs: &[(&str, &str)]) -> Result<(), PlanRefused> {
        check_encoder_options("video", encoder, &opts(pairs))
    }

    #[test]
    fn first_party_options_pass() {
        check("libx264", &[("preset", "medium"), ("profile", "high"), ("level", "4.1"), ("tune", "film,zerolatency")]).unwrap();
        check("libx264", &[("coder", "cavlc"), ("nal-hrd", "cbr"), ("maxrate", "3000k"), ("bufsize", "3000k"), ("qp", "20")]).unwrap();
        check("libx265", &[("preset", "slow"), ("x265-params", "log-level=error:level-idc=5.1:strict-cbr=1")]).unwrap();
        check("libvpx-vp9", &[("deadline", "good"), ("cpu-used", "4"), ("row-mt", "1"), ("minrate", "3000k")]).unwrap();
        check("libvpx", &[("deadline", "realtime"), ("lag-in-frames", "0"), ("cpu-used", "8")]).unwrap();
        check("libsvtav1", &[("preset", "8"), ("qp", "35")]).unwrap();
        check("mjpeg", &[("qmin", "5"), ("qmax", "5")]).unwrap();
        check("libwebp", &[("quality", "75")]).unwrap();
        check("mpeg4", &[("maxrate", "2000k"), ("minrate", "2000k"), ("bufsize", "2000k")]).unwrap();
    }

    #[test]
    fn file_writing_and_passthrough_options_are_refused() {
        for (encoder, key, value) in [
            ("libx264", "stats", "/tmp/pwned"),
            ("libx264", "passlogfile", "/tmp/pwned"),
            ("libx264", "x264-params", "stats=/tmp/pwned"),
            ("libx264", "x264opts", "stats=/tmp/pwned"),
            ("libx264", "flags", "+pass1"),
            ("libx264", "threads", "100000"),
            ("libx264", "crf", "1000"),
            ("libsvtav1", "svtav1-params", "stat-file=/tmp/pwned"),
            ("png", "quality", "1"),
            ("aac", "b", "1"),
        ] {
            let err = check(encoder, &[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("not one the host allows"), "{encoder} {key}: {err}");
        }
    }

    #[test]
    fn x265_params_keys_are_checked_one_by_one() {
        for value in ["csv=/tmp/pwned", "log-level=error:csv=/tmp/pwned", "analysis-save=/tmp/x", "qpfile=/tmp/q", "zonefile=/z"] {
            let err = check("libx265", &[("x265-params", value)]).unwrap_err().to_string();
            assert!(err.contains("x265-params key"), "{value}: {err}");
        }
        assert!(check("libx265", &[("x265-params", "log-level")]).unwrap_err().to_string().contains("key=value"));
        assert!(check("libx265", &[("x265-params", "scenecut=0:log-level=error=1")]).is_err());
        check("libx265", &[("x265-params", "scenecut=0:vbv-maxrate=3000:vbv-bufsize=6000")]).unwrap();
    }

    #[test]
    fn values_and_rates_are_bounded() {
        assert!(check("libx264", &[("preset", "med\nium")]).unwrap_err().to_string().contains("plain"));
        assert!(check("libx264", &[("preset", &"x".repeat(200))]).unwrap_err().to_string().contains("plain"));
        assert!(check("libx264", &[("maxrate", "900000k")]).unwrap_err().to_string().contains("maxrate"));
        assert!(check("libx264", &[("maxrate", "0k")]).is_err());
        assert!(check("libx264", &[("bufsize", "lots")]).unwrap_err().to_string().contains("rate"));
        check("libx264", &[("maxrate", "4M"), ("bufsize", "8000000")]).unwrap();
        let many: Vec<(String, String)> = (0..40).map(|i| ("preset".to_string(), i.to_string())).collect();
        assert!(check_encoder_options("video", "libx264", &many).unwrap_err().to_string().contains("at most"));
        assert_eq!(rate_kbps("4000k"), Some(4000));
        assert_eq!(rate_kbps("4M"), Some(4000));
        assert_eq!(rate_kbps("1500"), Some(2));
        assert_eq!(rate_kbps("k"), None);
        assert_eq!(rate_kbps("-5k"), None);
    }
}
