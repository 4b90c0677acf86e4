//! Limits that hold on what is decoded, not on what a container declares.
//!
//! A container's header says how long a file is and how large its pictures are, and a
//! raw stream says nothing at all: an MKV may declare 2 s and hold hours, a raw H.264
//! stream may change its picture size at any keyframe. So every decoder is opened with
//! the operator's pixel limit (`max_pixels` on the codec context: FFmpeg refuses to
//! allocate a larger picture), and every decoded frame's time is held to the duration
//! limit, from the stream's first timestamp. Crossing either stops the decode with an
//! error naming the key.
//!
//! FFmpeg reports a picture it refused only through its log (`Picture size WxH exceeds
//! specified max pixel count`), from whichever thread decodes; the decoder's context
//! carries a [`PixelGuard`] in its `opaque` field, which the log callback finds through
//! the message's parent context and marks, and the decode loop reads after each packet.

use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

use super::error::MediaError;

/// What a decode may reach: the operator's `max_duration_secs` and `max_pixels`, as the
/// media engine takes them (built from the server's `[limits]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeLimits {
    /// Seconds of decoded time one stream may span, from its first timestamp.
    pub max_duration_secs: f64,
    /// Width × height of any decoded picture.
    pub max_pixels: u64,
    /// The parts of an input decoded, joined in order into one timeline (the job's
    /// `clips`; none: all of it). Files the host made itself are always read whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clips: Vec<crate::types::TimeRange>,
    /// Files decoded after the input, in order, joined onto its end and conformed to
    /// it (a job's `inputs` past the first; none: the input alone). Each picture is
    /// held to `max_pixels`; the joined timeline to `max_duration_secs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined: Vec<JoinedFile>,
}

/// A file joined after the input, with the ranges of it kept (none: all of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinedFile {
    pub path: std::path::PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clips: Vec<crate::types::TimeRange>,
}

/// The server's `[limits]` that every decode is held to.
impl From<&crate::config::Limits> for DecodeLimits {
    fn from(limits: &crate::config::Limits) -> Self {
        DecodeLimits { max_duration_secs: limits.max_duration.as_secs_f64(), max_pixels: limits.max_pixels, clips: Vec::new(), joined: Vec::new() }
    }
}

impl DecodeLimits {
    /// No limit: for tests and the host's own files.
    pub fn unlimited() -> Self {
        DecodeLimits { max_duration_secs: f64::INFINITY, max_pixels: FFMPEG_MAX_PIXELS as u64, clips: Vec::new(), joined: Vec::new() }
    }

    /// The most video frames a decode may hand out: the duration limit at 240 frames a
    /// second (the highest rate a plan may ask for), so that timestamps squeezed
    /// together cannot pass an hour of pictures off as a second.
    pub fn max_frames(&self) -> u64 {
        let frames = (self.max_duration_secs * MAX_MEAN_FPS).ceil() + MAX_MEAN_FPS;
        if frames.is_finite() && frames < u64::MAX as f64 { frames as u64 } else { u64::MAX }
    }

    /// The limit as FFmpeg's `max_pixels` takes it (at most its own ceiling).
    pub(super) fn ffmpeg_max_pixels(&self) -> i64 {
        i64::try_from(self.max_pixels).unwrap_or(i64::MAX).min(FFMPEG_MAX_PIXELS)
    }
}

/// The most FFmpeg's `max_pixels` option takes (`INT_MAX`), and its default.
const FFMPEG_MAX_PIXELS: i64 = i32::MAX as i64;

/// The highest mean frame rate a decoded stream may have (see [`DecodeLimits::max_frames`]).
const MAX_MEAN_FPS: f64 = 240.0;

/// A decoded stream's time, held to `max_duration_secs` from its first timestamp.
#[derive(Debug, Clone)]
pub(super) struct Clock {
    limit: f64,
    /// The time the stream's span is counted from: its first decoded frame, or the
    /// input's start for a chunk (whose frames carry the whole input's times).
    origin: Option<f64>,
    medium: &'static str,
}

impl Clock {
    pub fn new(limits: &DecodeLimits, medium: &'static str) -> Self {
        Clock { limit: limits.max_duration_secs, origin: None, medium }
    }

    /// Count from the input's start rather than from the first frame seen (after a seek).
    pub fn count_from_start(&mut self) {
        self.origin = Some(0.0);
    }

    pub fn limit(&self) -> f64 {
        self.limit
    }

    /// A frame decoded at `seconds` (from the input's start).
    pub fn check(&mut self, seconds: f64) -> Result<(), MediaError> {
        let origin = *self.origin.get_or_insert(seconds);
        let span = seconds - origin;
        if span > self.limit {
            return Err(MediaError::DurationLimit { medium: self.medium, seconds: span, limit: self.limit });
        }
        Ok(())
    }
}

/// Held by a video decoder's context (its `opaque`): the size of a picture FFmpeg
/// refused for `max_pixels`, packed as `width << 32 | height`, or 0.
#[repr(C)]
pub(super) struct PixelGuard {
    magic: u64,
    refused: AtomicU64,
}

/// Tells a [`PixelGuard`] from whatever else a context's `opaque` might hold.
const GUARD_MAGIC: u64 = 0x636f_7072_615f_7078; // "copra_px"

impl PixelGuard {
    pub fn new() -> Box<Self> {
        Box::new(PixelGuard { magic: GUARD_MAGIC, refused: AtomicU64::new(0) })
    }

    /// The picture size refused, if one was.
    pub fn refused(&self) -> Option<(u32, u32)> {
        match self.refused.load(Ordering::Relaxed) {
            0 => None,
            packed => Some(((packed >> 32) as u32, packed as u32)),
        }
    }

    /// Set `max_pixels` and this guard on a codec context that is not yet opened.
    ///
    /// # Safety
    /// `context` must be a valid, unopened codec context, and the guard must outlive it.
    pub unsafe fn attach(&self, context: *mut ffmpeg::ffi::AVCodecContext, max_pixels: i64) {
        // SAFETY: per the function's contract.
        unsafe {
            (*context).max_pixels = max_pixels;
            (*context).opaque = self as *const PixelGuard as *mut c_void;
        }
    }
}

/// The start of FFmpeg's message for a picture above a context's `max_pixels`.
const REFUSAL: &[u8] = b"Picture size %ux%u exceeds specified max pixel count";

/// Whether a log message (its format string) is FFmpeg refusing a picture for `max_pixels`.
///
/// # Safety
/// `format` must be null or a NUL-terminated string.
pub(super) unsafe fn is_pixel_refusal(format: *const std::ffi::c_char) -> bool {
    // SAFETY: per the function's contract.
    !format.is_null() && unsafe { CStr::from_ptr(format) }.to_bytes().starts_with(REFUSAL)
}

/// A refusal logged for `context` (the log's own context: imgutils', whose parent is the
/// codec context): mark the decoder's guard, if it has one, with the size in `line`.
///
/// # Safety
/// `context` must be null or a context FFmpeg logged with (a struct starting with an
/// `AVClass` pointer).
pub(super) unsafe fn note_pixel_refusal(context: *mut c_void, line: &str) {
    // SAFETY: FFmpeg's logging contract: a log context starts with its class, whose
    // `parent_log_context_offset` (when non-zero) locates a pointer to the parent
    // context. The parent is used only if its class is the codec context's, and its
    // `opaque` only if it holds a guard (the magic number).
    unsafe {
        if context.is_null() {
            return;
        }
        let class = *(context as *const *const ffmpeg::ffi::AVClass);
        if class.is_null() || (*class).parent_log_context_offset <= 0 {
            return;
        }
        let parent = *((context as *const u8).add((*class).parent_log_context_offset as usize) as *const *mut c_void);
        if parent.is_null() || *(parent as *const *const ffmpeg::ffi::AVClass) != ffmpeg::ffi::avcodec_get_class() {
            return;
        }
        let guard = (*(parent as *mut ffmpeg::ffi::AVCodecContext)).opaque as *const PixelGuard;
        if guard.is_null() || (*guard).magic != GUARD_MAGIC {
            return;
        }
        let (width, height) = refused_size(line).unwrap_or((u32::MAX, u32::MAX));
        (*guard).refused.store((u64::from(width) << 32) | u64::from(height), Ordering::Relaxed);
    }
}

/// `WxH` out of FFmpeg's formatted message.
fn refused_size(line: &str) -> Option<(u32, u32)> {
    let rest = &line[line.find("Picture size ")? + "Picture size ".len()..];
    let size = rest.split_whitespace().next()?;
    let (w, h) = size.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_counts_from_the_first_frame_or_the_start() {
        let limits = DecodeLimits { max_duration_secs: 10.0, max_pixels: 100, clips: Vec::new(), joined: Vec::new() };
        let mut clock = Clock::new(&limits, "video");
        clock.check(3600.0).unwrap();
        clock.check(3610.0).unwrap();
        let err = clock.check(3610.5).unwrap_err().to_string();
        assert!(err.contains("max_duration_secs") && err.contains("10.5"), "{err}");
        let mut chunk = Clock::new(&limits, "video");
        chunk.count_from_start();
        assert!(chunk.check(10.5).is_err(), "a chunk's frames count from the input's start");
        assert_eq!(DecodeLimits::unlimited().max_frames(), u64::MAX);
        assert_eq!(limits.max_frames(), 2640);
    }

    #[test]
    fn the_refused_size_is_read_from_the_message() {
        let line = "[IMGUTILS @ 0x7f] Picture size 1280x720 exceeds specified max pixel count 120000, see the documentation";
        assert_eq!(refused_size(line), Some((1280, 720)));
        assert_eq!(refused_size("something else"), None);
        let format = c"Picture size %ux%u exceeds specified max pixel count %ld, see the documentation if you wish to increase it\n";
        // SAFETY: a NUL-terminated literal.
        assert!(unsafe { is_pixel_refusal(format.as_ptr()) });
        assert!(!unsafe { is_pixel_refusal(c"Picture size %ux%u is invalid\n".as_ptr()) });
    }

    /// Raw H.264 (or with `name` another extension, that container) made by the ffmpeg
    /// command (only ever in tests).
    fn raw_h264(dir: &std::path::Path, name: &str, size: &str, seconds: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=10:duration={seconds}")])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "10"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
        path
    }

    fn plan() -> crate::types::VideoPlan {
        crate::media::test_fixtures::h264(160, 120, 30.0, "ultrafast")
    }

    fn transcode(input: &std::path::Path, limits: &DecodeLimits) -> Result<super::super::Produced, MediaError> {
        let plan = crate::types::OutputPlan {
            output_type: crate::types::OutputType::Video,
            container: "mp4".into(),
            extension: "mp4".into(),
            mime_type: "video/mp4".into(),
            video: Some(plan()),
            audio: None,
            range: None,
            image: None,
            packaging: None,
            target_vmaf: None,
            audio_tracks: crate::types::AudioSelection::Main,
            tracks: Vec::new(),
        };
        let target = super::super::OutputTarget { plan, path: input.with_extension("out.mp4") };
        let cancel = std::sync::atomic::AtomicBool::new(false);
        super::super::transcode(input, &[target], std::sync::Arc::new(|_| {}), &cancel, limits).remove(0)
    }

    /// A raw stream declares no duration; its decode stops at the limit. A stream whose
    /// pictures grow mid-way stops at the first picture past `max_pixels`. The same
    /// inputs within the limits encode. The ultrafast paths hold too.
    #[test]
    fn the_decode_is_held_to_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let long = raw_h264(dir.path(), "long.h264", "160x120", 8);
        let (info, _) = super::super::probe(&long, &DecodeLimits::unlimited()).unwrap();
        assert!(info.duration < 4.0, "the raw stream declares {} s", info.duration);
        let limits = DecodeLimits { max_duration_secs: 3.0, max_pixels: 400 * 300, clips: Vec::new(), joined: Vec::new() };
        let err = transcode(&long, &limits).unwrap_err();
        assert!(matches!(err, MediaError::DurationLimit { .. }), "{err}");
        assert!(err.to_string().contains("max_duration_secs"), "{err}");
        transcode(&long, &DecodeLimits { max_duration_secs: 10.0, ..limits.clone() }).unwrap();

        let small = raw_h264(dir.path(), "small.h264", "320x240", 1);
        let large = raw_h264(dir.path(), "large.h264", "640x480", 1);
        let grows = dir.path().join("grows.h264");
        std::fs::write(&grows, [std::fs::read(&small).unwrap(), std::fs::read(&large).unwrap()].concat()).unwrap();
        let err = transcode(&grows, &limits).unwrap_err();
        assert!(matches!(err, MediaError::PixelLimit { width: 640, height: 480, .. }), "{err}");
        assert!(err.to_string().contains("max_pixels") && err.to_string().contains("640x480"), "{err}");
        transcode(&grows, &DecodeLimits { max_pixels: 640 * 480, ..limits.clone() }).unwrap();

        // Ultrafast: the cut points and the chunk files read the packets (a container's
        // timestamps: a raw stream has none and is not cut), the chunks decode.
        let long = raw_h264(dir.path(), "long.mkv", "160x120", 8);
        let err = super::super::chunk_ranges_aligned(&long, 2.0, &[], &limits).unwrap_err();
        assert!(matches!(err, MediaError::DurationLimit { .. }), "{err}");
        let ranges = super::super::chunk_ranges(&long, 2.0).unwrap();
        let files: Vec<std::path::PathBuf> = (0..ranges.len()).map(|i| dir.path().join(format!("c{i}.nut"))).collect();
        let err = super::super::cut_chunks(&long, &ranges, &files, &limits).unwrap_err();
        assert!(matches!(err, MediaError::DurationLimit { .. }), "{err}");
        let last = *ranges.last().unwrap();
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let piece = dir.path().join("piece.nut");
        let err = super::super::encode_video_chunk(&long, false, last, &[(plan(), (1, 1))], &[piece], &|_| {}, &cancel, &limits).unwrap_err();
        assert!(matches!(err, MediaError::DurationLimit { .. }), "the last chunk is past the limit from the input's start: {err}");
        let piece = dir.path().join("grows.nut");
        let whole = crate::media::ChunkRange { start: None, end: None };
        let err = super::super::encode_video_chunk(&grows, false, whole, &[(plan(), (1, 1))], &[piece], &|_| {}, &cancel, &limits).unwrap_err();
        assert!(matches!(err, MediaError::PixelLimit { .. }), "{err}");
    }
}
