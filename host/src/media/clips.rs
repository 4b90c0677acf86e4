//! An input decoded as its clips joined: frames outside every clip are never handed out,
//! those inside are retimed so that the clips follow each other with no gap. Video is cut
//! at frame times (a frame belongs to the clip its time falls in: frame-exact), audio at
//! sample times (a frame across a clip's edge is cut within it).

use ffmpeg::{ChannelLayout, Rational, frame};
use ffmpeg_next as ffmpeg;

use crate::types::TimeRange;

/// How long `clips` of an input of `duration` seconds last together (each cut at the
/// input's end); the input's own duration without clips, or when it is unknown (0).
pub fn joined_duration(clips: &[TimeRange], duration: f64) -> f64 {
    if clips.is_empty() || duration <= 0.0 {
        return duration;
    }
    clips.iter().map(|c| (c.offset + c.duration.unwrap_or(f64::INFINITY)).min(duration) - c.offset.min(duration)).sum()
}

/// The clips as spans of input seconds, each with where it starts on the joined timeline.
#[derive(Debug, Clone)]
pub(super) struct Timeline {
    /// (start, end, joined start), seconds.
    spans: Vec<(f64, f64, f64)>,
}

/// A hair under a microsecond: timestamps converted to seconds are not exact.
const EPSILON: f64 = 1e-7;

impl Timeline {
    /// None for no clips (the whole input).
    pub fn new(clips: &[TimeRange]) -> Option<Timeline> {
        if clips.is_empty() {
            return None;
        }
        let mut joined = 0.0;
        let spans = clips
            .iter()
            .map(|c| {
                let end = c.offset + c.duration.unwrap_or(f64::INFINITY);
                let span = (c.offset, end, joined);
                joined += end - c.offset;
                span
            })
            .collect();
        Some(Timeline { spans })
    }

    /// A video frame at input `pts` (in `time_base`): its pts on the joined timeline, or
    /// none when no clip holds it. Each clip is shifted by a whole number of ticks, so
    /// the frames of a clip keep their spacing.
    pub fn video(&self, pts: i64, time_base: Rational) -> Option<i64> {
        let seconds = pts as f64 * f64::from(time_base);
        let &(start, _, joined) = self.spans.iter().find(|(start, end, _)| seconds + EPSILON >= *start && seconds + EPSILON < *end)?;
        Some(pts - ((start - joined) / f64::from(time_base)).round() as i64)
    }

    /// The parts of an audio frame of `samples` at `rate` starting at input `seconds`
    /// that clips hold: (first sample, end sample, joined seconds of the first).
    pub fn audio(&self, seconds: f64, samples: usize, rate: u32) -> Vec<(usize, usize, f64)> {
        let rate = f64::from(rate.max(1));
        let end_of_frame = seconds + samples as f64 / rate;
        let sample_at = |t: f64| (((t - seconds) * rate - EPSILON).ceil().max(0.0) as usize).min(samples);
        self.spans
            .iter()
            .filter(|(start, end, _)| *start < end_of_frame && *end > seconds)
            .filter_map(|&(start, end, joined)| {
                let (from, to) = (sample_at(start), sample_at(end));
                (from < to).then(|| (from, to, joined + (seconds + from as f64 / rate - start)))
            })
            .collect()
    }
}

/// Samples `from..to` of `frame`, a new frame of `layout` (the decoder's, which a frame
/// may leave unset).
pub(super) fn cut_samples(frame: &frame::Audio, from: usize, to: usize, layout: ChannelLayout) -> frame::Audio {
    let count = to.min(frame.samples()).saturating_sub(from);
    let mut out = frame::Audio::new(frame.format(), count, layout);
    out.set_rate(frame.rate());
    if count == 0 {
        return out;
    }
    // SAFETY: ffmpeg-next's `data(i)` is sized by `linesize[i]`, which FFmpeg sets for
    // the first plane of audio only, so planes are copied by FFmpeg itself. Both frames
    // have the same format and channels; `out` holds `count` samples and `frame` holds
    // `from + count`; `extended_data` points to every plane of each.
    unsafe {
        let (src, dst) = (frame.as_ptr(), out.as_mut_ptr());
        ffmpeg::ffi::av_samples_copy(
            (*dst).extended_data,
            (*src).extended_data as *const *mut u8,
            0,
            from as i32,
            count as i32,
            frame.channels() as i32,
            ffmpeg::ffi::AVSampleFormat::from(frame.format()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clips() -> Timeline {
        Timeline::new(&[TimeRange { offset: 1.0, duration: Some(2.0) }, TimeRange { offset: 5.0, duration: Some(1.0) }]).unwrap()
    }

    #[test]
    fn video_frames_in_a_clip_are_shifted_onto_the_joined_timeline() {
        let tb = Rational::new(1, 25);
        let t = clips();
        assert_eq!(t.video(24, tb), None, "0.96 s: before the first clip");
        assert_eq!(t.video(25, tb), Some(0), "1 s: the first clip's first frame");
        assert_eq!(t.video(74, tb), Some(49));
        assert_eq!(t.video(75, tb), None, "3 s: the first clip's end is not in it");
        assert_eq!(t.video(125, tb), Some(50), "5 s: the second clip follows at 2 s");
        assert_eq!(t.video(150, tb), None);
        assert!(Timeline::new(&[]).is_none());
    }

    #[test]
    fn audio_frames_are_cut_at_the_clips_edges() {
        let t = clips();
        // 1024 samples at 48 kHz from 0.99 s: the first 480 are before the clip.
        let parts = t.audio(0.99, 1024, 48_000);
        assert_eq!(parts.len(), 1);
        assert_eq!((parts[0].0, parts[0].1), (480, 1024));
        assert!(parts[0].2.abs() < 1e-9);
        // Across the first clip's end (3 s): 480 samples kept, joined at 1.99 s.
        let parts = t.audio(2.99, 1024, 48_000);
        assert_eq!((parts[0].0, parts[0].1), (0, 480));
        assert!((parts[0].2 - 1.99).abs() < 1e-9);
        assert!(t.audio(3.5, 1024, 48_000).is_empty());
        assert_eq!(joined_duration(&[TimeRange { offset: 1.0, duration: Some(2.0) }, TimeRange { offset: 5.0, duration: Some(1.0) }], 5.5), 2.5);
    }

    #[test]
    fn a_cut_keeps_the_samples_asked_for() {
        let layout = ChannelLayout::STEREO;
        // Planar: sample i of channel c is 100·c + i.
        let mut planar = frame::Audio::new(ffmpeg::format::Sample::I16(ffmpeg::format::sample::Type::Planar), 8, layout);
        planar.set_rate(8000);
        for c in 0..2 {
            for i in 0..8 {
                planar.plane_mut::<i16>(c)[i] = (100 * c + i) as i16;
            }
        }
        let cut = cut_samples(&planar, 2, 5, layout);
        assert_eq!(cut.samples(), 3);
        assert_eq!(cut.plane::<i16>(0), &[2, 3, 4]);
        assert_eq!(cut.plane::<i16>(1), &[102, 103, 104]);
        // Packed: interleaved L R L R ...
        let mut packed = frame::Audio::new(ffmpeg::format::Sample::I16(ffmpeg::format::sample::Type::Packed), 8, layout);
        for (i, v) in packed.plane_mut::<(i16, i16)>(0).iter_mut().enumerate() {
            *v = (i as i16, 100 + i as i16);
        }
        let cut = cut_samples(&packed, 6, 8, layout);
        assert_eq!(cut.plane::<(i16, i16)>(0), &[(6, 106), (7, 107)]);
    }
}
