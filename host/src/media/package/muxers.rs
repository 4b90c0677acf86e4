//! The HLS and DASH muxers of a package: streams, options, headers.

use std::path::Path;
use std::sync::Arc;

use ffmpeg::{Rational, codec, format};
use ffmpeg_next as ffmpeg;

use super::segment_hooks::FileWatch;
use super::{DASH_MANIFEST, MEDIA_PLAYLIST};
use crate::media::error::MediaError;
use crate::media::file::set_codec_tag;

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

/// What a muxer stream is made from: an encoder's parameters, or those of a stream
/// encoded before (an ultrafast job's pieces).
pub(super) struct StreamSpec {
    pub parameters: codec::Parameters,
    pub sar: Rational,
    pub time_base: Rational,
    pub frame_rate: Option<Rational>,
    /// Declared to the muxer (DASH requires a bandwidth up front); corrected at the end.
    pub bit_rate: u32,
}

impl StreamSpec {
    pub fn of_encoder(encoder: &ffmpeg::encoder::Encoder, time_base: Rational, frame_rate: Option<Rational>, bit_rate: u32) -> Self {
        // SAFETY: plain field of an opened encoder's context.
        let sar = Rational::from(unsafe { (*encoder.as_ptr()).sample_aspect_ratio });
        StreamSpec { parameters: codec::Parameters::from(encoder), sar, time_base, frame_rate, bit_rate }
    }

    /// The codec's extradata (parameter sets), which codec strings are read from.
    pub fn extradata(&self) -> &[u8] {
        // SAFETY: the parameters own their extradata for as long as they live.
        unsafe {
            let par = self.parameters.as_ptr();
            if (*par).extradata.is_null() || (*par).extradata_size <= 0 {
                &[]
            } else {
                std::slice::from_raw_parts((*par).extradata, (*par).extradata_size as usize)
            }
        }
    }
}

pub(super) fn add_package_stream(muxer: &mut format::context::Output, spec: &StreamSpec, fmp4: bool) -> Result<usize, MediaError> {
    let index = {
        let mut stream = muxer.add_stream(ffmpeg::encoder::find(codec::Id::None)).map_err(MediaError::at("adding a stream"))?;
        stream.set_parameters(spec.parameters.clone());
        stream.set_time_base(spec.time_base);
        if let Some(rate) = spec.frame_rate {
            stream.set_avg_frame_rate(rate);
        }
        // Muxers read the pixel aspect from the stream itself (DASH checks its adaptation
        // sets with it), not only from the codec parameters; and the muxer picks its own
        // tag (a copied stream carries its former container's).
        // SAFETY: plain fields of the new stream and its codec parameters, before the header.
        unsafe {
            (*stream.as_mut_ptr()).sample_aspect_ratio = spec.sar.into();
            (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0;
            (*(*stream.as_mut_ptr()).codecpar).bit_rate = i64::from(spec.bit_rate) * 1000;
        }
        stream.index()
    };
    if fmp4 && spec.parameters.id() == codec::Id::HEVC {
        // `hvc1` (parameter sets in the sample entry) is what Apple players require.
        set_codec_tag(muxer, index, *b"hvc1");
    }
    Ok(index)
}

pub(super) fn open_hls(dir: &Path, stream: &StreamSpec, fmp4: bool, segment: f64, watch: &Arc<FileWatch>) -> Result<format::context::Output, MediaError> {
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

/// The DASH muxer of `streams`, each with its metadata `tags` (its set's `language`
/// and `role`), grouped into adaptation `sets` (stream indexes).
pub(super) fn open_dash(
    dir: &Path,
    streams: &[StreamSpec],
    tags: &[Vec<(&str, String)>],
    sets: &[Vec<usize>],
    segment: f64,
    watch: &Arc<FileWatch>,
) -> Result<format::context::Output, MediaError> {
    std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;
    let manifest = dir.join(DASH_MANIFEST);
    let mut muxer =
        format::output_as(&manifest, "dash").map_err(|source| MediaError::Open { path: manifest.display().to_string(), source })?;
    watch.attach(&mut muxer);
    for (i, stream) in streams.iter().enumerate() {
        let index = add_package_stream(&mut muxer, stream, true)?;
        if let Some(mut added) = muxer.stream_mut(index) {
            let mut metadata = ffmpeg::Dictionary::new();
            for (key, value) in tags.get(i).into_iter().flatten() {
                metadata.set(key, value);
            }
            added.set_metadata(metadata);
        }
    }
    // Players switch within a set: the video rungs, the bitrates of one audio track.
    let sets: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(id, streams)| format!("id={id},streams={}", streams.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")))
        .collect();
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
