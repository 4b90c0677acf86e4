//! How much memory a job's media engine needs, estimated from its plans and its input
//! before anything is decoded: the plan check bounds each picture's size, this bounds
//! pictures × sizes.
//!
//! Memory goes to pictures held at once, so the estimate counts them: the decoder's
//! (its reference frames and frame threads, plus the frames queued on each output's
//! lane, `LANE_DEPTH`), and each output's (its scaler's and filters' frames, its
//! encoder's lookahead, reordering, references and threads, a sprite sheet, a GIF's
//! palette statistics), each at its own size and pixel format, plus the engine's own
//! fixed cost. A GIF's frames are not counted by the clip's length: it is made in two
//! passes and holds a few at a time (see `gif`).
//!
//! The figures are calibrated on measured peaks (see the table in `memory_tests.rs`)
//! and err on the side of more: the estimate is what the plan check holds to
//! `max_job_memory_mib`; the engine process's own memory limit is the backstop.

use crate::types::{AudioPlan, ImagePlan, MediaInfo, OutputPlan, StreamPlan, VideoPlan};

const MIB: u64 = 1 << 20;

/// The engine's fixed cost: FFmpeg's libraries and tables, the allocator's arenas,
/// thread stacks.
const BASE: u64 = 80 * MIB;
/// An audio encoder with its resampler and frames.
const AUDIO_ENCODER: u64 = 6 * MIB;
/// An audio decoder.
const AUDIO_DECODER: u64 = 4 * MIB;
/// An output's muxer, filter graph and encoder context, beside their pictures.
const OUTPUT_FIXED: u64 = 4 * MIB;
/// Bytes a muxer keeps per frame for its index (MP4's sample table), whole-file.
const INDEX_PER_FRAME: u64 = 48;
/// Frames the decode loop and an output's lane hold beside the decoder's own: the
/// queue (`lane::LANE_DEPTH`) and the one being worked on.
const QUEUED: u64 = super::lane::LANE_DEPTH as u64 + 1;
/// Bytes one distinct colour costs `palettegen` (its count and hash entry, with the
/// growth of its arrays by doubling), and the most colours there are.
const PALETTE_COLOUR: u64 = 24;
const COLOURS: u64 = 1 << 24;

/// What an estimate is made of, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    /// The engine's fixed cost.
    pub base: u64,
    /// The input's decoders and the frames queued to the outputs.
    pub decode: u64,
    /// Each output, in the order of the plans.
    pub outputs: Vec<u64>,
}

impl MemoryEstimate {
    pub fn total(&self) -> u64 {
        self.outputs.iter().fold(self.base.saturating_add(self.decode), |sum, o| sum.saturating_add(*o))
    }
}

/// The memory, in bytes, that producing `plans` from an input described by `info`
/// needs at its peak.
pub fn memory_estimate(info: &MediaInfo, plans: &[OutputPlan]) -> u64 {
    memory_breakdown(info, plans).total()
}

/// [`memory_estimate`], part by part.
pub fn memory_breakdown(info: &MediaInfo, plans: &[OutputPlan]) -> MemoryEstimate {
    let cpus = cpus();
    let outputs: Vec<u64> = plans.iter().map(|plan| output(info, plan, cpus)).collect();
    MemoryEstimate { base: BASE, decode: decode(info, plans, cpus), outputs }
}

/// The machine's cores, read once: `available_parallelism` reads the cgroup's files on
/// every call, and every submit's budget check asks.
fn cpus() -> u64 {
    static CPUS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(4, |n| n.get() as u64))
}

/// The decoders: the video decoder's references and frame threads, each at the
/// input's size, plus the frames queued on the lanes (shared by every output, so
/// counted once; a package's rungs queue once more behind their package's lane) and
/// the frame each picture output holds on to.
fn decode(info: &MediaInfo, plans: &[OutputPlan], cpus: u64) -> u64 {
    let wants_video = plans.iter().any(|p| p.video.is_some() || p.image.is_some() || p.packaging.as_ref().is_some_and(|s| s.variants.iter().any(|v| v.video.is_some())));
    let wants_audio = plans.iter().any(|p| p.audio.is_some() || p.packaging.as_ref().is_some_and(|s| s.variants.iter().any(|v| v.audio.is_some())));
    let mut bytes = 0u64;
    if wants_video && info.has_video {
        // FFmpeg's "auto" frame threads: one more than the cores, at most 16.
        let threads = (cpus + 1).min(16);
        let references = match info.video_codec.as_str() {
            // H.264 and HEVC allow 16; 8 is what real encodes use at most (x264's
            // `slower`), more is the engine process limit's to catch.
            "h264" | "hevc" => 8,
            "vp9" | "av1" => 8,
            "vp8" | "mpeg2video" | "mpeg4" | "mpeg1video" | "theora" | "h263" => 4,
            "mjpeg" | "png" | "prores" | "rawvideo" | "dnxhd" | "ffv1" | "gif" | "webp" => 1,
            _ => 16,
        };
        let packages = plans.iter().filter(|p| p.packaging.is_some()).count() as u64;
        let images = plans.iter().filter(|p| p.image.is_some()).count() as u64;
        let frames = references + threads + QUEUED * (1 + packages.min(1)) + images;
        bytes = frames.saturating_mul(picture(info.width, info.height, pixel_bytes(&info.pix_fmt)));
    }
    if wants_audio && info.has_audio {
        bytes = bytes.saturating_add(AUDIO_DECODER);
    }
    bytes
}

/// One output: its video and audio encoders, its pictures, or its package's rungs.
fn output(info: &MediaInfo, plan: &OutputPlan, cpus: u64) -> u64 {
    let mut bytes = OUTPUT_FIXED;
    if let Some(video) = &plan.video {
        let seconds = plan.range.and_then(|r| r.duration).unwrap_or(info.duration).min(info.duration.max(0.0));
        bytes += if video.codec == "gif" { gif(info, video, seconds) } else { video_encoder(info, video, cpus) };
        if matches!(plan.container.as_str(), "mp4" | "mov" | "ipod" | "3gp") {
            let fps = video.fps.unwrap_or(info.fps).clamp(1.0, 240.0);
            bytes += (seconds.max(0.0) * fps) as u64 * INDEX_PER_FRAME;
        }
    }
    if let Some(audio) = &plan.audio {
        bytes += audio_encoder(audio) * tracks(info, plan);
    }
    // Each track beyond the main one has a decoder of its own.
    bytes += (tracks(info, plan) - 1) * AUDIO_DECODER;
    if let Some(image) = &plan.image {
        bytes += pictures(image);
    }
    if let Some(package) = &plan.packaging {
        bytes += ladder(info, package, tracks(info, plan), cpus);
    }
    bytes
}

/// A package: every rung's encoders, each distinct audio once, and a segment of each
/// rung buffered by its muxer.
fn ladder(info: &MediaInfo, package: &StreamPlan, tracks: u64, cpus: u64) -> u64 {
    let mut bytes = 0u64;
    let mut audios: Vec<&AudioPlan> = Vec::new();
    for variant in &package.variants {
        if let Some(video) = &variant.video {
            bytes += video_encoder(info, video, cpus) + OUTPUT_FIXED;
            let kbps = u64::from(video.bitrate_kbps.unwrap_or(0)).max(u64::from(video.width) * u64::from(video.height) * 60 / 1000 / 8);
            bytes += (package.segment_duration.clamp(1.0, 60.0) as u64) * kbps * 125;
        }
        if let Some(audio) = &variant.audio
            && !audios.contains(&audio)
        {
            audios.push(audio);
            bytes += audio_encoder(audio) * tracks;
        }
    }
    bytes
}

/// How many of the input's audio tracks a package carries (each audio plan is encoded
/// once per track).
fn tracks(info: &MediaInfo, plan: &OutputPlan) -> u64 {
    use crate::types::AudioSelection;
    let count = match &plan.audio_tracks {
        AudioSelection::Main => 1,
        AudioSelection::All => info.audio_tracks.len(),
        AudioSelection::Languages(languages) => languages.len(),
    };
    count.clamp(1, super::audio_tracks::MAX_LANGUAGES) as u64
}

fn audio_encoder(_audio: &AudioPlan) -> u64 {
    AUDIO_ENCODER
}

/// A video encoder at the plan's size: its filter graph's frames (the scaler's output
/// and the pixel format's; tone mapping works in 32-bit float at the input's size) and
/// the frames the encoder holds, each costing what the encoder keeps per frame.
fn video_encoder(info: &MediaInfo, video: &VideoPlan, cpus: u64) -> u64 {
    let (w, h) = (video.width, video.height);
    let depth = pixel_bytes(&video.pix_fmt);
    let mut bytes = 3 * picture(w, h, depth);
    if video.tone_map {
        bytes += 3 * picture(info.width, info.height, 12.0);
    }
    let option = |key: &str| video.encoder_options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let number = |key: &str| option(key).and_then(|v| v.parse::<u64>().ok());
    // Bytes per pixel of the encoder's own frames (per 8-bit 4:2:0 picture, scaled by
    // depth), and how many it holds.
    let (per_pixel, frames, fixed) = match video.codec.as_str() {
        "h264" => {
            let (lookahead, bframes, refs) = x264_preset(option("preset").unwrap_or("medium"));
            let zerolatency = option("tune").is_some_and(|t| t.contains("zerolatency"));
            let lookahead = if zerolatency { 0 } else { number("rc-lookahead").unwrap_or(lookahead) };
            let bframes = if zerolatency { 0 } else { number("bf").unwrap_or(bframes) };
            let refs = number("refs").unwrap_or(refs);
            // x264's frame threads: one and a half a core.
            let threads = (cpus * 3).div_ceil(2).max(1);
            // The lookahead, the frames waiting for a thread (sync lookahead), the frames
            // being encoded, the references and the reordering.
            (X264_PER_PIXEL, lookahead + (bframes + 1) + threads + refs + bframes + 2, 48 * MIB)
        }
        "hevc" | "h265" => {
            let threads = match cpus {
                32.. => 6,
                16.. => 5,
                8.. => 3,
                4.. => 2,
                _ => 1,
            };
            (X265_PER_PIXEL, 20 + 4 + threads * 2 + 4 + 4, 32 * MIB)
        }
        "vp8" | "vp9" => {
            let realtime = option("deadline") == Some("realtime");
            let lag = number("lag-in-frames").unwrap_or(if realtime { 0 } else { 25 });
            (VPX_PER_PIXEL, lag + 8 + 4 + cpus.min(8), 48 * MIB)
        }
        "av1" => (SVT_PER_PIXEL, 1, 16 * MIB),
        _ => (2.0, 4, 4 * MIB),
    };
    bytes + frames.saturating_mul(picture(w, h, per_pixel * depth / 1.5)) + fixed
}

/// (rc-lookahead, b-frames, references) of an x264 preset.
fn x264_preset(preset: &str) -> (u64, u64, u64) {
    match preset {
        "ultrafast" => (0, 0, 1),
        "superfast" => (0, 3, 1),
        "veryfast" => (10, 3, 1),
        "faster" => (20, 3, 2),
        "fast" => (30, 3, 2),
        "medium" => (40, 3, 3),
        "slow" => (50, 3, 5),
        "slower" => (60, 3, 8),
        _ => (60, 16, 16),
    }
}

/// Bytes per pixel of one frame held by each encoder (for 8-bit 4:2:0), fitted on the
/// measured peaks in `memory_tests.rs` with the frame counts above.
const X264_PER_PIXEL: f64 = 3.2;
const X265_PER_PIXEL: f64 = 4.6;
const VPX_PER_PIXEL: f64 = 2.8;
/// SVT-AV1 allocates by resolution, not by a frame count: all of it per pixel.
const SVT_PER_PIXEL: f64 = 230.0;

/// A GIF, in two passes (see `gif`): the first holds `palettegen`'s colour counts,
/// counted at their worst (every pixel seen a new colour, up to every colour there is:
/// natural footage stays far under it), which the allocator may keep through the
/// second; the second the frames of its chain in 32-bit colour, `paletteuse`'s and the
/// encoder's.
fn gif(_info: &MediaInfo, video: &VideoPlan, seconds: f64) -> u64 {
    let pixels = u64::from(video.width) * u64::from(video.height);
    let frames = (seconds.max(0.0) * video.fps.unwrap_or(10.0).clamp(1.0, 240.0)).ceil().max(1.0) as u64;
    let colours = pixels.saturating_mul(frames).min(COLOURS);
    let second = 5 * picture(video.width, video.height, 4.0) + 2 * picture(video.width, video.height, 1.0);
    colours * PALETTE_COLOUR + second
}

/// Thumbnails or sprite sheets: the scaled picture, its conversion, and the encoder's
/// working copy; for sprites, the sheet being tiled, at the sheet's size.
fn pictures(image: &ImagePlan) -> u64 {
    let (w, h) = match image.sprite {
        Some(sprite) => (image.width.saturating_mul(sprite.columns), image.height.saturating_mul(sprite.rows)),
        None => (image.width, image.height),
    };
    let encoder_per_pixel = match image.codec.as_str() {
        "webp" => 12.0,
        "png" => 6.0,
        _ => 3.0,
    };
    picture(image.width, image.height, 4.0) + 2 * picture(w, h, 3.0) + picture(w, h, encoder_per_pixel)
}

/// Bytes of a `w`×`h` picture at `per_pixel` bytes a pixel, with the padding FFmpeg
/// allocates around planes (rows aligned, a border for motion search).
fn picture(w: u32, h: u32, per_pixel: f64) -> u64 {
    let padded = |side: u32| u64::from(side).div_ceil(64) * 64 + 64;
    ((padded(w) * padded(h)) as f64 * per_pixel) as u64
}

/// Bytes a pixel of a decoded or encoded picture takes in `pix_fmt`; an unknown format
/// counts as 32-bit float RGB's 12.
fn pixel_bytes(pix_fmt: &str) -> f64 {
    let deep = ["10", "12", "16"].iter().any(|bits| pix_fmt.contains(bits));
    let base = match pix_fmt.trim_end_matches("le").trim_end_matches("be") {
        f if f.starts_with("yuv420") || f.starts_with("yuvj420") || f.starts_with("nv12") || f.starts_with("p010") || f.starts_with("p016") => 1.5,
        f if f.starts_with("yuv422") || f.starts_with("yuvj422") || f.starts_with("nv16") => 2.0,
        f if f.starts_with("yuv444") || f.starts_with("yuvj444") || f.starts_with("gbrp") || f == "rgb24" || f == "bgr24" => 3.0,
        "pal8" | "gray" | "gray8" => 1.0,
        "rgba" | "bgra" | "argb" | "abgr" | "rgb0" | "bgr0" | "yuva420p" => 4.0,
        _ => return 12.0,
    };
    if deep { base * 2.0 } else { base }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
