//! Segments reported as soon as a muxer has closed (and renamed) them, through FFmpeg's
//! `io_open`/`io_close` callbacks, so they can be uploaded while the rest is encoded.

use std::ffi::{CStr, c_char, c_int};
use std::path::{Path, PathBuf};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ffmpeg::format;
use ffmpeg_next as ffmpeg;

use super::Ready;

/// Watches the files a muxer writes, through its `io_open`/`io_close2` callbacks, and
/// reports each media file once it is complete. FFmpeg's HLS and DASH muxers write
/// files under a temporary `.tmp` name and rename them after closing: those are
/// reported once the final name exists ([`FileWatch::settle`], called after writes).
pub(super) struct FileWatch {
    state: Mutex<WatchState>,
    ready: Ready,
}

#[derive(Default)]
pub(super) struct WatchState {
    /// Open for writing: AVIOContext address → path.
    open: HashMap<usize, PathBuf>,
    /// Closed under a temporary name: the final name to wait for.
    renaming: Vec<PathBuf>,
}

impl FileWatch {
    pub(super) fn new(ready: Ready) -> Self {
        FileWatch { state: Mutex::new(WatchState::default()), ready }
    }

    fn state(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Route a muxer's file opening and closing through this watch. The muxer copies
    /// the callbacks and `opaque` into the muxers it nests (segments, fragments).
    pub(super) fn attach(self: &Arc<Self>, muxer: &mut format::context::Output) {
        // SAFETY: plain fields of a muxer before its header is written. `opaque` points
        // at this watch, which the package keeps alive (in `Muxers`) as long as the muxer.
        unsafe {
            let ctx = muxer.as_mut_ptr();
            (*ctx).opaque = Arc::as_ptr(self) as *mut std::ffi::c_void;
            (*ctx).io_open = Some(watch_open);
            (*ctx).io_close2 = Some(watch_close);
        }
    }

    fn opened(&self, pb: *mut ffmpeg::ffi::AVIOContext, path: PathBuf) {
        self.state().open.insert(pb as usize, path);
    }

    fn closed(&self, pb: *mut ffmpeg::ffi::AVIOContext) {
        let Some(path) = self.state().open.remove(&(pb as usize)) else { return };
        let text = path.to_string_lossy();
        if let Some(final_name) = text.strip_suffix(".tmp") {
            self.state().renaming.push(PathBuf::from(final_name));
        } else if is_media(&path) {
            (self.ready)(path);
        }
    }

    /// Report the files whose rename has happened.
    pub(super) fn settle(&self) {
        let done: Vec<PathBuf> = {
            let mut state = self.state();
            if state.renaming.is_empty() {
                return;
            }
            let (done, waiting): (Vec<PathBuf>, Vec<PathBuf>) = state.renaming.drain(..).partition(|p| p.exists());
            state.renaming = waiting;
            done
        };
        for path in done.into_iter().filter(|p| is_media(p)) {
            (self.ready)(path);
        }
    }
}

/// Segments and init segments; playlists and manifests are uploaded at the end, once
/// every segment they name is in place.
pub(super) fn is_media(path: &Path) -> bool {
    !path.extension().is_some_and(|e| e == "m3u8" || e == "mpd")
}

/// `io_open` for watched muxers: FFmpeg's own file opening, remembered.
pub(super) unsafe extern "C" fn watch_open(
    s: *mut ffmpeg::ffi::AVFormatContext,
    pb: *mut *mut ffmpeg::ffi::AVIOContext,
    url: *const c_char,
    flags: c_int,
    options: *mut *mut ffmpeg::ffi::AVDictionary,
) -> c_int {
    // SAFETY: FFmpeg calls this with its own valid context, output pointer and URL.
    unsafe {
        let status = ffmpeg::ffi::avio_open2(pb, url, flags, &(*s).interrupt_callback, options);
        if status >= 0 && flags & ffmpeg::ffi::AVIO_FLAG_WRITE != 0 && !(*s).opaque.is_null() {
            let watch = &*((*s).opaque as *const FileWatch);
            let path = PathBuf::from(CStr::from_ptr(url).to_string_lossy().into_owned());
            watch.opened(*pb, path);
        }
        status
    }
}

/// `io_close2` for watched muxers: close, then report the file if it is complete.
pub(super) unsafe extern "C" fn watch_close(s: *mut ffmpeg::ffi::AVFormatContext, pb: *mut ffmpeg::ffi::AVIOContext) -> c_int {
    // SAFETY: FFmpeg hands over a context it opened through `watch_open`.
    unsafe {
        let status = ffmpeg::ffi::avio_close(pb);
        if !(*s).opaque.is_null() {
            let watch = &*((*s).opaque as *const FileWatch);
            watch.closed(pb);
        }
        status
    }
}
