//! How good an output is: VMAF, PSNR and SSIM of each video output against its source.
//!
//! The reference is the source itself, decoded once for every output measured. Each
//! output's frames are paired with the source frame shown at the same time (after the
//! output's own `offset`), as the `ffmpeg` command's frame sync pairs them, and scaled
//! to the source's size with bicubic, as Netflix recommends for VMAF. The scores are
//! libvmaf's ([`libvmaf`]): the model is `vmaf_v0.6.1`, or `vmaf_4k_v0.6.1` for a
//! source of 4K and above. SSIM is libvmaf's `float_ssim` as defined there, computed by
//! [`ssim`] at a fraction of its cost and checked against it.
//!
//! `pairing` walks the source and the outputs in step; `scores` turns what libvmaf
//! recorded into the figures an output's metadata reports (and the per-frame CSV).

mod libvmaf;
mod pairing;
mod scores;
mod ssim;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::MediaError;
use super::decode_limits::DecodeLimits;

pub use scores::{LadderReport, LadderRung, Quality, QualityReport, TargetSearch, VariantQuality};

/// A quality metric an output can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Vmaf,
    Psnr,
    Ssim,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::Vmaf, Metric::Psnr, Metric::Ssim];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Vmaf => "vmaf",
            Metric::Psnr => "psnr",
            Metric::Ssim => "ssim",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// One output to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QualityTarget {
    /// The output's video file.
    pub file: PathBuf,
    /// Seconds into the source where the output starts (its `offset`).
    pub offset: f64,
    pub metrics: Vec<Metric>,
    /// Where the per-frame scores go, as CSV, when the output asked for them.
    pub per_frame: Option<PathBuf>,
    /// Score every this-many frames (libvmaf's `n_subsample`; motion still sees every
    /// frame). Outputs are scored on every frame (1); the probes of a search, which
    /// only need their mean, on fewer.
    #[serde(default = "every_frame")]
    pub subsample: u32,
}

fn every_frame() -> u32 {
    1
}

/// Measure every target against `reference` (the job's input), decoding it once.
/// `progress` sees the share of the source read. An error here is the source's; each
/// target has its own result.
pub fn measure(
    reference: &Path,
    targets: &[QualityTarget],
    limits: &DecodeLimits,
    progress: &dyn Fn(f64),
) -> Result<Vec<Result<Quality, MediaError>>, MediaError> {
    pairing::run(reference, targets, limits, progress)
}
