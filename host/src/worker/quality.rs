//! Outputs that asked for quality metrics: once the transcode has made them, one call
//! of the engine measures them all against the input (decoded once, in the engine's
//! confined process), and each upload carries its scores into the output's metadata
//! (and its per-frame CSV beside the output).

use std::path::{Path, PathBuf};

use super::output_upload::Upload;
use super::record::JobRun;
use crate::media::{Metric, Produced, Quality, QualityTarget};

/// An output made and waiting for its measurement before it is uploaded.
pub(super) struct Waiting {
    pub upload: Upload,
    pub metrics: Vec<Metric>,
    pub per_frame: bool,
    /// Seconds into the input where the output starts (its plan's `offset`).
    pub offset: f64,
}

/// An output's measurement, for its upload.
#[derive(Debug, Clone)]
pub(super) struct Measured {
    /// The scores, or why there are none (the output itself is fine either way).
    pub result: Result<Quality, String>,
    /// The per-frame CSV the engine wrote, to store beside the output.
    pub per_frame: Option<PathBuf>,
}

/// Whether an output of this kind can be measured now: one video file.
pub(super) fn measurable(produced: &Produced, has_video: bool) -> bool {
    matches!(produced, Produced::File) && has_video
}

/// Why an output that asked for metrics was not measured.
pub(super) fn not_measured(produced: &Produced) -> Measured {
    let why = match produced {
        Produced::Package(_) => "quality is not measured for adaptive-streaming packages yet; measure a file output of the same settings",
        _ => "quality is measured for video outputs only",
    };
    Measured { result: Err(why.into()), per_frame: None }
}

impl JobRun<'_> {
    /// Measure every waiting output against `input`; returns their uploads, each with
    /// its scores. A measurement that fails leaves its output's upload as it was, with
    /// the reason in its metadata.
    pub(super) async fn measure(&self, input: &Path, waiting: Vec<Waiting>) -> Vec<Upload> {
        if waiting.is_empty() {
            return Vec::new();
        }
        let targets: Vec<QualityTarget> = waiting
            .iter()
            .map(|w| QualityTarget {
                file: w.upload.path.clone(),
                offset: w.offset,
                metrics: w.metrics.clone(),
                per_frame: w.per_frame.then(|| csv_path(&w.upload.path)),
            })
            .collect();
        tracing::info!(outputs = targets.len(), "measuring quality");
        let started = std::time::Instant::now();
        let watched = self.activity.encoding();
        let activity = self.activity.clone();
        let mut progress = move |_fraction: f64| activity.tick();
        let results = self.worker.engine.measure(&self.lease.job_id, input, &targets, &mut progress).await;
        drop(watched);
        tracing::info!(seconds = started.elapsed().as_secs_f64(), "quality measured");
        let results: Vec<Result<Quality, String>> = match results {
            Ok(results) => results,
            Err(err) => vec![Err(err.to_string()); targets.len()],
        };
        waiting
            .into_iter()
            .zip(targets)
            .zip(results)
            .map(|((w, target), result)| {
                let per_frame = target.per_frame.filter(|_| result.is_ok());
                Upload { measured: Some(Measured { result, per_frame }), ..w.upload }
            })
            .collect()
    }
}

/// The per-frame CSV's file, beside the output's in the work directory.
fn csv_path(output: &Path) -> PathBuf {
    let mut name = output.file_stem().map(|s| s.to_os_string()).unwrap_or_default();
    name.push(".quality.csv");
    output.with_file_name(name)
}

/// The storage path of an output's per-frame CSV: beside the output, named after it
/// (`videos/out.mp4` → `videos/out.quality.csv`).
pub(super) fn csv_storage_path(output_path: &str) -> String {
    let (dir, name) = output_path.rsplit_once('/').map_or(("", output_path), |(d, n)| (d, n));
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let stem = if stem.is_empty() { name } else { stem };
    if dir.is_empty() { format!("{stem}.quality.csv") } else { format!("{dir}/{stem}.quality.csv") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_sits_beside_its_output() {
        assert_eq!(csv_storage_path("videos/out.mp4"), "videos/out.quality.csv");
        assert_eq!(csv_storage_path("out.webm"), "out.quality.csv");
        assert_eq!(csv_storage_path("a.b/noext"), "a.b/noext.quality.csv");
        assert_eq!(csv_path(Path::new("/w/output-0.mp4")), Path::new("/w/output-0.quality.csv"));
    }
}
