//! Probing: what is in a file, as `MediaInfo` for planning and as ffprobe-shaped JSON for
//! the metadata API.

use std::path::Path;

use ffmpeg_next as ffmpeg;
use ffmpeg::media::Type;
use serde_json::{Map, Value, json};

use super::error::MediaError;
use super::streams::{main_stream, pixel_name, rotation_of};
use crate::types::MediaInfo;

/// Open and describe an input, confined to its one file, from a bounded prefix and
/// decoding no picture above `limits.max_pixels`. A file FFmpeg cannot read, or one with
/// neither audio nor video, is an error.
pub fn probe(path: &Path, limits: &super::decode_limits::DecodeLimits) -> Result<(MediaInfo, Value), MediaError> {
    let (info, mut metadata) = describe(super::open::open_local(path, limits)?, path)?;
    // Closed captions ride in the pictures (ATSC A/53 user data): only decoding a few
    // tells. The codecs that carry them, and no clips: this is the file as it is.
    if info.has_video && matches!(info.video_codec.as_str(), "h264" | "hevc" | "mpeg2video") {
        let whole = super::decode_limits::DecodeLimits { clips: Vec::new(), joined: Vec::new(), ..limits.clone() };
        if carries_captions(path, &whole)
            && let Some(video) = metadata["streams"].as_array_mut().and_then(|s| s.iter_mut().find(|s| s["codec_type"] == "video"))
        {
            video["closed_captions"] = json!(true);
        }
    }
    Ok((info, metadata))
}

/// How many pictures are decoded to look for captions.
const CAPTION_PROBE_FRAMES: u32 = 30;

/// Whether the first pictures of `path` carry CEA-608/708 captions (A/53 side data).
fn carries_captions(path: &Path, limits: &super::decode_limits::DecodeLimits) -> bool {
    let Ok(mut demuxer) = super::input::Demuxer::open(path, limits) else { return false };
    let (mut pictures, mut found) = (0u32, false);
    while !found && pictures < CAPTION_PROBE_FRAMES {
        let step = demuxer.step(true, false, &mut |decoded| {
            if let super::input::Decoded::Video(frame, _) = decoded {
                pictures += 1;
                found |= frame.side_data(ffmpeg::frame::side_data::Type::A53CC).is_some();
            }
        });
        if !matches!(step, Ok(true)) {
            break;
        }
    }
    found
}

/// Describe a file the host made (an output, or a package through its master playlist
/// or manifest, which may read the files below its directory).
pub fn probe_output(path: &Path) -> Result<(MediaInfo, Value), MediaError> {
    describe(super::open::open_own_output(path)?, path)
}

/// The audio tracks of an input, as [`probe`] lists them (the main one first).
pub(super) fn audio_tracks(path: &Path, limits: &super::decode_limits::DecodeLimits) -> Result<Vec<crate::types::AudioTrack>, MediaError> {
    Ok(describe(super::open::open_local(path, limits)?, path)?.0.audio_tracks)
}

fn describe(mut input: super::open::LocalInput, path: &Path) -> Result<(MediaInfo, Value), MediaError> {
    let mut info = MediaInfo {
        duration: duration_seconds(input.duration()),
        bitrate: input.bit_rate().max(0) as u64,
        size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        format_name: input.format().name().to_string(),
        ..MediaInfo::default()
    };

    let best_video = main_stream(&input, Type::Video);
    let best_audio = main_stream(&input, Type::Audio);
    let mut streams = Vec::new();
    for stream in input.streams() {
        let params = stream.parameters();
        let medium = params.medium();
        let Ok(context) = ffmpeg::codec::context::Context::from_parameters(params.clone()) else { continue };
        let codec_id = context.id();
        let mut entry = Map::new();
        entry.insert("index".into(), json!(stream.index()));
        entry.insert("codec_name".into(), json!(codec_id.name()));
        if let Some(codec) = ffmpeg::decoder::find(codec_id) {
            entry.insert("codec_long_name".into(), json!(codec.description()));
        }
        entry.insert("codec_type".into(), json!(medium_name(medium)));
        entry.insert("time_base".into(), json!(stream.time_base().to_string()));
        let stream_duration = stream.duration() as f64 * f64::from(stream.time_base());
        if stream.duration() > 0 {
            entry.insert("duration".into(), json!(format!("{stream_duration:.6}")));
        }
        if stream.frames() > 0 {
            entry.insert("nb_frames".into(), json!(stream.frames().to_string()));
        }
        let stream_tags: Map<String, Value> = stream.metadata().iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        if !stream_tags.is_empty() {
            entry.insert("tags".into(), Value::Object(stream_tags));
        }
        let bit_rate = unsafe { (*context.as_ptr()).bit_rate };
        if bit_rate > 0 {
            entry.insert("bit_rate".into(), json!(bit_rate.to_string()));
        }
        match medium {
            Type::Video => {
                let Ok(video) = context.decoder().video() else { continue };
                let pix_fmt = pixel_name(video.format());
                let rate = stream.avg_frame_rate();
                entry.insert("width".into(), json!(video.width()));
                entry.insert("height".into(), json!(video.height()));
                entry.insert("pix_fmt".into(), json!(pix_fmt));
                entry.insert("r_frame_rate".into(), json!(stream.rate().to_string()));
                entry.insert("avg_frame_rate".into(), json!(rate.to_string()));
                if let Some(profile) = profile_name(&video) {
                    entry.insert("profile".into(), json!(profile));
                }
                let colors = colors_of(&params);
                for (key, value) in [
                    ("color_range", &colors.range),
                    ("color_space", &colors.space),
                    ("color_transfer", &colors.transfer),
                    ("color_primaries", &colors.primaries),
                ] {
                    if !value.is_empty() {
                        entry.insert(key.into(), json!(value));
                    }
                }
                let rotation = rotation_of(&stream);
                if rotation != 0 {
                    entry.insert("rotation".into(), json!(rotation));
                }
                if Some(stream.index()) == best_video {
                    info.has_video = true;
                    info.width = video.width();
                    info.height = video.height();
                    info.video_codec = codec_id.name().to_string();
                    info.pix_fmt = pix_fmt;
                    info.rotation = rotation;
                    info.color_transfer = colors.transfer;
                    info.color_primaries = colors.primaries;
                    info.fps = if rate.denominator() != 0 && rate.numerator() > 0 { f64::from(rate) } else { f64::from(stream.rate()) };
                }
            }
            Type::Audio => {
                let Ok(audio) = context.decoder().audio() else { continue };
                entry.insert("sample_rate".into(), json!(audio.rate().to_string()));
                entry.insert("channels".into(), json!(audio.channels()));
                entry.insert("sample_fmt".into(), json!(audio.format().name()));
                if let Some(layout) = layout_name(&audio) {
                    entry.insert("channel_layout".into(), json!(layout));
                }
                if let Some(profile) = profile_name(&audio) {
                    entry.insert("profile".into(), json!(profile));
                }
                let tag = |key: &str| stream.metadata().get(key).map(str::to_string);
                let track = crate::types::AudioTrack {
                    stream: stream.index(),
                    language: tag("language"),
                    title: tag("title"),
                    channels: u32::from(audio.channels()),
                };
                if Some(stream.index()) == best_audio {
                    info.has_audio = true;
                    info.audio_codec = codec_id.name().to_string();
                    info.sample_rate = audio.rate();
                    info.channels = u32::from(audio.channels());
                    info.audio_tracks.insert(0, track);
                } else {
                    info.audio_tracks.push(track);
                }
            }
            _ => {}
        }
        streams.push(Value::Object(entry));
    }
    if !info.has_video && !info.has_audio {
        return Err(MediaError::NoStreams);
    }
    if info.has_video && (info.width == 0 || info.height == 0) {
        return Err(MediaError::Corrupt("the video stream has no dimensions".into()));
    }
    for index in [best_video, best_audio].into_iter().flatten() {
        check_complete(&input, index, info.size)?;
    }
    let first = best_video.or(best_audio).ok_or(MediaError::NoStreams)?;
    check_decodes(&mut input, first)?;

    let tags: Map<String, Value> = input.metadata().iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let format = json!({
        "filename": path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        "nb_streams": input.nb_streams(),
        "format_name": input.format().name(),
        "format_long_name": input.format().description(),
        "duration": format!("{:.6}", info.duration),
        "size": info.size.to_string(),
        "bit_rate": info.bitrate.to_string(),
        "tags": tags,
    });
    Ok((info, json!({"streams": streams, "format": format})))
}

fn duration_seconds(duration: i64) -> f64 {
    if duration <= 0 { 0.0 } else { duration as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) }
}

fn medium_name(medium: Type) -> &'static str {
    match medium {
        Type::Video => "video",
        Type::Audio => "audio",
        Type::Subtitle => "subtitle",
        Type::Data => "data",
        Type::Attachment => "attachment",
        _ => "unknown",
    }
}

/// Packets read looking for a first decodable frame before the file is declared corrupt.
const DECODE_CHECK_PACKETS: usize = 64;

/// Demuxers accept a lot (random bytes named `.mp3` "are" MP3); a file is only media if
/// its main stream actually decodes. One frame is enough, and cheap.
fn check_decodes(input: &mut ffmpeg::format::context::Input, index: usize) -> Result<(), MediaError> {
    let Some(stream) = input.stream(index) else { return Err(MediaError::NoStreams) };
    let medium = medium_name(stream.parameters().medium());
    let corrupt = |what: &str| MediaError::Corrupt(format!("the {medium} stream cannot be decoded{what}"));
    let context = ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(|_| corrupt(""))?;
    let codec = ffmpeg::decoder::find(context.id()).ok_or_else(|| MediaError::Unsupported(format!("no decoder for {}", context.id().name())))?;
    let mut decoder = context.decoder().open_as(codec).map_err(|_| corrupt(""))?;
    // Only the AVFrame underneath matters here; the wrapper type is never used as video.
    let mut frame = ffmpeg::frame::Video::empty();
    let mut sent = 0;
    let mut packets = 0;
    while packets < DECODE_CHECK_PACKETS * 4 && sent < DECODE_CHECK_PACKETS {
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(_) => {
                packets += 1;
                continue;
            }
        }
        packets += 1;
        if packet.stream() != index {
            continue;
        }
        sent += 1;
        if decoder.send_packet(&packet).is_ok() && decoder.receive_frame(&mut frame).is_ok() {
            return Ok(());
        }
    }
    let _ = decoder.send_eof();
    if decoder.receive_frame(&mut frame).is_ok() {
        return Ok(());
    }
    Err(corrupt(if sent == 0 { " (no data)" } else { "" }))
}

/// A file whose index (MP4 sample table, Matroska cues) points past its end has been cut
/// short: opening it works, but transcoding would silently produce a shorter output.
fn check_complete(input: &ffmpeg::format::context::Input, index: usize, size: u64) -> Result<(), MediaError> {
    let Some(stream) = input.stream(index) else { return Ok(()) };
    // SAFETY: the index entries belong to the open context and are only read here.
    let end = unsafe {
        let st = stream.as_ptr() as *mut ffmpeg::ffi::AVStream;
        let count = ffmpeg::ffi::avformat_index_get_entries_count(st);
        if count <= 0 {
            return Ok(());
        }
        let last = ffmpeg::ffi::avformat_index_get_entry(st, count - 1);
        if last.is_null() {
            return Ok(());
        }
        (*last).pos.saturating_add(i64::from((*last).size()))
    };
    if size > 0 && end > size as i64 {
        return Err(MediaError::Corrupt(format!(
            "the {} stream needs {end} bytes but the file has only {size} (truncated upload?)",
            medium_name(stream.parameters().medium())
        )));
    }
    Ok(())
}

fn layout_name(audio: &ffmpeg::decoder::Audio) -> Option<String> {
    let layout = audio.channel_layout();
    if layout.bits() == 0 {
        return None;
    }
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: FFmpeg writes a NUL-terminated string of at most `buf.len()` bytes.
    unsafe {
        ffmpeg::ffi::av_get_channel_layout_string(buf.as_mut_ptr(), buf.len() as i32, i32::from(audio.channels()), layout.bits());
        let name = std::ffi::CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned();
        (!name.is_empty()).then_some(name)
    }
}

fn profile_name(decoder: &ffmpeg::decoder::Opened) -> Option<String> {
    // SAFETY: reading plain fields of a valid codec context.
    unsafe {
        let ctx = decoder.as_ptr();
        let name = ffmpeg::ffi::avcodec_profile_name((*ctx).codec_id, (*ctx).profile);
        (!name.is_null()).then(|| std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}

/// A video stream's colour description, as ffprobe names it; empty where unspecified.
struct Colors {
    range: String,
    space: String,
    transfer: String,
    primaries: String,
}

fn colors_of(params: &ffmpeg::codec::Parameters) -> Colors {
    use ffmpeg::ffi;
    // FFmpeg names an unspecified value "unknown"; ffprobe leaves such fields out.
    let name = |ptr: *const std::ffi::c_char| -> String {
        if ptr.is_null() {
            return String::new();
        }
        // SAFETY: FFmpeg returns static NUL-terminated names.
        let text = unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned();
        if text == "unknown" || text == "reserved" { String::new() } else { text }
    };
    // SAFETY: plain fields of valid codec parameters; the name lookups are pure.
    unsafe {
        let p = params.as_ptr();
        Colors {
            range: name(ffi::av_color_range_name((*p).color_range)),
            space: name(ffi::av_color_space_name((*p).color_space)),
            transfer: name(ffi::av_color_transfer_name((*p).color_trc)),
            primaries: name(ffi::av_color_primaries_name((*p).color_primaries)),
        }
    }
}
