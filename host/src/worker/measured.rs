//! An output's measured quality, as its upload reports it: the scores (or why there
//! are none) for its metadata, and where its per-frame CSV is kept, in the work
//! directory and in storage. Measuring is `quality`'s business; this file is what the
//! upload needs to know of it.

use std::path::{Path, PathBuf};

use crate::confined::MediaFailure;
use crate::media::{LadderReport, Quality, QualityReport, VariantQuality};

/// An output's measurement, for its upload.
#[derive(Debug, Clone)]
pub(super) enum Measured {
    /// A file's scores, or why there are none (the output itself is fine either way),
    /// and the per-frame CSV the engine wrote, to store beside the output.
    File { result: Result<Quality, MediaFailure>, per_frame: Option<PathBuf> },
    /// A package's rungs (none measured when it did not ask for metrics), and how its
    /// ladder was planned from the content.
    Variants(Vec<VariantQuality>, Option<LadderReport>),
    /// Why the output could not be measured.
    Not(String),
}

impl Measured {
    /// The `quality` of the output's metadata, without the CSV's URL.
    pub fn report(&self) -> QualityReport {
        match self {
            Measured::File { result: Ok(quality), .. } => QualityReport::Measured(quality.clone()),
            Measured::File { result: Err(why), .. } => QualityReport::NotMeasured { error: format!("The quality was not measured: {why}") },
            Measured::Not(why) => QualityReport::NotMeasured { error: format!("The quality was not measured: {why}") },
            Measured::Variants(variants, ladder) => QualityReport::Variants { variants: variants.clone(), ladder: ladder.clone() },
        }
    }
}

/// The per-frame CSV's file, beside the output's in the work directory.
pub(super) fn csv_path(output: &Path) -> PathBuf {
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
