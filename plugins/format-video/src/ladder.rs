//! Ladders planned from the content (`"variants": "auto"`). The host encodes short
//! samples of the input at candidate sizes and settings and measures each one's VMAF
//! (against the input at its own size) and bit rate; this decides what to try and, from
//! those points, which rungs to keep:
//!
//! - every candidate size (the default ladder's) is probed at two settings, which draws
//!   each size's quality/bit-rate curve (VMAF and log bit rate both nearly straight in
//!   `crf`, as per-title encoders model them);
//! - the top rung is the cheapest point of any size that reaches the target (95, or
//!   `vmaf=`); when no size reaches it, the knee of the largest;
//! - each rung below asks for about 1/1.8 of the bit rate of the one above and takes
//!   the smaller size that shows the most quality there: the convex hull of the curves
//!   (one rung a size, so a ladder never costs the engine more memory than the default
//!   ladder of the same input);
//! - a rung that adds less than 1 VMAF over the one below it is dropped, and the ladder
//!   stops under 40 VMAF or 100 kbit/s;
//! - the chosen points are then probed themselves, so that each rung's figures are
//!   measured, not predicted, and the curves refined (2 rounds at most).
//!
//! The search is replayed from the probes on every call (the host hands back all of
//! them, in the order asked), so it holds no state between calls.

use copra_sdk::Error;
use copra_sdk::format::{LadderProbe, LadderStep, MediaInfo, QualityProbe, QualityStep, VariantPlan, VideoPlan};

use crate::stream::{self, StreamOutput};
use crate::{Output, parse, search};

/// The two settings every candidate size is probed at.
const GRID: [f32; 2] = [20.0, 30.0];
/// The settings a rung may use.
const CRF_RANGE: (f32, f32) = (14.0, 40.0);
/// Settings are chosen on this grid.
const CRF_STEP: f32 = 0.25;
/// Each rung below the top asks for this fraction of the bit rate above.
const SPACING: f64 = 1.8;
/// A rung that adds less quality than this over the one below is dropped.
const MIN_GAIN: f64 = 1.0;
/// The ladder stops below this VMAF...
const MIN_VMAF: f64 = 40.0;
/// ... or this bit rate (kbit/s).
const MIN_KBPS: f64 = 100.0;
/// When no size reaches the target, the top keeps this close to the best it can show.
const NEAR_BEST: f64 = 1.5;
/// Rungs in an auto ladder.
const MAX_RUNGS: usize = 6;
/// Rounds of probing the chosen points after the grid.
const VERIFY_ROUNDS: usize = 2;
/// A rung's bit-rate ceiling, as a multiple of its samples' mean.
const PEAK: f64 = 2.0;
/// Rounds of probes for rungs with their own `vmaf=` (the host allows 3).
const SEARCH_ROUNDS: usize = 3;

/// The next step for package `format` given the probes so far.
pub fn plan_ladder(format: &str, params: &copra_sdk::Json, input: &MediaInfo, probes: &[LadderProbe]) -> Result<LadderStep, Error> {
    let Output::Stream(stream) = parse(format, params)? else {
        return Err(Error::format(format!("The format '{format}' is not a package; it has no ladder to plan.")));
    };
    let Some(target) = stream.auto else {
        return rung_targets(format, &stream, input, probes);
    };
    let candidates = candidates(&stream, input)?;
    Ok(replay(f64::from(target), &candidates, probes))
}

/// Explicit variants whose rungs carry their own `vmaf=`: each such rung's setting is
/// searched as a target-quality output's is (`search::next`), all rungs in the same
/// rounds; rungs of one size share their probes (the same encode at the same setting).
fn rung_targets(format: &str, stream: &StreamOutput, input: &MediaInfo, probes: &[LadderProbe]) -> Result<LadderStep, Error> {
    let plan = stream.plan(input)?;
    let mut variants = plan.packaging.map(|p| p.variants).unwrap_or_default();
    let rungs = stream.variants.as_deref().unwrap_or_default();
    // (variant index, target, codec, its plan's setting)
    let mut targets = Vec::new();
    for (i, (rung, variant)) in rungs.iter().zip(&variants).enumerate() {
        if let (stream::Rung::Video(spec), Some(video)) = (rung, &variant.video)
            && let (Some(vmaf), Some(crf)) = (spec.vmaf, video.crf)
        {
            targets.push((i, f64::from(vmaf), spec.encoding.codec, crf));
        }
    }
    if targets.is_empty() {
        return Err(Error::format(format!("The package '{format}' has its own variants and none with vmaf=; there is no ladder to plan.")));
    }
    let (mut known, mut round) = (0, 0);
    loop {
        let mut asked: Vec<VideoPlan> = Vec::new();
        let mut settled: Vec<(usize, f32)> = Vec::new();
        for &(i, target, codec, start) in &targets {
            let Some(video) = variants[i].video.as_ref() else { continue };
            let mine: Vec<QualityProbe> = probes[..known]
                .iter()
                .filter(|p| p.width == video.width && p.height == video.height)
                .map(|p| QualityProbe { crf: p.crf, vmaf: p.vmaf, bitrate_kbps: p.bitrate_kbps })
                .collect();
            match search::next(target, codec, start, &mine) {
                QualityStep::Done(crf) => settled.push((i, crf)),
                QualityStep::Probe(settings) if round < SEARCH_ROUNDS => {
                    for crf in settings {
                        let same = |v: &VideoPlan| v.width == video.width && v.height == video.height && v.crf == Some(crf);
                        if !asked.iter().any(same) {
                            asked.push(probe_plan(video, crf));
                        }
                    }
                }
                // The rounds are spent: the highest setting measured to reach the target;
                // if none did, the lowest measured (the best quality tried, the nearest).
                QualityStep::Probe(_) => {
                    let reaching = mine.iter().filter(|p| p.vmaf >= target).map(|p| p.crf).reduce(f32::max);
                    let closest = mine.iter().map(|p| p.crf).reduce(f32::min);
                    settled.push((i, reaching.or(closest).unwrap_or(start)));
                }
            }
        }
        if asked.is_empty() {
            for (i, crf) in settled {
                if let Some(video) = variants[i].video.as_mut() {
                    video.crf = Some(crf);
                }
            }
            return Ok(LadderStep::Done(variants));
        }
        if known + asked.len() > probes.len() {
            return Ok(LadderStep::Probe(asked));
        }
        known += asked.len();
        round += 1;
    }
}

/// The candidate rungs: the default ladder's, as the package would encode them.
fn candidates(stream: &StreamOutput, input: &MediaInfo) -> Result<Vec<VariantPlan>, Error> {
    let plan = stream.plan(input)?;
    let variants = plan.packaging.map(|p| p.variants).unwrap_or_default();
    let video: Vec<VariantPlan> = variants.into_iter().filter(|v| v.video.as_ref().is_some_and(|v| v.crf.is_some())).collect();
    if video.is_empty() {
        return Err(Error::format("The input has no video to plan a ladder for."));
    }
    Ok(video)
}

/// Replay the search over the probes measured so far: the rounds already answered are
/// asked again, in order, until one is not answered yet (ask for it) or the ladder is
/// settled.
fn replay(target: f64, candidates: &[VariantPlan], probes: &[LadderProbe]) -> LadderStep {
    let grid: Vec<VideoPlan> =
        candidates.iter().filter_map(|c| c.video.as_ref()).flat_map(|v| GRID.map(|crf| probe_plan(v, crf))).collect();
    if probes.len() < grid.len() {
        return LadderStep::Probe(grid);
    }
    let mut known = grid.len();
    let mut round = 0;
    loop {
        let rungs = choose(target, candidates, &probes[..known]);
        let missing: Vec<VideoPlan> =
            rungs.iter().filter(|r| measured(&probes[..known], r).is_none()).map(|r| probe_plan(&r.video, r.crf)).collect();
        if missing.is_empty() || round >= VERIFY_ROUNDS {
            let rungs = settle(rungs, &probes[..known]);
            return LadderStep::Done(variants(candidates, &rungs, &probes[..known]));
        }
        if known + missing.len() > probes.len() {
            return LadderStep::Probe(missing);
        }
        known += missing.len();
        round += 1;
    }
}

/// A probe: the candidate's video at `crf`, without its bit-rate ceiling (the curve is
/// what is measured).
fn probe_plan(video: &VideoPlan, crf: f32) -> VideoPlan {
    let mut plan = video.clone();
    plan.crf = Some(crf);
    plan.encoder_options.retain(|(k, _)| k != "maxrate" && k != "bufsize");
    plan
}

/// One size's measured points, sorted by setting.
struct Curve<'a> {
    video: &'a VideoPlan,
    /// (crf, vmaf, ln kbit/s)
    points: Vec<(f64, f64, f64)>,
}

impl Curve<'_> {
    /// VMAF and ln bit rate at `crf`: straight between the points around it, along the
    /// nearest segment beyond them.
    fn at(&self, crf: f64) -> (f64, f64) {
        let p = &self.points;
        if p.len() == 1 {
            return (p[0].1, p[0].2);
        }
        let i = p.iter().position(|q| q.0 >= crf).unwrap_or(p.len() - 1).clamp(1, p.len() - 1);
        let (a, b) = (p[i - 1], p[i]);
        let t = if b.0 > a.0 { (crf - a.0) / (b.0 - a.0) } else { 0.0 };
        ((a.1 + t * (b.1 - a.1)).min(100.0), a.2 + t * (b.2 - a.2))
    }

    /// Every setting of the grid, from the highest (fewest bits).
    fn settings() -> impl DoubleEndedIterator<Item = f32> {
        let (lo, hi) = CRF_RANGE;
        let steps = ((hi - lo) / CRF_STEP) as u32;
        (0..=steps).map(move |i| hi - i as f32 * CRF_STEP)
    }
}

/// A chosen rung: a candidate size at a setting, with what it is expected to show.
#[derive(Debug, Clone)]
struct Rung {
    video: VideoPlan,
    crf: f32,
    vmaf: f64,
    kbps: f64,
}

fn curves<'a>(candidates: &'a [VariantPlan], probes: &[LadderProbe]) -> Vec<Curve<'a>> {
    candidates
        .iter()
        .filter_map(|c| c.video.as_ref())
        .map(|video| {
            let mut points: Vec<(f64, f64, f64)> = probes
                .iter()
                .filter(|p| p.width == video.width && p.height == video.height)
                .map(|p| (f64::from(p.crf), p.vmaf, f64::from(p.bitrate_kbps.max(1)).ln()))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points.dedup_by(|a, b| a.0 == b.0);
            Curve { video, points }
        })
        .filter(|c| !c.points.is_empty())
        .collect()
}

/// The rungs the measured points call for, top first.
fn choose(target: f64, candidates: &[VariantPlan], probes: &[LadderProbe]) -> Vec<Rung> {
    let curves = curves(candidates, probes);
    let rung = |curve: &Curve, crf: f32| {
        let (vmaf, ln_kbps) = curve.at(f64::from(crf));
        Rung { video: curve.video.clone(), crf, vmaf, kbps: ln_kbps.exp() }
    };
    // The top: the cheapest point that reaches the target, else the largest size's knee.
    let reaching = curves
        .iter()
        .filter_map(|c| Curve::settings().find(|crf| c.at(f64::from(*crf)).0 >= target).map(|crf| rung(c, crf)))
        .min_by(|a, b| a.kbps.total_cmp(&b.kbps));
    let top = reaching.or_else(|| {
        let best = curves.iter().max_by(|a, b| a.at(f64::from(CRF_RANGE.0)).0.total_cmp(&b.at(f64::from(CRF_RANGE.0)).0))?;
        let peak = best.at(f64::from(CRF_RANGE.0)).0;
        Curve::settings().find(|crf| best.at(f64::from(*crf)).0 >= peak - NEAR_BEST).map(|crf| rung(best, crf))
    });
    let Some(top) = top else { return Vec::new() };
    let mut rungs = vec![top];
    let mut ask = rungs[0].kbps / SPACING;
    while rungs.len() < MAX_RUNGS && ask >= MIN_KBPS {
        let above = rungs.last().map(|r| r.video.width * r.video.height).unwrap_or(u32::MAX);
        // Each size at the setting that fits the bit rate; the one that shows most.
        let next = curves
            .iter()
            .filter(|c| c.video.width * c.video.height < above)
            .filter_map(|c| Curve::settings().rev().find(|crf| c.at(f64::from(*crf)).1.exp() <= ask).map(|crf| rung(c, crf)))
            .max_by(|a, b| a.vmaf.total_cmp(&b.vmaf));
        let Some(next) = next else { break };
        if next.vmaf < MIN_VMAF {
            break;
        }
        let last = rungs.last().map_or(f64::MAX, |r| r.vmaf);
        if last - next.vmaf >= MIN_GAIN {
            rungs.push(next);
        } else if rungs.len() > 1 {
            // The rung above adds nothing over this cheaper one: this one replaces it.
            rungs.pop();
            rungs.push(next);
        }
        ask /= SPACING;
    }
    rungs
}

/// Once the rounds are spent, a rung that was not itself probed takes the nearest
/// measured setting of its size (so that the ladder's figures are all measured); then
/// each rung must cost less and show less than the one above it, or it is dropped.
fn settle(rungs: Vec<Rung>, probes: &[LadderProbe]) -> Vec<Rung> {
    let mut settled: Vec<Rung> = Vec::new();
    for mut rung in rungs {
        if measured(probes, &rung).is_none() {
            let nearest = probes
                .iter()
                .filter(|p| p.width == rung.video.width && p.height == rung.video.height)
                .min_by(|a, b| (a.crf - rung.crf).abs().total_cmp(&(b.crf - rung.crf).abs()));
            if let Some(p) = nearest {
                (rung.crf, rung.vmaf, rung.kbps) = (p.crf, p.vmaf, f64::from(p.bitrate_kbps));
            }
        }
        if settled.last().is_none_or(|above| rung.kbps < above.kbps && rung.vmaf < above.vmaf) {
            settled.push(rung);
        }
    }
    settled
}

/// What the probes measured at exactly this rung.
fn measured<'a>(probes: &'a [LadderProbe], rung: &Rung) -> Option<&'a LadderProbe> {
    probes.iter().find(|p| p.width == rung.video.width && p.height == rung.video.height && p.crf == rung.crf)
}

/// The package's variants: each rung as its candidate encodes it, at its setting, with a
/// bit-rate ceiling from its measured (else expected) rate, and the candidates' audio.
fn variants(candidates: &[VariantPlan], rungs: &[Rung], probes: &[LadderProbe]) -> Vec<VariantPlan> {
    let audio = candidates.iter().find_map(|c| c.audio.clone());
    let mut out: Vec<VariantPlan> = Vec::new();
    for rung in rungs {
        let kbps = measured(probes, rung).map_or(rung.kbps, |p| f64::from(p.bitrate_kbps));
        let maxrate = ((kbps * PEAK).round() as u32).max(64);
        let mut video = probe_plan(&rung.video, rung.crf);
        video.encoder_options.push(("maxrate".into(), format!("{maxrate}k")));
        video.encoder_options.push(("bufsize".into(), format!("{}k", maxrate * 2)));
        let base = format!("{}p", video.width.min(video.height));
        let name = (1..).map(|i| if i == 1 { base.clone() } else { format!("{base}-{i}") }).find(|n| out.iter().all(|v| &v.name != n));
        out.push(VariantPlan { name: name.unwrap_or(base), video: Some(video), audio: audio.clone() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::input;
    use serde_json::json;

    /// Stand-in measurements: quality falls with the setting and with a smaller size,
    /// faster for `complexity` > 1; bits halve every 6 steps and scale with the pixels.
    fn measure(plans: &[VideoPlan], complexity: f64) -> Vec<LadderProbe> {
        plans
            .iter()
            .map(|v| {
                let crf = f64::from(v.crf.unwrap());
                let scale = f64::from(v.height) / 1080.0;
                let vmaf = (100.0 - complexity * (crf - 10.0) * 0.9 - (1.0 - scale) * 30.0).clamp(0.0, 100.0);
                let kbps = 4000.0 * complexity * scale * scale * 0.5f64.powf((crf - 23.0) / 6.0);
                LadderProbe { width: v.width, height: v.height, crf: v.crf.unwrap(), vmaf, bitrate_kbps: kbps as u32 }
            })
            .collect()
    }

    fn run(complexity: f64, params: serde_json::Value) -> (Vec<VariantPlan>, usize) {
        let info = input(1920, 1080, 0);
        let mut probes: Vec<LadderProbe> = Vec::new();
        for round in 0..4 {
            match plan_ladder("httpstream", &params, &info, &probes).unwrap() {
                LadderStep::Done(variants) => return (variants, round),
                LadderStep::Probe(plans) => {
                    assert!(!plans.is_empty() && plans.len() <= 12, "{} probes", plans.len());
                    probes.extend(measure(&plans, complexity));
                }
            }
        }
        panic!("no ladder within the host's rounds");
    }

    fn auto() -> serde_json::Value {
        json!({"hls": {"path": "/h"}, "variants": "auto"})
    }

    #[test]
    fn the_first_round_probes_every_candidate_size_twice() {
        let LadderStep::Probe(plans) = plan_ladder("httpstream", &auto(), &input(1920, 1080, 0), &[]).unwrap() else { panic!() };
        assert_eq!(plans.len(), 8);
        assert!(plans.iter().all(|p| p.encoder_options.iter().all(|(k, _)| k != "maxrate")), "probes are uncapped");
        assert_eq!(plans.iter().filter(|p| p.height == 1080).map(|p| p.crf.unwrap()).collect::<Vec<_>>(), GRID);
    }

    #[test]
    fn simple_content_gets_fewer_cheaper_rungs_than_complex() {
        let (simple, rounds) = run(0.5, auto());
        assert!(rounds <= 3);
        let (complex, _) = run(1.5, auto());
        let top = |v: &[VariantPlan]| {
            let video = v[0].video.as_ref().unwrap();
            video.encoder_options.iter().find(|(k, _)| k == "maxrate").map(|(_, x)| x.trim_end_matches('k').parse::<u32>().unwrap()).unwrap()
        };
        assert!(top(&simple) * 2 < top(&complex), "{} vs {}", top(&simple), top(&complex));
        for ladder in [&simple, &complex] {
            assert!(!ladder.is_empty() && ladder.len() <= MAX_RUNGS);
            assert!(ladder.iter().all(|v| v.audio.is_some()), "the candidates' audio");
            let names: std::collections::HashSet<_> = ladder.iter().map(|v| &v.name).collect();
            assert_eq!(names.len(), ladder.len(), "unique names");
            // Rungs go down in size and bit rate.
            let rates: Vec<u32> = ladder
                .iter()
                .map(|v| v.video.as_ref().unwrap().encoder_options.iter().find(|(k, _)| k == "maxrate").unwrap().1.trim_end_matches('k').parse().unwrap())
                .collect();
            assert!(rates.windows(2).all(|w| w[0] > w[1]), "{rates:?}");
        }
    }

    #[test]
    fn the_top_aims_at_the_target() {
        let info = input(1920, 1080, 0);
        let mut probes = Vec::new();
        let variants = loop {
            match plan_ladder("httpstream:::vmaf=90", &auto(), &info, &probes).unwrap() {
                LadderStep::Done(v) => break v,
                LadderStep::Probe(plans) => probes.extend(measure(&plans, 1.0)),
            }
        };
        let top = variants[0].video.as_ref().unwrap();
        let at_top = probes.iter().find(|p| p.width == top.width && p.height == top.height && Some(p.crf) == top.crf).unwrap();
        assert!(at_top.vmaf >= 90.0 && at_top.vmaf < 92.0, "{}", at_top.vmaf);
    }

    #[test]
    fn rungs_with_their_own_target_are_searched_together() {
        let params = json!({"hls": {"path": "/h"}, "variants": ["mp4:1080p::vmaf=93", "mp4:720p::vmaf=90", "mp4:360p", "aac:64k"]});
        let info = input(1920, 1080, 0);
        let plan = crate::plan("httpstream", &params, &info).unwrap();
        assert_eq!(plan.target_vmaf, Some(93.0), "the highest rung target");
        let mut probes = Vec::new();
        let mut rounds = 0;
        let variants = loop {
            match plan_ladder("httpstream", &params, &info, &probes).unwrap() {
                LadderStep::Done(v) => break v,
                LadderStep::Probe(plans) => {
                    rounds += 1;
                    assert!(rounds <= 3 && plans.len() <= 12, "{rounds} rounds, {} probes", plans.len());
                    assert!(plans.iter().all(|p| p.height != 360), "a rung without vmaf= is not searched");
                    probes.extend(measure(&plans, 1.0));
                }
            }
        };
        assert_eq!(variants.len(), 4, "the rungs asked for, no more");
        let at = |h: u32| {
            let v = variants.iter().find_map(|v| v.video.as_ref().filter(|x| x.height == h)).unwrap();
            probes.iter().find(|p| p.height == h && Some(p.crf) == v.crf).map(|p| p.vmaf)
        };
        assert!((at(1080).unwrap() - 93.0).abs() <= 1.5, "{:?}", at(1080));
        assert!((at(720).unwrap() - 90.0).abs() <= 1.5, "{:?}", at(720));
        assert_eq!(variants[2].video.as_ref().unwrap().crf, Some(23.0), "360p keeps its setting");
    }

    #[test]
    fn only_auto_packages_have_a_ladder_to_plan() {
        let fixed = json!({"hls": {"path": "/h"}, "variants": ["mp4:720p"]});
        assert!(plan_ladder("httpstream", &fixed, &input(1920, 1080, 0), &[]).is_err());
        assert_eq!(crate::plan("httpstream", &fixed, &input(1920, 1080, 0)).unwrap().target_vmaf, None);
        assert!(plan_ladder("mp4:720p", &json!({}), &input(1920, 1080, 0), &[]).is_err());
        assert!(crate::check("httpstream:::vmaf=93", &fixed).is_err(), "vmaf= needs auto");
        assert!(crate::check("httpstream:::vmaf=120", &auto()).is_err());
        assert!(crate::check("httpstream:::vmaf=93", &auto()).is_ok());
        let plan = crate::plan("httpstream", &auto(), &input(1920, 1080, 0)).unwrap();
        assert_eq!(plan.target_vmaf, Some(95.0));
        assert_eq!(plan.packaging.unwrap().variants.len(), 4, "the candidates");
    }
}
