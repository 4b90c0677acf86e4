//! libvmaf, Netflix's reference implementation of VMAF, behind a safe face: a scorer
//! takes pairs of pictures (reference, distorted) and gives back per-frame and pooled
//! scores. libvmaf is built from its vendored source with the models compiled in, so no
//! model file is read at run time (the engine's process could not read one anyway).
//!
//! PSNR comes from libvmaf's own feature extractor (`psnr`), the one `ffmpeg -lavfi
//! libvmaf=feature=name=psnr` runs: the figures are the reference implementation's. Its
//! `float_ssim` extractor can be asked for too; the tests of [`super::ssim`] hold that
//! module's figures to it.

use std::ffi::{CStr, CString};
use std::ptr;

use vmaf_head_sys as sys;

/// What libvmaf refused, named by the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("libvmaf: {step} failed ({code})")]
pub struct VmafError {
    step: &'static str,
    code: i32,
}

fn check(step: &'static str, code: i32) -> Result<(), VmafError> {
    if code < 0 { Err(VmafError { step, code }) } else { Ok(()) }
}

/// The layout of the pictures a scorer takes: planar YUV 4:2:0, 8 or 10 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// Bits per component: 8, or 10 (two bytes a sample, little-endian).
    pub bits: u32,
}

impl Layout {
    /// Bytes per sample.
    pub fn sample_bytes(&self) -> usize {
        if self.bits > 8 { 2 } else { 1 }
    }

    /// Width and height of plane `plane` in libvmaf's pictures (0: luma; 1, 2: chroma at
    /// half size, rounded down). FFmpeg rounds an odd size's chroma up: its last column
    /// and row are not libvmaf's, and filling them overran its pictures.
    pub fn plane_size(&self, plane: usize) -> (usize, usize) {
        if plane == 0 {
            (self.width as usize, self.height as usize)
        } else {
            ((self.width / 2) as usize, (self.height / 2) as usize)
        }
    }
}

/// What a scorer computes besides nothing: VMAF with one of the built-in models, and
/// the PSNR and SSIM extractors.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// A built-in model's version (`vmaf_v0.6.1`, `vmaf_4k_v0.6.1`).
    pub model: Option<&'static str>,
    pub psnr: bool,
    pub ssim: bool,
}

/// Feature names libvmaf records per frame.
pub const PSNR_Y: &CStr = c"psnr_y";
pub const PSNR_CB: &CStr = c"psnr_cb";
pub const PSNR_CR: &CStr = c"psnr_cr";
pub const SSIM: &CStr = c"float_ssim";

/// How per-frame scores are pooled over the whole output.
#[derive(Debug, Clone, Copy)]
pub enum Pool {
    Mean,
    HarmonicMean,
    Min,
}

impl Pool {
    fn method(self) -> sys::VmafPoolingMethod {
        match self {
            Pool::Mean => sys::VmafPoolingMethod_VMAF_POOL_METHOD_MEAN,
            Pool::HarmonicMean => sys::VmafPoolingMethod_VMAF_POOL_METHOD_HARMONIC_MEAN,
            Pool::Min => sys::VmafPoolingMethod_VMAF_POOL_METHOD_MIN,
        }
    }
}

/// One libvmaf context: the pictures of one output against its reference.
pub struct Scorer {
    context: *mut sys::VmafContext,
    model: *mut sys::VmafModel,
    layout: Layout,
    /// Pairs read so far; the next pair's index.
    frames: u32,
    flushed: bool,
}

// SAFETY: the context and model are owned by this value alone and libvmaf keeps no
// thread-local state for them; moving them to another thread between calls is what its
// own command-line tool does with its worker threads.
unsafe impl Send for Scorer {}

impl Scorer {
    /// A scorer of `features` on pictures of `layout`, extracting on `threads` threads
    /// (0: on the calling thread). At most a few pairs are in flight: [`Self::push`]
    /// waits for a free picture, so a fast decoder never piles frames up in memory.
    pub fn new(features: &Features, layout: Layout, threads: u32, subsample: u32) -> Result<Scorer, VmafError> {
        let config = sys::VmafConfiguration {
            log_level: sys::VmafLogLevel_VMAF_LOG_LEVEL_NONE,
            n_threads: threads,
            n_subsample: subsample.max(1),
            cpumask: 0,
            gpumask: 0,
        };
        let mut scorer = Scorer { context: ptr::null_mut(), model: ptr::null_mut(), layout, frames: 0, flushed: false };
        // SAFETY: `context` is an out-pointer libvmaf fills; on failure it stays null and
        // Drop skips it.
        check("opening a context", unsafe { sys::vmaf_init(&mut scorer.context, config) })?;
        if let Some(version) = features.model {
            let version = CString::new(version).map_err(|_| VmafError { step: "naming the model", code: -22 })?;
            let mut model_config = sys::VmafModelConfig { name: c"vmaf".as_ptr(), flags: u64::from(sys::VmafModelFlags_VMAF_MODEL_FLAGS_DEFAULT) };
            // SAFETY: the config and version string outlive the call; libvmaf copies what
            // it keeps. A built-in model is looked up by version, no file is read.
            check("loading the model", unsafe { sys::vmaf_model_load(&mut scorer.model, &mut model_config, version.as_ptr()) })?;
            // SAFETY: both were opened above and are alive.
            check("registering the model's features", unsafe { sys::vmaf_use_features_from_model(scorer.context, scorer.model) })?;
        }
        if features.psnr {
            // SAFETY: a live context and a static name; no options (null dictionary).
            check("registering PSNR", unsafe { sys::vmaf_use_feature(scorer.context, c"psnr".as_ptr(), ptr::null_mut()) })?;
        }
        if features.ssim {
            // SAFETY: as above.
            check("registering SSIM", unsafe { sys::vmaf_use_feature(scorer.context, SSIM.as_ptr(), ptr::null_mut()) })?;
        }
        if threads > 0 {
            // Two pictures a pair, a pair per thread in flight, and the two previous
            // references the motion feature keeps.
            let pool = sys::VmafPictureConfiguration {
                pic_params: sys::VmafPictureConfiguration__bindgen_ty_1 {
                    w: layout.width,
                    h: layout.height,
                    bpc: layout.bits,
                    pix_fmt: sys::VmafPixelFormat_VMAF_PIX_FMT_YUV420P,
                },
                pic_cnt: threads * 2 + 4,
            };
            // SAFETY: a live context; the pool belongs to it and is freed by vmaf_close.
            check("preparing its pictures", unsafe { sys::vmaf_preallocate_pictures(scorer.context, pool) })?;
        }
        Ok(scorer)
    }

    /// Read one pair; `fill(plane, row, bytes)` writes each row of each plane of the
    /// reference (`reference == true`) and the distorted picture.
    pub fn push(&mut self, fill: &mut dyn FnMut(bool, usize, usize, &mut [u8])) -> Result<(), VmafError> {
        let mut reference = self.picture()?;
        let mut distorted = match self.picture() {
            Ok(picture) => picture,
            Err(err) => {
                // SAFETY: a picture this scorer fetched and never gave to libvmaf.
                unsafe { sys::vmaf_picture_unref(&mut reference) };
                return Err(err);
            }
        };
        for (is_reference, picture) in [(true, &mut reference), (false, &mut distorted)] {
            for plane in 0..3 {
                let (width, height) = self.layout.plane_size(plane);
                let row_bytes = width * self.layout.sample_bytes();
                for row in 0..height {
                    // SAFETY: libvmaf allocated the plane with `stride` bytes a row (at
                    // least `row_bytes`) for `height` rows of this layout; the slice
                    // covers one row and lives only for this call of `fill`.
                    let line = unsafe {
                        let start = picture.data[plane].cast::<u8>().offset(picture.stride[plane] * row as isize);
                        std::slice::from_raw_parts_mut(start, row_bytes)
                    };
                    fill(is_reference, plane, row, line);
                }
            }
        }
        // SAFETY: both pictures are filled and of this context's layout; libvmaf takes
        // them over (it unreferences them whatever it answers).
        let read = unsafe { sys::vmaf_read_pictures(self.context, &mut reference, &mut distorted, self.frames) };
        check("reading a picture", read)?;
        self.frames += 1;
        Ok(())
    }

    fn picture(&mut self) -> Result<sys::VmafPicture, VmafError> {
        // SAFETY: VmafPicture is plain data; all zeroes is its "empty" state.
        let mut picture: sys::VmafPicture = unsafe { std::mem::zeroed() };
        let Layout { width, height, bits } = self.layout;
        // SAFETY: `picture` is an out-pointer. From the pool when the context has
        // threads (waits for a free one), else freshly allocated.
        let code = unsafe {
            let pooled = sys::vmaf_fetch_preallocated_picture(self.context, &mut picture);
            if pooled < 0 { sys::vmaf_picture_alloc(&mut picture, sys::VmafPixelFormat_VMAF_PIX_FMT_YUV420P, bits, width, height) } else { pooled }
        };
        check("allocating a picture", code)?;
        Ok(picture)
    }

    /// Let every extractor finish; scores can be read after this.
    pub fn flush(&mut self) -> Result<(), VmafError> {
        if !self.flushed {
            self.flushed = true;
            // SAFETY: a live context; two nulls ask it to flush.
            check("finishing", unsafe { sys::vmaf_read_pictures(self.context, ptr::null_mut(), ptr::null_mut(), 0) })?;
        }
        Ok(())
    }

    /// The model's score of frame `index` (after [`Self::flush`]).
    pub fn vmaf_at(&mut self, index: u32) -> Result<f64, VmafError> {
        let mut score = 0.0;
        // SAFETY: a live, flushed context and its model; `score` is an out-pointer.
        check("scoring a frame", unsafe { sys::vmaf_score_at_index(self.context, self.model, &mut score, index) })?;
        Ok(score)
    }

    /// The model's score pooled over every frame.
    pub fn vmaf_pooled(&mut self, pool: Pool) -> Result<f64, VmafError> {
        let mut score = 0.0;
        let last = self.frames.saturating_sub(1);
        // SAFETY: as in `vmaf_at`.
        check("pooling the scores", unsafe { sys::vmaf_score_pooled(self.context, self.model, pool.method(), &mut score, 0, last) })?;
        Ok(score)
    }

    /// A feature's value at frame `index`.
    pub fn feature_at(&self, name: &CStr, index: u32) -> Result<f64, VmafError> {
        let mut score = 0.0;
        // SAFETY: a live context and a NUL-terminated name; `score` is an out-pointer.
        check("reading a feature", unsafe { sys::vmaf_feature_score_at_index(self.context, name.as_ptr(), &mut score, index) })?;
        Ok(score)
    }
}

impl Drop for Scorer {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was opened by `new` and is closed once here;
        // closing waits for the extractor threads.
        unsafe {
            if !self.context.is_null() {
                sys::vmaf_close(self.context);
            }
            if !self.model.is_null() {
                sys::vmaf_model_destroy(self.model);
            }
        }
    }
}

/// libvmaf's version, for the metadata.
pub fn version() -> String {
    // SAFETY: a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::vmaf_version()) }.to_string_lossy().into_owned()
}

#[cfg(test)]
#[path = "libvmaf_tests.rs"]
mod tests;
