//! Outputs that asked for quality metrics: once the transcode has made them, one call
//! of the engine measures them all against the input (decoded once, in the engine's
//! confined process), and each upload carries its scores into the output's metadata
//! (and a file's per-frame CSV beside it). A package is measured rung by rung, each
//! from its HLS media playlist and segments.

use std::path::{Path, PathBuf};

use super::measured::{Measured, csv_path};
use super::output_upload::Upload;
use super::record::JobRun;
use crate::confined::MediaFailure;
use crate::media::{LadderReport, Metric, Produced, Quality, QualityTarget, TargetSearch, VariantQuality};
use crate::types::OutputPlan;

/// An output made and waiting for its measurement before it is uploaded.
pub(super) struct Waiting {
    pub upload: Upload,
    /// What to measure: a file's one target, or a package's rungs by name.
    pub targets: Vec<(Option<String>, QualityTarget)>,
    /// How its setting was found, when it was encoded to a target quality: reported
    /// with its scores.
    pub search: Option<TargetSearch>,
    /// How its ladder was planned, when it was planned from the content.
    pub ladder: Option<LadderReport>,
}

/// What an output that asked for `metrics` waits to have measured: its file, or its
/// package's video rungs; `Err` says why it cannot be.
pub(super) fn targets(
    produced: &Produced,
    plan: &OutputPlan,
    path: &Path,
    metrics: &[Metric],
    per_frame: bool,
) -> Result<Vec<(Option<String>, QualityTarget)>, String> {
    if plan.video.is_none() && plan.packaging.is_none() {
        return Err("quality is measured for video outputs only".into());
    }
    let offset = plan.range.as_ref().map_or(0.0, |r| r.offset);
    let target = |file: PathBuf, per_frame: Option<PathBuf>| QualityTarget { file, offset, metrics: metrics.to_vec(), per_frame, subsample: 1 };
    match (produced, &plan.packaging) {
        (Produced::File, _) => Ok(vec![(None, target(path.to_path_buf(), per_frame.then(|| csv_path(path))))]),
        (Produced::Package(_), Some(stream)) => {
            let rungs = crate::media::video_playlists(stream).map_err(|e| e.to_string())?;
            if rungs.is_empty() {
                return Err("a package's rungs are measured from their HLS playlists, and this package has no HLS (nor video)".into());
            }
            Ok(rungs.into_iter().map(|(name, playlist)| (Some(name), target(path.join(playlist), None))).collect())
        }
        _ => Err("quality is measured for video outputs only".into()),
    }
}

impl JobRun<'_> {
    /// Measure every waiting output against `input`; returns their uploads, each with
    /// its scores. A measurement that fails leaves its output as it was, with the
    /// reason in its metadata.
    pub(super) async fn measure(&self, input: &Path, waiting: Vec<Waiting>) -> Vec<Upload> {
        let all: Vec<QualityTarget> = waiting.iter().flat_map(|w| w.targets.iter().map(|(_, t)| t.clone())).collect();
        if all.is_empty() {
            return waiting.into_iter().map(|w| w.upload).collect();
        }
        let mut results = match self.measure_targets(input, &all).await {
            Ok(results) => results,
            Err(err) => vec![Err(MediaFailure::from(&err)); all.len()],
        }
        .into_iter();
        waiting
            .into_iter()
            .map(|w| {
                let mut measured: Vec<(Option<String>, QualityTarget, Result<Quality, MediaFailure>)> = Vec::new();
                for (name, target) in w.targets {
                    let result = results.next().unwrap_or_else(|| Err(MediaFailure::no_answer()));
                    measured.push((name, target, result));
                }
                let measured = match measured.as_slice() {
                    [(None, target, result)] => Measured::File {
                        per_frame: target.per_frame.clone().filter(|_| result.is_ok()),
                        result: result.clone().map(|quality| Quality { target: w.search.clone(), ..quality }),
                    },
                    rungs => Measured::Variants(
                        rungs
                            .iter()
                            .map(|(name, _, result)| VariantQuality {
                                name: name.clone().unwrap_or_default(),
                                quality: result.as_ref().ok().cloned(),
                                error: result.as_ref().err().map(ToString::to_string),
                            })
                            .collect(),
                        w.ladder.clone(),
                    ),
                };
                Upload { measured: Some(measured), ..w.upload }
            })
            .collect()
    }
}

impl JobRun<'_> {
    /// One engine call measuring `targets` against `input`, watched as an encode (its
    /// progress is the job's sign of life). Also the target-quality search's samples.
    pub(super) async fn measure_targets(
        &self,
        input: &Path,
        targets: &[QualityTarget],
    ) -> Result<Vec<Result<Quality, MediaFailure>>, crate::confined::EngineError> {
        tracing::info!(targets = targets.len(), "measuring quality");
        let started = std::time::Instant::now();
        let _watched = self.activity.encoding();
        let activity = self.activity.clone();
        let mut progress = move |_fraction: f64| activity.tick();
        let results = self.engine.measure(&self.lease.job_id, input, targets, &mut progress).await;
        tracing::info!(seconds = started.elapsed().as_secs_f64(), "quality measured");
        results
    }
}
