//! The HLS and DASH muxers of a package: streams, options, headers.

use std::path::Path;
use std::sync::Arc;

use ffmpeg::{Rational, format};
use ffmpeg_next as ffmpeg;

use super::watch::FileWatch;
use super::{DASH_MANIFEST, MEDIA_PLAYLIST};
use crate::media::MediaError;
use crate::media::file::{add_stream, set_codec_tag};

/// The sample aspect ratio that makes a `rung` display at the aspect of the `top` rung:
/// even sizes cannot all keep 16:9 exactly (854x480 is 427:240), and DASH requires one
/// display aspect per adaptation set. 854x480 at 1280:1281 displays at exactly 16:9.
pub(super) fn rung_sar(top: (u32, u32), rung: (u32, u32)) -> Rational {
    let (mut num, mut den) = (0, 0);
    // SAFETY: pure arithmetic on its arguments.
    unsafe {
        ffmpeg::ffi::av_reduce(
            &mut num,
            &mut den,
            i64::from(top.0) * i64::from(rung.1),
            i64::from(top.1) * i64::from(rung.0),
            65535,
        );
    }
    if num > 0 && den > 0 { Rational::new(num, den) } else { Rational::new(1, 1) }
}

/// What a muxer stream is made from.
pub(super) struct StreamSpec<'a> {
    pub encoder: &'a ffmpeg::encoder::Encoder,
    pub time_base: Rational,
    pub frame_rate: Option<Rational>,
    /// Declared to the muxer (DASH requires a bandwidth up front); corrected at the end.
    pub bit_rate: u32,
}

pub(super) fn add_package_stream(muxer: &mut format::context::Output, spec: &StreamSpec<'_>, fmp4: bool) -> Result<usize, MediaError> {
    let index = add_stream(muxer, spec.encoder, spec.time_base, spec.frame_rate)?;
    if let Some(mut stream) = muxer.stream_mut(index) {
        // SAFETY: plain field of the stream's codec parameters, before the header.
        unsafe { (*(*stream.as_mut_ptr()).codecpar).bit_rate = i64::from(spec.bit_rate) * 1000 };
    }
    if fmp4 && spec.encoder.id() == ffmpeg::codec::Id::HEVC {
        // `hvc1` (parameter sets in the sample entry) is what Apple players require.
        set_codec_tag(muxer, index, *b"hvc1");
    }
    Ok(index)
}

pub(super) fn open_hls(dir: &Path, stream: &StreamSpec<'_>, fmp4: bool, segment: f64, watch: &Arc<FileWatch>) -> Result<format::context::Output, MediaError> {
    std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;
    let playlist = dir.join(MEDIA_PLAYLIST);
    let mut muxer =
        format::output_as(&playlist, "hls").map_err(|source| MediaError::Open { path: playlist.display().to_string(), source })?;
    watch.attach(&mut muxer);
    add_package_stream(&mut muxer, stream, fmp4)?;
    let extension = if fmp4 { "m4s" } else { "ts" };
    let mut options = ffmpeg::Dictionary::new();
    options.set("hls_time", &segment.to_string());
    options.set("hls_playlist_type", "vod");
    options.set("hls_list_size", "0");
    options.set("hls_segment_type", if fmp4 { "fmp4" } else { "mpegts" });
    options.set("hls_segment_filename", &dir.join(format!("segment_%05d.{extension}")).display().to_string());
    options.set("hls_fmp4_init_filename", "init.mp4");
    options.set("hls_flags", "independent_segments");
    options.set("start_number", "1");
    write_header(&mut muxer, options, "HLS")?;
    Ok(muxer)
}

pub(super) fn open_dash(dir: &Path, streams: &[StreamSpec<'_>], videos: usize, segment: f64, watch: &Arc<FileWatch>) -> Result<format::context::Output, MediaError> {
    std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;
    let manifest = dir.join(DASH_MANIFEST);
    let mut muxer =
        format::output_as(&manifest, "dash").map_err(|source| MediaError::Open { path: manifest.display().to_string(), source })?;
    watch.attach(&mut muxer);
    for stream in streams {
        add_package_stream(&mut muxer, stream, true)?;
    }
    // One adaptation set per media type: players switch within a set.
    let mut sets = Vec::new();
    if videos > 0 {
        sets.push(format!("id=0,streams={}", (0..videos).map(|i| i.to_string()).collect::<Vec<_>>().join(",")));
    }
    if streams.len() > videos {
        sets.push(format!("id=1,streams={}", (videos..streams.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(",")));
    }
    let mut options = ffmpeg::Dictionary::new();
    options.set("seg_duration", &segment.to_string());
    options.set("use_template", "1");
    options.set("use_timeline", "1");
    options.set("adaptation_sets", &sets.join(" "));
    options.set("init_seg_name", "init-$RepresentationID$.m4s");
    options.set("media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s");
    options.set("dash_segment_type", "mp4");
    write_header(&mut muxer, options, "DASH")?;
    Ok(muxer)
}

pub(super) fn write_header(muxer: &mut format::context::Output, options: ffmpeg::Dictionary<'_>, what: &str) -> Result<(), MediaError> {
    // SAFETY: an open muxer with its streams; the dictionary is handed over and back.
    unsafe {
        let mut dict = options.disown();
        let status = ffmpeg::ffi::avformat_write_header(muxer.as_mut_ptr(), &mut dict);
        let left = ffmpeg::Dictionary::own(dict);
        if status < 0 {
            return Err(MediaError::Ffmpeg { stage: "starting a package", source: ffmpeg::Error::from(status) });
        }
        let unknown: Vec<&str> = left.iter().map(|(key, _)| key).collect();
        if !unknown.is_empty() {
            return Err(MediaError::Unsupported(format!("the {what} muxer does not take the option(s) {}", unknown.join(", "))));
        }
    }
    Ok(())
}

pub(super) fn extradata(encoder: &ffmpeg::encoder::Encoder) -> &[u8] {
    // SAFETY: the opened encoder owns its extradata for as long as it lives.
    unsafe {
        let ctx = encoder.as_ptr();
        if (*ctx).extradata.is_null() || (*ctx).extradata_size <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts((*ctx).extradata, (*ctx).extradata_size as usize)
        }
    }
}
