//! Watermarks: images drawn over an output's picture, in the encoder's own graph.
//!
//! Each image (a file the worker fetched) is decoded once, scaled to its planned width
//! and given its opacity, as RGBA. The encoder's graph then has a source for each
//! beside the decoded frames', fed the same picture with every input frame's time, so
//! that it is a stream on the output's timeline: cut by the same range, faded in and
//! out by `fade` on its alpha, shown by `overlay` between its start and end.

use ffmpeg::{filter, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::decode_limits::DecodeLimits;
use super::filters;
use super::input::{Decoded, Demuxer, VideoFormat};
use crate::types::{OverlayAnchor, OverlayPlan, TimeRange, VideoPlan};

/// The largest image an overlay may be (its decode is held to it).
const MAX_IMAGE_PIXELS: u64 = 4096 * 4096;

/// Each overlay's picture, ready to draw.
pub(super) struct Overlays {
    frames: Vec<frame::Video>,
}

impl Overlays {
    /// Load `plan`'s overlays; none for a plan without.
    pub fn load(plan: &VideoPlan) -> Result<Self, MediaError> {
        let frames = plan.overlays.iter().enumerate().map(|(i, o)| picture(o).map_err(|e| MediaError::Unsupported(format!("watermark {}: {e}", i + 1)))).collect::<Result<_, _>>()?;
        Ok(Overlays { frames })
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// A graph from the decoded frames (`in`) through `chain` to `out`, with each
    /// overlay drawn over what `chain` makes, in `pix_fmt`.
    pub fn graph(&self, input: &VideoFormat, chain: &str, plan: &VideoPlan, range: Option<&TimeRange>) -> Result<filter::Graph, MediaError> {
        let mut graph = filters::video_graph_sources(input)?;
        for (i, f) in self.frames.iter().enumerate() {
            let args = format!(
                "video_size={}x{}:pix_fmt=rgba:time_base={}/{}:pixel_aspect=1/1:frame_rate={}/{}",
                f.width(),
                f.height(),
                input.time_base.numerator(),
                input.time_base.denominator(),
                input.frame_rate.numerator(),
                input.frame_rate.denominator(),
            );
            graph.add(&filters::find_filter("buffer")?, &source(i), &args).map_err(MediaError::at("overlay source"))?;
        }
        let spec = spec(chain, plan, range);
        let mut parser = graph.output("in", 0).map_err(MediaError::at("overlay graph"))?;
        for i in 0..self.frames.len() {
            parser = parser.output(&source(i), 0).map_err(MediaError::at("overlay graph"))?;
        }
        parser.input("out", 0).and_then(|p| p.parse(&spec)).map_err(MediaError::at("overlay graph"))?;
        graph.validate().map_err(MediaError::at("overlay graph"))?;
        Ok(graph)
    }

    /// Give every overlay's source its picture at `pts` (the input frame's time).
    pub fn feed(&mut self, graph: &mut filter::Graph, pts: Option<i64>) -> Result<(), MediaError> {
        for (i, f) in self.frames.iter_mut().enumerate() {
            f.set_pts(pts);
            filters::feed_source(graph, &source(i), Some(f))?;
        }
        Ok(())
    }

    /// End every overlay's source where the input ends.
    pub fn close(&self, graph: &mut filter::Graph, end: Option<i64>) -> Result<(), MediaError> {
        for i in 0..self.frames.len() {
            match end {
                Some(end) => filters::close_source(graph, &source(i), end)?,
                None => filters::feed_source(graph, &source(i), None)?,
            }
        }
        Ok(())
    }
}

fn source(i: usize) -> String {
    format!("ov{i}")
}

/// The filtergraph: `chain` on the decoded frames, then each overlay over the result.
/// Every number in it is the host's (a plan's fields, formatted), never a string a
/// plugin chose.
fn spec(chain: &str, plan: &VideoPlan, range: Option<&TimeRange>) -> String {
    let trim = filters::video_trim(range).map(|t| format!("{t},")).unwrap_or_default();
    let mut parts = vec![format!("[in]{chain}[m0]")];
    let last = plan.overlays.len();
    for (i, o) in plan.overlays.iter().enumerate() {
        let mut fades = String::new();
        if o.fade > 0.0 {
            fades.push_str(&format!(",fade=t=in:st={:.3}:d={:.3}:alpha=1", o.start, o.fade));
            if let Some(end) = o.end {
                fades.push_str(&format!(",fade=t=out:st={:.3}:d={:.3}:alpha=1", (end - o.fade).max(o.start), o.fade));
            }
        }
        parts.push(format!("[{src}]{trim}format=rgba{fades}[o{i}]", src = source(i)));
        let (x, y) = position(o);
        let enable = match (o.start > 0.0, o.end) {
            (_, Some(end)) => format!(":enable='between(t,{:.3},{:.3})'", o.start, end),
            (true, None) => format!(":enable='gte(t,{:.3})'", o.start),
            (false, None) => String::new(),
        };
        let out = if i + 1 == last { format!(",format={}[out]", plan.pix_fmt) } else { format!("[m{}]", i + 1) };
        parts.push(format!("[m{i}][o{i}]overlay=x={x}:y={y}:format=auto:eof_action=repeat{enable}{out}"));
    }
    parts.join(";")
}

/// `overlay`'s x and y: the anchor's edges in the main picture (`W`, `H`) less the
/// image's size (`w`, `h`) and the margins.
fn position(o: &OverlayPlan) -> (String, String) {
    let (x, y) = (o.x, o.y);
    match o.anchor {
        OverlayAnchor::TopLeft => (format!("{x}"), format!("{y}")),
        OverlayAnchor::TopRight => (format!("W-w-{x}"), format!("{y}")),
        OverlayAnchor::BottomLeft => (format!("{x}"), format!("H-h-{y}")),
        OverlayAnchor::BottomRight => (format!("W-w-{x}"), format!("H-h-{y}")),
        OverlayAnchor::Center => (format!("(W-w)/2+{x}"), format!("(H-h)/2+{y}")),
    }
}

/// The overlay's image: its first picture, scaled to the planned width (the height
/// follows its aspect), RGBA (a PNG's alpha kept), the opacity applied to the alpha.
fn picture(o: &OverlayPlan) -> Result<frame::Video, MediaError> {
    let file = o.file.as_ref().ok_or_else(|| MediaError::Unsupported("the image was not fetched".into()))?;
    let limits = DecodeLimits { max_duration_secs: 86_400.0, max_pixels: MAX_IMAGE_PIXELS, clips: Vec::new(), joined: Vec::new() };
    let mut demuxer = Demuxer::open(file, &limits)?;
    let format = demuxer.video_format().ok_or_else(|| MediaError::Unsupported("the file is not a picture".into()))?;
    let mut first: Option<frame::Video> = None;
    while first.is_none() {
        let more = demuxer.step(true, false, &mut |decoded| {
            if let (Decoded::Video(f, _), None) = (decoded, first.as_ref()) {
                first = Some(f.clone());
            }
        })?;
        if !more {
            break;
        }
    }
    let mut picture = first.ok_or_else(|| MediaError::Corrupt("the image has no picture".into()))?;
    picture.set_pts(Some(0));
    let chain = format!("scale={}:-1:flags=lanczos,format=rgba,colorchannelmixer=aa={:.4}", o.width, o.opacity.clamp(0.0, 1.0));
    let mut graph = filters::video_graph(&format, &chain)?;
    filters::feed(&mut graph, Some(&picture))?;
    filters::feed(&mut graph, None)?;
    let mut out = frame::Video::empty();
    if !filters::pull(&mut graph, &mut out)? {
        return Err(MediaError::Unsupported("the image could not be scaled".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(anchor: OverlayAnchor, start: f64, end: Option<f64>, fade: f64) -> OverlayPlan {
        OverlayPlan { url: "https://example.com/l.png".into(), width: 64, anchor, x: 16, y: 8, opacity: 0.5, start, end, fade, file: None }
    }

    #[test]
    fn the_graph_draws_each_overlay_in_turn() {
        let mut plan = crate::media::test_fixtures::h264(640, 360, 23.0, "ultrafast");
        plan.overlays = vec![overlay(OverlayAnchor::BottomRight, 0.0, None, 0.0), overlay(OverlayAnchor::Center, 2.0, Some(6.0), 1.0)];
        let spec = spec("scale=640:360,format=yuv420p", &plan, Some(&TimeRange { offset: 1.0, duration: Some(8.0) }));
        assert_eq!(
            spec,
            "[in]scale=640:360,format=yuv420p[m0];\
             [ov0]trim=start=1:end=9,setpts=PTS-1/TB,format=rgba[o0];\
             [m0][o0]overlay=x=W-w-16:y=H-h-8:format=auto:eof_action=repeat[m1];\
             [ov1]trim=start=1:end=9,setpts=PTS-1/TB,format=rgba,fade=t=in:st=2.000:d=1.000:alpha=1,fade=t=out:st=5.000:d=1.000:alpha=1[o1];\
             [m1][o1]overlay=x=(W-w)/2+16:y=(H-h)/2+8:format=auto:eof_action=repeat:enable='between(t,2.000,6.000)',format=yuv420p[out]"
        );
        assert_eq!(position(&overlay(OverlayAnchor::TopRight, 0.0, None, 0.0)), ("W-w-16".into(), "8".into()));
        assert_eq!(position(&overlay(OverlayAnchor::BottomLeft, 0.0, None, 0.0)), ("16".into(), "H-h-8".into()));
    }
}
