//! What a demuxed file's streams say, read the same way by the probe and by every
//! decode: which stream is the main one of a kind, how a player turns its pictures, and
//! the name of a pixel format.

use ffmpeg::media::Type;
use ffmpeg_next as ffmpeg;

pub(super) fn pixel_name(format: ffmpeg::format::Pixel) -> String {
    format.descriptor().map(|d| d.name().to_string()).unwrap_or_else(|| "none".into())
}

/// The stream the engine would use for `kind`: FFmpeg's pick, but never a cover image
/// (an "attached picture" is a video stream of one frame, not a video).
pub(super) fn main_stream(input: &ffmpeg::format::context::Input, kind: Type) -> Option<usize> {
    use ffmpeg::codec::Id;
    let usable = |s: &ffmpeg::format::stream::Stream| {
        let params = s.parameters();
        // Text-art "videos" are what FFmpeg makes of any .txt or .bin file.
        let text_art = matches!(params.id(), Id::ANSI | Id::BINTEXT | Id::XBIN | Id::IDF);
        params.medium() == kind && !text_art && !s.disposition().contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC)
    };
    input
        .streams()
        .best(kind)
        .filter(|s| usable(s))
        .or_else(|| input.streams().find(|s| usable(s)))
        .map(|s| s.index())
}

/// Clockwise rotation a player applies, from the display matrix (or the legacy
/// `rotate` tag), normalised to 0, 90, 180 or 270.
pub(super) fn rotation_of(stream: &ffmpeg::format::stream::Stream) -> i32 {
    let from_matrix = stream.side_data().find(|d| d.kind() == ffmpeg::packet::side_data::Type::DisplayMatrix).and_then(|d| {
        let data = d.data();
        (data.len() >= 36).then(|| {
            // SAFETY: a display matrix is nine i32s; we checked the length.
            let angle = unsafe { ffmpeg::ffi::av_display_rotation_get(data.as_ptr() as *const i32) };
            -angle
        })
    });
    let degrees = from_matrix
        .filter(|a| a.is_finite())
        .or_else(|| stream.metadata().get("rotate").and_then(|r| r.parse::<f64>().ok()))
        .unwrap_or(0.0);
    let quarter = ((degrees / 90.0).round() as i64).rem_euclid(4);
    (quarter * 90) as i32
}
