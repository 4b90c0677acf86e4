//! FFmpeg's one-time set-up for the whole process, and its log messages routed into
//! `tracing` (where the decode also learns that a picture was refused for its size).

use ffmpeg_next as ffmpeg;

/// Initialise FFmpeg once, with its messages going through `tracing`.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(err) = ffmpeg::init() {
            tracing::error!(%err, "FFmpeg failed to initialise");
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Warning);
        // SAFETY: installs a callback that only formats and forwards each message.
        unsafe { ffmpeg::ffi::av_log_set_callback(Some(log_to_tracing)) };
    });
}

/// FFmpeg's own messages, as events of target `ffmpeg`: its errors are warnings here
/// (the engine reports what failed, with context; FFmpeg's line is the detail), its
/// warnings debug. A damaged input makes hundreds of them, so they are only formatted
/// when someone listens, or when the message is a decoder refusing a picture for
/// `max_pixels`, which is how the decode learns of it (see [`super::decode_limits`]).
unsafe extern "C" fn log_to_tracing(
    context: *mut std::ffi::c_void,
    level: std::ffi::c_int,
    format: *const std::ffi::c_char,
    args: *mut ffmpeg::ffi::__va_list_tag,
) {
    let error = level <= ffmpeg::ffi::AV_LOG_ERROR;
    // SAFETY: FFmpeg passes a NUL-terminated format string (or null).
    let refusal = error && unsafe { super::decode_limits::is_pixel_refusal(format) };
    let listened = if error {
        tracing::enabled!(target: "ffmpeg", tracing::Level::WARN)
    } else {
        tracing::enabled!(target: "ffmpeg", tracing::Level::DEBUG)
    };
    if !refusal && (!listened || level > ffmpeg::ffi::AV_LOG_WARNING) {
        return;
    }
    let mut line = [0 as std::ffi::c_char; 1024];
    let mut print_prefix: std::ffi::c_int = 1;
    // SAFETY: FFmpeg's own formatter, writing a NUL-terminated line of at most
    // `line.len()`; `args` is read once, here.
    let text = unsafe {
        ffmpeg::ffi::av_log_format_line2(context, level, format, args, line.as_mut_ptr(), line.len() as i32, &mut print_prefix);
        std::ffi::CStr::from_ptr(line.as_ptr()).to_string_lossy()
    };
    if refusal {
        // SAFETY: `context` is the context FFmpeg logged with.
        unsafe { super::decode_limits::note_pixel_refusal(context, &text) };
    }
    let text = text.trim_end();
    if !listened || text.is_empty() {
        return;
    }
    // FFmpeg's messages quote the input's bytes (tags, names): escaped, so a file
    // cannot write a log line of its own.
    let text = text.escape_debug();
    if error {
        tracing::warn!(target: "ffmpeg", "{text}");
    } else {
        tracing::debug!(target: "ffmpeg", "{text}");
    }
}
