//! Where an ultrafast job's input is cut: on the video's keyframes, into chunks of
//! about equal length, so that each chunk decodes from its own first frame.

use std::path::Path;

use ffmpeg::Rescale;
use ffmpeg::media::Type;
use ffmpeg_next as ffmpeg;

use super::decode_limits::{Clock, DecodeLimits};
use super::error::MediaError;
use super::streams::main_stream;

/// One chunk: the video frames whose timestamps (in the video stream's time base, from
/// the file's start, as the engine decodes them) are in `[start, end)`; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// Cut `input` into chunks of about `chunk_secs` seconds, at keyframes. Reads the
/// packets' flags only; nothing is decoded. One chunk when no cut fits.
pub fn chunk_ranges(input: &Path, chunk_secs: f64) -> Result<Vec<ChunkRange>, MediaError> {
    chunk_ranges_aligned(input, chunk_secs, &[], &DecodeLimits::unlimited())
}

/// As [`chunk_ranges`], with cuts preferably on multiples of `grids` (seconds, the most
/// wanted first: a package's segment duration, then its rungs' keyframe interval), where
/// the input has keyframes there (see [`choose_aligned`]). The video's packets are held
/// to `limits` (their times to `max_duration_secs`, their count to what it allows), so
/// an input longer than it declares fails here, before any chunk is made.
pub fn chunk_ranges_aligned(input: &Path, chunk_secs: f64, grids: &[f64], limits: &DecodeLimits) -> Result<Vec<ChunkRange>, MediaError> {
    super::ffmpeg_init::init();
    let mut context = super::open::open_local(input, limits)?;
    let index = main_stream(&context, Type::Video).ok_or_else(|| MediaError::Unsupported("the input has no video".into()))?;
    let stream = context.stream(index).ok_or(MediaError::NoStreams)?;
    let time_base = stream.time_base();
    // SAFETY: plain field of an open format context.
    let start_time = unsafe { (*context.as_ptr()).start_time };
    let start_time = if start_time == ffmpeg::ffi::AV_NOPTS_VALUE { 0 } else { start_time };
    let offset = start_time.rescale(ffmpeg::rescale::TIME_BASE, time_base);
    let unit = f64::from(time_base);
    let mut packets = PacketWatch::new(limits);
    let mut keyframes = Vec::new();
    let mut last = 0i64;
    for (stream, packet) in context.packets() {
        if stream.index() != index {
            continue;
        }
        let ts = packet.pts().or(packet.dts());
        packets.packet(ts.map(|ts| (ts - offset) as f64 * unit))?;
        let Some(ts) = ts else { continue };
        last = last.max(ts - offset);
        if packet.is_key() {
            keyframes.push(ts - offset);
        }
    }
    let tiers: Vec<usize> = keyframes.iter().map(|&t| tier(t as f64 * unit, grids)).collect();
    Ok(choose_aligned(&keyframes, &tiers, last, (chunk_secs / unit).max(1.0) as i64))
}

/// The packets of a stream read without decoding, held to the decode limits: their
/// times from the first to `max_duration_secs`, their count to what it allows.
pub(super) struct PacketWatch {
    clock: Clock,
    count: u64,
    max: u64,
}

impl PacketWatch {
    pub fn new(limits: &DecodeLimits) -> Self {
        PacketWatch { clock: Clock::new(limits, "video"), count: 0, max: limits.max_frames() }
    }

    /// A packet at `seconds` from the input's start, if it says.
    pub fn packet(&mut self, seconds: Option<f64>) -> Result<(), MediaError> {
        if let Some(seconds) = seconds {
            self.clock.check(seconds)?;
        }
        self.count += 1;
        if self.count > self.max {
            return Err(MediaError::FrameLimit { frames: self.max, limit: self.clock.limit() });
        }
        Ok(())
    }
}

/// The first of `grids` (seconds) that `seconds` is a multiple of, give or take the
/// millisecond the encoders' keyframe clock allows; `grids.len()` for none.
fn tier(seconds: f64, grids: &[f64]) -> usize {
    grids.iter().position(|&g| g > 0.0 && (seconds - (seconds / g).round() * g).abs() <= 1e-3).unwrap_or(grids.len())
}

/// Chunks of about `target` units between 0 and `end`, cut at keyframes: the cut nearest
/// each ideal point, never closer than half a chunk to the previous cut or to the end.
#[cfg(test)]
pub fn choose(keyframes: &[i64], end: i64, target: i64) -> Vec<ChunkRange> {
    choose_aligned(keyframes, &[], end, target)
}

/// As [`choose`], where `tiers[i]` ranks keyframe `i` (0 best; keyframes without a rank
/// are ranked last): a cut is the nearest keyframe of tier 0 when one is within an
/// eighth of a chunk of the ideal point, else of tier 1 or better within a quarter, and
/// so on, else the nearest keyframe. Aligned cuts cost a little balance between chunks.
pub fn choose_aligned(keyframes: &[i64], tiers: &[usize], end: i64, target: i64) -> Vec<ChunkRange> {
    let count = ((end as f64 / target as f64).round() as i64).max(1);
    let step = end as f64 / count as f64;
    let min_gap = target / 2;
    let ranked = tiers.iter().copied().max().map_or(0, |worst| worst + 1);
    let tier = |i: usize| tiers.get(i).copied().unwrap_or(usize::MAX);
    let mut cuts: Vec<i64> = Vec::new();
    for k in 1..count {
        let ideal = (step * k as f64) as i64;
        let floor = cuts.last().copied().unwrap_or(0) + min_gap;
        let reachable = || keyframes.iter().copied().enumerate().filter(|&(_, t)| t >= floor && t <= end - min_gap);
        let aligned = (0..ranked).find_map(|level| {
            let reach = target.saturating_mul(level as i64 + 1) / 8;
            reachable().filter(|&(i, t)| tier(i) <= level && (t - ideal).abs() <= reach).min_by_key(|&(_, t)| (t - ideal).abs())
        });
        let best = aligned.or_else(|| reachable().min_by_key(|&(_, t)| (t - ideal).abs())).map(|(_, t)| t);
        if let Some(cut) = best.filter(|c| cuts.last() != Some(c)) {
            cuts.push(cut);
        }
    }
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut start = None;
    for cut in cuts {
        ranges.push(ChunkRange { start, end: Some(cut) });
        start = Some(cut);
    }
    ranges.push(ChunkRange { start, end: None });
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_keyframes_about_equally() {
        // Keyframes every second (unit = 1 ms), 40 s, chunks of 8 s.
        let keys: Vec<i64> = (0..40).map(|s| s * 1000).collect();
        let ranges = choose(&keys, 39_960, 8_000);
        assert_eq!(ranges.len(), 5);
        assert_eq!(ranges[0], ChunkRange { start: None, end: Some(8_000) });
        assert_eq!(ranges[4].end, None);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert!(keys.contains(&pair[1].start.unwrap()));
        }
    }

    #[test]
    fn aligned_cuts_prefer_segment_boundaries_then_forced_keyframes() {
        // Keyframes every second (unit = 1 ms), 48 s, chunks of 8 s; segments of 6 s,
        // keyframes forced every 2 s (tiers: 0 on a segment boundary, 1 on the 2 s grid).
        let keys: Vec<i64> = (0..48).map(|s| s * 1000).collect();
        let tiers: Vec<usize> = keys.iter().map(|&t| tier(t as f64 / 1000.0, &[6.0, 2.0])).collect();
        assert_eq!(&tiers[..7], &[0, 2, 1, 2, 1, 2, 0]);
        let cuts: Vec<i64> = choose_aligned(&keys, &tiers, 47_960, 8_000).iter().filter_map(|r| r.start).collect();
        // No boundary within 1 s of the ideal points (about 8, 16, 32 and 40 s) but 24 s:
        // the forced keyframes there are taken, so the rungs have no extra keyframe.
        assert_eq!(cuts, [8_000, 16_000, 24_000, 32_000, 40_000]);
        // Chunks of 12.5 s over 36 s: three, cut at the boundaries 12 and 24 s.
        let cuts: Vec<i64> = choose_aligned(&keys, &tiers, 36_000, 12_500).iter().filter_map(|r| r.start).collect();
        assert_eq!(cuts, [12_000, 24_000]);
        // 10 s chunks over 40 s, ideal points 10, 20 and 30 s: 30 is a boundary; 10 and
        // 20 are 2 s from one (more than 10/8 s), so the 2 s grid's.
        let cuts: Vec<i64> = choose_aligned(&keys, &tiers, 40_000, 10_000).iter().filter_map(|r| r.start).collect();
        assert_eq!(cuts, [10_000, 20_000, 30_000]);
        // 11 s chunks over 44 s: ideal 11 s is 1 s from the boundary 12 (within 11/8);
        // 22 s is on the grid, 33 s is not (32 s is, the first of two as near).
        let cuts: Vec<i64> = choose_aligned(&keys, &tiers, 44_000, 11_000).iter().filter_map(|r| r.start).collect();
        assert_eq!(cuts, [12_000, 22_000, 32_000]);
        // Keyframes off every grid: the nearest, as without tiers.
        let odd: Vec<i64> = (0..40).map(|s| s * 1000 + 500).collect();
        let tiers: Vec<usize> = odd.iter().map(|&t| tier(t as f64 / 1000.0, &[6.0, 2.0])).collect();
        assert_eq!(choose_aligned(&odd, &tiers, 39_960, 8_000), choose(&odd, 39_960, 8_000));
    }

    #[test]
    fn sparse_keyframes_give_fewer_chunks_and_short_inputs_one() {
        let keys = [0, 30_000];
        let ranges = choose(&keys, 40_000, 8_000);
        assert_eq!(ranges, vec![ChunkRange { start: None, end: Some(30_000) }, ChunkRange { start: Some(30_000), end: None }]);
        assert_eq!(choose(&[0], 5_000, 8_000), vec![ChunkRange { start: None, end: None }]);
    }
}
