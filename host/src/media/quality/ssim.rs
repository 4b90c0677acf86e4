//! SSIM of the luma as libvmaf's `float_ssim` defines it, computed here.
//!
//! libvmaf's extractor turns both whole pictures into floats, copies them again, then
//! box-filters them one output pixel at a time through a generic filter that checks the
//! picture's edges for every tap: about 22 ms a 1080p pair on one core of this machine,
//! a third of everything measuring an output cost. The definition itself is small:
//!
//! 1. the pictures are decimated by `f = max(1, round(min(w, h) / 256))` with an
//!    `f`×`f` box (taps from `-f/2` to `f - 1 - f/2`, edges mirrored), to
//!    `w / f + (w & 1)` by `h / f + (h & 1)` samples;
//! 2. means, variances and the covariance come from an 11-tap Gaussian window
//!    (σ 1.5, the coefficients libvmaf uses), applied where it fits in the picture;
//! 3. each position scores `l · c · s` with `C1 = (0.01·255)²`, `C2 = (0.03·255)²`,
//!    `C3 = C2 / 2`, `c` from the product of the deviations, and the frame's score is
//!    their mean.
//!
//! Here the box sums are exact (whole numbers when the weight is a power of two, sums of
//! the same single-precision products otherwise), the window runs row by row over whole
//! rows, and each step rounds where libvmaf's does (single-precision products summed in
//! double, single-precision maps), so the figures are libvmaf's: the tests below compare
//! them with libvmaf's own extractor on the same pictures.

/// The window's coefficients (σ 1.5, 11 taps), as libvmaf's SSIM has them.
const WINDOW: [f32; 11] = [0.001028, 0.007599, 0.036001, 0.109361, 0.213006, 0.266012, 0.213006, 0.109361, 0.036001, 0.007599, 0.001028];

/// The luma plane of one picture: `bits` 8 (a byte a sample) or 10 (two bytes,
/// little-endian), rows `stride` bytes apart.
#[derive(Clone, Copy)]
pub struct Luma<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

/// Why a pair could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum SsimError {
    #[error("SSIM needs pictures of at least {min}x{min} samples after decimation, not {width}x{height}")]
    TooSmall { width: usize, height: usize, min: usize },
    #[error("a picture's luma plane is shorter than its size says")]
    ShortPlane,
}

/// Scores pairs of pictures of one size, keeping its buffers between pairs.
pub struct Ssim {
    width: usize,
    height: usize,
    bits: u32,
    /// The box's side.
    factor: usize,
    /// The decimated size.
    small: (usize, usize),
    /// For each decimated column and tap, the source column (edges mirrored).
    columns: Vec<usize>,
    /// For each decimated row and tap, the source row.
    rows: Vec<usize>,
    /// Each tap's weight, `1 / f²`, when it is not a power of two (a box of 3, 5, 6, 7,
    /// 9 or 10): then each sample adds the single-precision product libvmaf sums.
    weight: Option<f32>,
    reference: Vec<f32>,
    distorted: Vec<f32>,
    buffers: Buffers,
}

#[derive(Default)]
struct Buffers {
    whole_sums: Vec<u32>,
    sums: Vec<f64>,
    product: Vec<f32>,
    across: Vec<f32>,
    accumulator: Vec<f64>,
    maps: [Vec<f32>; 5],
}

impl Ssim {
    pub fn new(width: usize, height: usize, bits: u32) -> Result<Ssim, SsimError> {
        let factor = decimation(width, height);
        let small = (width / factor + (width & 1), height / factor + (height & 1));
        if small.0 < WINDOW.len() || small.1 < WINDOW.len() {
            return Err(SsimError::TooSmall { width: small.0, height: small.1, min: WINDOW.len() });
        }
        let taps = |size: usize, limit: usize| -> Vec<usize> {
            let first = -((factor / 2) as isize);
            (0..size).flat_map(|at| (0..factor as isize).map(move |tap| mirror(at as isize * factor as isize + first + tap, limit))).collect()
        };
        let weight = (!factor.is_power_of_two()).then(|| 1.0f32 / (factor * factor) as f32);
        Ok(Ssim {
            width,
            height,
            bits,
            factor,
            small,
            columns: taps(small.0, width),
            rows: taps(small.1, height),
            weight,
            reference: vec![0.0; small.0 * small.1],
            distorted: vec![0.0; small.0 * small.1],
            buffers: Buffers::default(),
        })
    }

    /// The SSIM of `distorted` against `reference`.
    pub fn score(&mut self, reference: Luma, distorted: Luma) -> Result<f64, SsimError> {
        let mut small = std::mem::take(&mut self.reference);
        self.decimate(reference, &mut small)?;
        self.reference = small;
        let mut small = std::mem::take(&mut self.distorted);
        self.decimate(distorted, &mut small)?;
        self.distorted = small;
        Ok(self.compare())
    }

    /// The picture's box averages, into `into` (the decimated size).
    fn decimate(&mut self, luma: Luma, into: &mut [f32]) -> Result<(), SsimError> {
        let sample_bytes = if self.bits > 8 { 2 } else { 1 };
        let needed = (self.height - 1) * luma.stride + self.width * sample_bytes;
        if luma.data.len() < needed || luma.stride < self.width * sample_bytes {
            return Err(SsimError::ShortPlane);
        }
        let (factor, width) = (self.factor, self.width);
        let row = |index: usize| &luma.data[index * luma.stride..index * luma.stride + width * sample_bytes];
        let buffers = &mut self.buffers;
        for (y, out) in into.chunks_exact_mut(self.small.0).enumerate() {
            let rows = &self.rows[y * factor..(y + 1) * factor];
            match self.weight {
                None => {
                    // Every product is exact, so the box's sum is the samples' whole sum
                    // times the weight (and, for 10 bits, the quarter libvmaf scales by).
                    let sums = &mut buffers.whole_sums;
                    sums.clear();
                    sums.resize(width, 0);
                    for &source in rows {
                        add_row(sums, row(source), self.bits);
                    }
                    let scale = 1.0 / (factor * factor) as f64 / if self.bits > 8 { 4.0 } else { 1.0 };
                    for (x, value) in out.iter_mut().enumerate() {
                        let total: u32 = self.columns[x * factor..(x + 1) * factor].iter().map(|&c| sums[c]).sum();
                        *value = (f64::from(total) * scale) as f32;
                    }
                }
                Some(weight) => {
                    // Sums of at most 100 single-precision products of samples: exact in
                    // double whatever their order.
                    let sums = &mut buffers.sums;
                    sums.clear();
                    sums.resize(width, 0.0);
                    for &source in rows {
                        add_weighted_row(sums, row(source), self.bits, weight);
                    }
                    for (x, value) in out.iter_mut().enumerate() {
                        let total: f64 = self.columns[x * factor..(x + 1) * factor].iter().map(|&c| sums[c]).sum();
                        *value = total as f32;
                    }
                }
            }
        }
        Ok(())
    }

    /// The mean of the SSIM map of the two decimated pictures.
    fn compare(&mut self) -> f64 {
        let (width, height) = self.small;
        let (valid_width, valid_height) = (width - WINDOW.len() + 1, height - WINDOW.len() + 1);
        let buffers = &mut self.buffers;
        let [mu1, mu2, sigma11, sigma22, sigma12] = &mut buffers.maps;
        let (reference, distorted) = (&self.reference, &self.distorted);
        window(reference, width, height, mu1, &mut buffers.across, &mut buffers.accumulator);
        window(distorted, width, height, mu2, &mut buffers.across, &mut buffers.accumulator);
        for (map, pair) in [(&mut *sigma11, (reference, reference)), (&mut *sigma22, (distorted, distorted)), (&mut *sigma12, (reference, distorted))] {
            buffers.product.clear();
            buffers.product.extend(pair.0.iter().zip(pair.1).map(|(a, b)| a * b));
            window(&buffers.product, width, height, map, &mut buffers.across, &mut buffers.accumulator);
        }
        let c1 = (0.01f32 * 255.0) * (0.01f32 * 255.0);
        let c2 = (0.03f32 * 255.0) * (0.03f32 * 255.0);
        let c3 = c2 / 2.0;
        let mut sum = 0.0f64;
        for at in 0..valid_width * valid_height {
            let (m1, m2) = (mu1[at], mu2[at]);
            let s11 = (sigma11[at] - m1 * m1).max(0.0);
            let s22 = (sigma22[at] - m2 * m2).max(0.0);
            let s12 = sigma12[at] - m1 * m2;
            let deviations = f64::from(s11 * s22).sqrt() as f32;
            let luminance = (2.0 * f64::from(m1) * f64::from(m2) + f64::from(c1)) / f64::from(m1 * m1 + m2 * m2 + c1);
            let contrast = (2.0 * f64::from(deviations) + f64::from(c2)) / f64::from(s11 + s22 + c2);
            // Identical flat regions: rounding can leave a covariance just under zero.
            let s12 = if s12 < 0.0 && deviations <= 0.0 { 0.0 } else { s12 };
            let structure = f64::from((s12 + c3) / (deviations + c3));
            sum += luminance * contrast * structure;
        }
        f64::from((sum / (valid_width * valid_height) as f64) as f32)
    }
}

/// The window applied where it fits: `image` (`width`×`height`) into `out`
/// (`width - 10`×`height - 10`), across the rows then down the columns, each product in
/// single precision and each sum in double.
fn window(image: &[f32], width: usize, height: usize, out: &mut Vec<f32>, across: &mut Vec<f32>, accumulator: &mut Vec<f64>) {
    let valid = width - WINDOW.len() + 1;
    across.clear();
    accumulator.clear();
    accumulator.resize(valid, 0.0);
    for line in image.chunks_exact(width) {
        accumulator.fill(0.0);
        for (tap, &weight) in WINDOW.iter().enumerate() {
            for (sum, &sample) in accumulator.iter_mut().zip(&line[tap..tap + valid]) {
                *sum += f64::from(sample * weight);
            }
        }
        across.extend(accumulator.iter().map(|&sum| sum as f32));
    }
    out.clear();
    for y in 0..height - WINDOW.len() + 1 {
        accumulator.fill(0.0);
        for (tap, &weight) in WINDOW.iter().enumerate() {
            let line = &across[(y + tap) * valid..(y + tap + 1) * valid];
            for (sum, &sample) in accumulator.iter_mut().zip(line) {
                *sum += f64::from(sample * weight);
            }
        }
        out.extend(accumulator.iter().map(|&sum| sum as f32));
    }
}

/// libvmaf's decimation factor for a picture of this size.
fn decimation(width: usize, height: usize) -> usize {
    let ratio = width.min(height) as f32 / 256.0;
    let whole = ratio.trunc();
    let rounded = if ratio - whole >= 0.5 { whole + 1.0 } else { whole };
    (rounded as usize).max(1)
}

/// A position mirrored into `0..limit` (the edge sample repeated: -1 is 0, `limit` is
/// `limit - 1`).
fn mirror(at: isize, limit: usize) -> usize {
    let limit = limit as isize;
    let at = if at < 0 {
        -1 - at
    } else if at >= limit {
        2 * limit - at - 1
    } else {
        at
    };
    at.clamp(0, limit - 1) as usize
}

/// Adds each sample's share of its box: its value as libvmaf reads it (8 bits as they
/// are, 10 bits a quarter of theirs: exact either way) times the weight, rounded to
/// single precision.
fn add_weighted_row(sums: &mut [f64], line: &[u8], bits: u32, weight: f32) {
    if bits > 8 {
        for (sum, pair) in sums.iter_mut().zip(line.chunks_exact(2)) {
            *sum += f64::from(f32::from(u16::from_le_bytes([pair[0], pair[1]])) * 0.25 * weight);
        }
    } else {
        for (sum, &sample) in sums.iter_mut().zip(line) {
            *sum += f64::from(f32::from(sample) * weight);
        }
    }
}

fn add_row(sums: &mut [u32], line: &[u8], bits: u32) {
    if bits > 8 {
        for (sum, pair) in sums.iter_mut().zip(line.chunks_exact(2)) {
            *sum += u32::from(u16::from_le_bytes([pair[0], pair[1]]));
        }
    } else {
        for (sum, &sample) in sums.iter_mut().zip(line) {
            *sum += u32::from(sample);
        }
    }
}

#[cfg(test)]
#[path = "ssim_tests.rs"]
mod tests;
