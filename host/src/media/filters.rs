//! Filter graphs: the text of each chain (from a plan), building the graph between a
//! buffer source and a sink, and moving frames through it without copying pixels.

use ffmpeg::{Rational, filter, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::input::{AudioFormat, VideoFormat};
use super::streams::pixel_name;
use crate::types::{Fit, TimeRange};

/// How one output picture is made from an input picture: size, fit, algorithm, turn.
#[derive(Debug, Clone)]
pub(super) struct Picture<'a> {
    /// Final upright size.
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    pub scaler: &'a str,
    /// Total clockwise turn: the input's rotation metadata plus what the plan adds.
    pub turn: i32,
    /// Sample aspect ratio of the output pixels: square (1:1) except in ladders, whose
    /// rungs must all display at one aspect although their even sizes differ slightly.
    pub sar: Rational,
}

impl Picture<'_> {
    /// `scale` (+ `crop`/`pad`) to the size, then the turn. Scaling comes before turning so
    /// the transpose moves output-sized pictures, not input-sized ones.
    pub fn chain(&self) -> Vec<String> {
        let quarter = self.turn.rem_euclid(180) == 90;
        let (w, h) = if quarter { (self.height, self.width) } else { (self.width, self.height) };
        let flags = if self.scaler.is_empty() { "bicubic" } else { self.scaler };
        let mut chain = match self.fit {
            Fit::Stretch => vec![format!("scale={w}:{h}:flags={flags}")],
            Fit::Crop => vec![format!("scale={w}:{h}:force_original_aspect_ratio=increase:flags={flags}"), format!("crop={w}:{h}")],
            Fit::Pad => vec![
                format!("scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags={flags}"),
                format!("pad={w}:{h}:(ow-iw)/2:(oh-ih)/2"),
            ],
        };
        match self.turn.rem_euclid(360) {
            90 => chain.push("transpose=clock".into()),
            180 => chain.push("hflip,vflip".into()),
            270 => chain.push("transpose=cclock".into()),
            _ => {}
        }
        chain.push(format!("setsar={}/{}", self.sar.numerator(), self.sar.denominator()));
        chain
    }
}

/// Keep only `range` of the input and start it at zero. Subtracting the offset itself
/// (rather than the first kept frame's time) keeps audio and video in sync.
pub(super) fn video_trim(range: Option<&TimeRange>) -> Option<String> {
    trim(range, "")
}

pub(super) fn audio_trim(range: Option<&TimeRange>) -> Option<String> {
    trim(range, "a")
}

/// `trim`/`setpts`, or with `prefix` "a" their audio twins `atrim`/`asetpts`.
fn trim(range: Option<&TimeRange>, prefix: &str) -> Option<String> {
    let range = range.filter(|r| r.offset > 0.0 || r.duration.is_some())?;
    let end = range.duration.map(|d| format!(":end={}", range.offset + d)).unwrap_or_default();
    Some(format!("{prefix}trim=start={}{end},{prefix}setpts=PTS-{}/TB", range.offset, range.offset))
}

/// HDR (PQ or HLG, BT.2020) to SDR BT.709: linearise, tone-map with Hable's curve
/// (keeps highlights without clipping), then back to BT.709 in limited range.
pub(super) const TONE_MAP: &str =
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv";

/// Whether the input's transfer is one `TONE_MAP` understands.
pub(super) fn is_hdr(format: &VideoFormat) -> bool {
    use ffmpeg::ffi::AVColorTransferCharacteristic::*;
    matches!(format.colors.transfer, AVCOL_TRC_SMPTE2084 | AVCOL_TRC_ARIB_STD_B67)
}

/// A graph from a `buffer` source fed with `input`'s frames to a `buffersink`.
pub(super) fn video_graph(input: &VideoFormat, spec: &str) -> Result<filter::Graph, MediaError> {
    let mut graph = video_graph_sources(input)?;
    link(&mut graph, spec, "video filter graph")?;
    Ok(graph)
}

/// A graph with its `buffer` source "in" (for `input`'s frames) and its sink "out",
/// not yet linked.
pub(super) fn video_graph_sources(input: &VideoFormat) -> Result<filter::Graph, MediaError> {
    let mut graph = filter::Graph::new();
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}:frame_rate={}/{}",
        input.width,
        input.height,
        pixel_name(input.pix_fmt),
        input.time_base.numerator(),
        input.time_base.denominator(),
        input.aspect.numerator(),
        input.aspect.denominator(),
        input.frame_rate.numerator(),
        input.frame_rate.denominator(),
    );
    graph.add(&find_filter("buffer")?, "in", &args).map_err(MediaError::at("video filter source"))?;
    graph.add(&find_filter("buffersink")?, "out", "").map_err(MediaError::at("video filter sink"))?;
    Ok(graph)
}

/// A graph from an `abuffer` source to an `abuffersink` that hands out what `sink` says.
pub(super) fn audio_graph(input: &AudioFormat, spec: &str, sink: impl FnOnce(&mut filter::Context)) -> Result<filter::Graph, MediaError> {
    let mut graph = filter::Graph::new();
    let args = format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
        input.time_base.numerator(),
        input.time_base.denominator(),
        input.rate,
        input.sample_format.name(),
        input.layout.bits()
    );
    graph.add(&find_filter("abuffer")?, "in", &args).map_err(MediaError::at("audio filter source"))?;
    graph.add(&find_filter("abuffersink")?, "out", "").map_err(MediaError::at("audio filter sink"))?;
    {
        let mut out = graph.get("out").ok_or_else(|| MediaError::Unsupported("audio sink missing".into()))?;
        sink(&mut out);
    }
    link(&mut graph, spec, "audio filter graph")?;
    Ok(graph)
}

fn link(graph: &mut filter::Graph, spec: &str, stage: &'static str) -> Result<(), MediaError> {
    graph.output("in", 0).and_then(|p| p.input("out", 0)).and_then(|p| p.parse(spec)).map_err(MediaError::at(stage))?;
    graph.validate().map_err(MediaError::at(stage))
}

/// The time base of the frames a graph hands out.
pub(super) fn sink_time_base(graph: &mut filter::Graph, fallback: Rational) -> Rational {
    graph.get("out").map(|mut sink| sink.sink().time_base()).unwrap_or(fallback)
}

pub(super) fn find_filter(name: &str) -> Result<filter::Filter, MediaError> {
    filter::find(name).ok_or_else(|| MediaError::Unsupported(format!("FFmpeg lacks the {name} filter")))
}

/// Give a frame (or, with `None`, end of stream) to a graph's source without giving up
/// our reference: the same decoded frame goes to every output, and FFmpeg only counts
/// one more reference to its buffers instead of copying pixels.
pub(super) fn feed(graph: &mut filter::Graph, frame: Option<&frame::Frame>) -> Result<(), MediaError> {
    feed_source(graph, "in", frame)
}

/// Give the graph's source `name` one frame, or with `None` its end.
pub(super) fn feed_source(graph: &mut filter::Graph, name: &str, frame: Option<&frame::Frame>) -> Result<(), MediaError> {
    let mut source = graph.get(name).ok_or_else(|| MediaError::Unsupported(format!("filter graph has no input {name}")))?;
    // SAFETY: with KEEP_REF, buffersrc takes a new reference and leaves the frame as it
    // was; it never writes through the pointer.
    let ptr = frame.map(|f| unsafe { f.as_ptr() } as *mut ffmpeg::ffi::AVFrame).unwrap_or(std::ptr::null_mut());
    // SAFETY: `source` is a buffersrc of this graph.
    let status = unsafe {
        ffmpeg::ffi::av_buffersrc_add_frame_flags(source.as_mut_ptr(), ptr, ffmpeg::ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32)
    };
    if status < 0 { Err(MediaError::Ffmpeg { stage: "filtering", source: ffmpeg::Error::from(status) }) } else { Ok(()) }
}

/// End a video graph's input at `end` (in the source's time base): the end of the last
/// frame, not its start, which is what ending with a null frame would say. Filters that
/// retime (`fps`) would otherwise drop the last frame, as its display time would fall
/// past the end of the stream.
pub(super) fn close(graph: &mut filter::Graph, end: i64) -> Result<(), MediaError> {
    close_source(graph, "in", end)
}

/// End the graph's source `name` at `end` (see [`close`]).
pub(super) fn close_source(graph: &mut filter::Graph, name: &str, end: i64) -> Result<(), MediaError> {
    let mut source = graph.get(name).ok_or_else(|| MediaError::Unsupported(format!("filter graph has no input {name}")))?;
    // SAFETY: `source` is a buffersrc of this graph.
    let status = unsafe { ffmpeg::ffi::av_buffersrc_close(source.as_mut_ptr(), end, 0) };
    if status < 0 { Err(MediaError::Ffmpeg { stage: "filtering", source: ffmpeg::Error::from(status) }) } else { Ok(()) }
}

/// Take the next filtered frame, if the graph has one ready.
pub(super) fn pull(graph: &mut filter::Graph, frame: &mut frame::Frame) -> Result<bool, MediaError> {
    let mut sink = graph.get("out").ok_or_else(|| MediaError::Unsupported("filter graph has no output".into()))?;
    // The sink moves its frame into ours without releasing what ours held (the encoder
    // took its own reference to it): release it first or every frame would leak.
    // SAFETY: `frame` is a valid, owned AVFrame.
    unsafe { ffmpeg::ffi::av_frame_unref(frame.as_mut_ptr()) };
    match sink.sink().frame(frame) {
        Ok(()) => Ok(true),
        Err(ffmpeg::Error::Eof) => Ok(false),
        Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => Ok(false),
        Err(source) => Err(MediaError::Ffmpeg { stage: "filtering", source }),
    }
}

/// A new reference to the same decoded picture or samples, for another thread: the
/// buffers are reference-counted and read-only from here on, so nothing is copied.
pub(super) fn share<F: std::ops::Deref<Target = frame::Frame> + std::ops::DerefMut>(
    source: &F,
    empty: F,
) -> Result<F, MediaError> {
    let mut copy = empty;
    // SAFETY: both are valid AVFrames; `copy` is empty, as av_frame_ref requires.
    let status = unsafe { ffmpeg::ffi::av_frame_ref(copy.as_mut_ptr(), source.as_ptr()) };
    if status < 0 { Err(MediaError::Ffmpeg { stage: "sharing a frame", source: ffmpeg::Error::from(status) }) } else { Ok(copy) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(width: u32, height: u32, fit: Fit, turn: i32) -> Vec<String> {
        Picture { width, height, fit, scaler: "lanczos", turn, sar: Rational::new(1, 1) }.chain()
    }

    #[test]
    fn scaling_happens_on_the_turned_size() {
        assert_eq!(picture(406, 720, Fit::Stretch, 90), ["scale=720:406:flags=lanczos", "transpose=clock", "setsar=1/1"]);
        assert_eq!(picture(1280, 720, Fit::Stretch, 0), ["scale=1280:720:flags=lanczos", "setsar=1/1"]);
        assert_eq!(picture(1280, 720, Fit::Stretch, 180), ["scale=1280:720:flags=lanczos", "hflip,vflip", "setsar=1/1"]);
        assert_eq!(picture(1280, 720, Fit::Stretch, -90)[1], "transpose=cclock");
    }

    #[test]
    fn fits() {
        assert_eq!(picture(200, 200, Fit::Crop, 0)[1], "crop=200:200");
        assert!(picture(200, 200, Fit::Crop, 0)[0].contains("force_original_aspect_ratio=increase"));
        assert_eq!(picture(640, 640, Fit::Pad, 0)[1], "pad=640:640:(ow-iw)/2:(oh-ih)/2");
    }

    #[test]
    fn trims_subtract_the_offset() {
        let range = TimeRange { offset: 2.0, duration: Some(3.0) };
        assert_eq!(video_trim(Some(&range)).unwrap(), "trim=start=2:end=5,setpts=PTS-2/TB");
        assert_eq!(audio_trim(Some(&range)).unwrap(), "atrim=start=2:end=5,asetpts=PTS-2/TB");
        assert_eq!(video_trim(Some(&TimeRange { offset: 0.0, duration: None })), None);
        assert_eq!(video_trim(None), None);
    }
}

/// How each frame is mapped onto the palette: ordered dithering, which compresses well,
/// and only the rectangle that changed.
const PALETTE_USE: &str = "paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle";

/// A GIF's second pass's graph: the decoded frames through `chain` (the GIF's range, rate,
/// size and turn) and `paletteuse` with `palette`, given once and then ended.
pub(super) fn palette_graph(input: &VideoFormat, chain: &str, palette: &frame::Video) -> Result<filter::Graph, MediaError> {
    let mut graph = video_graph_sources(input)?;
    // SAFETY: plain field of a frame made by `palette` (its time base set there).
    let time_base = unsafe { (*palette.as_ptr()).time_base };
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect=1/1",
        palette.width(),
        palette.height(),
        pixel_name(palette.format()),
        time_base.num,
        time_base.den.max(1),
    );
    graph.add(&find_filter("buffer")?, "palette", &args).map_err(MediaError::at("GIF palette source"))?;
    let spec = format!("[in]{chain}[frames];[frames][palette]{PALETTE_USE}[out]");
    graph
        .output("in", 0)
        .and_then(|p| p.output("palette", 0))
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&spec))
        .map_err(MediaError::at("GIF filter graph"))?;
    graph.validate().map_err(MediaError::at("GIF filter graph"))?;
    let mut source = graph.get("palette").ok_or_else(|| MediaError::Unsupported("GIF graph has no palette source".into()))?;
    // SAFETY: `source` is a buffersrc of this graph; the frame is given by a new
    // reference (KEEP_REF), then the source is ended (a null frame).
    let status = unsafe {
        let sent = ffmpeg::ffi::av_buffersrc_add_frame_flags(
            source.as_mut_ptr(),
            palette.as_ptr() as *mut ffmpeg::ffi::AVFrame,
            ffmpeg::ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32,
        );
        if sent < 0 { sent } else { ffmpeg::ffi::av_buffersrc_add_frame_flags(source.as_mut_ptr(), std::ptr::null_mut(), 0) }
    };
    if status < 0 {
        return Err(MediaError::Ffmpeg { stage: "GIF palette", source: ffmpeg::Error::from(status) });
    }
    Ok(graph)
}
