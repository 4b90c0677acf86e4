//! Conversions between the generated WIT types and the host's own `crate::types`.

use super::bindings::format::exports::copra::plugin::format as wit_format;
use super::bindings::types as wit;
use crate::types::{
    AudioPlan, AudioSelection, Fit, HlsPlan, LoudnessPlan, OverlayAnchor, OverlayPlan, ImagePlan, MediaInfo, OutputPlan, OutputType, SpritePlan, StreamPlan, TimeRange, VariantPlan,
    VideoPlan,
};

/// The input as plugins see it.
pub fn media_info(m: &MediaInfo) -> wit::MediaInfo {
    wit::MediaInfo {
        width: m.width,
        height: m.height,
        duration: m.duration,
        rotation: m.rotation,
        fps: m.fps,
        bitrate: m.bitrate,
        has_video: m.has_video,
        has_audio: m.has_audio,
        video_codec: m.video_codec.clone(),
        audio_codec: m.audio_codec.clone(),
        pix_fmt: m.pix_fmt.clone(),
        sample_rate: m.sample_rate,
        channels: m.channels,
        size: m.size,
        format_name: m.format_name.clone(),
        color_transfer: m.color_transfer.clone(),
        color_primaries: m.color_primaries.clone(),
    }
}

/// What kind of output a format string makes.
pub fn output_type(t: wit_format::OutputType) -> OutputType {
    match t {
        wit_format::OutputType::Video => OutputType::Video,
        wit_format::OutputType::Audio => OutputType::Audio,
        wit_format::OutputType::Image => OutputType::Image,
        wit_format::OutputType::Httpstream => OutputType::Httpstream,
    }
}

fn fit(f: wit_format::Fit) -> Fit {
    match f {
        wit_format::Fit::Stretch => Fit::Stretch,
        wit_format::Fit::Crop => Fit::Crop,
        wit_format::Fit::Pad => Fit::Pad,
    }
}

fn video(v: wit_format::VideoPlan) -> VideoPlan {
    VideoPlan {
        codec: v.codec,
        width: v.width,
        height: v.height,
        fps: v.fps,
        bitrate_kbps: v.bitrate_kbps,
        crf: v.crf,
        pix_fmt: v.pix_fmt,
        gop: v.gop,
        keyframe_interval: v.keyframe_interval,
        encoder_options: v.encoder_options,
        scaler: v.scaler,
        fit: fit(v.fit),
        rotate: v.rotate,
        tone_map: v.tone_map,
        overlays: v.overlays.into_iter().map(overlay).collect(),
        burn_in: v.burn_in,
        burn_in_file: None,
    }
}

fn overlay(o: wit_format::OverlayPlan) -> OverlayPlan {
    let anchor = match o.anchor {
        wit_format::OverlayAnchor::TopLeft => OverlayAnchor::TopLeft,
        wit_format::OverlayAnchor::TopRight => OverlayAnchor::TopRight,
        wit_format::OverlayAnchor::BottomLeft => OverlayAnchor::BottomLeft,
        wit_format::OverlayAnchor::BottomRight => OverlayAnchor::BottomRight,
        wit_format::OverlayAnchor::Center => OverlayAnchor::Center,
    };
    OverlayPlan { url: o.url, width: o.width, anchor, x: o.x, y: o.y, opacity: o.opacity, start: o.start, end: o.end, fade: o.fade, file: None }
}

fn audio(a: wit_format::AudioPlan) -> AudioPlan {
    let loudness = a.loudness.map(|l| LoudnessPlan { integrated: l.integrated, true_peak: l.true_peak, lra: l.lra, measure_only: l.measure_only, input: None, limited: None, tracks: Vec::new() });
    AudioPlan { codec: a.codec, bitrate_kbps: a.bitrate_kbps, sample_rate: a.sample_rate, channels: a.channels, loudness }
}

/// A format plugin's plan in the host's own types.
pub fn output_plan(p: wit_format::OutputPlan) -> OutputPlan {
    OutputPlan {
        output_type: output_type(p.output_type),
        container: p.container,
        extension: p.extension,
        mime_type: p.mime_type,
        video: p.video.map(video),
        audio: p.audio.map(audio),
        range: p.range.map(|r| TimeRange { offset: r.offset, duration: r.duration }),
        image: p.image.map(|i| ImagePlan {
            codec: i.codec,
            width: i.width,
            height: i.height,
            fit: fit(i.fit),
            times: i.times,
            sprite: i.sprite.map(|s| SpritePlan { columns: s.columns, rows: s.rows }),
            encoder_options: i.encoder_options,
        }),
        packaging: p.packaging.map(|s| StreamPlan {
            variants: s.variants.into_iter().map(variant).collect(),
            segment_duration: s.segment_duration,
            hls: s.hls.map(|h| HlsPlan { fmp4: h.fmp4 }),
            dash: s.dash,
        }),
        target_vmaf: p.target_vmaf,
        audio_tracks: match p.audio_tracks {
            wit_format::AudioSelection::Main => AudioSelection::Main,
            wit_format::AudioSelection::All => AudioSelection::All,
            wit_format::AudioSelection::Languages(languages) => AudioSelection::Languages(languages),
        },
        tracks: Vec::new(),
    }
}

/// A step of a target-quality search, as the plugin asked (the host checks it).
pub fn quality_step(step: wit_format::QualityStep) -> crate::types::QualityStep {
    match step {
        wit_format::QualityStep::Probe(settings) => crate::types::QualityStep::Probe(settings),
        wit_format::QualityStep::Done(setting) => crate::types::QualityStep::Done(setting),
    }
}

/// What a probe measured, for the plugin.
pub fn quality_probe(p: &crate::types::QualityProbe) -> wit_format::QualityProbe {
    wit_format::QualityProbe { crf: p.crf, vmaf: p.vmaf, bitrate_kbps: p.bitrate_kbps }
}

fn variant(v: wit_format::VariantPlan) -> VariantPlan {
    VariantPlan { name: v.name, video: v.video.map(video), audio: v.audio.map(audio) }
}

/// A step of planning a ladder, as the plugin asked (the host checks it).
pub fn ladder_step(step: wit_format::LadderStep) -> crate::types::LadderStep {
    match step {
        wit_format::LadderStep::Probe(plans) => crate::types::LadderStep::Probe(plans.into_iter().map(video).collect()),
        wit_format::LadderStep::Done(variants) => crate::types::LadderStep::Done(variants.into_iter().map(variant).collect()),
    }
}

/// What a ladder probe measured, for the plugin.
pub fn ladder_probe(p: &crate::types::LadderProbe) -> wit_format::LadderProbe {
    wit_format::LadderProbe { width: p.width, height: p.height, crf: p.crf, vmaf: p.vmaf, bitrate_kbps: p.bitrate_kbps }
}
