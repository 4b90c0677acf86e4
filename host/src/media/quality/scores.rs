//! What libvmaf recorded, as the figures an output's metadata reports, and the
//! per-frame CSV.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::libvmaf::{self, Layout, Pool, Scorer, VmafError};
use super::{Metric, QualityTarget};

/// An output's `quality`, as its metadata and `output.completed` report it: the scores,
/// or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum QualityReport {
    Measured(Quality),
    NotMeasured {
        /// Why the output was not measured (the output itself is fine).
        error: String,
    },
    /// An adaptive-streaming package: each video rung's quality, when it asked for
    /// metrics, and how its ladder was planned, when it was planned from the content.
    Variants {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        variants: Vec<VariantQuality>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ladder: Option<LadderReport>,
    },
}

/// How a ladder was planned from the content (`"variants": "auto"`): the candidate
/// rungs its format plugin asked to probe, measured on samples of the input, and the
/// rungs it kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LadderReport {
    /// The VMAF the top rung aimed at.
    pub vmaf: f32,
    /// The rungs kept, top first, each with what its samples measured.
    pub rungs: Vec<LadderRung>,
    /// Every probe, in order.
    pub probes: Vec<crate::types::LadderProbe>,
    /// Samples a probe encodes, and their length in seconds.
    pub samples: usize,
    pub sample_seconds: f64,
}

/// One rung of a ladder planned from the content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LadderRung {
    /// The rung's name, as in the package's paths (`720p`).
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Its constant-quality setting and bit-rate ceiling (kbit/s).
    pub crf: Option<f32>,
    pub maxrate_kbps: Option<u32>,
    /// What its samples measured at exactly this setting (none if it was not probed).
    pub vmaf: Option<f64>,
    pub bitrate_kbps: Option<u32>,
}

/// One rung of a package and its quality, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VariantQuality {
    /// The rung's name, as in the package's paths (`720p`).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An output's measured quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quality {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmaf: Option<VmafScores>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psnr: Option<PsnrScores>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssim: Option<SsimScores>,
    /// Output frames measured.
    pub frames: u64,
    pub reference: Reference,
    /// The per-frame scores as CSV, stored beside the output, when it asked for them
    /// (`metrics_per_frame`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_frame_url: Option<String>,
    /// For an output encoded to a target quality (`vmaf=`): how its setting was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetSearch>,
}

/// How an output encoded to a target quality found its setting: the probes its format
/// plugin asked for, measured on samples of the input, and the setting it settled on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetSearch {
    /// The mean VMAF aimed at.
    pub vmaf: f32,
    /// The setting settled on (the codec's constant-quality scale).
    pub crf: f32,
    /// Every probe, in order: the samples' mean VMAF and bit rate at each setting tried.
    pub probes: Vec<crate::types::QualityProbe>,
    /// Samples a probe encodes, and their length in seconds.
    pub samples: usize,
    pub sample_seconds: f64,
}

/// VMAF over the output's frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VmafScores {
    pub mean: f64,
    pub harmonic_mean: f64,
    pub min: f64,
    /// The 1st and 5th percentiles of the per-frame scores: the worst moments.
    pub p1: f64,
    pub p5: f64,
    pub model: String,
    /// The scores over time, for a chart: each frame's when there are at most
    /// [`SERIES_POINTS`] frames, else the mean of each run of `series_step` frames.
    pub series: Vec<f64>,
    /// Frames per point of `series`.
    pub series_step: u32,
}

/// The most points of a VMAF series.
pub const SERIES_POINTS: usize = 600;

/// PSNR in dB: each plane's mean over the frames, and `avg` the mean of each frame's
/// PSNR over all three planes (weighted by their samples, 4:1:1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PsnrScores {
    pub y: f64,
    pub u: f64,
    pub v: f64,
    pub avg: f64,
}

/// SSIM of the luma, as libvmaf's `float_ssim` defines it (what `ffmpeg -lavfi
/// libvmaf=feature=name=float_ssim` reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SsimScores {
    pub y: f64,
}

/// What the output was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reference {
    pub width: u32,
    pub height: u32,
    /// How the output was scaled to the reference's size.
    pub scaler: String,
    /// libvmaf's version.
    pub libvmaf: String,
}

/// What was measured outside libvmaf.
pub(super) struct Measured<'a> {
    /// Pairs read.
    pub frames: u32,
    /// SSIM of each frame scored, in order.
    pub ssim: &'a [f64],
}

/// Read every score of a scorer (libvmaf's, when VMAF or PSNR was asked for) and of
/// `measured`; write the per-frame CSV if asked.
pub(super) fn collect(mut scorer: Option<&mut Scorer>, measured: Measured, target: &QualityTarget, model: &str, layout: Layout) -> Result<Quality, QualityError> {
    if let Some(scorer) = scorer.as_deref_mut() {
        scorer.flush()?;
    }
    let frames = measured.frames;
    let wants = |m| target.metrics.contains(&m);
    let mut rows: Vec<Row> = Vec::with_capacity(frames as usize);
    // Only the frames scored have scores (every one but for a subsampled probe).
    for (scored, index) in (0..frames).step_by(target.subsample.max(1) as usize).enumerate() {
        let mut row = Row::default();
        if let Some(scorer) = scorer.as_deref_mut() {
            if wants(Metric::Vmaf) {
                row.vmaf = Some(scorer.vmaf_at(index)?);
            }
            if wants(Metric::Psnr) {
                row.psnr = Some([
                    scorer.feature_at(libvmaf::PSNR_Y, index)?,
                    scorer.feature_at(libvmaf::PSNR_CB, index)?,
                    scorer.feature_at(libvmaf::PSNR_CR, index)?,
                ]);
            }
        }
        if wants(Metric::Ssim) {
            row.ssim = measured.ssim.get(scored).copied();
        }
        rows.push(row);
    }
    let vmaf = if let Some(scorer) = scorer.filter(|_| wants(Metric::Vmaf)) {
        let per_frame: Vec<f64> = rows.iter().filter_map(|r| r.vmaf).collect();
        let (series, series_step) = series(&per_frame);
        let mut sorted = per_frame;
        sorted.sort_by(f64::total_cmp);
        Some(VmafScores {
            mean: round(scorer.vmaf_pooled(Pool::Mean)?),
            harmonic_mean: round(scorer.vmaf_pooled(Pool::HarmonicMean)?),
            min: round(scorer.vmaf_pooled(Pool::Min)?),
            p1: round(percentile(&sorted, 1.0)),
            p5: round(percentile(&sorted, 5.0)),
            model: model.to_string(),
            series,
            series_step,
        })
    } else {
        None
    };
    let psnr = wants(Metric::Psnr).then(|| {
        let planes: Vec<[f64; 3]> = rows.iter().filter_map(|r| r.psnr).collect();
        let mean = |f: &dyn Fn(&[f64; 3]) -> f64| round(planes.iter().map(f).sum::<f64>() / planes.len().max(1) as f64);
        let cap = 6.0 * f64::from(layout.bits) + 12.0;
        PsnrScores { y: mean(&|p| p[0]), u: mean(&|p| p[1]), v: mean(&|p| p[2]), avg: mean(&|p| combined_psnr(p, cap)) }
    });
    let ssim = wants(Metric::Ssim).then(|| {
        let values: Vec<f64> = rows.iter().filter_map(|r| r.ssim).collect();
        SsimScores { y: round(values.iter().sum::<f64>() / values.len().max(1) as f64) }
    });
    if let Some(path) = &target.per_frame {
        write_csv(path, &rows).map_err(QualityError::Csv)?;
    }
    Ok(Quality {
        vmaf,
        psnr,
        ssim,
        frames: u64::from(frames),
        reference: Reference { width: layout.width, height: layout.height, scaler: "bicubic".into(), libvmaf: libvmaf::version() },
        per_frame_url: None,
        target: None,
    })
}

/// Why scores could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum QualityError {
    #[error(transparent)]
    Vmaf(#[from] VmafError),
    #[error("writing the per-frame scores: {0}")]
    Csv(std::io::Error),
}

#[derive(Debug, Default, Clone, Copy)]
struct Row {
    vmaf: Option<f64>,
    psnr: Option<[f64; 3]>,
    ssim: Option<f64>,
}

fn write_csv(path: &std::path::Path, rows: &[Row]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let first = rows.first().copied().unwrap_or_default();
    let mut header = vec!["frame"];
    if first.vmaf.is_some() {
        header.push("vmaf");
    }
    if first.psnr.is_some() {
        header.extend(["psnr_y", "psnr_u", "psnr_v"]);
    }
    if first.ssim.is_some() {
        header.push("ssim_y");
    }
    writeln!(out, "{}", header.join(","))?;
    for (index, row) in rows.iter().enumerate() {
        write!(out, "{index}")?;
        if let Some(vmaf) = row.vmaf {
            write!(out, ",{vmaf:.6}")?;
        }
        if let Some([y, u, v]) = row.psnr {
            write!(out, ",{y:.6},{u:.6},{v:.6}")?;
        }
        if let Some(ssim) = row.ssim {
            write!(out, ",{ssim:.6}")?;
        }
        writeln!(out)?;
    }
    out.flush()
}

/// One frame's PSNR over its three planes: their mean squared errors weighted by their
/// samples (4:2:0: four luma samples to one of each chroma), capped as libvmaf caps
/// each plane's.
fn combined_psnr(planes: &[f64; 3], cap: f64) -> f64 {
    let mse = |psnr: f64| 10f64.powf(-psnr / 10.0);
    let weighted = (4.0 * mse(planes[0]) + mse(planes[1]) + mse(planes[2])) / 6.0;
    if weighted <= 0.0 { cap } else { (-10.0 * weighted.log10()).min(cap) }
}

/// At most [`SERIES_POINTS`] points of `per_frame`: means of equal runs of frames (the
/// last run may be shorter), two decimals; and the run's length.
fn series(per_frame: &[f64]) -> (Vec<f64>, u32) {
    let step = per_frame.len().div_ceil(SERIES_POINTS).max(1);
    let points = per_frame.chunks(step).map(|run| (run.iter().sum::<f64>() / run.len() as f64 * 100.0).round() / 100.0).collect();
    (points, step as u32)
}

/// The `p`th percentile of ascending `sorted` (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Four decimals: finer than any tolerance, short in JSON.
fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 1.0), 2.0);
        assert_eq!(percentile(&sorted, 5.0), 10.0);
        assert_eq!(percentile(&[7.0], 5.0), 7.0);
    }

    #[test]
    fn a_series_has_at_most_its_points() {
        let (points, step) = series(&[90.0, 92.0, 94.0]);
        assert_eq!((points, step), (vec![90.0, 92.0, 94.0], 1));
        let long: Vec<f64> = (0..1500).map(|i| f64::from(i % 2) * 10.0).collect();
        let (points, step) = series(&long);
        assert_eq!(step, 3);
        assert_eq!(points.len(), 500);
        assert!((points[0] - 10.0 / 3.0).abs() < 0.01, "{}", points[0]);
    }

    #[test]
    fn combined_psnr_weights_luma_four_to_one() {
        // Equal planes give the same PSNR; a worse chroma pulls it down by a sixth each.
        assert!((combined_psnr(&[40.0, 40.0, 40.0], 60.0) - 40.0).abs() < 1e-9);
        let mixed = combined_psnr(&[40.0, 30.0, 30.0], 60.0);
        let expected = -10.0 * ((4.0 * 1e-4 + 2.0 * 1e-3) / 6.0f64).log10();
        assert!((mixed - expected).abs() < 1e-9);
        assert_eq!(combined_psnr(&[60.0, 60.0, 60.0], 60.0), 60.0);
    }
}
