//! Where an ultrafast job's input is cut: on the video's keyframes, into chunks of
//! about equal length, so that each chunk decodes from its own first frame.

use std::path::Path;

use ffmpeg::Rescale;
use ffmpeg::media::Type;
use ffmpeg_next as ffmpeg;

use super::MediaError;
use super::probe::main_stream;

/// One chunk: the video frames whose timestamps (in the video stream's time base, from
/// the file's start, as the engine decodes them) are in `[start, end)`; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// Cut `input` into chunks of about `chunk_secs` seconds, at keyframes. Reads the
/// packets' flags only; nothing is decoded. One chunk when no cut fits.
pub fn chunk_ranges(input: &Path, chunk_secs: f64) -> Result<Vec<ChunkRange>, MediaError> {
    super::init();
    let mut context = super::open::open_local(input)?;
    let index = main_stream(&context, Type::Video).ok_or_else(|| MediaError::Unsupported("the input has no video".into()))?;
    let stream = context.stream(index).ok_or(MediaError::NoStreams)?;
    let time_base = stream.time_base();
    // SAFETY: plain field of an open format context.
    let start_time = unsafe { (*context.as_ptr()).start_time };
    let start_time = if start_time == ffmpeg::ffi::AV_NOPTS_VALUE { 0 } else { start_time };
    let offset = start_time.rescale(ffmpeg::rescale::TIME_BASE, time_base);
    let mut keyframes = Vec::new();
    let mut last = 0i64;
    for (stream, packet) in context.packets() {
        if stream.index() != index {
            continue;
        }
        let Some(ts) = packet.pts().or(packet.dts()) else { continue };
        last = last.max(ts - offset);
        if packet.is_key() {
            keyframes.push(ts - offset);
        }
    }
    let unit = f64::from(time_base);
    Ok(choose(&keyframes, last, (chunk_secs / unit).max(1.0) as i64))
}

/// Chunks of about `target` units between 0 and `end`, cut at keyframes: the cut nearest
/// each ideal point, never closer than half a chunk to the previous cut or to the end.
pub fn choose(keyframes: &[i64], end: i64, target: i64) -> Vec<ChunkRange> {
    let count = ((end as f64 / target as f64).round() as i64).max(1);
    let step = end as f64 / count as f64;
    let min_gap = target / 2;
    let mut cuts: Vec<i64> = Vec::new();
    for k in 1..count {
        let ideal = (step * k as f64) as i64;
        let floor = cuts.last().copied().unwrap_or(0) + min_gap;
        let best = keyframes.iter().copied().filter(|&t| t >= floor && t <= end - min_gap).min_by_key(|&t| (t - ideal).abs());
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
    fn sparse_keyframes_give_fewer_chunks_and_short_inputs_one() {
        let keys = [0, 30_000];
        let ranges = choose(&keys, 40_000, 8_000);
        assert_eq!(ranges, vec![ChunkRange { start: None, end: Some(30_000) }, ChunkRange { start: Some(30_000), end: None }]);
        assert_eq!(choose(&[0], 5_000, 8_000), vec![ChunkRange { start: None, end: None }]);
    }
}
