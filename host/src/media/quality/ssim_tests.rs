//! The figures are libvmaf's: each case scores the same pair with libvmaf's own
//! `float_ssim` extractor and with [`Ssim`], at sizes that take every path (no box, a box
//! of 2 with an odd width, 3 with weights that are not powers of two, 4 at 1080p) and at
//! 10 bits.

use super::super::libvmaf::{Features, Layout, SSIM, Scorer};
use super::{Luma, Ssim};

/// A picture with texture, edges and flat areas: a gradient, a checkerboard and noise.
fn reference(width: usize, height: usize, bits: u32) -> Vec<u16> {
    let peak = (1u32 << bits) - 1;
    let mut state = 0x2545_f491_u32;
    let mut samples = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let flat = x < width / 5;
            let value = if flat {
                peak / 3
            } else {
                let gradient = (x * 3 + y) as u32 % (peak + 1);
                let board = if (x / 16 + y / 16) % 2 == 0 { peak / 8 } else { 0 };
                (gradient / 2 + board + state % (peak / 16 + 1)).min(peak)
            };
            samples.push(value as u16);
        }
    }
    samples
}

/// The reference blurred across, darkened a little and with noise of its own: a
/// picture a coarse encoder could give back.
fn distorted(reference: &[u16], width: usize, bits: u32) -> Vec<u16> {
    let peak = (1u32 << bits) - 1;
    let mut state = 0x9e37_79b9_u32;
    reference
        .iter()
        .enumerate()
        .map(|(at, &sample)| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let next = if (at + 1) % width == 0 { sample } else { reference[at + 1] };
            let blurred = (u32::from(sample) + u32::from(next)) / 2;
            let noise = state % (peak / 32 + 1);
            (blurred * 15 / 16 + noise).min(peak) as u16
        })
        .collect()
}

fn bytes(samples: &[u16], bits: u32) -> Vec<u8> {
    if bits > 8 { samples.iter().flat_map(|s| s.to_le_bytes()).collect() } else { samples.iter().map(|&s| s as u8).collect() }
}

fn libvmafs(reference: &[u8], distorted: &[u8], layout: Layout) -> f64 {
    let features = Features { model: None, psnr: false, ssim: true };
    let mut scorer = Scorer::new(&features, layout, 0, 1).expect("a libvmaf context");
    let chroma = vec![0u8; layout.width as usize * 2];
    let row_bytes = layout.width as usize * layout.sample_bytes();
    scorer
        .push(&mut |is_reference, plane, row, line| {
            if plane == 0 {
                let picture = if is_reference { reference } else { distorted };
                line.copy_from_slice(&picture[row * row_bytes..(row + 1) * row_bytes]);
            } else {
                line.copy_from_slice(&chroma[..line.len()]);
            }
        })
        .expect("a pair read");
    scorer.flush().expect("flushed");
    scorer.feature_at(SSIM, 0).expect("libvmaf's SSIM")
}

fn agrees(width: usize, height: usize, bits: u32) {
    let samples = reference(width, height, bits);
    let (reference, distorted) = (bytes(&samples, bits), bytes(&distorted(&samples, width, bits), bits));
    let layout = Layout { width: width as u32, height: height as u32, bits };
    let theirs = libvmafs(&reference, &distorted, layout);
    let stride = width * layout.sample_bytes();
    let mut ssim = Ssim::new(width, height, bits).expect("a size SSIM takes");
    let ours = ssim.score(Luma { data: &reference, stride }, Luma { data: &distorted, stride }).expect("scored");
    assert!(theirs > 0.3 && theirs < 0.99, "the pair is neither identical nor unrelated: {theirs}");
    assert!((ours - theirs).abs() <= 1e-6, "{width}x{height} at {bits} bits: ours {ours}, libvmaf's {theirs}");
    // The same meter scores the next pair from scratch: a picture against itself.
    let again = ssim.score(Luma { data: &reference, stride }, Luma { data: &reference, stride }).expect("scored");
    assert!((again - 1.0).abs() < 1e-6, "a picture against itself: {again}");
}

#[test]
fn full_hd_boxes_of_four_agree_with_libvmaf() {
    agrees(1920, 1080, 8);
}

#[test]
fn boxes_of_three_weigh_each_sample_as_libvmaf_does() {
    agrees(1280, 720, 8);
}

#[test]
fn ten_bit_pictures_agree_with_libvmaf() {
    agrees(1280, 720, 10);
    agrees(1920, 1080, 10);
}

#[test]
fn an_odd_width_keeps_libvmafs_extra_column() {
    agrees(999, 577, 8);
}

#[test]
fn small_pictures_are_not_decimated() {
    agrees(300, 200, 8);
}

#[test]
fn a_picture_too_small_for_the_window_is_refused() {
    assert!(Ssim::new(10, 64, 8).is_err());
}
