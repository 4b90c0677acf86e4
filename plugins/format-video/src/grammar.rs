//! Parsing of `container:video:audio:options`. Every part is optional; every unknown
//! item is an error that names it, so a typo never silently becomes a default.

/// The requested frame size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// Keep the input's.
    Input,
    /// `720p`, `x720`.
    Height(u32),
    /// `1280x`.
    Width(u32),
    /// `1280x720`.
    Exact(u32, u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FormatSpec {
    pub container: String,
    pub video_codec: String,
    pub size: Size,
    pub fps: Option<f64>,
    pub video_bitrate_kbps: Option<u32>,
    pub audio_codec: String,
    pub audio_bitrate_kbps: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub quality: Option<u8>,
    pub preset: Option<String>,
    pub profile: Option<String>,
    pub maxrate_kbps: Option<u32>,
    pub gop: Option<u32>,
}

const NAMED_HEIGHTS: &[u32] = &[240, 360, 480, 540, 576, 720, 1080, 1440, 2160];
const PRESETS: &[&str] = &["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"];
const PROFILES: &[&str] = &["baseline", "main", "high", "high10", "high422", "high444", "main10"];

fn kbps(item: &str) -> Option<u32> {
    item.strip_suffix('k').and_then(|n| n.parse().ok()).filter(|&n| n > 0)
}

fn dimension(text: &str) -> Option<u32> {
    text.parse().ok().filter(|&n: &u32| (2..=8192).contains(&n))
}

fn size(item: &str) -> Option<Size> {
    if let Some(height) = item.strip_suffix('p').and_then(|h| h.parse::<u32>().ok()) {
        return NAMED_HEIGHTS.contains(&height).then_some(Size::Height(height));
    }
    let (w, h) = item.split_once('x')?;
    match (w.is_empty(), h.is_empty()) {
        (false, true) => dimension(w).map(Size::Width),
        (true, false) => dimension(h).map(Size::Height),
        (false, false) => Some(Size::Exact(dimension(w)?, dimension(h)?)),
        (true, true) => None,
    }
}

pub fn parse(format: &str) -> Result<FormatSpec, String> {
    let parts: Vec<&str> = format.split(':').collect();
    if parts.len() > 4 {
        return Err(format!("The format '{format}' has too many parts ('{}'): the form is container:video:audio:options.", parts[4..].join(":")));
    }
    let part = |i: usize| parts.get(i).copied().unwrap_or("");
    let container_name = part(0);
    let Some(container) = crate::container(container_name) else {
        let names: Vec<&str> = crate::CONTAINERS.iter().map(|c| c.name).collect();
        return Err(format!("Unknown container '{container_name}' in format '{format}'; supported: {}.", names.join(", ")));
    };
    let mut spec = FormatSpec {
        container: container.name.to_string(),
        video_codec: container.video_codecs[0].into(),
        size: Size::Input,
        fps: None,
        video_bitrate_kbps: None,
        audio_codec: container.audio_codecs[0].into(),
        audio_bitrate_kbps: None,
        sample_rate: None,
        channels: None,
        quality: None,
        preset: None,
        profile: None,
        maxrate_kbps: None,
        gop: None,
    };

    for item in part(1).split('_').filter(|i| !i.is_empty()) {
        match item {
            "h264" | "x264" | "avc" => spec.video_codec = "h264".into(),
            "hevc" | "h265" | "x265" => spec.video_codec = "hevc".into(),
            _ if item.ends_with("fps") => {
                let fps: f64 = item.trim_end_matches("fps").parse().map_err(|_| format!("Unknown video parameter '{item}' in format '{format}'."))?;
                if !(1.0..=240.0).contains(&fps) {
                    return Err(format!("The frame rate '{item}' in format '{format}' must be between 1 and 240."));
                }
                spec.fps = Some(fps);
            }
            _ => {
                if let Some(rate) = kbps(item) {
                    spec.video_bitrate_kbps = Some(rate);
                } else if let Some(s) = size(item) {
                    spec.size = s;
                } else {
                    return Err(format!("Unknown video parameter '{item}' in format '{format}'."));
                }
            }
        }
    }

    for item in part(2).split('_').filter(|i| !i.is_empty()) {
        match item {
            "aac" => spec.audio_codec = "aac".into(),
            "mono" => spec.channels = Some(1),
            "stereo" => spec.channels = Some(2),
            _ => {
                if let Some(rate) = kbps(item) {
                    spec.audio_bitrate_kbps = Some(rate);
                } else if let Some(rate) = item.parse::<u32>().ok().filter(|r| [8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000].contains(r)) {
                    spec.sample_rate = Some(rate);
                } else {
                    return Err(format!("Unknown audio parameter '{item}' in format '{format}'."));
                }
            }
        }
    }

    for option in part(3).split(',').filter(|o| !o.is_empty()) {
        let (key, value) = option.split_once('=').ok_or_else(|| format!("The option '{option}' in format '{format}' must be key=value."))?;
        let bad = || format!("The option '{key}={value}' in format '{format}' is not valid.");
        match key {
            "quality" => spec.quality = Some(value.parse().ok().filter(|q| (1..=5).contains(q)).ok_or_else(|| format!("{} quality is 1 to 5.", bad()))?),
            "preset" => spec.preset = Some(PRESETS.contains(&value).then(|| value.to_string()).ok_or_else(bad)?),
            "profile" => spec.profile = Some(PROFILES.contains(&value).then(|| value.to_string()).ok_or_else(bad)?),
            "maxrate" => spec.maxrate_kbps = Some(kbps(value).ok_or_else(bad)?),
            "gop" | "keyint" => spec.gop = Some(value.parse().ok().filter(|&g: &u32| g > 0).ok_or_else(bad)?),
            _ => return Err(format!("Unknown option '{key}' in format '{format}'.")),
        }
    }
    if !container.video_codecs.contains(&spec.video_codec.as_str()) || !container.audio_codecs.contains(&spec.audio_codec.as_str()) {
        return Err(format!("The container '{}' cannot hold {} with {} (format '{format}').", container.name, spec.video_codec, spec.audio_codec));
    }
    Ok(spec)
}
