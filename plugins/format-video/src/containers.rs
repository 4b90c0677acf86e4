//! What each format name means: the muxer, the file it makes and the codecs it can hold.
//! Adding a container is one entry here; the grammar checks codecs against these lists.

use crate::audio_codecs::AudioCodec;
use crate::audio_codecs::AudioCodec::{Aac, Flac, Mp3, Opus, Pcm, Vorbis};
use crate::codecs::VideoCodec;
use crate::codecs::VideoCodec::{Av1, H264, Hevc, Mpeg4, Theora, Vp8, Vp9};

/// A container for video (with optional audio) or audio alone.
#[derive(Debug, PartialEq)]
pub struct Container {
    /// The part before the first `:`; the first is the canonical name, the rest aliases.
    pub names: &'static [&'static str],
    /// FFmpeg muxer name.
    pub muxer: &'static str,
    pub extension: &'static str,
    pub mime_type: &'static str,
    /// The first is the default. Empty for audio-only containers.
    pub video_codecs: &'static [VideoCodec],
    /// The first is the default.
    pub audio_codecs: &'static [AudioCodec],
}

impl Container {
    pub fn name(&self) -> &'static str {
        self.names[0]
    }

    /// Containers without video are planned as `audio` outputs.
    pub fn is_audio_only(&self) -> bool {
        self.video_codecs.is_empty()
    }
}

const fn container(
    names: &'static [&'static str],
    muxer: &'static str,
    extension: &'static str,
    mime_type: &'static str,
    video_codecs: &'static [VideoCodec],
    audio_codecs: &'static [AudioCodec],
) -> Container {
    Container { names, muxer, extension, mime_type, video_codecs, audio_codecs }
}

/// Video containers, with the codecs their FFmpeg muxers accept and players expect.
pub const VIDEO: &[Container] = &[
    container(&["mp4"], "mp4", "mp4", "video/mp4", &[H264, Hevc, Av1, Vp9, Mpeg4], &[Aac, Mp3, Opus]),
    container(&["webm"], "webm", "webm", "video/webm", &[Vp9, Vp8, Av1], &[Opus, Vorbis]),
    container(&["mov"], "mov", "mov", "video/quicktime", &[H264, Hevc, Mpeg4], &[Aac, Mp3]),
    container(
        &["mkv"],
        "matroska",
        "mkv",
        "video/x-matroska",
        &[H264, Hevc, Vp9, Vp8, Av1, Mpeg4, Theora],
        &[Aac, Opus, Vorbis, Mp3, Flac],
    ),
    container(&["mpegts", "ts"], "mpegts", "ts", "video/mp2t", &[H264, Hevc, Mpeg4], &[Aac, Mp3]),
    container(&["ogv"], "ogg", "ogv", "video/ogg", &[Theora, Vp8], &[Vorbis, Opus]),
    container(&["avi"], "avi", "avi", "video/x-msvideo", &[Mpeg4, H264], &[Mp3, Aac]),
    container(&["flv"], "flv", "flv", "video/x-flv", &[H264], &[Aac, Mp3]),
    container(&["3gp"], "3gp", "3gp", "video/3gpp", &[H264, Mpeg4], &[Aac]),
];

/// The container of the default streaming ladder's rungs.
pub const MP4: &Container = &VIDEO[0];

/// Audio-only containers (`output_type` audio).
pub const AUDIO: &[Container] = &[
    container(&["mp3"], "mp3", "mp3", "audio/mpeg", &[], &[Mp3]),
    container(&["aac"], "adts", "aac", "audio/aac", &[], &[Aac]),
    container(&["m4a"], "ipod", "m4a", "audio/mp4", &[], &[Aac]),
    container(&["ogg"], "ogg", "ogg", "audio/ogg", &[], &[Vorbis, Opus, Flac]),
    container(&["opus"], "opus", "opus", "audio/ogg", &[], &[Opus]),
    container(&["flac"], "flac", "flac", "audio/flac", &[], &[Flac]),
    container(&["wav"], "wav", "wav", "audio/wav", &[], &[Pcm]),
];

/// Still pictures.
#[derive(Debug, PartialEq)]
pub struct ImageFormat {
    pub names: &'static [&'static str],
    /// `mjpeg`, `png` or `webp` (the `image-plan` codec).
    pub codec: &'static str,
    pub extension: &'static str,
    pub mime_type: &'static str,
}

pub const IMAGES: &[ImageFormat] = &[
    ImageFormat { names: &["jpg", "jpeg"], codec: "mjpeg", extension: "jpg", mime_type: "image/jpeg" },
    ImageFormat { names: &["png"], codec: "png", extension: "png", mime_type: "image/png" },
    ImageFormat { names: &["webp"], codec: "webp", extension: "webp", mime_type: "image/webp" },
];

/// The muxer of every still picture (one file per picture or sheet).
pub const IMAGE_MUXER: &str = "image2";

/// What a format name (the part before the first `:`) asks for.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Video(&'static Container),
    Audio(&'static Container),
    Image(&'static ImageFormat),
    Gif,
    Stream,
}

pub const GIF: &str = "gif";
pub const STREAM: &str = "httpstream";

/// The kind of a format name, if this plugin plans it.
pub fn lookup(name: &str) -> Option<Kind> {
    if let Some(c) = VIDEO.iter().find(|c| c.names.contains(&name)) {
        return Some(Kind::Video(c));
    }
    if let Some(c) = AUDIO.iter().find(|c| c.names.contains(&name)) {
        return Some(Kind::Audio(c));
    }
    if let Some(i) = IMAGES.iter().find(|i| i.names.contains(&name)) {
        return Some(Kind::Image(i));
    }
    match name {
        GIF => Some(Kind::Gif),
        STREAM => Some(Kind::Stream),
        _ => None,
    }
}

/// Every format name and alias, for `formats()` (the host routes these here).
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = VIDEO.iter().chain(AUDIO).flat_map(|c| c.names.iter().copied()).collect();
    names.extend(IMAGES.iter().flat_map(|i| i.names.iter().copied()));
    names.extend([GIF, STREAM]);
    names
}

/// Codec names joined for messages: `vp9, vp8, av1`.
pub fn list<T: Copy>(items: &[T], name: impl Fn(T) -> &'static str) -> String {
    items.iter().map(|&i| name(i)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_all_resolve() {
        let names = names();
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} twice");
            assert!(lookup(name).is_some(), "{name}");
        }
        for expected in [
            "mp4",
            "webm",
            "mov",
            "mkv",
            "mpegts",
            "ts",
            "ogv",
            "avi",
            "flv",
            "3gp",
            "mp3",
            "aac",
            "m4a",
            "ogg",
            "opus",
            "flac",
            "wav",
            "jpg",
            "jpeg",
            "png",
            "webp",
            "gif",
            "httpstream",
        ] {
            assert!(names.contains(&expected), "{expected}");
        }
        assert!(lookup("matroska").is_none() && lookup("MP4").is_none());
    }

    #[test]
    fn every_container_has_a_default_audio_codec() {
        for c in VIDEO.iter().chain(AUDIO) {
            assert!(!c.audio_codecs.is_empty(), "{}", c.name());
        }
        assert!(VIDEO.iter().all(|c| !c.is_audio_only()) && AUDIO.iter().all(Container::is_audio_only));
        assert_eq!(MP4.name(), "mp4");
    }
}
