//! Plans the media tests share, so a new field of a plan is written once here.

use crate::types::{AudioPlan, Fit, VideoPlan};

/// A `codec` plan at `width`×`height`: the input's rate, yuv420p (pal8 for GIF),
/// bicubic, stretched, no rate control and no encoder options (a test sets its own
/// with `..video_plan(...)`).
pub fn video_plan(codec: &str, width: u32, height: u32) -> VideoPlan {
    VideoPlan {
        codec: codec.into(),
        width,
        height,
        fps: None,
        bitrate_kbps: None,
        crf: None,
        pix_fmt: if codec == "gif" { "pal8".into() } else { "yuv420p".into() },
        gop: None,
        keyframe_interval: None,
        encoder_options: Vec::new(),
        scaler: "bicubic".into(),
        fit: Fit::Stretch,
        rotate: 0,
        tone_map: false,
        overlays: Vec::new(),
        burn_in: None,
        burn_in_file: None,
    }
}

/// H.264 at CRF `crf` with x264's `preset`.
pub fn h264(width: u32, height: u32, crf: f32, preset: &str) -> VideoPlan {
    VideoPlan { crf: Some(crf), encoder_options: options(&[("preset", preset)]), ..video_plan("h264", width, height) }
}

/// Encoder options from pairs.
pub fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Stereo AAC.
pub fn aac(bitrate_kbps: u32, sample_rate: u32) -> AudioPlan {
    AudioPlan { codec: "aac".into(), bitrate_kbps, sample_rate, channels: 2, loudness: None }
}
