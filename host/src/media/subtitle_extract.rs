//! Text subtitle tracks read out of an input (MP4's `mov_text`, SubRip, WebVTT, ASS/SSA
//! in Matroska and elsewhere): each is decoded by FFmpeg's own decoder into ASS events,
//! which become plain cue text with WebVTT's `<i>`, `<b>` and `<u>`, on the input's
//! timeline (from its start). Bitmap subtitles (PGS, DVB, VobSub) are pictures, not
//! text: they are passed over, and said so in the log.

use std::ffi::CStr;
use std::path::Path;

use ffmpeg::{Rational, codec};
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

use super::error::MediaError;
use super::subtitle_mux::{MAX_SUBTITLE_TRACKS, SubtitleEvent};

/// The most cues one track may hold, and the most bytes of text (as a sidecar file).
pub const MAX_INPUT_CUES: usize = 50_000;
pub const MAX_INPUT_TEXT_BYTES: usize = 4 << 20;

/// One text subtitle track of an input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSubtitles {
    /// The stream's index in the input.
    pub stream: usize,
    /// FFmpeg's name of its codec (`mov_text`, `subrip`, `webvtt`, `ass`).
    pub codec: String,
    /// Its `language` tag as the file has it (empty when it has none).
    pub language: String,
    /// Its `title` tag, or MP4's handler name (empty when it has neither).
    pub title: String,
    pub default: bool,
    /// Its cues in time order: seconds from the input's start, WebVTT cue text.
    pub cues: Vec<SubtitleEvent>,
    /// Why the track stopped short, when it did (too many cues or bytes): it is not used.
    pub refused: Option<String>,
}

/// Whether a codec is text FFmpeg can decode into cues here.
fn is_text(id: codec::Id) -> bool {
    matches!(id, codec::Id::MOV_TEXT | codec::Id::SUBRIP | codec::Id::SRT | codec::Id::WEBVTT | codec::Id::ASS | codec::Id::SSA | codec::Id::TEXT)
}

/// Every text subtitle track of `input` (at most [`MAX_SUBTITLE_TRACKS`]), read whole.
pub fn extract_subtitles(input: &Path, limits: &super::decode_limits::DecodeLimits) -> Result<Vec<InputSubtitles>, MediaError> {
    let mut file = super::open::open_local(input, limits)?;
    // SAFETY: plain field of an open input; ffmpeg-next has no getter for it.
    let start_time = unsafe { (*file.as_ptr()).start_time };
    let start = if start_time != ffmpeg::ffi::AV_NOPTS_VALUE { start_time as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) } else { 0.0 };
    // Per input stream: its track's place in `tracks`, its decoder and time base.
    let mut readers: Vec<Option<(usize, ffmpeg::decoder::Subtitle, Rational)>> = Vec::new();
    let mut tracks: Vec<InputSubtitles> = Vec::new();
    for stream in file.streams() {
        let params = stream.parameters();
        if params.medium() != ffmpeg::media::Type::Subtitle {
            readers.push(None);
            continue;
        }
        if !is_text(params.id()) || tracks.len() >= MAX_SUBTITLE_TRACKS {
            tracing::info!(stream = stream.index(), codec = params.id().name(), "a subtitle track of the input is not used: it is not text, or one too many");
            readers.push(None);
            continue;
        }
        let decoder = codec::context::Context::from_parameters(params.clone())
            .and_then(|context| context.decoder().subtitle())
            .map_err(MediaError::at("opening a subtitle decoder"))?;
        let tag = |key: &str| stream.metadata().get(key).unwrap_or_default().to_string();
        let default = stream.disposition().contains(ffmpeg::format::stream::Disposition::DEFAULT);
        readers.push(Some((tracks.len(), decoder, stream.time_base())));
        tracks.push(InputSubtitles {
            stream: stream.index(),
            codec: params.id().name().to_string(),
            language: tag("language"),
            // MP4 keeps a track's name as its handler's (FFmpeg's default one says nothing).
            title: Some(tag("title")).filter(|t| !t.is_empty()).unwrap_or_else(|| Some(tag("handler_name")).filter(|h| !h.ends_with("Handler")).unwrap_or_default()),
            default,
            cues: Vec::new(),
            refused: None,
        });
    }
    if tracks.is_empty() {
        return Ok(tracks);
    }
    let mut bytes = vec![0usize; tracks.len()];
    loop {
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut file) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(source) => return Err(MediaError::Ffmpeg { stage: "reading the input's subtitles", source }),
        }
        let Some(Some((track, decoder, time_base))) = readers.get_mut(packet.stream()) else { continue };
        let track = *track;
        if tracks[track].refused.is_some() {
            continue;
        }
        let Some(pts) = packet.pts().or(packet.dts()) else { continue };
        let from = pts as f64 * f64::from(*time_base) - start;
        let text = match decode(decoder, &packet) {
            Ok(Some((text, shown_ms))) => (text, shown_ms),
            Ok(None) => continue,
            // A damaged cue is one cue lost, not the track.
            Err(err) => {
                tracing::debug!(%err, "a subtitle packet was not decoded");
                continue;
            }
        };
        let (text, shown_ms) = text;
        let length = if packet.duration() > 0 { packet.duration() as f64 * f64::from(*time_base) } else { f64::from(shown_ms) / 1000.0 };
        if text.trim().is_empty() || length <= 0.0 {
            continue;
        }
        bytes[track] += text.len();
        let t = &mut tracks[track];
        t.cues.push(SubtitleEvent { start: from.max(0.0), end: (from + length).max(0.0), text });
        if t.cues.len() > MAX_INPUT_CUES || bytes[track] > MAX_INPUT_TEXT_BYTES {
            t.refused = Some(format!("it holds more than {MAX_INPUT_CUES} cues or {} MiB of text", MAX_INPUT_TEXT_BYTES >> 20));
            t.cues = Vec::new();
        }
    }
    for t in &mut tracks {
        t.cues.retain(|c| c.end > c.start);
        t.cues.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    Ok(tracks)
}

/// One packet's cue text (its rectangles' lines together) and how long it shows (ms),
/// or `None` when the packet holds none.
fn decode(decoder: &mut ffmpeg::decoder::Subtitle, packet: &ffmpeg::Packet) -> Result<Option<(String, u32)>, ffmpeg::Error> {
    let mut subtitle = ffmpeg::Subtitle::new();
    if !decoder.decode(packet, &mut subtitle)? {
        return Ok(None);
    }
    let mut lines = Vec::new();
    // SAFETY: the decoder filled `subtitle`: `rects` holds `num_rects` valid rectangles
    // whose `ass`/`text` are NUL-terminated strings or null. They are read as bytes
    // (ffmpeg-next's getters assume UTF-8, which a stranger's file need not be), then
    // freed with `avsubtitle_free`, which ffmpeg-next's `Subtitle` never calls.
    let shown = unsafe {
        let raw = subtitle.as_mut_ptr();
        for i in 0..(*raw).num_rects as usize {
            let rect = *(*raw).rects.add(i);
            if rect.is_null() {
                continue;
            }
            if !(*rect).ass.is_null() {
                lines.push(ass_to_cue(&CStr::from_ptr((*rect).ass).to_string_lossy()));
            } else if !(*rect).text.is_null() {
                lines.push(CStr::from_ptr((*rect).text).to_string_lossy().trim_end().to_string());
            }
        }
        let shown = (*raw).end_display_time.saturating_sub((*raw).start_display_time);
        ffmpeg::ffi::avsubtitle_free(raw);
        shown
    };
    lines.retain(|l| !l.is_empty());
    Ok(if lines.is_empty() { None } else { Some((lines.join("\n"), shown)) })
}

/// An ASS event (`ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect,
/// Text`) as WebVTT cue text: `\N` and `\n` line breaks, `{\i1}`/`{\b1}`/`{\u1}` (and
/// their ends) as tags, every other override block dropped, `<` and `&` escaped.
pub(super) fn ass_to_cue(event: &str) -> String {
    let text = event.splitn(9, ',').nth(8).unwrap_or(event);
    let text = text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ");
    let text = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut out = String::new();
    let mut rest = text.as_str();
    // Which of `i`, `b`, `u` are open: a style may run to the end of the event (as
    // `mov_text`'s do), and a cue closes what it opens.
    let mut open_tags: Vec<char> = Vec::new();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        for tag in rest[open..close].trim_matches(['{', '}']).split('\\').filter(|t| !t.is_empty()) {
            let (name, on) = match tag.trim() {
                "i1" => ('i', true),
                "b1" => ('b', true),
                "u1" => ('u', true),
                "i0" | "i" => ('i', false),
                "b0" | "b" => ('b', false),
                "u0" | "u" => ('u', false),
                _ => continue,
            };
            match (on, open_tags.contains(&name)) {
                (true, false) => {
                    open_tags.push(name);
                    out.push_str(&format!("<{name}>"));
                }
                (false, true) => {
                    open_tags.retain(|t| *t != name);
                    out.push_str(&format!("</{name}>"));
                }
                _ => {}
            }
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    for name in open_tags.iter().rev() {
        out.push_str(&format!("</{name}>"));
    }
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ass_events_become_cue_text() {
        assert_eq!(ass_to_cue("0,0,Default,,0,0,0,,Hello\\Nworld"), "Hello\nworld");
        assert_eq!(ass_to_cue("3,0,Default,,0,0,0,,{\\i1}Last{\\i0}, then {\\pos(1,2)\\b1}more{\\b0}"), "<i>Last</i>, then <b>more</b>");
        assert_eq!(ass_to_cue("1,0,Default,,0,0,0,,a < b & c"), "a &lt; b &amp; c");
        assert_eq!(ass_to_cue("2,0,Default,,0,0,0,,{\\i1}runs to the end"), "<i>runs to the end</i>");
        assert_eq!(ass_to_cue("2,0,Default,,0,0,0,,{\\blur3\\bord2}plain{\\i0}"), "plain");
    }
}
