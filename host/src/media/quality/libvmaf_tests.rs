use super::{Features, Layout, PSNR_CB, PSNR_Y, Scorer};

/// Pictures whose luma is a gradient, shifted by `shift` in the distorted one, and
/// whose chroma is flat.
fn fill(shift: usize) -> impl FnMut(bool, usize, usize, &mut [u8]) {
    move |is_reference, plane, row, line| {
        let shift = if is_reference { 0 } else { shift };
        for (x, sample) in line.iter_mut().enumerate() {
            *sample = if plane == 0 { ((x + row + shift) % 251) as u8 } else { 128 };
        }
    }
}

#[test]
fn odd_sized_pictures_fill_only_libvmafs_planes() {
    // FFmpeg's chroma of an odd size has one more row and column than libvmaf's: filling
    // that row overran libvmaf's picture (a crash, or a corrupted heap).
    for (width, height) in [(999, 577), (998, 577), (999, 576)] {
        let layout = Layout { width, height, bits: 8 };
        let features = Features { model: Some("vmaf_v0.6.1"), psnr: true, ssim: false };
        let mut scorer = Scorer::new(&features, layout, 0, 1).expect("a libvmaf context");
        for _ in 0..3 {
            scorer.push(&mut fill(3)).expect("a pair read");
        }
        scorer.flush().expect("flushed");
        let vmaf = scorer.vmaf_at(1).expect("a score");
        assert!(vmaf > 0.0 && vmaf < 100.0, "{width}x{height}: VMAF {vmaf}");
        assert!(scorer.feature_at(PSNR_Y, 1).expect("PSNR") < 60.0, "the luma differs");
        assert!(scorer.feature_at(PSNR_CB, 1).expect("PSNR") >= 60.0, "the chroma is the same (PSNR at its cap)");
    }
}
