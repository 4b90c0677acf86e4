//! Types that cross rooms: the API, the worker, the media engine and the plugin host all
//! speak these. They mirror the WIT records in `wit/plugin.wit` without depending on the
//! generated bindings, so `media/` never needs to know that plugins exist.

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
}

/// The kind of an output, which also prefixes its statuses (`video.encoded`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputType {
    Video,
    Audio,
    Image,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoPlan {
    /// Logical codec: `h264`, `hevc`, `vp8`, `vp9`, `av1`, ...
    pub codec: String,
    /// Output size, rotation already applied; even numbers.
    pub width: u32,
    pub height: u32,
    /// None keeps the input rate.
    pub fps: Option<f64>,
    pub bitrate_kbps: Option<u32>,
    pub crf: Option<f32>,
    pub pix_fmt: String,
    pub gop: Option<u32>,
    /// AVOptions for the encoder (`preset`, `profile`, `maxrate`, ...).
    pub encoder_options: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPlan {
    /// Logical codec: `aac`, `opus`, `vorbis`, `mp3`, `flac`.
    pub codec: String,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub channels: u32,
}

/// How to produce one output file, as a format plugin planned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputPlan {
    pub output_type: OutputType,
    /// FFmpeg muxer name, e.g. `mp4`.
    pub container: String,
    pub extension: String,
    pub mime_type: String,
    pub video: Option<VideoPlan>,
    pub audio: Option<AudioPlan>,
}
