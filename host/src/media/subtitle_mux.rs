//! Subtitle tracks put into a finished video file: the file is remuxed (every video and
//! audio stream copied, packet for packet) into a new one with a subtitle stream per
//! track, which then replaces it. Each cue is encoded by FFmpeg's own text subtitle
//! encoder for the container (`mov_text` for MP4 and MOV, `subrip` for Matroska,
//! `webvtt` for WebM) from an ASS event, as FFmpeg's own tools feed them: the encoder
//! makes what the container's readers expect (MP4's `tx3g` sample description and style
//! records for italics and bold, SubRip's and WebVTT's tags).

use std::ffi::CString;
use std::path::{Path, PathBuf};

use ffmpeg::{Rational, Rescale, codec, format};
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

use super::error::MediaError;
use super::file::{muxer_options, write_packet};

/// The most tracks a file gets.
pub const MAX_SUBTITLE_TRACKS: usize = 16;

/// One track for a file, on the file's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtitleTrack {
    /// A three-letter ISO 639-2 code, as MP4 and Matroska store it.
    pub language: String,
    /// The stream's title (may be empty).
    pub title: String,
    /// Whether players should show it unless told otherwise.
    pub default: bool,
    pub events: Vec<SubtitleEvent>,
}

/// One cue: seconds on the file's timeline, and the text of an ASS `Dialogue` event
/// (`\N` line breaks, `{\i1}` override tags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtitleEvent {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// The subtitle codec a container (an FFmpeg muxer name) carries text in; `None` for
/// those that get no tracks (MPEG-TS holds bitmaps and teletext only; AVI, FLV, Ogg and
/// 3GP none that players read).
pub fn subtitle_codec(container: &str) -> Option<&'static str> {
    match container {
        "mp4" | "mov" => Some("mov_text"),
        "matroska" => Some("subrip"),
        "webm" => Some("webvtt"),
        _ => None,
    }
}

/// The script header the text encoders read their default style from (FFmpeg's own
/// default: they need one, and players style text themselves).
const ASS_HEADER: &str = "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n\
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, \
ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n\
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n\
[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n";

/// Milliseconds: the time base of every subtitle packet made here.
const MS: Rational = Rational(1, 1000);

/// Put `tracks` into `file`, a `container` file the engine made, as subtitle streams
/// after its own. The file is replaced only once the new one is complete.
pub fn add_subtitles(file: &Path, container: &str, tracks: &[SubtitleTrack]) -> Result<(), MediaError> {
    super::ffmpeg_init::init();
    let codec = subtitle_codec(container).ok_or_else(|| MediaError::Unsupported(format!("a '{container}' file gets no subtitle track")))?;
    if tracks.len() > MAX_SUBTITLE_TRACKS {
        return Err(MediaError::Unsupported(format!("more than {MAX_SUBTITLE_TRACKS} subtitle tracks")));
    }
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary: PathBuf = file.with_file_name(format!(".{name}.subtitles"));
    let result = remux(file, &temporary, container, codec, tracks)
        .and_then(|()| std::fs::rename(&temporary, file).map_err(|e| MediaError::Unsupported(format!("replacing the file failed: {e}"))));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn remux(file: &Path, temporary: &Path, container: &str, codec_name: &'static str, tracks: &[SubtitleTrack]) -> Result<(), MediaError> {
    let mut input = super::open::open_own_output(file)?;
    let mut muxer = format::output_as(temporary, container).map_err(|source| MediaError::Open { path: temporary.display().to_string(), source })?;
    // Each input stream's place in the new file (its video and audio, in order), its
    // time base, and what its packets' times gain on the way (see `pre_skip`).
    let mut places: Vec<Option<(usize, Rational, i64)>> = Vec::new();
    let mut picture = (0, 0);
    // Cue time 0 is the first picture's time in the file (as `X-TIMESTAMP-MAP` maps it
    // in HLS): muxers move a file's streams off zero (Matroska makes room for B-frames
    // and Opus's pre-skip), and the cues must move with the pictures.
    let mut origin_ms: Option<i64> = None;
    for stream in input.streams() {
        let medium = stream.parameters().medium();
        if !matches!(medium, ffmpeg::media::Type::Video | ffmpeg::media::Type::Audio) {
            places.push(None);
            continue;
        }
        let mut out = muxer.add_stream(ffmpeg::encoder::find(codec::Id::None)).map_err(MediaError::at("adding a stream"))?;
        out.set_parameters(stream.parameters());
        out.set_time_base(stream.time_base());
        out.set_avg_frame_rate(stream.avg_frame_rate());
        out.set_metadata(stream.metadata().to_owned());
        // SAFETY: plain fields of both streams, before the header is written; ffmpeg-next
        // has no setter for the pixel aspect and the disposition (its getter of the
        // aspect wants a decoder), and the picture's size is read from the parameters
        // without opening one.
        unsafe {
            (*out.as_mut_ptr()).sample_aspect_ratio = (*stream.as_ptr()).sample_aspect_ratio;
            (*out.as_mut_ptr()).disposition = (*stream.as_ptr()).disposition;
            if medium == ffmpeg::media::Type::Video && origin_ms.is_none() {
                let par = (*stream.as_ptr()).codecpar;
                picture = ((*par).width, (*par).height);
            }
        }
        if medium == ffmpeg::media::Type::Video && origin_ms.is_none() {
            let start = stream.start_time();
            origin_ms = Some(if start == ffmpeg::ffi::AV_NOPTS_VALUE { 0 } else { start.rescale(stream.time_base(), MS) });
        }
        places.push(Some((out.index(), stream.time_base(), pre_skip(container, &stream))));
    }
    if places.iter().all(Option::is_none) {
        return Err(MediaError::NoStreams);
    }
    let duration = if input.duration() > 0 { input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) } else { f64::INFINITY };
    let mut queued: Vec<(i64, usize, ffmpeg::Packet)> = Vec::new();
    for track in tracks {
        let mut encoder = TextEncoder::open(codec_name, picture)?;
        let index = {
            let codec = ffmpeg::encoder::find_by_name(codec_name).ok_or_else(|| MediaError::Unsupported(format!("FFmpeg has no {codec_name} encoder")))?;
            let mut out = muxer.add_stream(codec).map_err(MediaError::at("adding a subtitle stream"))?;
            out.set_parameters(&encoder.context);
            out.set_time_base(MS);
            let mut metadata = ffmpeg::Dictionary::new();
            metadata.set("language", &track.language);
            if !track.title.is_empty() {
                metadata.set("title", &track.title);
                // What MP4 readers show as a track's name.
                metadata.set("handler_name", &track.title);
            }
            out.set_metadata(metadata);
            // SAFETY: plain field of the new stream, before the header; no setter exists.
            unsafe { (*out.as_mut_ptr()).disposition = if track.default { ffmpeg::ffi::AV_DISPOSITION_DEFAULT } else { 0 } };
            out.index()
        };
        for (order, event) in track.events.iter().enumerate() {
            let (start, end) = (event.start.max(0.0), event.end.min(duration));
            if start >= duration || end <= start {
                continue;
            }
            if let Some(packet) = encoder.encode(order, start, end, origin_ms.unwrap_or(0), &event.text)? {
                queued.push((packet.pts().unwrap_or(0), index, packet));
            }
        }
    }
    // Written in time order among the copied packets: stable, so tracks keep their order.
    queued.sort_by_key(|(pts, index, _)| (*pts, *index));
    let mut queued = queued.into_iter().peekable();

    let mut options = muxer_options(container);
    // The packets keep the times the file has: Matroska's muxer adds back the Opus
    // pre-skip its reader took off, and moving every stream later to keep that first
    // audio packet at zero would move the pictures away from the sound.
    options.set("avoid_negative_ts", "disabled");
    muxer.write_header_with(options).map_err(MediaError::at("writing the container header"))?;
    loop {
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(source) => return Err(MediaError::Ffmpeg { stage: "reading the file back", source }),
        }
        let Some(Some((stream, time_base, shift))) = places.get(packet.stream()).copied() else { continue };
        if shift != 0 {
            packet.set_pts(packet.pts().map(|t| t + shift));
            packet.set_dts(packet.dts().map(|t| t + shift));
        }
        let due = packet.dts().or(packet.pts()).unwrap_or(0).rescale(time_base, MS);
        while let Some((_, index, mut text)) = queued.next_if(|(pts, _, _)| *pts <= due) {
            write_packet(&mut muxer, index, &mut text, MS)?;
        }
        write_packet(&mut muxer, stream, &mut packet, time_base)?;
    }
    for (_, index, mut text) in queued {
        write_packet(&mut muxer, index, &mut text, MS)?;
    }
    muxer.write_trailer().map_err(MediaError::at("writing the container trailer"))?;
    Ok(())
}

/// What an audio stream's packet times gain when a Matroska file is written again: its
/// reader takes the codec's delay (Opus's pre-skip, its `CodecDelay`) off every packet
/// and its writer (FFmpeg 5.1) does not add it back, which would move the sound earlier
/// against the pictures at each remux. Zero for other streams and containers.
fn pre_skip(container: &str, stream: &ffmpeg::format::stream::Stream<'_>) -> i64 {
    if !matches!(container, "matroska" | "webm") || stream.parameters().medium() != ffmpeg::media::Type::Audio {
        return 0;
    }
    // SAFETY: plain fields of an open stream's codec parameters; no getter exists.
    let (padding, rate) = unsafe {
        let par = (*stream.as_ptr()).codecpar;
        ((*par).initial_padding, (*par).sample_rate)
    };
    if padding > 0 && rate > 0 { i64::from(padding).rescale(Rational(1, rate), stream.time_base()) } else { 0 }
}

/// One of FFmpeg's text subtitle encoders, opened with the default style.
struct TextEncoder {
    context: ffmpeg::encoder::Encoder,
    name: &'static str,
}

impl TextEncoder {
    fn open(name: &'static str, picture: (i32, i32)) -> Result<Self, MediaError> {
        let codec = ffmpeg::encoder::find_by_name(name).ok_or_else(|| MediaError::Unsupported(format!("FFmpeg has no {name} encoder")))?;
        let mut context = ffmpeg::codec::Context::new_with_codec(codec).encoder();
        let header = CString::new(ASS_HEADER).expect("the header has no NUL");
        // SAFETY: fields of a context not yet opened; ffmpeg-next has no setter for the
        // script header. The header is FFmpeg's own copy (`av_strdup`), freed with the
        // context as FFmpeg frees it.
        unsafe {
            let raw = context.as_mut_ptr();
            (*raw).time_base = MS.into();
            (*raw).width = picture.0;
            (*raw).height = picture.1;
            let copy = ffmpeg::ffi::av_strdup(header.as_ptr());
            if copy.is_null() {
                return Err(MediaError::Unsupported("out of memory".into()));
            }
            (*raw).subtitle_header = copy.cast();
            (*raw).subtitle_header_size = ASS_HEADER.len() as i32;
            let status = ffmpeg::ffi::avcodec_open2(raw, codec.as_ptr(), std::ptr::null_mut());
            if status < 0 {
                return Err(MediaError::encoder(name, "opening")(ffmpeg::Error::from(status)));
            }
        }
        Ok(TextEncoder { context, name })
    }

    /// The packet of one cue, `origin` (ms) later (`None` when the encoder makes nothing
    /// of it: no text).
    fn encode(&mut self, order: usize, start: f64, end: f64, origin: i64, text: &str) -> Result<Option<ffmpeg::Packet>, MediaError> {
        // `ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, Text`.
        let event = format!("{order},0,Default,,0,0,0,,{}", text.replace('\0', ""));
        let event = CString::new(event).expect("NULs were removed");
        let mut buffer = vec![0u8; event.as_bytes().len() * 8 + 1024];
        let (start_ms, end_ms) = ((start * 1000.0).round() as i64, (end * 1000.0).round() as i64);
        // SAFETY: ffmpeg-next's `encode` drops the size the encoder wrote, so the call is
        // made here: the rectangle and the subtitle live on this stack frame, point to
        // `event` (alive until the end), and the encoder only reads them.
        let written = unsafe {
            let mut rect: ffmpeg::ffi::AVSubtitleRect = std::mem::zeroed();
            rect.type_ = ffmpeg::ffi::AVSubtitleType::SUBTITLE_ASS;
            rect.ass = event.as_ptr().cast_mut();
            let mut rects = [&mut rect as *mut ffmpeg::ffi::AVSubtitleRect];
            let mut subtitle: ffmpeg::ffi::AVSubtitle = std::mem::zeroed();
            subtitle.format = 1;
            subtitle.num_rects = 1;
            subtitle.rects = rects.as_mut_ptr();
            subtitle.start_display_time = 0;
            subtitle.end_display_time = (end_ms - start_ms).clamp(0, i64::from(u32::MAX)) as u32;
            subtitle.pts = start_ms.rescale(MS, Rational(1, ffmpeg::ffi::AV_TIME_BASE));
            ffmpeg::ffi::avcodec_encode_subtitle(self.context.as_mut_ptr(), buffer.as_mut_ptr(), buffer.len() as i32, &subtitle)
        };
        if written < 0 {
            return Err(MediaError::encoder(self.name, "encoding a cue")(ffmpeg::Error::from(written)));
        }
        if written == 0 {
            return Ok(None);
        }
        let mut packet = ffmpeg::Packet::copy(&buffer[..written as usize]);
        packet.set_pts(Some(start_ms + origin));
        packet.set_dts(Some(start_ms + origin));
        packet.set_duration(end_ms - start_ms);
        Ok(Some(packet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2 s H.264/AAC file made by the ffmpeg command (only ever in tests).
    fn input(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-f", "lavfi", "-i", "sine=duration=2"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
        path
    }

    fn track(language: &str, default: bool) -> SubtitleTrack {
        let events = vec![
            SubtitleEvent { start: 0.25, end: 0.75, text: "One\\Ntwo".into() },
            SubtitleEvent { start: 1.0, end: 1.5, text: "{\\i1}Three{\\i0}".into() },
            SubtitleEvent { start: 1.8, end: 9.0, text: "Cut at the end".into() },
            SubtitleEvent { start: 5.0, end: 6.0, text: "After the end".into() },
        ];
        SubtitleTrack { language: language.into(), title: language.to_uppercase(), default, events }
    }

    #[test]
    fn tracks_go_in_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for (name, container, codec) in [("a.mp4", "mp4", "mov_text"), ("a.mkv", "matroska", "subrip")] {
            let file = input(dir.path(), name);
            add_subtitles(&file, container, &[track("eng", true), track("fra", false)]).unwrap();
            let read = super::super::extract_subtitles(&file, &super::super::DecodeLimits::unlimited()).unwrap();
            assert_eq!(read.iter().map(|t| (t.codec.as_str(), t.language.as_str(), t.default)).collect::<Vec<_>>(), [(codec, "eng", true), (codec, "fra", false)], "{name}");
            // Cue time 0 is the first picture (Matroska's starts a few ms late).
            let origin = {
                let file = super::super::open::open_own_output(&file).unwrap();
                let video = file.streams().find(|s| s.parameters().medium() == ffmpeg::media::Type::Video).expect("the video is still there");
                video.start_time() as f64 * f64::from(video.time_base())
            };
            let time = |t: f64| ((t - origin) * 1000.0).round() / 1000.0;
            let cues: Vec<(f64, f64, &str)> = read[1].cues.iter().map(|c| (time(c.start), time(c.end), c.text.as_str())).collect();
            assert_eq!(cues[..2], [(0.25, 0.75, "One\ntwo"), (1.0, 1.5, "<i>Three</i>")], "{name}");
            assert_eq!(cues.len(), 3, "{name}: the cue past the end is dropped: {cues:?}");
            assert!(cues[2].0 == 1.8 && cues[2].1 <= 2.1 && cues[2].2 == "Cut at the end", "{name}: {cues:?}");
        }
        assert!(add_subtitles(&dir.path().join("a.mp4"), "mpegts", &[track("eng", true)]).is_err());
    }
}
