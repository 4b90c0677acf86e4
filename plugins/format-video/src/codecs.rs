//! What each video codec (and its FFmpeg encoder) accepts: pixel formats, profiles,
//! levels, quality scales and speed scales. The host fails an output whose encoder
//! rejects an option, so everything emitted from here must be valid for that encoder.

/// Logical video codecs (the `video-plan` codec names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// libx264.
    H264,
    /// libx265.
    Hevc,
    /// libvpx.
    Vp8,
    /// libvpx-vp9.
    Vp9,
    /// libsvtav1.
    Av1,
    /// FFmpeg's mpeg4 (MPEG-4 Part 2).
    Mpeg4,
    /// libtheora.
    Theora,
}

use VideoCodec::*;

/// 8-bit and 10-bit 4:2:0, 4:2:2 and 4:4:4: what libx264 and libvpx-vp9 take.
const YUV_8_10: &[&str] = &["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le"];
const YUV_8_12: &[&str] =
    &["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le", "yuv420p12le", "yuv422p12le", "yuv444p12le"];

/// Every pixel format any codec here takes (the `pix_fmt` option's vocabulary).
pub const PIX_FMTS: &[&str] = YUV_8_12;

pub const H264_LEVELS: &[&str] =
    &["1", "1b", "1.1", "1.2", "1.3", "2", "2.1", "2.2", "3", "3.1", "3.2", "4", "4.1", "4.2", "5", "5.1", "5.2", "6", "6.1", "6.2"];
pub const HEVC_LEVELS: &[&str] = &["1", "2", "2.1", "3", "3.1", "4", "4.1", "5", "5.1", "5.2", "6", "6.1", "6.2"];

/// x264 tunes; one psycho-visual tune may be combined with `fastdecode` and `zerolatency`.
pub const X264_TUNES: &[&str] = &["film", "animation", "grain", "stillimage", "psnr", "ssim", "fastdecode", "zerolatency"];
pub const X264_PSY_TUNES: &[&str] = &["film", "animation", "grain", "stillimage", "psnr", "ssim"];
/// x265 takes a single tune.
pub const X265_TUNES: &[&str] = &["psnr", "ssim", "grain", "fastdecode", "zerolatency", "animation"];

/// x264/x265 preset names, fastest first: the speed scale every preset maps onto.
pub const PRESETS: &[&str] = &["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"];
/// The default preset (index into [`PRESETS`]).
pub const MEDIUM: usize = 5;

/// Chroma subsampling (420, 422, 444) and bit depth of a planar YUV format.
pub fn pix_info(pix_fmt: &str) -> (u32, u32) {
    let chroma = if pix_fmt.starts_with("yuv444") {
        444
    } else if pix_fmt.starts_with("yuv422") {
        422
    } else {
        420
    };
    let depth = if pix_fmt.ends_with("12le") {
        12
    } else if pix_fmt.ends_with("10le") {
        10
    } else {
        8
    };
    (chroma, depth)
}

impl VideoCodec {
    pub const ALL: &[VideoCodec] = &[H264, Hevc, Vp8, Vp9, Av1, Mpeg4, Theora];

    pub fn name(self) -> &'static str {
        match self {
            H264 => "h264",
            Hevc => "hevc",
            Vp8 => "vp8",
            Vp9 => "vp9",
            Av1 => "av1",
            Mpeg4 => "mpeg4",
            Theora => "theora",
        }
    }

    /// A video item of a format string naming a codec (with Coconut's aliases).
    pub fn from_item(item: &str) -> Option<Self> {
        Some(match item {
            "h264" | "x264" | "avc" => H264,
            "hevc" | "h265" | "x265" => Hevc,
            "vp8" => Vp8,
            "vp9" => Vp9,
            "av1" => Av1,
            "mpeg4" | "xvid" => Mpeg4,
            "theora" => Theora,
            _ => return None,
        })
    }

    pub fn pix_fmts(self) -> &'static [&'static str] {
        match self {
            H264 | Vp9 => YUV_8_10,
            Hevc => YUV_8_12,
            Av1 => &["yuv420p", "yuv420p10le"],
            Vp8 | Mpeg4 => &["yuv420p"],
            Theora => &["yuv420p", "yuv422p", "yuv444p"],
        }
    }

    /// The encoder has a constant-quality (`crf`) mode.
    pub fn has_crf(self) -> bool {
        !matches!(self, Mpeg4 | Theora)
    }

    /// The encoder has a constant-quantiser `qp` option.
    pub fn has_qp(self) -> bool {
        matches!(self, H264 | Hevc | Av1)
    }

    /// The range of the encoder's `crf`.
    pub fn crf_range(self) -> (u8, u8) {
        match self {
            H264 | Hevc => (0, 51),
            // libvpx VP8 refuses crf below 4.
            Vp8 => (4, 63),
            _ => (0, 63),
        }
    }

    /// Constant rate factor for a Coconut quality (1 lowest .. 5 highest), on the
    /// encoder's own scale; none for encoders without a constant-quality mode.
    pub fn crf(self, quality: u8) -> Option<f32> {
        let table: [f32; 5] = match self {
            H264 => [30.0, 27.0, 23.0, 21.0, 18.0],
            // x265 reaches x264's quality about 5 crf higher.
            Hevc => [35.0, 32.0, 28.0, 26.0, 23.0],
            Vp9 => [40.0, 36.0, 32.0, 28.0, 24.0],
            // VP8 is capped by a bitrate too (libvpx's constrained quality), so its crf
            // can sit lower.
            Vp8 => [32.0, 20.0, 12.0, 8.0, 4.0],
            Av1 => [45.0, 40.0, 35.0, 30.0, 25.0],
            Mpeg4 | Theora => return None,
        };
        Some(table[usize::from(quality.clamp(1, 5)) - 1])
    }

    /// The codec has profiles one can ask for.
    pub fn profiles(self) -> &'static [&'static str] {
        match self {
            H264 => &["baseline", "main", "high", "high10", "high422", "high444"],
            Hevc => &["main", "main10", "main12", "main422-10", "main422-12", "main444-8", "main444-10", "main444-12"],
            Vp9 => &["0", "1", "2", "3"],
            // SVT-AV1 encodes the main profile (4:2:0, 8 and 10 bits) only.
            Av1 => &["main"],
            Vp8 | Mpeg4 | Theora => &[],
        }
    }

    /// Whether `profile` can carry `pix_fmt` (chroma and bit depth).
    pub fn profile_allows(self, profile: &str, pix_fmt: &str) -> bool {
        let (chroma, depth) = pix_info(pix_fmt);
        match (self, profile) {
            (H264, "baseline" | "main" | "high") | (Hevc, "main") | (Vp9, "0") => chroma == 420 && depth == 8,
            (H264, "high10") | (Hevc, "main10") => chroma == 420 && depth <= 10,
            (Hevc, "main12") => chroma == 420,
            (H264, "high422") | (Hevc, "main422-10") => chroma <= 422 && depth <= 10,
            (Hevc, "main422-12") => chroma <= 422,
            (Hevc, "main444-8") => depth == 8,
            (H264, "high444") | (Hevc, "main444-10") => depth <= 10,
            (Hevc, "main444-12") => true,
            (Vp9, "1") => chroma > 420 && depth == 8,
            (Vp9, "2") => chroma == 420 && depth > 8,
            (Vp9, "3") => chroma > 420 && depth > 8,
            (Av1, "main") => chroma == 420,
            _ => false,
        }
    }

    /// The pixel format a profile implies when none is asked for: VP9's profile is
    /// exactly its pixel format, the others keep 8-bit 4:2:0.
    pub fn profile_pix_fmt(self, profile: &str) -> &'static str {
        match (self, profile) {
            (Vp9, "1") => "yuv444p",
            (Vp9, "2") => "yuv420p10le",
            (Vp9, "3") => "yuv444p10le",
            _ => "yuv420p",
        }
    }

    /// The encoder's speed setting for an x264 preset index (0 ultrafast .. 8 veryslow).
    pub fn speed(self, preset: usize) -> Option<(&'static str, String)> {
        let preset = preset.min(PRESETS.len() - 1);
        match self {
            H264 | Hevc => Some(("preset", PRESETS[preset].to_string())),
            // libvpx `cpu-used`: 0 slowest .. 8 fastest; 4 (medium) is a sane default.
            Vp8 | Vp9 => Some(("cpu-used", [8, 8, 7, 6, 5, 4, 2, 1, 0][preset].to_string())),
            // SVT-AV1 presets: 0 slowest .. 13 fastest; 8 (medium) is a sane default.
            Av1 => Some(("preset", [13, 12, 11, 10, 9, 8, 6, 4, 2][preset].to_string())),
            Mpeg4 | Theora => None,
        }
    }
}

/// Bitrate (kbit/s) for codecs that need one at a given quality: MPEG-4 Part 2 and
/// Theora, and VP8's ceiling. By output area, raised for high frame rates.
pub fn table_bitrate(width: u32, height: u32, fps: f64, quality: u8) -> u32 {
    const ROWS: &[(u64, u32)] = &[
        (426 * 240, 500),
        (640 * 360, 900),
        (854 * 480, 1500),
        (1024 * 576, 2000),
        (1280 * 720, 3000),
        (1920 * 1080, 6000),
        (2560 * 1440, 10000),
    ];
    let area = u64::from(width) * u64::from(height);
    let base = ROWS.iter().find(|(max, _)| area <= *max).map_or(20000, |&(_, kbps)| kbps);
    let scale = [0.5, 0.7, 1.0, 1.4, 2.0][usize::from(quality.clamp(1, 5)) - 1];
    let motion = if fps > 40.0 { 1.5 } else { 1.0 };
    (f64::from(base) * scale * motion).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        for (item, codec) in [("x264", H264), ("avc", H264), ("h265", Hevc), ("x265", Hevc), ("xvid", Mpeg4), ("theora", Theora)] {
            assert_eq!(VideoCodec::from_item(item), Some(codec));
        }
        assert_eq!(VideoCodec::from_item("h263"), None);
        for c in VideoCodec::ALL {
            assert_eq!(VideoCodec::from_item(c.name()), Some(*c));
        }
    }

    #[test]
    fn crf_tables() {
        let table = |c: VideoCodec| (1..=5).map(|q| c.crf(q)).collect::<Vec<_>>();
        let some = |v: [f32; 5]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        assert_eq!(table(H264), some([30.0, 27.0, 23.0, 21.0, 18.0]));
        assert_eq!(table(Hevc), some([35.0, 32.0, 28.0, 26.0, 23.0]));
        assert_eq!(table(Vp9), some([40.0, 36.0, 32.0, 28.0, 24.0]));
        assert_eq!(table(Av1), some([45.0, 40.0, 35.0, 30.0, 25.0]));
        assert_eq!(table(Vp8), some([32.0, 20.0, 12.0, 8.0, 4.0]));
        assert_eq!(table(Mpeg4), vec![None; 5]);
        assert_eq!(table(Theora), vec![None; 5]);
        for c in VideoCodec::ALL {
            let (lo, hi) = c.crf_range();
            for q in 1..=5 {
                if let Some(crf) = c.crf(q) {
                    assert!((f32::from(lo)..=f32::from(hi)).contains(&crf), "{c:?} {q}");
                }
            }
        }
    }

    #[test]
    fn profiles_against_pixel_formats() {
        assert!(H264.profile_allows("high", "yuv420p"));
        assert!(!H264.profile_allows("high", "yuv420p10le"));
        assert!(H264.profile_allows("high10", "yuv420p10le"));
        assert!(!H264.profile_allows("high10", "yuv422p"));
        assert!(H264.profile_allows("high422", "yuv422p10le"));
        assert!(H264.profile_allows("high444", "yuv444p10le"));
        assert!(!H264.profile_allows("baseline", "yuv444p"));
        assert!(Hevc.profile_allows("main10", "yuv420p"));
        assert!(!Hevc.profile_allows("main10", "yuv420p12le"));
        assert!(Hevc.profile_allows("main444-12", "yuv444p12le"));
        assert!(!Hevc.profile_allows("main444-8", "yuv444p10le"));
        assert!(Vp9.profile_allows("2", "yuv420p10le") && !Vp9.profile_allows("2", "yuv420p"));
        assert!(Vp9.profile_allows("1", "yuv444p") && !Vp9.profile_allows("0", "yuv444p"));
        assert!(Av1.profile_allows("main", "yuv420p10le"));
        // Every profile allows the pixel format it implies, and every codec's formats
        // are some profile's (or the codec has none to pick).
        for c in VideoCodec::ALL {
            for p in c.profiles() {
                assert!(c.profile_allows(p, c.profile_pix_fmt(p)), "{c:?} {p}");
            }
            for pix in c.pix_fmts() {
                assert!(PIX_FMTS.contains(pix));
                assert!(c.profiles().is_empty() || c.profiles().iter().any(|p| c.profile_allows(p, pix)), "{c:?} {pix}");
            }
        }
    }

    #[test]
    fn speed_scales() {
        assert_eq!(H264.speed(MEDIUM), Some(("preset", "medium".into())));
        assert_eq!(Vp9.speed(MEDIUM), Some(("cpu-used", "4".into())));
        assert_eq!(Vp8.speed(0), Some(("cpu-used", "8".into())));
        assert_eq!(Av1.speed(MEDIUM), Some(("preset", "8".into())));
        assert_eq!(Av1.speed(8), Some(("preset", "2".into())));
        assert_eq!(Mpeg4.speed(MEDIUM), None);
    }

    #[test]
    fn bitrate_table() {
        assert_eq!(table_bitrate(1920, 1080, 25.0, 3), 6000);
        assert_eq!(table_bitrate(1280, 720, 25.0, 3), 3000);
        assert_eq!(table_bitrate(1280, 720, 25.0, 1), 1500);
        assert_eq!(table_bitrate(1280, 720, 25.0, 5), 6000);
        assert_eq!(table_bitrate(1280, 720, 60.0, 3), 4500);
        assert_eq!(table_bitrate(320, 240, 25.0, 3), 500);
        assert_eq!(table_bitrate(3840, 2160, 25.0, 3), 20000);
    }
}
