//! The host's check of what a format plugin planned, and of what probing found, before
//! any decoding or encoding. A plan is a plugin's answer and is not trusted: every size,
//! rate, list length, name and encoder option in it is held to a bound the host sets
//! (some from the operator's [`Limits`]), and the first problem found is the output's
//! failure message. The check of an input against the limits runs right after probing.

use super::allowlist::{self, AUDIO_CODECS, CONTAINERS, IMAGE_CODECS, PIX_FMTS, SCALERS, VIDEO_CODECS};
use super::encode::encoder_name;
use super::refusal::{InputRefused, PlanRefused};
use crate::config::Limits;
use crate::types::{AudioPlan, AudioSelection, ImagePlan, MediaInfo, OutputPlan, OutputType, StreamPlan, TimeRange, VariantPlan, VideoPlan};

/// The longest side of any picture a plan may ask for (H.264 level 6.2 and WebP allow
/// less; nothing encodes more).
pub const MAX_SIDE: u32 = 16384;
/// The highest frame rate a plan may ask for.
const MAX_FPS: f64 = 240.0;
/// Video bitrates, kbit/s.
const MAX_VIDEO_KBPS: u32 = 500_000;
/// Audio bitrates, kbit/s.
const MAX_AUDIO_KBPS: u32 = 1024;
/// Overlays (watermarks) of one picture, the length of their URLs, their fades (s).
const MAX_OVERLAYS: usize = 8;
const MAX_OVERLAY_URL: usize = 2048;
const MAX_OVERLAY_FADE: f64 = 60.0;
/// Loudness targets (LUFS, dBTP, LU): those a measurement and a gain can meet.
const LOUDNESS_INTEGRATED: (f64, f64) = (-70.0, -5.0);
const LOUDNESS_TRUE_PEAK: (f64, f64) = (-9.0, 0.0);
const LOUDNESS_RANGE: (f64, f64) = (1.0, 50.0);
const MAX_GOP: u32 = 10_000;
const MAX_KEYFRAME_INTERVAL: f64 = 60.0;
const SEGMENT_DURATION: (f64, f64) = (1.0, 60.0);
const SAMPLE_RATES: (u32, u32) = (8000, 192_000);
const MAX_CHANNELS: u32 = 8;
/// Longest extension, MIME type and variant name.
const MAX_EXTENSION: usize = 16;
const MAX_MIME: usize = 128;
const MAX_VARIANT_NAME: usize = 64;

/// Check a plan before anything is encoded from it. The refusal names the field and the
/// bound it broke, e.g. `video size 100000x100000 has a side above 16384 pixels`.
pub fn check_plan(plan: &OutputPlan, limits: &Limits) -> Result<(), PlanRefused> {
    if !CONTAINERS.contains(&plan.container.as_str()) {
        return Err(PlanRefused::Value(format!("container '{}' is not one the host writes ({})", shown(&plan.container), CONTAINERS.join(", "))));
    }
    let extension_ok = !plan.extension.is_empty()
        && plan.extension.len() <= MAX_EXTENSION
        && plan.extension.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !extension_ok {
        return Err(PlanRefused::Value(format!(
            "extension '{}' is not a plain file extension (1 to {MAX_EXTENSION} letters, digits, '-' or '_')",
            shown(&plan.extension)
        )));
    }
    check_mime(&plan.mime_type)?;
    if let Some(range) = &plan.range {
        check_range(range)?;
    }
    if let Some(vmaf) = plan.target_vmaf {
        if !(vmaf.is_finite() && (1.0..=100.0).contains(&vmaf)) {
            return Err(PlanRefused::Value(format!("target VMAF {vmaf} is outside 1..=100")));
        }
        // A target is searched on a file's video with a constant-quality setting, or
        // aimed at by the top rung of a ladder planned from constant-quality candidates.
        let file = plan.video.as_ref().is_some_and(|v| v.crf.is_some()) && plan.image.is_none() && plan.packaging.is_none();
        let crf_video = |v: &VariantPlan| v.video.as_ref().is_some_and(|v| v.crf.is_some());
        let ladder = plan.packaging.as_ref().is_some_and(|p| p.variants.iter().any(crf_video));
        if !(file || ladder) {
            return Err(PlanRefused::Shape(
                "a target VMAF needs a video file output with a constant-quality (crf) setting, or a package with constant-quality video rungs"
                    .into(),
            ));
        }
    }
    super::audio_tracks::check(&plan.audio_tracks)?;
    if plan.audio_tracks != AudioSelection::Main && plan.audio.is_none() && plan.packaging.is_none() {
        return Err(PlanRefused::Shape("plan chooses audio tracks for an output without audio".into()));
    }
    if !plan.tracks.is_empty() {
        return Err(PlanRefused::HostOnly("plan names the input's tracks, which only the host resolves".into()));
    }
    match (&plan.image, &plan.packaging) {
        (Some(_), Some(_)) => return Err(PlanRefused::Shape("plan has both pictures and a package; it must be one kind of output".into())),
        (Some(image), None) => {
            if plan.video.is_some() || plan.audio.is_some() {
                return Err(PlanRefused::Shape("plan has pictures and also video or audio streams; pictures stand alone".into()));
            }
            check_image(image, limits)?;
        }
        (None, Some(package)) => {
            if plan.video.is_some() || plan.audio.is_some() {
                return Err(PlanRefused::Shape("plan has a package and also top-level video or audio; a package's streams are its variants".into()));
            }
            check_package(package, limits)?;
        }
        (None, None) => {
            if plan.video.is_none() && plan.audio.is_none() {
                return Err(PlanRefused::Shape("plan has no video, audio, pictures or package".into()));
            }
            if plan.output_type == OutputType::Httpstream || plan.container == "httpstream" || plan.container == "image2" {
                return Err(PlanRefused::Shape(format!(
                    "a {} output with container '{}' needs pictures or a package",
                    plan.output_type.as_str(),
                    plan.container
                )));
            }
            if let Some(video) = &plan.video {
                check_video("video", video, limits)?;
            }
            if let Some(audio) = &plan.audio {
                check_audio("audio", audio)?;
            }
        }
    }
    Ok(())
}

/// Check a probed input against the limits on pixels and duration, before any decoding.
pub fn check_input(info: &MediaInfo, limits: &Limits) -> Result<(), InputRefused> {
    let pixels = u64::from(info.width) * u64::from(info.height);
    if pixels > limits.max_pixels {
        return Err(InputRefused::TooManyPixels { width: info.width, height: info.height, pixels, limit: limits.max_pixels });
    }
    let max = limits.max_duration.as_secs_f64();
    if !info.duration.is_finite() || info.duration > max {
        return Err(InputRefused::TooLong { seconds: info.duration, limit: max });
    }
    Ok(())
}

/// A plugin's string, cut short and without control characters, for a message.
fn shown(text: &str) -> String {
    let cleaned: String = text.chars().take(40).map(|c| if c.is_control() { '?' } else { c }).collect();
    if text.chars().count() > 40 { format!("{cleaned}...") } else { cleaned }
}

/// `type/subtype`, optionally `; parameters`, in printable ASCII.
fn check_mime(mime: &str) -> Result<(), PlanRefused> {
    let essence = mime.split(';').next().unwrap_or_default();
    let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    let ok = allowlist::plain(mime, MAX_MIME)
        && !mime.contains("..")
        && essence.split_once('/').is_some_and(|(kind, sub)| token(kind) && token(sub.trim_end()));
    if !ok {
        return Err(PlanRefused::Value(format!("MIME type '{}' is not a plain type/subtype of at most {MAX_MIME} characters", shown(mime))));
    }
    Ok(())
}

fn check_range(range: &TimeRange) -> Result<(), PlanRefused> {
    if !(range.offset.is_finite() && range.offset >= 0.0) {
        return Err(PlanRefused::Value(format!("range offset {} is not a finite number of seconds at or above 0", range.offset)));
    }
    if let Some(duration) = range.duration.filter(|d| !(d.is_finite() && *d >= 0.0)) {
        return Err(PlanRefused::Value(format!("range duration {duration} is not a finite number of seconds at or above 0")));
    }
    Ok(())
}

/// Sides within [`MAX_SIDE`], area within the operator's `max_pixels`.
fn check_size(at: &str, width: u32, height: u32, limits: &Limits) -> Result<(), PlanRefused> {
    if width == 0 || height == 0 {
        return Err(PlanRefused::Value(format!("{at} size {width}x{height} has a side of 0")));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PlanRefused::Value(format!("{at} size {width}x{height} has a side above {MAX_SIDE} pixels")));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(PlanRefused::OverLimit(format!(
            "{at} size {width}x{height} ({pixels} pixels) is above the limit of {} pixels ([limits] max_pixels)",
            limits.max_pixels
        )));
    }
    Ok(())
}

fn check_video(at: &str, video: &VideoPlan, limits: &Limits) -> Result<(), PlanRefused> {
    if !VIDEO_CODECS.contains(&video.codec.as_str()) {
        return Err(PlanRefused::Value(format!("{at} codec '{}' is not one of {}", shown(&video.codec), VIDEO_CODECS.join(", "))));
    }
    let encoder = encoder_name(&video.codec).map_err(|e| PlanRefused::Value(format!("{at}: {e}")))?;
    check_size(at, video.width, video.height, limits)?;
    check_overlays(at, video)?;
    if let Some(language) = &video.burn_in {
        let tag_ok = (2..=35).contains(&language.len()) && language.split('-').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if !tag_ok || video.codec == "gif" {
            return Err(PlanRefused::Value(format!("{at} burn_in '{}' is not a language tag of a video it can draw into", shown(language))));
        }
    }
    if video.burn_in_file.is_some() {
        return Err(PlanRefused::HostOnly(format!("{at} names a subtitle file, which only the host writes")));
    }
    if !PIX_FMTS.contains(&video.pix_fmt.as_str()) {
        return Err(PlanRefused::Value(format!("{at} pix_fmt '{}' is not one of {}", shown(&video.pix_fmt), PIX_FMTS.join(", "))));
    }
    // 4:2:0 halves both sides of the chroma planes, 4:2:2 the width.
    let (even_w, even_h) = match video.pix_fmt.get(..6) {
        _ if video.codec == "gif" => (false, false),
        Some("yuv420") => (true, true),
        Some("yuv422") => (true, false),
        _ => (false, false),
    };
    if (even_w && !video.width.is_multiple_of(2)) || (even_h && !video.height.is_multiple_of(2)) {
        return Err(PlanRefused::Value(format!("{at} size {}x{} must be even for pix_fmt {}", video.width, video.height, video.pix_fmt)));
    }
    if let Some(fps) = video.fps.filter(|f| !(f.is_finite() && *f > 0.0 && *f <= MAX_FPS)) {
        return Err(PlanRefused::Value(format!("{at} fps {fps} is outside (0, {MAX_FPS}]")));
    }
    if let Some(kbps) = video.bitrate_kbps.filter(|k| !(1..=MAX_VIDEO_KBPS).contains(k)) {
        return Err(PlanRefused::Value(format!("{at} bitrate {kbps} kbit/s is outside 1..={MAX_VIDEO_KBPS} kbit/s")));
    }
    if let Some(crf) = video.crf {
        let Some((lo, hi)) = crf_range(encoder) else {
            return Err(PlanRefused::Value(format!("{at} asks for crf {crf}, but {encoder} has no constant-quality mode")));
        };
        if !(crf.is_finite() && crf >= lo && crf <= hi) {
            return Err(PlanRefused::Value(format!("{at} crf {crf} is outside {encoder}'s range {lo}..={hi}")));
        }
    }
    if let Some(gop) = video.gop.filter(|g| !(1..=MAX_GOP).contains(g)) {
        return Err(PlanRefused::Value(format!("{at} gop {gop} is outside 1..={MAX_GOP} frames")));
    }
    if let Some(interval) = video.keyframe_interval.filter(|i| !(i.is_finite() && *i > 0.0 && *i <= MAX_KEYFRAME_INTERVAL)) {
        return Err(PlanRefused::Value(format!("{at} keyframe_interval {interval} is outside (0, {MAX_KEYFRAME_INTERVAL}] seconds")));
    }
    if !SCALERS.contains(&video.scaler.as_str()) {
        return Err(PlanRefused::Value(format!("{at} scaler '{}' is not one of {}", shown(&video.scaler), SCALERS[1..].join(", "))));
    }
    if video.rotate % 90 != 0 || !(-360..=360).contains(&video.rotate) {
        return Err(PlanRefused::Value(format!("{at} rotate {} is not a quarter turn (0, 90, 180 or 270)", video.rotate)));
    }
    allowlist::check_encoder_options(at, encoder, &video.encoder_options)
}

/// Rounds of probes a target-quality search may ask for before it settles.
pub const MAX_SEARCH_ROUNDS: usize = 4;
/// Settings one round of a search may try.
pub const MAX_SEARCH_SETTINGS: usize = 4;

/// A format plugin's step in the search for a target quality, at round `round` (from
/// 0), held to the host's bounds before anything is encoded for it: at most
/// [`MAX_SEARCH_SETTINGS`] settings a round, [`MAX_SEARCH_ROUNDS`] rounds. Each setting is
/// then checked in its plan by [`check_plan`].
pub fn check_search_step(step: &crate::types::QualityStep, round: usize) -> Result<(), PlanRefused> {
    match step {
        crate::types::QualityStep::Done(_) => Ok(()),
        crate::types::QualityStep::Probe(_) if round >= MAX_SEARCH_ROUNDS => {
            Err(PlanRefused::Step(format!("it asked for more than {MAX_SEARCH_ROUNDS} rounds of probes")))
        }
        crate::types::QualityStep::Probe(settings) if settings.is_empty() || settings.len() > MAX_SEARCH_SETTINGS => {
            Err(PlanRefused::Step(format!("it asked for {} settings in one round (1 to {MAX_SEARCH_SETTINGS})", settings.len())))
        }
        crate::types::QualityStep::Probe(_) => Ok(()),
    }
}

/// Rounds of probes planning a ladder may ask for before it settles.
pub const MAX_LADDER_ROUNDS: usize = 3;
/// Candidate rungs one round of planning a ladder may probe.
pub const MAX_LADDER_PROBES: usize = 12;

/// A format plugin's step in planning a ladder, at round `round` (from 0), held to the
/// host's bounds before anything is encoded for it. Each probe is then checked as a
/// sample's plan by [`ladder_probe_plan`], and the ladder by [`plan_with_ladder`].
pub fn check_ladder_step(step: &crate::types::LadderStep, round: usize) -> Result<(), PlanRefused> {
    match step {
        crate::types::LadderStep::Done(variants) if variants.is_empty() => Err(PlanRefused::Step("it planned a ladder of no rungs".into())),
        crate::types::LadderStep::Done(_) => Ok(()),
        crate::types::LadderStep::Probe(_) if round >= MAX_LADDER_ROUNDS => {
            Err(PlanRefused::Step(format!("it asked for more than {MAX_LADDER_ROUNDS} rounds of probes")))
        }
        crate::types::LadderStep::Probe(plans) if plans.is_empty() || plans.len() > MAX_LADDER_PROBES => {
            Err(PlanRefused::Step(format!("it asked for {} probes in one round (1 to {MAX_LADDER_PROBES})", plans.len())))
        }
        crate::types::LadderStep::Probe(_) => Ok(()),
    }
}

/// A sample of a ladder's probe: `video` (which must have a constant-quality setting)
/// alone in an MP4 file over `window`, held to [`check_plan`] as every plan is.
pub fn ladder_probe_plan(video: &VideoPlan, window: &TimeRange, limits: &Limits) -> Result<OutputPlan, PlanRefused> {
    if video.crf.is_none() {
        return Err(PlanRefused::Shape("a ladder probe needs a constant-quality (crf) setting".into()));
    }
    let plan = OutputPlan {
        output_type: OutputType::Video,
        container: "mp4".into(),
        extension: "mp4".into(),
        mime_type: "video/mp4".into(),
        // Scored against the input: a watermark is not drawn on probes.
        video: Some(VideoPlan { overlays: Vec::new(), ..video.clone() }),
        audio: None,
        range: Some(window.clone()),
        image: None,
        packaging: None,
        target_vmaf: None,
        audio_tracks: AudioSelection::Main,
        tracks: Vec::new(),
    };
    check_plan(&plan, limits)?;
    Ok(plan)
}

/// `plan` (a package planned from the content) with the ladder its plugin settled on,
/// held to [`check_plan`] as every plan is.
pub fn plan_with_ladder(mut plan: OutputPlan, variants: Vec<VariantPlan>, limits: &Limits) -> Result<OutputPlan, PlanRefused> {
    let Some(package) = plan.packaging.as_mut() else { return Err(PlanRefused::Shape("the plan has no package to plan a ladder for".into())) };
    package.variants = variants;
    plan.target_vmaf = None;
    check_plan(&plan, limits)?;
    Ok(plan)
}

/// `plan` with its video's constant-quality setting at `crf`, held to [`check_plan`]:
/// each setting a target-quality search asks for is checked as every plan is.
pub fn plan_at_setting(mut plan: OutputPlan, crf: f32, limits: &Limits) -> Result<OutputPlan, PlanRefused> {
    match plan.video.as_mut() {
        Some(video) if video.crf.is_some() => video.crf = Some(crf),
        Some(_) => return Err(PlanRefused::Shape("the plan's video has no constant-quality setting to search".into())),
        None => return Err(PlanRefused::Shape("the plan has no video to search a setting for".into())),
    }
    check_plan(&plan, limits)?;
    Ok(plan)
}

/// The `crf` range of an encoder, if it has a constant-quality mode.
fn crf_range(encoder: &str) -> Option<(f32, f32)> {
    match encoder {
        "libx264" | "libx265" => Some((0.0, 51.0)),
        "libvpx" | "libvpx-vp9" | "libsvtav1" | "libaom-av1" => Some((0.0, 63.0)),
        _ => None,
    }
}

/// Watermarks: a few, inside the picture's reach, from a URL the fetch can try (the
/// outbound policy then decides the address), never naming a file.
fn check_overlays(at: &str, video: &VideoPlan) -> Result<(), PlanRefused> {
    if video.overlays.len() > MAX_OVERLAYS {
        return Err(PlanRefused::Value(format!("{at} has {} overlays; at most {MAX_OVERLAYS}", video.overlays.len())));
    }
    if !video.overlays.is_empty() && video.codec == "gif" {
        return Err(PlanRefused::Value(format!("{at}: a GIF takes no overlays")));
    }
    for (i, o) in video.overlays.iter().enumerate() {
        let at = format!("{at} overlay {i}");
        let scheme_ok = url::Url::parse(&o.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !scheme_ok || o.url.len() > MAX_OVERLAY_URL {
            return Err(PlanRefused::Value(format!("{at} url '{}' is not an http(s) URL of at most {MAX_OVERLAY_URL} characters", shown(&o.url))));
        }
        if o.width < 2 || o.width > video.width.max(2) {
            return Err(PlanRefused::Value(format!("{at} width {} is outside 2..={}", o.width, video.width)));
        }
        let reach = 16_384;
        if o.x.abs() > reach || o.y.abs() > reach {
            return Err(PlanRefused::Value(format!("{at} position {},{} is beyond {reach} pixels", o.x, o.y)));
        }
        if !(0.0..=1.0).contains(&o.opacity) {
            return Err(PlanRefused::Value(format!("{at} opacity {} is outside 0..=1", o.opacity)));
        }
        let end_ok = o.end.is_none_or(|e| e.is_finite() && e > o.start);
        if !(o.start.is_finite() && o.start >= 0.0) || !end_ok || !(0.0..=MAX_OVERLAY_FADE).contains(&o.fade) {
            return Err(PlanRefused::Value(format!("{at} times (start {}, end {:?}, fade {}) are not a range with a fade of 0..={MAX_OVERLAY_FADE} s", o.start, o.end, o.fade)));
        }
        if o.file.is_some() {
            return Err(PlanRefused::HostOnly(format!("{at} names a file, which only the host fetches")));
        }
    }
    Ok(())
}

fn check_audio(at: &str, audio: &AudioPlan) -> Result<(), PlanRefused> {
    if !AUDIO_CODECS.contains(&audio.codec.as_str()) {
        return Err(PlanRefused::Value(format!("{at} codec '{}' is not one of {}", shown(&audio.codec), AUDIO_CODECS.join(", "))));
    }
    let (lo, hi) = SAMPLE_RATES;
    if !(lo..=hi).contains(&audio.sample_rate) {
        return Err(PlanRefused::Value(format!("{at} sample rate {} Hz is outside {lo}..={hi} Hz", audio.sample_rate)));
    }
    if !(1..=MAX_CHANNELS).contains(&audio.channels) {
        return Err(PlanRefused::Value(format!("{at} channels {} is outside 1..={MAX_CHANNELS}", audio.channels)));
    }
    if audio.bitrate_kbps > MAX_AUDIO_KBPS {
        return Err(PlanRefused::Value(format!("{at} bitrate {} kbit/s is above {MAX_AUDIO_KBPS} kbit/s", audio.bitrate_kbps)));
    }
    if let Some(loudness) = &audio.loudness {
        for (name, value, (lo, hi), unit) in [
            ("integrated loudness", loudness.integrated, LOUDNESS_INTEGRATED, "LUFS"),
            ("true peak", loudness.true_peak, LOUDNESS_TRUE_PEAK, "dBTP"),
            ("loudness range", loudness.lra, LOUDNESS_RANGE, "LU"),
        ] {
            if !(lo..=hi).contains(&value) {
                return Err(PlanRefused::Value(format!("{at} {name} target {value} {unit} is outside {lo}..={hi}")));
            }
        }
        if loudness.input.is_some() || loudness.limited.is_some() {
            return Err(PlanRefused::HostOnly(format!("{at} loudness carries a measurement, which only the host makes")));
        }
    }
    Ok(())
}

fn check_image(image: &ImagePlan, limits: &Limits) -> Result<(), PlanRefused> {
    if !IMAGE_CODECS.contains(&image.codec.as_str()) {
        return Err(PlanRefused::Value(format!("image codec '{}' is not one of {}", shown(&image.codec), IMAGE_CODECS.join(", "))));
    }
    let encoder = encoder_name(&image.codec).map_err(|e| PlanRefused::Value(format!("image: {e}")))?;
    check_size("image", image.width, image.height, limits)?;
    let count = image.times.len();
    if count == 0 {
        return Err(PlanRefused::Value("image times list no picture".into()));
    }
    if count > limits.max_pictures {
        return Err(PlanRefused::OverLimit(format!("image times list {count} pictures, above the limit of {} ([limits] max_pictures)", limits.max_pictures)));
    }
    if let Some(t) = image.times.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
        return Err(PlanRefused::Value(format!("image time {t} is not a finite number of seconds at or above 0")));
    }
    if let Some(pair) = image.times.windows(2).find(|w| w[1] < w[0]) {
        return Err(PlanRefused::Value(format!("image times are not in increasing order ({} comes after {})", pair[1], pair[0])));
    }
    if let Some(sprite) = image.sprite {
        let tiles = u64::from(sprite.columns) * u64::from(sprite.rows);
        if tiles == 0 || tiles > limits.max_pictures as u64 {
            return Err(PlanRefused::OverLimit(format!(
                "image sprite grid {}x{} is outside 1..={} tiles ([limits] max_pictures)",
                sprite.columns, sprite.rows, limits.max_pictures
            )));
        }
        let sheet = |side: u32, n: u32| u64::from(side) * u64::from(n);
        let (w, h) = (sheet(image.width, sprite.columns), sheet(image.height, sprite.rows));
        if w > u64::from(MAX_SIDE) || h > u64::from(MAX_SIDE) {
            return Err(PlanRefused::Value(format!("image sprite sheets would be {w}x{h}, a side above {MAX_SIDE} pixels")));
        }
        check_size("image sprite sheet", w as u32, h as u32, limits)?;
    }
    allowlist::check_encoder_options("image", encoder, &image.encoder_options)
}

fn check_package(package: &StreamPlan, limits: &Limits) -> Result<(), PlanRefused> {
    if package.hls.is_none() && !package.dash {
        return Err(PlanRefused::Shape("package asks for neither HLS nor DASH".into()));
    }
    let count = package.variants.len();
    if count == 0 || count > limits.max_variants {
        let message = format!("package has {count} variants, outside 1..={} ([limits] max_variants)", limits.max_variants);
        return Err(if count == 0 { PlanRefused::Shape(message) } else { PlanRefused::OverLimit(message) });
    }
    let (lo, hi) = SEGMENT_DURATION;
    if !(package.segment_duration.is_finite() && package.segment_duration >= lo && package.segment_duration <= hi) {
        return Err(PlanRefused::Value(format!("package segment_duration {} is outside {lo}..={hi} seconds", package.segment_duration)));
    }
    for variant in &package.variants {
        if variant.name.is_empty() || !allowlist::plain(&variant.name, MAX_VARIANT_NAME) {
            return Err(PlanRefused::Value(format!("variant name '{}' is not plain text of 1 to {MAX_VARIANT_NAME} characters", shown(&variant.name))));
        }
        let at = format!("variant '{}'", variant.name);
        if variant.video.is_none() && variant.audio.is_none() {
            return Err(PlanRefused::Shape(format!("{at} has neither video nor audio")));
        }
        if let Some(video) = &variant.video {
            check_video(&format!("{at} video"), video, limits)?;
        }
        if let Some(audio) = &variant.audio {
            check_audio(&format!("{at} audio"), audio)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "plan_check_tests.rs"]
mod tests;
