//! The search for a target quality (`vmaf=93`): which settings the host should try on
//! samples of the input, and which one to keep. VMAF falls as the constant-quality
//! setting (`crf`) rises, nearly in a straight line over a few steps, so two probes
//! around the default bracket most targets and the rest is interpolation, as ab-av1
//! and Av1an do it. The host bounds the search (4 rounds of at most 4 settings) and
//! runs every probe; this only decides.

use copra_sdk::Error;
use copra_sdk::format::{MediaInfo, QualityProbe, QualityStep};

use crate::codecs::VideoCodec;
use crate::{Output, parse};

/// A probe this close to the target is good enough to keep.
const CLOSE: f64 = 0.5;
/// When the target is out of reach (the output's size caps its VMAF), a setting this
/// close to the best measured is kept: the last points cost the most bits.
const NEAR_BEST: f64 = 1.5;
/// A step to a lower setting that gains less than this is the curve flattening out.
const FLAT: f64 = 2.0;
/// How far below the default setting a search may go (x264's 23 → 8).
const FLOOR_BELOW_START: f32 = 15.0;
/// Rounds of probes before the best estimate is kept.
const ROUNDS: usize = 3;
/// The first round's distance from the default setting, either way.
const FIRST_SPREAD: f32 = 6.0;

/// The next step for output `format` given the probes so far.
pub fn search(format: &str, params: &copra_sdk::Json, input: &MediaInfo, probes: &[QualityProbe]) -> Result<QualityStep, Error> {
    let Output::Video(output) = parse(format, params)? else {
        return Err(Error::format(format!("The format '{format}' has no target quality to search.")));
    };
    let spec = &output.spec;
    let Some(target) = spec.vmaf else {
        return Err(Error::format(format!("The format '{format}' has no vmaf= target to search.")));
    };
    let plan = spec.video_plan(input);
    let start = plan.crf.ok_or_else(|| Error::format(format!("The format '{format}' has no constant-quality setting to search.")))?;
    Ok(next(f64::from(target), spec.encoding.codec, start, probes))
}

/// The search itself, on plain numbers (also each ladder rung's with its own `vmaf=`).
pub(crate) fn next(target: f64, codec: VideoCodec, start: f32, probes: &[QualityProbe]) -> QualityStep {
    let (lo, hi) = codec.crf_range();
    let (lo, hi) = (f32::from(lo), f32::from(hi));
    let step = if matches!(codec, VideoCodec::H264 | VideoCodec::Hevc) { 0.25 } else { 1.0 };
    let round = |crf: f32| ((crf / step).round() * step).clamp(lo, hi);
    if probes.is_empty() {
        return QualityStep::Probe(vec![round(start - FIRST_SPREAD), round(start + FIRST_SPREAD)]);
    }
    let mut sorted: Vec<&QualityProbe> = probes.iter().collect();
    sorted.sort_by(|a, b| a.crf.total_cmp(&b.crf));
    // The highest setting (fewest bits) that is close enough.
    if let Some(close) = sorted.iter().rev().find(|p| (p.vmaf - target).abs() <= CLOSE) {
        return QualityStep::Done(close.crf);
    }
    let rounds = probes.len().saturating_sub(1);
    // The pair around the target: the last setting above it and the first below.
    let above = sorted.iter().rev().find(|p| p.vmaf > target);
    let below = sorted.iter().find(|p| p.vmaf < target);
    let estimate = match (above, below) {
        (Some(a), Some(b)) if b.crf > a.crf && a.vmaf > b.vmaf => {
            let slope = f64::from(b.crf - a.crf) / (a.vmaf - b.vmaf);
            round(a.crf + (slope * (a.vmaf - target)) as f32)
        }
        // Every probe is better than the target: more bits can go.
        (Some(a), None) => round(a.crf + FIRST_SPREAD * 1.5),
        // Every probe is worse: fewer, unless the curve has flattened (the target is
        // above what this size can show) or the floor is reached; then the setting
        // nearest the best measured for the fewest bits.
        (None, Some(b)) => {
            let floor = round(start - FLOOR_BELOW_START).max(lo);
            let best = sorted.iter().map(|p| p.vmaf).fold(f64::MIN, f64::max);
            let flattened = sorted.len() >= 2 && sorted[0].vmaf - sorted[1].vmaf < FLAT;
            if flattened || b.crf <= floor {
                let kept = sorted.iter().rev().find(|p| p.vmaf >= best - NEAR_BEST).map_or(b.crf, |p| p.crf);
                return QualityStep::Done(kept);
            }
            round(b.crf - FIRST_SPREAD * 1.5).max(floor)
        }
        _ => round(start),
    };
    let tried = sorted.iter().any(|p| (p.crf - estimate).abs() < step / 2.0);
    if tried || rounds >= ROUNDS {
        // Nothing new to learn (a bound of the scale, or the rounds are spent): keep the
        // estimate, or the last setting still above the target at a bound.
        return QualityStep::Done(match (tried, above) {
            (true, Some(a)) if below.is_none() => a.crf,
            _ => estimate,
        });
    }
    QualityStep::Probe(vec![estimate])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(crf: f32, vmaf: f64) -> QualityProbe {
        QualityProbe { crf, vmaf, bitrate_kbps: 1000 }
    }

    #[test]
    fn it_brackets_then_interpolates() {
        let QualityStep::Probe(first) = next(93.0, VideoCodec::H264, 23.0, &[]) else { panic!() };
        assert_eq!(first, vec![17.0, 29.0]);
        // 17 → 97, 29 → 89: 93 is halfway, at 23.
        let QualityStep::Probe(second) = next(93.0, VideoCodec::H264, 23.0, &[probe(17.0, 97.0), probe(29.0, 89.0)]) else { panic!() };
        assert_eq!(second, vec![23.0]);
        let done = next(93.0, VideoCodec::H264, 23.0, &[probe(17.0, 97.0), probe(29.0, 89.0), probe(23.0, 93.3)]);
        assert!(matches!(done, QualityStep::Done(c) if c == 23.0), "{done:?}");
    }

    #[test]
    fn it_moves_out_when_every_probe_misses_one_way() {
        let QualityStep::Probe(next_round) = next(93.0, VideoCodec::H264, 23.0, &[probe(17.0, 99.0), probe(29.0, 97.0)]) else { panic!() };
        assert_eq!(next_round, vec![38.0]);
        // At the top of the scale and still above: that is the setting.
        let at_top = next(50.0, VideoCodec::H264, 23.0, &[probe(45.0, 80.0), probe(51.0, 70.0)]);
        assert!(matches!(at_top, QualityStep::Done(c) if c == 51.0), "{at_top:?}");
    }

    #[test]
    fn an_unreachable_target_keeps_the_knee_not_the_bottom_of_the_scale() {
        // A 720p output of a 1080p source: VMAF stops near 91 however many bits.
        let QualityStep::Probe(lower) = next(93.0, VideoCodec::H264, 23.0, &[probe(17.0, 89.3), probe(29.0, 81.1)]) else { panic!() };
        assert_eq!(lower, vec![8.0]);
        let kept = next(93.0, VideoCodec::H264, 23.0, &[probe(17.0, 89.3), probe(29.0, 81.1), probe(8.0, 90.8)]);
        assert!(matches!(kept, QualityStep::Done(c) if c == 17.0), "{kept:?}");
        // Still climbing steeply at the floor: the floor.
        let floor = next(93.0, VideoCodec::H264, 23.0, &[probe(17.0, 80.0), probe(29.0, 70.0), probe(8.0, 88.0)]);
        assert!(matches!(floor, QualityStep::Done(c) if c == 8.0), "{floor:?}");
    }

    #[test]
    fn it_settles_within_its_rounds() {
        let probes = [probe(17.0, 97.0), probe(29.0, 89.0), probe(23.0, 94.0), probe(24.5, 93.8)];
        assert!(matches!(next(93.0, VideoCodec::H264, 23.0, &probes), QualityStep::Done(_)));
        // VP9's crf is whole numbers.
        let QualityStep::Probe(vp9) = next(93.0, VideoCodec::Vp9, 31.0, &[]) else { panic!() };
        assert!(vp9.iter().all(|c| c.fract() == 0.0), "{vp9:?}");
    }
}
