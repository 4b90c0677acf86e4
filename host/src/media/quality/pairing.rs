//! The source and the outputs walked in step. Each output is a lane: its frames are
//! decoded as they are needed and scaled to the source's size, and each is paired with
//! the last source frame shown at or before its time (the `ffmpeg` command's frame
//! sync: a lower frame rate skips source frames, a higher one repeats them).

use std::collections::VecDeque;
use std::path::Path;

use ffmpeg::software::scaling;
use ffmpeg::{format, frame};
use ffmpeg_next as ffmpeg;

use super::libvmaf::{Features, Layout, Scorer};
use super::scores::{self, Quality};
use super::ssim::{Luma, Ssim};
use super::{Metric, QualityTarget};
use crate::media::error::MediaError;
use crate::media::decode_limits::DecodeLimits;
use crate::media::input::{Decoded, Demuxer};

/// Two times closer than this are the same time (containers round timestamps).
const SAME_TIME: f64 = 0.001;

/// Source width or height from which the 4K model is used.
const UHD: (u32, u32) = (3840, 2160);

pub(super) fn run(
    reference: &Path,
    targets: &[QualityTarget],
    limits: &DecodeLimits,
    progress: &dyn Fn(f64),
) -> Result<Vec<Result<Quality, MediaError>>, MediaError> {
    let mut source = crate::media::stitch::Source::open(reference, limits)?;
    let format = source.video_format().ok_or_else(|| MediaError::Unsupported("the source has no video to compare the output with".into()))?;
    if format.rotation != 0 {
        return Err(MediaError::Unsupported("quality is not measured for a source that is shown rotated".into()));
    }
    let layout = Layout { width: format.width, height: format.height, bits: if bit_depth(format.pix_fmt) > 8 { 10 } else { 8 } };
    let model = if format.width >= UHD.0 || format.height >= UHD.1 { "vmaf_4k_v0.6.1" } else { "vmaf_v0.6.1" };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let share = (threads / targets.len().max(1) as u32).max(1);

    let mut lanes: Vec<Result<Lane, MediaError>> = targets.iter().map(|t| Lane::open(t, layout, model, share, limits)).collect();
    let mut to_layout = Converter::new(layout);
    let mut previous: Option<frame::Video> = None;
    let duration = source.duration();
    let mut failed: Option<MediaError> = None;
    loop {
        let mut decoded: Vec<(frame::Video, f64)> = Vec::new();
        let more = source.step(true, false, &mut |d| {
            if let Decoded::Video(frame, time) = d {
                match to_layout.convert(frame) {
                    Ok(converted) => decoded.push((converted, time)),
                    Err(err) => {
                        failed.get_or_insert(err);
                    }
                }
            }
        })?;
        if let Some(err) = failed.take() {
            return Err(err);
        }
        for (frame, time) in decoded {
            if let Some(shown) = &previous {
                for lane in lanes.iter_mut() {
                    pair(lane, shown, Some(time));
                }
            }
            previous = Some(frame);
            if duration > 0.0 {
                progress((time / duration).clamp(0.0, 1.0));
            }
        }
        let waiting = lanes.iter().any(|l| l.as_ref().is_ok_and(|l| !l.done()));
        if !more || !waiting {
            break;
        }
    }
    // The last source frame stays on screen for whatever the outputs still show.
    if let Some(shown) = &previous {
        for lane in lanes.iter_mut() {
            pair(lane, shown, None);
        }
    }
    Ok(lanes.into_iter().map(|lane| lane.and_then(Lane::finish)).collect())
}

/// Pair a lane's frames shown before `until` (all of them when `None`) with `shown`; a
/// lane that fails keeps its error.
fn pair(lane: &mut Result<Lane, MediaError>, shown: &frame::Video, until: Option<f64>) {
    if let Ok(open) = lane
        && let Err(err) = open.pair_until(shown, until)
    {
        *lane = Err(err);
    }
}

/// One output being measured.
struct Lane {
    demuxer: Demuxer,
    /// Decoded frames not yet paired, at the source's layout, with their times in the
    /// source's timeline.
    queue: VecDeque<(frame::Video, f64)>,
    ended: bool,
    convert: Converter,
    /// libvmaf, for VMAF and PSNR (none when the output asked for SSIM alone).
    scorer: Option<Scorer>,
    ssim: Option<Ssim>,
    /// SSIM of each frame scored.
    ssim_scores: Vec<f64>,
    /// Pairs read so far.
    frames: u32,
    target: QualityTarget,
    model: &'static str,
    layout: Layout,
}

impl Lane {
    fn open(target: &QualityTarget, layout: Layout, model: &'static str, threads: u32, limits: &DecodeLimits) -> Result<Lane, MediaError> {
        // The host's own file: a package's rung is its media playlist and segments.
        let demuxer = Demuxer::open_own(&target.file, limits)?;
        if demuxer.video_format().is_none() {
            return Err(MediaError::Unsupported("the output has no video to measure".into()));
        }
        let features = Features {
            model: target.metrics.contains(&Metric::Vmaf).then_some(model),
            psnr: target.metrics.contains(&Metric::Psnr),
            ssim: false,
        };
        let scorer = (features.model.is_some() || features.psnr)
            .then(|| Scorer::new(&features, layout, threads, target.subsample))
            .transpose()
            .map_err(|e| MediaError::Quality(e.to_string()))?;
        let ssim = target
            .metrics
            .contains(&Metric::Ssim)
            .then(|| Ssim::new(layout.width as usize, layout.height as usize, layout.bits))
            .transpose()
            .map_err(|e| MediaError::Quality(e.to_string()))?;
        Ok(Lane {
            demuxer,
            queue: VecDeque::new(),
            ended: false,
            convert: Converter::new(layout),
            scorer,
            ssim,
            ssim_scores: Vec::new(),
            frames: 0,
            target: target.clone(),
            model,
            layout,
        })
    }

    fn done(&self) -> bool {
        self.ended && self.queue.is_empty()
    }

    /// The time of the next frame not yet paired, decoding as needed.
    fn next_time(&mut self) -> Result<Option<f64>, MediaError> {
        while self.queue.is_empty() && !self.ended {
            let (offset, queue, convert) = (self.target.offset, &mut self.queue, &mut self.convert);
            let mut failed = None;
            let more = self.demuxer.step(true, false, &mut |d| {
                if let Decoded::Video(frame, time) = d {
                    match convert.convert(frame) {
                        Ok(converted) => queue.push_back((converted, offset + time)),
                        Err(err) => {
                            failed.get_or_insert(err);
                        }
                    }
                }
            })?;
            if let Some(err) = failed {
                return Err(err);
            }
            self.ended = !more;
        }
        Ok(self.queue.front().map(|(_, time)| *time))
    }

    fn pair_until(&mut self, shown: &frame::Video, until: Option<f64>) -> Result<(), MediaError> {
        while let Some(time) = self.next_time()? {
            if until.is_some_and(|until| time >= until - SAME_TIME) {
                break;
            }
            let Some((distorted, _)) = self.queue.pop_front() else { break };
            let layout = self.layout;
            if let Some(scorer) = self.scorer.as_mut() {
                scorer
                    .push(&mut |is_reference, plane, row, line| {
                        let picture = if is_reference { shown } else { &distorted };
                        copy_row(picture, layout, plane, row, line);
                    })
                    .map_err(|e| MediaError::Quality(e.to_string()))?;
            }
            // Scored on the frames libvmaf scores (all of them but for a subsampled probe).
            if let Some(ssim) = self.ssim.as_mut()
                && self.frames % self.target.subsample.max(1) == 0
            {
                let score = ssim.score(luma(shown), luma(&distorted)).map_err(|e| MediaError::Quality(e.to_string()))?;
                self.ssim_scores.push(score);
            }
            self.frames += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Quality, MediaError> {
        if self.frames == 0 {
            return Err(MediaError::Unsupported("the output has no frame to measure".into()));
        }
        let measured = scores::Measured { frames: self.frames, ssim: &self.ssim_scores };
        scores::collect(self.scorer.as_mut(), measured, &self.target, self.model, self.layout).map_err(|e| MediaError::Quality(e.to_string()))
    }
}

/// One row of one plane of a picture of `layout`, into libvmaf's line.
fn copy_row(picture: &frame::Video, layout: Layout, plane: usize, row: usize, line: &mut [u8]) {
    let stride = picture.stride(plane);
    let data = picture.data(plane);
    let start = row * stride;
    let (width, _) = layout.plane_size(plane);
    let bytes = width * layout.sample_bytes();
    if let Some(source) = data.get(start..start + bytes) {
        line[..bytes].copy_from_slice(source);
    }
}

/// The luma plane of a picture at the source's layout.
fn luma(picture: &frame::Video) -> Luma<'_> {
    Luma { data: picture.data(0), stride: picture.stride(0) }
}

/// Pictures of any format and size to the source's layout, bicubic.
struct Converter {
    layout: Layout,
    target: format::Pixel,
    scaler: Option<(scaling::Context, (format::Pixel, u32, u32))>,
}

impl Converter {
    fn new(layout: Layout) -> Self {
        let target = if layout.bits > 8 { format::Pixel::YUV420P10LE } else { format::Pixel::YUV420P };
        Converter { layout, target, scaler: None }
    }

    fn convert(&mut self, frame: &frame::Video) -> Result<frame::Video, MediaError> {
        let from = (frame.format(), frame.width(), frame.height());
        if from == (self.target, self.layout.width, self.layout.height) {
            return Ok(frame.clone());
        }
        if self.scaler.as_ref().is_none_or(|(_, made_for)| *made_for != from) {
            let context = scaling::Context::get(from.0, from.1, from.2, self.target, self.layout.width, self.layout.height, scaling::Flags::BICUBIC)
                .map_err(|source| MediaError::Ffmpeg { stage: "scaling an output to its source's size", source })?;
            self.scaler = Some((context, from));
        }
        let mut converted = frame::Video::empty();
        if let Some((scaler, _)) = self.scaler.as_mut() {
            scaler.run(frame, &mut converted).map_err(|source| MediaError::Ffmpeg { stage: "scaling an output to its source's size", source })?;
        }
        Ok(converted)
    }
}

/// Bits of the pixel format's first component.
fn bit_depth(pixel: format::Pixel) -> u32 {
    pixel.descriptor().map_or(8, |descriptor| {
        // SAFETY: FFmpeg's static descriptor of a known format (ffmpeg-next exposes no
        // accessor for its components); every pixel format has a first component.
        unsafe { (*descriptor.as_ptr()).comp[0].depth as u32 }
    })
}
