//! Opening an input so that FFmpeg reads the one local file the host gave it and
//! nothing else: no nested http/hls/dash fetches and no other local file, whatever
//! the file says (an HLS playlist naming `http://127.0.0.1/...` or `/etc/passwd` as
//! segments, a concat script, an IMF composition).
//!
//! Three locks, each enough for what it covers:
//! - `protocol_whitelist=file`: nothing is fetched over a network protocol, by this
//!   context or by the nested ones demuxers open (they copy the whitelist);
//! - `format_whitelist`: every demuxer except those that open other resources by
//!   themselves (playlists, manifests, scripts, network sessions), so such a file is
//!   refused before its header is read;
//! - an `io_open` callback that opens only the exact URL the host asked for: every
//!   other open a demuxer asks for through the context (HLS segments and keys, DASH
//!   fragments, MOV external references) is refused.
//!
//! The host's own outputs are described through [`open_own_output`]: a package's
//! master playlist may read the playlists and segments below its own directory, and
//! nothing else.

use std::ffi::{CStr, CString, c_char, c_int};
use std::path::Path;
use std::ptr;
use std::sync::OnceLock;

use ffmpeg::ffi::{AVDictionary, AVFormatContext, AVIOContext};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;

/// Which demuxers a file may be read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Demuxers {
    /// An input: none that opens resources of its own (other files, URLs, devices,
    /// sessions).
    Media,
    /// A package the host made itself: HLS and DASH too, whose playlists name its own
    /// segments.
    Package,
}

impl Demuxers {
    fn denied(self) -> &'static [&'static str] {
        match self {
            Demuxers::Media => &["hls", "dash", "concat", "imf", "lavfi", "sdp", "rtsp", "rtp", "libcdio", "webm_dash_manifest"],
            Demuxers::Package => &["concat", "imf", "lavfi", "sdp", "rtsp", "rtp", "libcdio", "webm_dash_manifest"],
        }
    }
}

/// The signature of `AVFormatContext.io_open`.
type IoOpen = unsafe extern "C" fn(*mut AVFormatContext, *mut *mut AVIOContext, *const c_char, c_int, *mut *mut AVDictionary) -> c_int;

/// What the `io_open` callback allows, reached through the context's `opaque`.
struct Guard {
    /// The URL the host opened.
    url: CString,
    /// A directory (absolute, ending in `/`) whose files may be opened too; `None` for
    /// an input, which may open nothing but itself.
    below: Option<Vec<u8>>,
    /// libavformat's own `io_open`, which does the opening once allowed.
    default_open: IoOpen,
}

impl Guard {
    /// Whether a URL a demuxer asks for may be opened.
    fn allows(&self, url: &CStr) -> bool {
        if url == self.url.as_c_str() {
            return true;
        }
        let Some(dir) = &self.below else { return false };
        let bytes = url.to_bytes();
        let path = bytes.strip_prefix(b"file:").unwrap_or(bytes);
        path.starts_with(dir) && !path.split(|b| *b == b'/').any(|part| part == b"..")
    }
}

/// An input context confined to its file. Derefs to ffmpeg-next's `Input`; the guard
/// its `io_open` callback reads lives exactly as long as the context.
pub(super) struct LocalInput {
    // Declared first: dropped (the context closed) before the guard it points to.
    input: ffmpeg::format::context::Input,
    _guard: Box<Guard>,
}

impl std::ops::Deref for LocalInput {
    type Target = ffmpeg::format::context::Input;

    fn deref(&self) -> &Self::Target {
        &self.input
    }
}

impl std::ops::DerefMut for LocalInput {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.input
    }
}

/// Bytes of an input read to find its streams (FFmpeg's `probesize`): a bounded prefix,
/// whatever the file is.
const PROBE_BYTES: &str = "5000000";
/// Microseconds of an input analysed to find its streams (`analyzeduration`).
const PROBE_MICROS: &str = "10000000";
/// Streams a file may have; FFmpeg probes (and decodes a frame of) each.
const MAX_STREAMS: &str = "64";

/// Open a local file for demuxing, confined to it (see the module's notes), and read
/// its stream information from a bounded prefix, decoding no picture above the
/// limits' `max_pixels`.
pub(super) fn open_local(path: &Path, limits: &super::decode_limits::DecodeLimits) -> Result<LocalInput, MediaError> {
    if let Some(refused) = reference_file(path) {
        return Err(refused);
    }
    open_with(path, Locks { deny: Some(Demuxers::Media), io_open: true, below: None }, Some(limits.ffmpeg_max_pixels()))
}

/// Open a file the host made itself (an output, or a package's master playlist or
/// manifest) to describe it: it may read the files below its own directory (a
/// package's playlists and segments), still nothing else and over no network.
pub(super) fn open_own_output(path: &Path) -> Result<LocalInput, MediaError> {
    use std::os::unix::ffi::OsStrExt;
    let open_error = |err: std::io::Error| MediaError::Open { path: path.display().to_string(), source: ffmpeg::Error::Other { errno: err.raw_os_error().unwrap_or(libc::ENOENT) } };
    let path = std::fs::canonicalize(path).map_err(open_error)?;
    let mut dir = path.parent().map(|d| d.as_os_str().as_bytes().to_vec()).unwrap_or_default();
    if !dir.ends_with(b"/") {
        dir.push(b'/');
    }
    open_with(&path, Locks { deny: Some(Demuxers::Package), io_open: true, below: Some(dir) }, None)
}

/// Which locks to set: outside tests, always a deny list and the `io_open` guard.
#[derive(Debug, Clone)]
struct Locks {
    /// Demuxers allowed (through `format_whitelist`); `None` for all.
    deny: Option<Demuxers>,
    /// Whether opens go through the guard.
    io_open: bool,
    /// A directory whose files the guard lets demuxers open too (with its `/`).
    below: Option<Vec<u8>>,
}

fn open_with(path: &Path, locks: Locks, max_pixels: Option<i64>) -> Result<LocalInput, MediaError> {
    use std::os::unix::ffi::OsStrExt;
    super::ffmpeg_init::init();
    let shown = path.display().to_string();
    let open_error = |source| MediaError::Open { path: shown.clone(), source };
    // `file:` so that no part of the path is read as another protocol's name.
    let mut url = b"file:".to_vec();
    url.extend_from_slice(path.as_os_str().as_bytes());
    let url = CString::new(url).map_err(|_| open_error(ffmpeg::Error::InvalidData))?;

    let mut options = ffmpeg::Dictionary::new();
    options.set("protocol_whitelist", "file");
    options.set("probesize", PROBE_BYTES);
    options.set("analyzeduration", PROBE_MICROS);
    options.set("max_streams", MAX_STREAMS);
    if let Some(deny) = locks.deny {
        options.set("format_whitelist", allowed_demuxers(deny));
    }

    // SAFETY: a fresh context from libavformat, or null when out of memory.
    let mut context = unsafe { ffmpeg::ffi::avformat_alloc_context() };
    if context.is_null() {
        return Err(open_error(ffmpeg::Error::Other { errno: libc::ENOMEM }));
    }
    let mut guard: Option<Box<Guard>> = None;
    if locks.io_open {
        // SAFETY: `context` is valid and not yet shared; `io_open` is set by
        // avformat_alloc_context to libavformat's default, which is kept to delegate to.
        // The guard is boxed, so its address (in `opaque`) stays put until it is dropped
        // after the context (see `LocalInput`) or on the failure paths below, after
        // avformat_open_input has freed the context.
        unsafe {
            let Some(default_open) = (*context).io_open else {
                ffmpeg::ffi::avformat_free_context(context);
                return Err(open_error(ffmpeg::Error::Bug));
            };
            let boxed = Box::new(Guard { url: url.clone(), below: locks.below.clone(), default_open });
            (*context).opaque = &*boxed as *const Guard as *mut libc::c_void;
            (*context).io_open = Some(confined_io_open);
            guard = Some(boxed);
        }
    }

    // SAFETY: `context` was allocated above (avformat_open_input frees it and nulls the
    // pointer on failure); `url` is valid; the dictionary is taken out of its owner and
    // what avformat_open_input leaves of it is handed back to one that frees it.
    let opened = unsafe {
        let mut raw_options = options.disown();
        let opened = ffmpeg::ffi::avformat_open_input(&mut context, url.as_ptr(), ptr::null(), &mut raw_options);
        drop(ffmpeg::Dictionary::own(raw_options));
        opened
    };
    if opened < 0 {
        return Err(open_error(ffmpeg::Error::from(opened)));
    }
    // The decoders that find stream information take the pixel limit too: one
    // dictionary per stream, freed after.
    // SAFETY: the context is open; `nb_streams` is its stream count.
    let streams = unsafe { (*context).nb_streams } as usize;
    let mut stream_options: Vec<*mut AVDictionary> = vec![ptr::null_mut(); streams];
    if let Some(max) = max_pixels {
        let value = CString::new(max.to_string()).expect("digits");
        for dict in stream_options.iter_mut() {
            // SAFETY: sets a key on a dictionary this function owns (created if null).
            unsafe { ffmpeg::ffi::av_dict_set(dict, c"max_pixels".as_ptr(), value.as_ptr(), 0) };
        }
    }
    let options_ptr = if stream_options.is_empty() { ptr::null_mut() } else { stream_options.as_mut_ptr() };
    // SAFETY: the context is open; `options_ptr` is null or holds one dictionary per
    // stream (as avformat_find_stream_info reads it); on failure the context is closed
    // here, exactly once.
    let found = unsafe { ffmpeg::ffi::avformat_find_stream_info(context, options_ptr) };
    for dict in stream_options.iter_mut() {
        // SAFETY: each dictionary is this function's, freed once.
        unsafe { ffmpeg::ffi::av_dict_free(dict) };
    }
    if found < 0 {
        // SAFETY: closes and frees the open context; the guard outlives it.
        unsafe { ffmpeg::ffi::avformat_close_input(&mut context) };
        return Err(open_error(ffmpeg::Error::from(found)));
    }
    let guard = guard.unwrap_or_else(|| Box::new(Guard { url, below: None, default_open: refuse_io_open }));
    // SAFETY: an open input context, now owned by `Input`, which closes it on drop.
    Ok(LocalInput { input: unsafe { ffmpeg::format::context::Input::wrap(context) }, _guard: guard })
}

/// A file that only points at other resources (a playlist, a manifest, a concat
/// script) is refused up front, in words a user can act on; the locks would refuse
/// what it points to anyway.
fn reference_file(path: &Path) -> Option<MediaError> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).ok()?;
    let text = String::from_utf8_lossy(&head[..read]);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let kind = if text.starts_with("#EXTM3U") {
        "an HLS playlist"
    } else if text.starts_with("ffconcat") {
        "an FFmpeg concat script"
    } else if (text.starts_with("<?xml") && text.contains("<MPD")) || text.starts_with("<MPD") {
        "a DASH manifest"
    } else {
        return None;
    };
    Some(MediaError::Unsupported(format!(
        "the input is {kind}, which names other files or URLs; Copra reads only the media file it downloaded and never fetches what an input points to: give the URL of a media file"
    )))
}

/// The `io_open` of a confined context: the URL the host opened is opened by
/// libavformat's default; anything else is refused with `EPERM`.
unsafe extern "C" fn confined_io_open(
    s: *mut AVFormatContext,
    pb: *mut *mut AVIOContext,
    url: *const c_char,
    flags: c_int,
    options: *mut *mut AVDictionary,
) -> c_int {
    // SAFETY: libavformat passes the context this callback was set on (or a nested one
    // that copied it, with the same `opaque`, or a null `opaque`), and a NUL-terminated
    // URL. The guard `opaque` points to outlives the context (see `open_with`).
    unsafe {
        let guard = (*s).opaque as *const Guard;
        if guard.is_null() || url.is_null() || !(*guard).allows(CStr::from_ptr(url)) {
            return refuse_io_open(s, pb, url, flags, options);
        }
        ((*guard).default_open)(s, pb, url, flags, options)
    }
}

/// Refuse an open, saying which URL the file tried to reach.
unsafe extern "C" fn refuse_io_open(
    _s: *mut AVFormatContext,
    _pb: *mut *mut AVIOContext,
    url: *const c_char,
    _flags: c_int,
    _options: *mut *mut AVDictionary,
) -> c_int {
    let wanted = if url.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string from libavformat, only read here.
        unsafe { CStr::from_ptr(url) }.to_string_lossy().into_owned()
    };
    // Written by the file's author: no query (a presigned signature), escaped.
    let shown = if wanted.contains("://") { crate::secret::redact_url(&wanted) } else { wanted.clone() };
    tracing::warn!(url = ?shown, "the input asked FFmpeg to open another resource; refused");
    -libc::EPERM
}

/// Every demuxer name of this libavformat except the denied ones, comma-separated.
fn allowed_demuxers(kind: Demuxers) -> &'static str {
    static MEDIA: OnceLock<String> = OnceLock::new();
    static PACKAGE: OnceLock<String> = OnceLock::new();
    let cache = match kind {
        Demuxers::Media => &MEDIA,
        Demuxers::Package => &PACKAGE,
    };
    let denied = kind.denied();
    cache.get_or_init(|| {
        let mut names = Vec::new();
        let mut state: *mut libc::c_void = ptr::null_mut();
        loop {
            // SAFETY: av_demuxer_iterate walks libavformat's static list with `state`.
            let format = unsafe { ffmpeg::ffi::av_demuxer_iterate(&mut state) };
            if format.is_null() {
                break;
            }
            // SAFETY: a static demuxer description with a NUL-terminated name.
            let name = unsafe { CStr::from_ptr((*format).name) }.to_string_lossy().into_owned();
            let aliases: Vec<&str> = name.split(',').collect();
            if aliases.iter().any(|alias| denied.contains(alias)) {
                continue;
            }
            names.extend(aliases.into_iter().map(str::to_string));
        }
        names.join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::process::Command;

    const ALL: Locks = Locks { deny: Some(Demuxers::Media), io_open: true, below: None };
    const NONE: Locks = Locks { deny: None, io_open: false, below: None };
    const IO_ONLY: Locks = Locks { deny: None, io_open: true, below: None };
    const FORMATS_ONLY: Locks = Locks { deny: Some(Demuxers::Media), io_open: false, below: None };

    /// A one-second MPEG-TS made with the ffmpeg command (only ever in tests).
    fn segment(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("segment.ts");
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1"])
            .args(["-c:v", "mpeg2video", "-f", "mpegts"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
        path
    }

    /// An HLS playlist (named `.m3u8`: FFmpeg detects HLS only by such a name, which the
    /// host never gives its input; the locks must hold regardless).
    fn playlist(dir: &Path, segment: &str) -> std::path::PathBuf {
        let path = dir.join("input.m3u8");
        let text = format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{segment}\n#EXT-X-ENDLIST\n");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_plain_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        let input = open_local(&segment(dir.path()), &crate::media::DecodeLimits::unlimited()).expect("a plain file opens");
        assert!(input.streams().count() >= 1);
    }

    #[test]
    fn a_playlist_pointing_at_a_url_makes_no_request() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/segment.ts", listener.local_addr().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let input = playlist(dir.path(), &url);
        for locks in [ALL, IO_ONLY, FORMATS_ONLY] {
            assert!(open_with(&input, locks.clone(), None).is_err(), "{locks:?}: the playlist opened");
        }
        assert!(listener.accept().is_err(), "a request reached the server");
    }

    #[test]
    fn a_playlist_pointing_at_another_local_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let segment = segment(dir.path());
        let input = playlist(dir.path(), &segment.display().to_string());
        // Without the locks, FFmpeg reads the other file: the playlist opens.
        assert!(open_with(&input, NONE, None).is_ok(), "the control case must open");
        assert!(open_with(&input, ALL, None).is_err());
        assert!(open_with(&input, IO_ONLY, None).is_err(), "io_open alone refuses the segment");
        assert!(open_with(&input, FORMATS_ONLY, None).is_err(), "the format lock alone refuses HLS");
    }

    #[test]
    fn a_playlist_is_refused_with_words_a_user_can_act_on() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input");
        std::fs::write(&input, "#EXTM3U\n#EXTINF:1.0,\nhttp://127.0.0.1:9/a.ts\n").unwrap();
        let Err(err) = open_local(&input, &crate::media::DecodeLimits::unlimited()) else { panic!("a playlist opened") };
        assert!(err.to_string().contains("HLS playlist"), "{err}");
    }

    #[test]
    fn a_concat_script_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        segment(dir.path());
        let input = dir.path().join("input");
        std::fs::write(&input, "ffconcat version 1.0\nfile segment.ts\n").unwrap();
        assert!(open_with(&input, NONE, None).is_ok(), "the control case must open");
        assert!(open_with(&input, ALL, None).is_err());
    }

    #[test]
    fn the_hosts_own_package_opens_but_reaches_nothing_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        let package = dir.path().join("package/hls");
        std::fs::create_dir_all(package.join("360p")).unwrap();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2"])
            .args(["-c:v", "mpeg2video", "-f", "hls", "-hls_time", "1", "-hls_list_size", "0"])
            .arg(package.join("360p/index.m3u8"))
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
        let master = package.join("master.m3u8");
        std::fs::write(&master, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=160x120\n360p/index.m3u8\n").unwrap();
        let opened = open_own_output(&master).expect("the host's own package opens");
        assert!(opened.streams().count() >= 1);
        assert!(open_local(&master, &crate::media::DecodeLimits::unlimited()).is_err(), "as an input, a playlist is refused");

        // A playlist in the package naming a file outside it, or a URL.
        let outside = segment(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/segment.ts", listener.local_addr().unwrap());
        for target in [outside.display().to_string(), "../../segment.ts".to_string(), url] {
            let media = format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{target}\n#EXT-X-ENDLIST\n");
            std::fs::write(package.join("360p/evil.m3u8"), media).unwrap();
            assert!(open_own_output(&package.join("360p/evil.m3u8")).is_err(), "{target} was opened");
        }
        assert!(listener.accept().is_err(), "a request reached the server");
    }

    #[test]
    fn the_guard_allows_its_file_and_what_is_below_its_directory() {
        let guard = |below: Option<&str>| Guard {
            url: CString::new("file:/w/job/hls/master.m3u8").unwrap(),
            below: below.map(|b| b.as_bytes().to_vec()),
            default_open: refuse_io_open,
        };
        let c = |s: &str| CString::new(s).unwrap();
        assert!(guard(None).allows(&c("file:/w/job/hls/master.m3u8")));
        assert!(!guard(None).allows(&c("file:/w/job/hls/360p/index.m3u8")));
        let package = guard(Some("/w/job/hls/"));
        assert!(package.allows(&c("file:/w/job/hls/360p/index.m3u8")));
        assert!(package.allows(&c("/w/job/hls/360p/seg_1.ts")));
        assert!(!package.allows(&c("file:/w/job/hls/../../other/input")));
        assert!(!package.allows(&c("file:/w/job/hlsx/a.ts")));
        assert!(!package.allows(&c("http://127.0.0.1/w/job/hls/a.ts")));
        assert!(!package.allows(&c("file:/etc/passwd")));
    }
}
