//! Encoding to a target quality (`vmaf=N`). Before an output whose plan has a
//! `target_vmaf` is encoded, its format plugin searches the setting: it names settings
//! to try, the host encodes short samples spread over the input at each (in the engine's
//! confined process, as every encode), measures their VMAF against the input, and hands
//! the figures back, until the plugin settles on one. The plugin decides; the host bounds
//! what it may ask (rounds, settings a round, each setting held to the plan check) and
//! runs it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use tokio::sync::mpsc;

use super::record::JobRun;
use crate::config::Limits;
use crate::confined::MediaFailure;
use crate::job::OutputSpec;
use crate::media::{self, Metric, OutputTarget, PlanRefused, QualityTarget, TargetSearch};
use crate::types::{MediaInfo, OutputPlan, QualityProbe, QualityStep, TimeRange};

/// Seconds of each sample.
pub(super) const SAMPLE_SECS: f64 = 2.0;
/// The probes' VMAF is scored on every this-many frames (motion on all of them): a
/// sample's mean is what the search needs, and scoring is most of its cost.
const PROBE_SUBSAMPLE: u32 = 3;

/// Why a search ended without a setting (or a ladder); each a sentence for the output's
/// error.
#[derive(Debug, thiserror::Error)]
pub(super) enum SearchError {
    #[error("The format plugin's search for the target quality was refused: {0}.")]
    Refused(PlanRefused),
    #[error("The format plugin could not search for the target quality: {0}")]
    Plugin(String),
    #[error("Encoding the samples for the target quality failed: {0}")]
    Samples(MediaFailure),
    #[error("Encoding the samples for the target quality failed: their directory could not be made ({0})")]
    SampleDir(#[source] std::io::Error),
    #[error("Encoding the samples for the target quality failed: a sample has no VMAF")]
    SampleWithoutVmaf,
    #[error("The format plugin's plan for the ladder was refused: {0}.")]
    LadderRefused(PlanRefused),
    #[error("The format plugin could not plan the ladder from the content: {0}")]
    LadderPlugin(String),
}

impl JobRun<'_> {
    /// Search the setting of `plan` (which has a `target_vmaf`) on samples of `input`;
    /// returns the plan with the setting found, and how it was found.
    pub(super) async fn search_quality(
        &self,
        input: &Path,
        info: &MediaInfo,
        spec: &OutputSpec,
        plan: &OutputPlan,
        work: &Path,
        cancel: &AtomicBool,
    ) -> Result<(OutputPlan, TargetSearch), SearchError> {
        let target = plan.target_vmaf.unwrap_or_default();
        let limits = &self.worker.config.limits;
        let windows = sample_windows(plan.range.as_ref(), info.duration);
        let params = spec.plugin_params();
        let mut probes: Vec<QualityProbe> = Vec::new();
        for round in 0..=media::MAX_SEARCH_ROUNDS {
            let step = self
                .worker
                .plugins
                .format_search_quality(&spec.format, &params, info, &probes)
                .await
                .map_err(|e| SearchError::Plugin(e.describe()))?;
            media::check_search_step(&step, round).map_err(SearchError::Refused)?;
            match step {
                QualityStep::Done(crf) => {
                    let settled = with_setting(plan, crf, None, limits)?;
                    let sample_seconds = windows.first().and_then(|w| w.duration).unwrap_or(SAMPLE_SECS);
                    let searched = TargetSearch { vmaf: target, crf, probes, samples: windows.len(), sample_seconds };
                    tracing::info!(output = ?spec.key, target, crf, probes = searched.probes.len(), "target quality searched");
                    return Ok((settled, searched));
                }
                QualityStep::Probe(settings) => {
                    // Every setting is checked before any sample is encoded.
                    let mut plans = Vec::new();
                    for crf in &settings {
                        plans.push(windows.iter().map(|w| with_setting(plan, *crf, Some(w), limits)).collect::<Result<Vec<_>, _>>()?);
                    }
                    let measured = self.probe_round(input, info, &windows, plans, work, round, cancel).await?;
                    probes.extend(settings.iter().zip(measured).map(|(crf, (vmaf, bitrate_kbps))| QualityProbe { crf: *crf, vmaf, bitrate_kbps }));
                }
            }
        }
        Err(SearchError::Refused(PlanRefused::Step(format!("it did not settle within {} rounds", media::MAX_SEARCH_ROUNDS))))
    }

    /// Encode every sample at every setting (one decode of the input), measure them all
    /// (one more), and return each setting's (mean VMAF, kbit/s) over its samples.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn probe_round(
        &self,
        input: &Path,
        info: &MediaInfo,
        windows: &[TimeRange],
        plans: Vec<Vec<OutputPlan>>,
        work: &Path,
        round: usize,
        cancel: &AtomicBool,
    ) -> Result<Vec<(f64, u32)>, SearchError> {
        let dir = work.join(format!("probes-{round}"));
        tokio::fs::create_dir_all(&dir).await.map_err(SearchError::SampleDir)?;
        let mut targets: Vec<OutputTarget> = Vec::new();
        for (setting, samples) in plans.into_iter().enumerate() {
            for (sample, plan) in samples.into_iter().enumerate() {
                let path: PathBuf = dir.join(format!("s{setting}-{sample}.{}", plan.extension));
                targets.push(OutputTarget { plan, path });
            }
        }
        // The samples' own events are not the job's: nobody reads them.
        let (events, _unread) = mpsc::unbounded_channel();
        for batch in batches(info, &targets, self.worker.config.limits.max_job_memory) {
            let encoding = self.activity.encoding();
            let encoded = self.engine.transcode(&self.lease.job_id, input, batch, cancel, &events).await;
            drop(encoding);
            encoded.map_err(|e| SearchError::Samples(MediaFailure::from(&e)))?;
        }
        let measure: Vec<QualityTarget> = targets
            .iter()
            .map(|t| QualityTarget {
                file: t.path.clone(),
                offset: t.plan.range.as_ref().map_or(0.0, |r| r.offset),
                metrics: vec![Metric::Vmaf],
                per_frame: None,
                subsample: PROBE_SUBSAMPLE,
            })
            .collect();
        let results = self.measure_targets(input, &measure).await.map_err(|e| SearchError::Samples(MediaFailure::from(&e)))?;
        let fps = info.fps.max(1.0);
        let mut per_setting = Vec::new();
        for (targets, results) in targets.chunks(windows.len()).zip(results.chunks(windows.len())) {
            let (mut weighted, mut frames, mut bytes) = (0.0, 0u64, 0u64);
            for (target, result) in targets.iter().zip(results) {
                let quality = result.as_ref().map_err(|e| SearchError::Samples(e.clone()))?;
                let mean = quality.vmaf.as_ref().map(|v| v.mean).ok_or(SearchError::SampleWithoutVmaf)?;
                weighted += mean * quality.frames as f64;
                frames += quality.frames;
                bytes += tokio::fs::metadata(&target.path).await.map(|m| m.len()).unwrap_or(0);
            }
            let seconds = frames as f64 / fps;
            let kbps = if seconds > 0.0 { (bytes as f64 * 8.0 / 1000.0 / seconds).round() as u32 } else { 0 };
            per_setting.push((if frames > 0 { weighted / frames as f64 } else { 0.0 }, kbps));
        }
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(per_setting)
    }
}

/// The probes of a round in as few encodes as fit in the job's memory limit by the
/// engine's estimate, as the job's own outputs are held to it (a round of 1080p probes
/// at once would not fit): each batch is one decode of the input.
fn batches<'a>(info: &MediaInfo, targets: &'a [OutputTarget], max_memory: u64) -> Vec<&'a [OutputTarget]> {
    let mut batches = Vec::new();
    let mut start = 0;
    for end in 1..=targets.len() {
        let plans: Vec<OutputPlan> = targets[start..end].iter().map(|t| t.plan.clone()).collect();
        if end - start > 1 && media::memory_estimate(info, &plans) > max_memory {
            batches.push(&targets[start..end - 1]);
            start = end - 1;
        }
    }
    if start < targets.len() {
        batches.push(&targets[start..]);
    }
    batches
}

/// `plan` at setting `crf` (a sample's: video only, over `window`), held to the plan
/// check as every plan is.
fn with_setting(plan: &OutputPlan, crf: f32, window: Option<&TimeRange>, limits: &Limits) -> Result<OutputPlan, SearchError> {
    let mut plan = plan.clone();
    if let Some(window) = window {
        plan.audio = None;
        plan.range = Some(window.clone());
        plan.target_vmaf = None;
        // Samples are scored against the input: a watermark is not drawn on them.
        if let Some(video) = plan.video.as_mut() {
            video.overlays.clear();
        }
    }
    media::plan_at_setting(plan, crf, limits).map_err(SearchError::Refused)
}

/// Where the samples are: `SAMPLE_SECS` each, spread evenly over the part of the input
/// the output covers (its `range`), 1 to 3 of them; a short part is one sample.
pub(super) fn sample_windows(range: Option<&TimeRange>, duration: f64) -> Vec<TimeRange> {
    let start = range.map_or(0.0, |r| r.offset);
    let end = range.and_then(|r| r.duration).map_or(duration, |d| (start + d).min(duration));
    let length = (end - start).max(0.0);
    if length <= 3.0 * SAMPLE_SECS {
        return vec![TimeRange { offset: start, duration: Some(length.max(SAMPLE_SECS)) }];
    }
    let count = if length >= 20.0 { 3 } else { 2 };
    (0..count)
        .map(|i| {
            let centre = start + length * (i as f64 + 0.5) / count as f64;
            TimeRange { offset: (centre - SAMPLE_SECS / 2.0).max(start), duration: Some(SAMPLE_SECS) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_of_large_probes_is_encoded_in_batches_that_fit_the_memory() {
        let info = MediaInfo { width: 1920, height: 1080, duration: 10.0, fps: 30.0, has_video: true, ..Default::default() };
        let window = TimeRange { offset: 0.0, duration: Some(2.0) };
        let limits = Limits::default();
        let targets: Vec<OutputTarget> = (0..12)
            .map(|i| OutputTarget {
                plan: media::ladder_probe_plan(&crate::media::test_fixtures::h264(1920, 1080, 20.0 + i as f32, "medium"), &window, &limits).unwrap(),
                path: PathBuf::from(format!("p{i}.mp4")),
            })
            .collect();
        let all: Vec<OutputPlan> = targets.iter().map(|t| t.plan.clone()).collect();
        assert!(media::memory_estimate(&info, &all) > limits.max_job_memory, "twelve 1080p encodes at once do not fit");
        let large = batches(&info, &targets, limits.max_job_memory);
        assert!(large.len() > 1 && large.iter().map(|b| b.len()).sum::<usize>() == 12, "{:?}", large.iter().map(|b| b.len()).collect::<Vec<_>>());
        for batch in &large {
            let plans: Vec<OutputPlan> = batch.iter().map(|t| t.plan.clone()).collect();
            assert!(batch.len() == 1 || media::memory_estimate(&info, &plans) <= limits.max_job_memory);
        }
        // Small probes go together.
        let small: Vec<OutputTarget> = (0..4)
            .map(|i| OutputTarget {
                plan: media::ladder_probe_plan(&crate::media::test_fixtures::h264(640, 360, 20.0 + i as f32, "medium"), &window, &limits).unwrap(),
                path: PathBuf::from(format!("s{i}.mp4")),
            })
            .collect();
        assert_eq!(batches(&info, &small, limits.max_job_memory).len(), 1);
    }

    #[test]
    fn samples_spread_over_the_output() {
        let whole = sample_windows(None, 5.0);
        assert_eq!(whole.len(), 1);
        assert_eq!((whole[0].offset, whole[0].duration), (0.0, Some(5.0)));
        let two = sample_windows(None, 10.0);
        assert_eq!(two.iter().map(|w| w.offset).collect::<Vec<_>>(), vec![1.5, 6.5]);
        let three = sample_windows(None, 60.0);
        assert_eq!(three.iter().map(|w| w.offset).collect::<Vec<_>>(), vec![9.0, 29.0, 49.0]);
        let trimmed = sample_windows(Some(&TimeRange { offset: 30.0, duration: Some(10.0) }), 60.0);
        assert!(trimmed.iter().all(|w| w.offset >= 30.0 && w.offset + SAMPLE_SECS <= 40.0), "{trimmed:?}");
    }
}
