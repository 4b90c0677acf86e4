//! Ladders planned from the content (`"variants": "auto"`). Before a package whose plan
//! has a `target_vmaf` is encoded, its format plugin plans the ladder: it names candidate
//! rungs (a size and a setting each) to try, the host encodes short samples of the input
//! with each (in the engine's confined process, as every encode), measures their VMAF
//! against the input at its own size and their bit rate, and hands the figures back,
//! until the plugin settles on the rungs. The plugin decides; the host bounds what it
//! may ask (rounds, probes a round, each probe and the ladder held to the plan check)
//! and runs it. The samples are those of a target-quality search.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::record::JobRun;
use super::target_quality::{SAMPLE_SECS, SearchError, sample_windows};
use crate::job::OutputSpec;
use crate::media::{self, LadderReport, LadderRung};
use crate::types::{LadderProbe, LadderStep, MediaInfo, OutputPlan, VariantPlan, VideoPlan};

impl JobRun<'_> {
    /// Plan the ladder of `plan` (a package with a `target_vmaf`) on samples of `input`;
    /// returns the plan with the ladder its plugin settled on, and how it was planned.
    pub(super) async fn plan_ladder(
        &self,
        input: &Path,
        info: &MediaInfo,
        spec: &OutputSpec,
        plan: &OutputPlan,
        work: &Path,
        cancel: &AtomicBool,
    ) -> Result<(OutputPlan, LadderReport), SearchError> {
        let limits = &self.worker.config.limits;
        let windows = sample_windows(plan.range.as_ref(), info.duration);
        let params = spec.plugin_params();
        let mut probes: Vec<LadderProbe> = Vec::new();
        for round in 0..=media::MAX_LADDER_ROUNDS {
            let step = self
                .worker
                .plugins
                .format_plan_ladder(&spec.format, &params, info, &probes)
                .await
                .map_err(|e| SearchError::LadderPlugin(e.describe()))?;
            media::check_ladder_step(&step, round).map_err(SearchError::LadderRefused)?;
            match step {
                LadderStep::Done(variants) => {
                    let rungs = variants.iter().map(|v| rung(v, &probes)).collect();
                    let planned = media::plan_with_ladder(plan.clone(), variants, limits).map_err(SearchError::LadderRefused)?;
                    let sample_seconds = windows.first().and_then(|w| w.duration).unwrap_or(SAMPLE_SECS);
                    let report =
                        LadderReport { vmaf: plan.target_vmaf.unwrap_or_default(), rungs, probes, samples: windows.len(), sample_seconds };
                    tracing::info!(output = ?spec.key, rungs = report.rungs.len(), probes = report.probes.len(), "ladder planned from the content");
                    return Ok((planned, report));
                }
                LadderStep::Probe(videos) => {
                    // Every probe is checked before any sample is encoded.
                    let mut plans = Vec::new();
                    for video in &videos {
                        plans.push(
                            windows
                                .iter()
                                .map(|w| media::ladder_probe_plan(video, w, limits))
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(SearchError::LadderRefused)?,
                        );
                    }
                    let measured = self.probe_round(input, info, &windows, plans, work, round, cancel).await?;
                    probes.extend(videos.iter().zip(measured).map(|(video, (vmaf, bitrate_kbps))| LadderProbe {
                        width: video.width,
                        height: video.height,
                        crf: video.crf.unwrap_or_default(),
                        vmaf,
                        bitrate_kbps,
                    }));
                }
            }
        }
        Err(SearchError::LadderRefused(media::PlanRefused::Step(format!("it did not settle within {} rounds", media::MAX_LADDER_ROUNDS))))
    }
}

/// A kept rung, with what its samples measured at exactly its size and setting.
fn rung(variant: &VariantPlan, probes: &[LadderProbe]) -> LadderRung {
    let video = variant.video.as_ref();
    let (width, height) = video.map_or((0, 0), |v| (v.width, v.height));
    let crf = video.and_then(|v| v.crf);
    let maxrate_kbps = video.and_then(VideoPlan::maxrate_kbps).and_then(|k| u32::try_from(k).ok());
    let probe = probes.iter().find(|p| p.width == width && p.height == height && Some(p.crf) == crf);
    LadderRung {
        name: variant.name.clone(),
        width,
        height,
        crf,
        maxrate_kbps,
        vmaf: probe.map(|p| p.vmaf),
        bitrate_kbps: probe.map(|p| p.bitrate_kbps),
    }
}
