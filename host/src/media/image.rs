//! Still pictures from the shared decode: thumbnails at planned times, or the same
//! pictures tiled into sprite sheets for player scrubbing.
//!
//! The picture for time `t` is the frame on screen at `t`: the last one that starts at
//! or before it. Frames go through one graph (scale, fit, turn, and `tile` for sprites)
//! and one encoder; each packet of an image encoder is a complete file.

use std::path::{Path, PathBuf};

use ffmpeg::{Rational, codec, filter, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::encode::{drain, find_encoder};
use super::sink::{Flow, Produced, Sink, SpriteTile};
use super::filters::{self, Picture};
use super::input::VideoFormat;
use crate::types::ImagePlan;

pub(super) struct ImageSink {
    plan: ImagePlan,
    dir: PathBuf,
    extension: &'static str,
    graph: filter::Graph,
    encoder: ffmpeg::encoder::Encoder,
    name: &'static str,
    input_time_base: Rational,
    /// Index of the next planned time to fill.
    next: usize,
    /// The frame on screen now: the candidate for every planned time before the next frame.
    current: Option<frame::Video>,
    /// Pictures sent to the encoder so far (their pts).
    sent: i64,
    filtered: frame::Video,
    packet: ffmpeg::Packet,
    files: Vec<PathBuf>,
    /// Input duration, for the last sprite tile's end.
    duration: f64,
}

/// Encoder, pixel format and file extension of an image codec. JPEG is written
/// full-range, as JPEG files are.
fn image_codec(codec: &str) -> Result<(&'static str, &'static str), MediaError> {
    Ok(match codec {
        "mjpeg" | "jpeg" | "jpg" => ("yuvj420p", "jpg"),
        "png" => ("rgb24", "png"),
        "webp" => ("yuv420p", "webp"),
        other => return Err(MediaError::Unsupported(format!("no image encoder for '{other}'"))),
    })
}

/// Pictures have no timing of their own, but encoders want a time base.
fn picture_time_base() -> Rational {
    Rational::new(1, 25)
}

impl ImageSink {
    pub fn open(plan: &ImagePlan, dir: &Path, input: &VideoFormat, duration: f64) -> Result<Self, MediaError> {
        if plan.times.is_empty() {
            return Err(MediaError::Unsupported("the image output plans no picture".into()));
        }
        if plan.width == 0 || plan.height == 0 {
            return Err(MediaError::Unsupported(format!("invalid picture size {}x{}", plan.width, plan.height)));
        }
        let (pix_fmt, extension) = image_codec(&plan.codec)?;
        let (codec, name) = find_encoder(&plan.codec)?;
        std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;

        let picture =
            Picture { width: plan.width, height: plan.height, fit: plan.fit, scaler: "bicubic", turn: input.rotation, sar: Rational::new(1, 1) };
        // Image formats are 8-bit SDR: an HDR input would look washed out untouched.
        let mut chain: Vec<String> = filters::is_hdr(input).then(|| filters::TONE_MAP.to_string()).into_iter().collect();
        chain.extend(picture.chain());
        let (mut width, mut height) = (plan.width, plan.height);
        if let Some(sprite) = plan.sprite {
            chain.push(format!("tile={}x{}", sprite.columns, sprite.rows));
            width *= sprite.columns;
            height *= sprite.rows;
        }
        chain.push(format!("format={pix_fmt}"));
        let graph = filters::video_graph(input, &chain.join(","))?;

        let context = codec::context::Context::new_with_codec(codec);
        let mut encoder = context.encoder().video().map_err(MediaError::encoder(name, "setting up"))?;
        encoder.set_width(width);
        encoder.set_height(height);
        encoder.set_format(pix_fmt.parse().map_err(|_| MediaError::Unsupported(format!("unknown pixel format {pix_fmt}")))?);
        encoder.set_time_base(picture_time_base());
        encoder.set_aspect_ratio(Rational::new(1, 1));
        if extension == "jpg" {
            // SAFETY: plain field of a codec context not yet opened.
            unsafe { (*encoder.as_mut_ptr()).color_range = ffmpeg::ffi::AVColorRange::AVCOL_RANGE_JPEG };
        }
        let mut options = ffmpeg::Dictionary::new();
        for (key, value) in &plan.encoder_options {
            options.set(key, value);
        }
        let mut encoder = encoder.0;
        // SAFETY: a valid, unopened context for `codec`.
        unsafe { super::encode::open_checked(encoder.as_mut_ptr(), &codec, name, options)? };
        Ok(ImageSink {
            plan: plan.clone(),
            dir: dir.to_path_buf(),
            extension,
            graph,
            encoder,
            name,
            input_time_base: input.time_base,
            next: 0,
            current: None,
            sent: 0,
            filtered: frame::Video::empty(),
            packet: ffmpeg::Packet::empty(),
            files: Vec::new(),
            duration,
        })
    }

    /// The current frame stands for every planned time before `until`.
    fn take_until(&mut self, until: f64) -> Result<(), MediaError> {
        while self.next < self.plan.times.len() && self.plan.times[self.next] < until {
            let Some(frame) = self.current.take() else { break };
            self.picture(Some(&frame))?;
            self.current = Some(frame);
            self.next += 1;
        }
        Ok(())
    }

    /// Filter one picture (or flush with `None`) and write whatever comes out.
    fn picture(&mut self, frame: Option<&frame::Video>) -> Result<(), MediaError> {
        // Every picture gets its own timestamp: the same frame may stand for two times.
        let frame = match frame {
            Some(frame) => {
                let mut own = filters::share(frame, frame::Video::empty())?;
                own.set_pts(Some(self.sent));
                self.sent += 1;
                Some(own)
            }
            None => None,
        };
        filters::feed(&mut self.graph, frame.as_ref().map(|f| f as &frame::Frame))?;
        while filters::pull(&mut self.graph, &mut self.filtered)? {
            self.encoder.send_frame(&self.filtered).map_err(MediaError::encoder(self.name, "encoding"))?;
            self.write_packets()?;
        }
        if frame.is_none() {
            self.encoder.send_eof().map_err(MediaError::encoder(self.name, "flushing"))?;
            self.write_packets()?;
        }
        Ok(())
    }

    /// Each packet of an image encoder is a whole picture file.
    fn write_packets(&mut self) -> Result<(), MediaError> {
        let ImageSink { encoder, name, packet, dir, extension, files, .. } = self;
        drain(encoder, name, packet, picture_time_base(), &mut |packet, _| {
            let path = dir.join(format!("{:05}.{}", files.len() + 1, extension));
            let data = packet.data().unwrap_or_default();
            std::fs::write(&path, data).map_err(|e| MediaError::Unsupported(format!("cannot write {}: {e}", path.display())))?;
            files.push(path);
            Ok(())
        })
    }

    fn tiles(&self) -> Vec<SpriteTile> {
        let Some(sprite) = self.plan.sprite else { return Vec::new() };
        let per_sheet = (sprite.columns * sprite.rows).max(1) as usize;
        let times = &self.plan.times;
        times
            .iter()
            .enumerate()
            .map(|(i, &start)| {
                let place = (i % per_sheet) as u32;
                SpriteTile {
                    start,
                    end: times.get(i + 1).copied().unwrap_or(self.duration.max(start)),
                    sheet: i / per_sheet,
                    x: (place % sprite.columns) * self.plan.width,
                    y: (place / sprite.columns) * self.plan.height,
                    width: self.plan.width,
                    height: self.plan.height,
                }
            })
            .collect()
    }
}

impl Sink for ImageSink {
    type Done = Produced;

    fn wants_video(&self) -> bool {
        self.next < self.plan.times.len()
    }

    fn wants_audio(&self) -> bool {
        false
    }

    fn video(&mut self, frame: &frame::Video) -> Result<Flow, MediaError> {
        let time = frame.pts().map_or(0.0, |pts| pts as f64 * f64::from(self.input_time_base));
        self.take_until(time)?;
        if self.next >= self.plan.times.len() {
            return Ok(Flow::Done);
        }
        self.current = Some(filters::share(frame, frame::Video::empty())?);
        Ok(Flow::Continue)
    }

    fn audio(&mut self, _frame: &frame::Audio) -> Result<Flow, MediaError> {
        Ok(Flow::Continue)
    }

    fn finish(&mut self) -> Result<Produced, MediaError> {
        // Times past the last frame (a duration the container overstated) get the last picture.
        self.take_until(f64::INFINITY)?;
        if self.sent == 0 {
            return Err(MediaError::Corrupt("no video frame could be decoded for the pictures".into()));
        }
        self.picture(None)?;
        Ok(Produced::Images { files: self.files.clone(), tiles: self.tiles() })
    }
}
