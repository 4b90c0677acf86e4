//! Types that cross rooms: the API, the worker, the media engine and the plugin host all
//! speak these. They mirror the WIT records in `wit/plugin.wit` without depending on the
//! generated bindings, so `media/` never needs to know that plugins exist.

use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};

/// What probing an input found. Dimensions are as stored; `rotation` (degrees clockwise)
/// says how a player turns them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub width: u32,
    pub height: u32,
    pub duration: f64,
    pub rotation: i32,
    pub fps: f64,
    pub bitrate: u64,
    pub has_video: bool,
    pub has_audio: bool,
    pub video_codec: String,
    pub audio_codec: String,
    pub pix_fmt: String,
    pub sample_rate: u32,
    pub channels: u32,
    pub size: u64,
    pub format_name: String,
    /// FFmpeg's transfer name: `smpte2084` (PQ) and `arib-std-b67` (HLG) are HDR.
    pub color_transfer: String,
    pub color_primaries: String,
    /// Every decodable audio track, the main one (the one `sample_rate` and `channels`
    /// describe) first, then the others in the file's order.
    #[serde(default)]
    pub audio_tracks: Vec<AudioTrack>,
}

impl OutputPlan {
    /// Every video plan of the output: its own, or its package's rungs'.
    pub fn video_plans(&self) -> impl Iterator<Item = &VideoPlan> {
        self.video.iter().chain(self.packaging.iter().flat_map(|s| s.variants.iter().filter_map(|v| v.video.as_ref())))
    }

    pub fn video_plans_mut(&mut self) -> impl Iterator<Item = &mut VideoPlan> {
        self.video.iter_mut().chain(self.packaging.iter_mut().flat_map(|s| s.variants.iter_mut().filter_map(|v| v.video.as_mut())))
    }

    /// Every audio plan of the output: its own, or its package's rungs'.
    pub fn audio_plans(&self) -> impl Iterator<Item = &AudioPlan> {
        self.audio.iter().chain(self.packaging.iter().flat_map(|s| s.variants.iter().filter_map(|v| v.audio.as_ref())))
    }

    pub fn audio_plans_mut(&mut self) -> impl Iterator<Item = &mut AudioPlan> {
        self.audio.iter_mut().chain(self.packaging.iter_mut().flat_map(|s| s.variants.iter_mut().filter_map(|v| v.audio.as_mut())))
    }
}

/// One audio track of an input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioTrack {
    /// The stream's index in the file.
    pub stream: usize,
    /// Its `language` tag as the file gives it (ISO 639-2 such as `eng`, or 639-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Its `title` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub channels: u32,
}

impl MediaInfo {
    /// Whether the video uses an HDR transfer (PQ or HLG).
    pub fn is_hdr(&self) -> bool {
        matches!(self.color_transfer.as_str(), "smpte2084" | "arib-std-b67")
    }
}

/// The kind of an output, which also prefixes its statuses (`video.encoded`, ...).
/// Stored through sea-orm as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sea_orm::EnumIter, sea_orm::DeriveActiveEnum, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum OutputType {
    #[sea_orm(string_value = "video")]
    Video,
    #[sea_orm(string_value = "audio")]
    Audio,
    #[sea_orm(string_value = "image")]
    Image,
    #[sea_orm(string_value = "httpstream")]
    Httpstream,
}

impl OutputType {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::Video => "video",
            OutputType::Audio => "audio",
            OutputType::Image => "image",
            OutputType::Httpstream => "httpstream",
        }
    }
}

/// How a picture fills an output size whose aspect differs from the input's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale to exactly the size.
    #[default]
    Stretch,
    /// Cover the size and cut the overflow, centred.
    Crop,
    /// Fit inside the size, black bars around.
    Pad,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoPlan {
    /// Logical codec: `h264`, `hevc`, `vp8`, `vp9`, `av1`, `mpeg4`, `theora`, `gif`.
    pub codec: String,
    /// Final upright output size; even numbers.
    pub width: u32,
    pub height: u32,
    /// None keeps the input rate.
    pub fps: Option<f64>,
    pub bitrate_kbps: Option<u32>,
    pub crf: Option<f32>,
    pub pix_fmt: String,
    pub gop: Option<u32>,
    /// Force a keyframe every this many seconds and no others (aligned ladders).
    pub keyframe_interval: Option<f64>,
    /// AVOptions for the encoder (`preset`, `profile`, `maxrate`, ...).
    pub encoder_options: Vec<(String, String)>,
    /// swscale algorithm name.
    pub scaler: String,
    pub fit: Fit,
    /// Extra clockwise turn after the input's own rotation.
    pub rotate: i32,
    /// Tone-map HDR (PQ/HLG, BT.2020) to SDR BT.709.
    pub tone_map: bool,
    /// Images drawn over the picture, in order (watermarks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlays: Vec<OverlayPlan>,
    /// Subtitles drawn into the picture: the job's track of this language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn_in: Option<String>,
    /// That track as an ASS script on this output's timeline, in the job's work
    /// directory: set by the worker before the encode, never by a plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn_in_file: Option<std::path::PathBuf>,
}

impl VideoPlan {
    /// The bit-rate ceiling its encoder options set (`maxrate`), kbit/s.
    pub fn maxrate_kbps(&self) -> Option<u64> {
        self.encoder_options.iter().find(|(k, _)| k == "maxrate").and_then(|(_, v)| rate_kbps(v))
    }
}

/// A rate as FFmpeg reads an encoder option (`4000k`, `4M` or plain bit/s), in kbit/s.
pub fn rate_kbps(value: &str) -> Option<u64> {
    let (digits, scale) = match value.as_bytes().last()? {
        b'k' | b'K' => (&value[..value.len() - 1], 1),
        b'M' => (&value[..value.len() - 1], 1000),
        _ => return value.parse::<u64>().ok().map(|bits| bits.div_ceil(1000)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return None;
    }
    digits.parse::<u64>().ok().map(|n| n.saturating_mul(scale))
}

/// Where an overlay sits in the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlayAnchor {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
    Center,
}

/// An image drawn over the picture (a watermark), as a format plugin planned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayPlan {
    /// The image's `http`/`https` URL.
    pub url: String,
    /// Width in the output's pixels; the height follows the image's aspect.
    pub width: u32,
    pub anchor: OverlayAnchor,
    /// Distance from the anchor's edges, pixels (a shift for `center`).
    pub x: i32,
    pub y: i32,
    /// 0 to 1.
    pub opacity: f32,
    /// Output seconds it shows from, and until (none: to the end).
    pub start: f64,
    pub end: Option<f64>,
    /// Seconds of fade in and out.
    pub fade: f64,
    /// The fetched image in the job's work directory: set by the worker before the
    /// encode, never by a plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPlan {
    /// Logical codec: `aac`, `opus`, `vorbis`, `mp3`, `flac`, `pcm_s16le`.
    pub codec: String,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub channels: u32,
    /// Normalize (or only measure) the loudness of this audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<LoudnessPlan>,
}

/// Loudness normalization to EBU R128 / ITU-R BS.1770-4, as a format plugin planned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoudnessPlan {
    /// Target integrated loudness, LUFS.
    pub integrated: f64,
    /// Highest true peak allowed, dBTP.
    pub true_peak: f64,
    /// Loudness range the target allows, LU (reported against; a linear gain keeps the
    /// input's range).
    pub lra: f64,
    /// Only measure; the audio is encoded as without it.
    pub measure_only: bool,
    /// What the host measured of the input's audio (this part of it, at this plan's
    /// channels) before the encode: set by the worker, never by a plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Loudness>,
    /// The same audio measured again through the gain and the limiter, when the gain
    /// needs the limiter: what the limiter takes off is made up in the gain. Set by the
    /// worker, never by a plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited: Option<Loudness>,
    /// For an output of several of the input's audio tracks: each track's own
    /// measurements, from which that track is normalized. Set by the worker, never by a
    /// plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<TrackLoudness>,
}

/// What the host measured of one audio track, for a loudness plan (see `LoudnessPlan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackLoudness {
    /// The track's stream index in the input.
    pub stream: usize,
    pub input: Option<Loudness>,
    pub limited: Option<Loudness>,
}

impl LoudnessPlan {
    /// The plan as it applies to the input's track `stream`: with that track's
    /// measurements when it has its own.
    pub fn for_track(&self, stream: usize) -> LoudnessPlan {
        match self.tracks.iter().find(|t| t.stream == stream) {
            Some(t) => LoudnessPlan { input: t.input, limited: t.limited, tracks: Vec::new(), ..self.clone() },
            None => self.clone(),
        }
    }
}

impl AudioPlan {
    /// The plan as it applies to the input's track `stream` (its own loudness gain).
    pub fn for_track(&self, stream: usize) -> AudioPlan {
        AudioPlan { loudness: self.loudness.as_ref().map(|l| l.for_track(stream)), ..self.clone() }
    }
}

/// A loudness measurement (ITU-R BS.1770-4, EBU R128 gating).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Loudness {
    /// Integrated loudness, LUFS (-70 for silence).
    pub integrated: f64,
    /// Loudness range, LU.
    pub lra: f64,
    /// Highest true peak of any channel, dBTP.
    pub true_peak: f64,
}

/// A part of the input's timeline, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeRange {
    pub offset: f64,
    pub duration: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpritePlan {
    pub columns: u32,
    pub rows: u32,
}

/// Still pictures taken from the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePlan {
    /// `mjpeg`, `png` or `webp`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    /// Input times in seconds, increasing.
    pub times: Vec<f64>,
    pub sprite: Option<SpritePlan>,
    pub encoder_options: Vec<(String, String)>,
}

/// One rung of an adaptive-streaming ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantPlan {
    pub name: String,
    pub video: Option<VideoPlan>,
    pub audio: Option<AudioPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HlsPlan {
    /// fMP4 (CMAF) segments instead of MPEG-TS.
    pub fmp4: bool,
}

/// An HLS and/or DASH package of a ladder encoded once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamPlan {
    pub variants: Vec<VariantPlan>,
    pub segment_duration: f64,
    pub hls: Option<HlsPlan>,
    pub dash: bool,
}

/// Which of the input's audio tracks a package carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioSelection {
    /// The main track only.
    #[default]
    Main,
    /// Every track, the main one first.
    All,
    /// The tracks of these languages, in this order.
    Languages(Vec<String>),
}

/// What the samples encoded at one setting measured, in a search for a target quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QualityProbe {
    /// The setting, on the codec's constant-quality scale.
    pub crf: f32,
    /// The samples' mean VMAF.
    pub vmaf: f64,
    /// The samples' bit rate, kbit/s.
    pub bitrate_kbps: u32,
}

/// A format plugin's next step in a search for a target quality.
#[derive(Debug, Clone, PartialEq)]
pub enum QualityStep {
    /// Measure samples at each of these settings.
    Probe(Vec<f32>),
    /// Encode at this setting.
    Done(f32),
}

/// What the samples encoded at one candidate rung measured, in planning a ladder from
/// the content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LadderProbe {
    pub width: u32,
    pub height: u32,
    /// The setting, on the codec's constant-quality scale.
    pub crf: f32,
    /// The samples' mean VMAF, against the input at its own size.
    pub vmaf: f64,
    /// The samples' bit rate, kbit/s.
    pub bitrate_kbps: u32,
}

/// A format plugin's next step in planning a ladder from the content.
#[derive(Debug, Clone, PartialEq)]
pub enum LadderStep {
    /// Measure samples encoded with each of these video plans.
    Probe(Vec<VideoPlan>),
    /// The package's variants.
    Done(Vec<VariantPlan>),
}

/// How to produce one output, as a format plugin planned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputPlan {
    pub output_type: OutputType,
    /// FFmpeg muxer name, e.g. `mp4`; `image2` for pictures, `httpstream` for packages.
    pub container: String,
    pub extension: String,
    pub mime_type: String,
    pub video: Option<VideoPlan>,
    pub audio: Option<AudioPlan>,
    pub range: Option<TimeRange>,
    pub image: Option<ImagePlan>,
    pub packaging: Option<StreamPlan>,
    /// The mean VMAF the video is encoded to reach (the plugin's `target-vmaf`): the
    /// worker searches the setting on samples before the encode.
    #[serde(default)]
    pub target_vmaf: Option<f32>,
    /// The input's audio tracks the plugin asked for (a package's alternates, a file's
    /// audio streams).
    #[serde(default)]
    pub audio_tracks: AudioSelection,
    /// The input's tracks that selection names, the default first: set by the worker
    /// from the probe, never by a plugin. Empty: the main track, as without a selection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<AudioTrack>,
}
