//! Adaptive streaming: a ladder encoded once and packaged as HLS and/or DASH.
//!
//! Every video rung runs on a lane of its own (filter graph and encoder), fed with the
//! shared decoded frames; each distinct audio rendition is encoded once, on this
//! output's own lane. Each encoded packet goes to every package at once: FFmpeg's `hls`
//! muxer (one per rendition, MPEG-TS or fMP4 segments and a media playlist) and its
//! `dash` muxer (all renditions, one MPD). Keyframes are forced at the same instants
//! in every rung, so segments line up and players can switch at any boundary.
//!
//! Segments are reported as soon as the muxer has closed (and renamed) them, so they
//! can be uploaded while the rest is encoded. The HLS master playlist is written here
//! at the end, from the bitrates the segments actually have.

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ffmpeg::{Rational, format, frame};
use ffmpeg_next as ffmpeg;

use super::MediaError;
use super::codecs::codec_string;
use super::encode::{AudioEncoder, VideoEncoder, VideoSetup};
use super::engine::{Flow, Lane, Produced, Sink};
use super::file::{add_stream, set_codec_tag, write_packet};
use super::input::{AudioFormat, VideoFormat};
use crate::types::{AudioPlan, StreamPlan, TimeRange, VideoPlan};

/// What a finished package is made of, relative to the output's directory.
#[derive(Debug, Clone)]
pub struct Package {
    /// Every file, segments first and playlists/manifests last, so that a player never
    /// finds a playlist whose segments are not there yet.
    pub files: Vec<PathBuf>,
    /// `hls/master.m3u8`, when HLS was asked for.
    pub hls_master: Option<PathBuf>,
    /// `dash/master.mpd`, when DASH was asked for.
    pub dash_manifest: Option<PathBuf>,
}

/// Called with each finished segment's path, from whichever thread closed it.
pub(super) type Ready = Box<dyn Fn(PathBuf) + Send + Sync>;

pub(super) const HLS_MASTER: &str = "master.m3u8";
pub(super) const DASH_MANIFEST: &str = "master.mpd";
const MEDIA_PLAYLIST: &str = "index.m3u8";

/// One encoded stream of the package, as the master playlist describes it.
#[derive(Debug, Clone)]
struct Rendition {
    /// Directory name under `hls/`.
    name: String,
    codec: Option<String>,
    /// For video.
    size: Option<(u32, u32)>,
    frame_rate: Option<f64>,
    channels: Option<u32>,
}

/// Bytes per segment-long window of one rendition, for peak and average bitrates.
#[derive(Debug, Default, Clone)]
struct Meter {
    windows: Vec<u64>,
    end: f64,
}

impl Meter {
    fn add(&mut self, bytes: usize, seconds: f64, duration: f64, segment: f64) {
        let window = ((seconds.max(0.0) + 1e-3) / segment) as usize;
        if self.windows.len() <= window {
            self.windows.resize(window + 1, 0);
        }
        self.windows[window] += bytes as u64;
        self.end = self.end.max(seconds + duration);
    }

    /// (peak, average) in bits per second, scaled by the container's overhead.
    fn rates(&self, segment: f64, overhead: f64) -> (u64, u64) {
        let total: u64 = self.windows.iter().sum();
        let duration = self.end.max(1e-3);
        let last = self.windows.len().saturating_sub(1);
        let peak = self
            .windows
            .iter()
            .enumerate()
            .map(|(i, &bytes)| {
                // The last window is as long as what is left, not a full segment.
                let length = if i == last { (duration - segment * i as f64).max(segment / 4.0) } else { segment };
                bytes as f64 * 8.0 / length
            })
            .fold(0.0, f64::max);
        let average = total as f64 * 8.0 / duration;
        ((peak * overhead).round() as u64, (average * overhead).round() as u64)
    }
}

/// The package's muxers, shared by the rung lanes (each packet is written under the lock).
struct Muxers {
    /// One `hls` muxer per rendition, in rendition order.
    hls: Vec<format::context::Output>,
    dash: Option<format::context::Output>,
    meters: Vec<Meter>,
    segment: f64,
    watch: Arc<FileWatch>,
}

impl Muxers {
    /// Write one packet of rendition `r` (in `time_base`) to every package.
    fn write(&mut self, r: usize, packet: &mut ffmpeg::Packet, time_base: Rational) -> Result<(), MediaError> {
        let seconds = packet.pts().or(packet.dts()).map_or(0.0, |t| t as f64 * f64::from(time_base));
        let duration = packet.duration() as f64 * f64::from(time_base);
        if let Some(meter) = self.meters.get_mut(r) {
            meter.add(packet.size(), seconds, duration, self.segment);
        }
        if let Some(muxer) = self.hls.get_mut(r) {
            let mut copy = packet.clone();
            write_packet(muxer, 0, &mut copy, time_base)?;
        }
        if let Some(muxer) = self.dash.as_mut() {
            write_packet(muxer, r, packet, time_base)?;
        }
        self.watch.settle();
        Ok(())
    }
}

fn lock(muxers: &Mutex<Muxers>) -> MutexGuard<'_, Muxers> {
    muxers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A video rung on its own lane: graph and encoder, packets into the shared muxers.
struct RungSink {
    rendition: usize,
    encoder: VideoEncoder,
    muxers: Arc<Mutex<Muxers>>,
}

impl Sink for RungSink {
    type Done = ();

    fn wants_video(&self) -> bool {
        true
    }

    fn wants_audio(&self) -> bool {
        false
    }

    fn video(&mut self, frame: &frame::Video) -> Result<Flow, MediaError> {
        let (muxers, r) = (&self.muxers, self.rendition);
        self.encoder.push(Some(frame), &mut |packet, tb| lock(muxers).write(r, packet, tb))?;
        Ok(Flow::Continue)
    }

    fn audio(&mut self, _frame: &frame::Audio) -> Result<Flow, MediaError> {
        Ok(Flow::Continue)
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        let (muxers, r) = (&self.muxers, self.rendition);
        self.encoder.push(None, &mut |packet, tb| lock(muxers).write(r, packet, tb))
    }
}

struct AudioRendition {
    rendition: usize,
    encoder: AudioEncoder,
}

pub(super) struct PackageSink {
    dir: PathBuf,
    plan: StreamPlan,
    rungs: Vec<Lane<()>>,
    audio: Vec<AudioRendition>,
    muxers: Arc<Mutex<Muxers>>,
    renditions: Vec<Rendition>,
    /// For each variant of the plan: its video rendition and its audio rendition.
    variants: Vec<(Option<usize>, Option<usize>)>,
}

impl PackageSink {
    pub fn open(
        plan: &StreamPlan,
        range: Option<&TimeRange>,
        dir: &Path,
        video_in: Option<&VideoFormat>,
        audio_in: Option<&AudioFormat>,
        ready: Ready,
    ) -> Result<Self, MediaError> {
        if plan.hls.is_none() && !plan.dash {
            return Err(MediaError::Unsupported("the package asks for neither HLS nor DASH".into()));
        }
        if plan.variants.is_empty() {
            return Err(MediaError::Unsupported("the package has no rendition".into()));
        }
        if !(plan.segment_duration > 0.0) {
            return Err(MediaError::Unsupported(format!("invalid segment duration {}", plan.segment_duration)));
        }
        std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;

        // Renditions: each video rung, then each distinct audio plan (encoded once).
        let mut video_plans: Vec<(String, &VideoPlan)> = Vec::new();
        let mut audio_plans: Vec<(String, &AudioPlan)> = Vec::new();
        let mut variants = Vec::new();
        for variant in &plan.variants {
            let video = match (&variant.video, video_in) {
                (Some(v), Some(_)) => {
                    video_plans.push((safe_name(&variant.name), v));
                    Some(video_plans.len() - 1)
                }
                _ => None,
            };
            let audio = match (&variant.audio, audio_in) {
                (Some(a), Some(_)) => Some(match audio_plans.iter().position(|(_, p)| *p == a) {
                    Some(i) => i,
                    None => {
                        let name = if variant.video.is_none() { safe_name(&variant.name) } else { "audio".to_string() };
                        audio_plans.push((unique(&audio_plans, name), a));
                        audio_plans.len() - 1
                    }
                }),
                _ => None,
            };
            if video.is_some() || audio.is_some() {
                variants.push((video, audio));
            }
        }
        if variants.is_empty() {
            return Err(MediaError::Unsupported("the input has none of the streams the package needs".into()));
        }
        let nv = video_plans.len();
        let variants: Vec<(Option<usize>, Option<usize>)> = variants.into_iter().map(|(v, a)| (v, a.map(|a| nv + a))).collect();

        // Encoders first: their parameters describe the muxers' streams. Global headers
        // always: fMP4 and DASH need them, and the TS muxer repeats them before keyframes.
        let mut video_encoders = Vec::new();
        let top = video_plans.iter().map(|(_, v)| (v.width, v.height)).max_by_key(|(w, h)| u64::from(*w) * u64::from(*h));
        for (_, v) in &video_plans {
            let input = video_in.ok_or_else(|| MediaError::Unsupported("the package needs video".into()))?;
            let sar = top.map_or(Rational::new(1, 1), |top| rung_sar(top, (v.width, v.height)));
            let setup = VideoSetup { range, sar, global_header: true, constant_rate: false };
            video_encoders.push(VideoEncoder::open(v, input, setup)?);
        }
        let mut audio_encoders = Vec::new();
        for (_, a) in &audio_plans {
            let input = audio_in.ok_or_else(|| MediaError::Unsupported("the package needs audio".into()))?;
            audio_encoders.push(AudioEncoder::open(a, input, range, true)?);
        }
        let mut renditions = Vec::new();
        for ((name, v), encoder) in video_plans.iter().zip(&video_encoders) {
            renditions.push(Rendition {
                name: name.clone(),
                codec: codec_string(encoder.name, extradata(encoder.context())),
                size: Some((v.width, v.height)),
                frame_rate: Some(f64::from(encoder.frame_rate)),
                channels: None,
            });
        }
        for ((name, a), encoder) in audio_plans.iter().zip(&audio_encoders) {
            renditions.push(Rendition {
                name: name.clone(),
                codec: codec_string(encoder.name, extradata(encoder.context())),
                size: None,
                frame_rate: None,
                channels: Some(a.channels),
            });
        }

        let watch = Arc::new(FileWatch::new(ready));
        let hls_dir = dir.join("hls");
        let dash_dir = dir.join("dash");
        let streams: Vec<StreamSpec<'_>> = video_encoders
            .iter()
            .zip(&video_plans)
            .map(|(e, (_, v))| StreamSpec { encoder: e.context(), time_base: e.time_base, frame_rate: Some(e.frame_rate), bit_rate: declared_kbps(v) })
            .chain(audio_encoders.iter().zip(&audio_plans).map(|(e, (_, a))| StreamSpec {
                encoder: e.context(),
                time_base: e.time_base,
                frame_rate: None,
                bit_rate: a.bitrate_kbps,
            }))
            .collect();
        let mut hls = Vec::new();
        if let Some(options) = plan.hls {
            for (rendition, stream) in renditions.iter().zip(&streams) {
                let rendition_dir = hls_dir.join(&rendition.name);
                hls.push(open_hls(&rendition_dir, stream, options.fmp4, plan.segment_duration, &watch)?);
            }
        }
        let dash = if plan.dash { Some(open_dash(&dash_dir, &streams, nv, plan.segment_duration, &watch)?) } else { None };
        let muxers = Arc::new(Mutex::new(Muxers {
            hls,
            dash,
            meters: vec![Meter::default(); renditions.len()],
            segment: plan.segment_duration,
            watch,
        }));

        let mut rungs = Vec::new();
        for (r, encoder) in video_encoders.into_iter().enumerate() {
            let sink = Box::new(RungSink { rendition: r, encoder, muxers: muxers.clone() });
            let name = format!("copra-rung-{}", renditions[r].name);
            rungs.push(Lane::spawn(name, sink, Box::new(|_| {}))?);
        }
        let audio = audio_encoders.into_iter().enumerate().map(|(i, encoder)| AudioRendition { rendition: nv + i, encoder }).collect();
        Ok(PackageSink { dir: dir.to_path_buf(), plan: plan.clone(), rungs, audio, muxers, renditions, variants })
    }

    /// A rung that stopped taking frames has failed: its error fails the package.
    fn check_rungs(&mut self) -> Result<(), MediaError> {
        if let Some(i) = self.rungs.iter().position(|lane| !lane.open()) {
            let lane = self.rungs.remove(i);
            return Err(lane.join().err().unwrap_or_else(|| MediaError::Unsupported("a rendition stopped early".into())));
        }
        Ok(())
    }

    /// Trailers, the HLS master playlist and the DASH bandwidths.
    fn close_packages(&mut self) -> Result<Package, MediaError> {
        let mut muxers = lock(&self.muxers);
        for muxer in muxers.hls.iter_mut() {
            muxer.write_trailer().map_err(MediaError::at("writing an HLS playlist"))?;
        }
        if let Some(dash) = muxers.dash.as_mut() {
            dash.write_trailer().map_err(MediaError::at("writing the DASH manifest"))?;
        }
        muxers.watch.settle();
        let segment = self.plan.segment_duration;
        let hls_dir = self.dir.join("hls");
        let dash_dir = self.dir.join("dash");

        let mut hls_master = None;
        if self.plan.hls.is_some() {
            let rates: Vec<(u64, u64)> = self
                .renditions
                .iter()
                .zip(&muxers.meters)
                .map(|(rendition, meter)| meter.rates(segment, overhead(&hls_dir.join(&rendition.name), meter, |_| true)))
                .collect();
            let text = master_playlist(&self.renditions, &self.variants, &rates, self.plan.hls.is_some_and(|h| h.fmp4));
            let path = hls_dir.join(HLS_MASTER);
            std::fs::write(&path, text).map_err(|e| MediaError::Unsupported(format!("cannot write {}: {e}", path.display())))?;
            hls_master = Some(PathBuf::from("hls").join(HLS_MASTER));
        }
        let mut dash_manifest = None;
        if self.plan.dash {
            let path = dash_dir.join(DASH_MANIFEST);
            let mut mpd = std::fs::read_to_string(&path).map_err(|e| MediaError::Unsupported(format!("cannot read the MPD: {e}")))?;
            for (r, meter) in muxers.meters.iter().enumerate() {
                let prefix = format!("-{r}");
                let factor = overhead(&dash_dir, meter, |name| name.contains(&format!("{prefix}.")) || name.contains(&format!("{prefix}-")));
                let (peak, _) = meter.rates(segment, factor);
                mpd = set_bandwidth(&mpd, r, peak);
            }
            std::fs::write(&path, mpd).map_err(|e| MediaError::Unsupported(format!("cannot write the MPD: {e}")))?;
            dash_manifest = Some(PathBuf::from("dash").join(DASH_MANIFEST));
        }
        drop(muxers);
        Ok(Package { files: package_files(&self.dir)?, hls_master, dash_manifest })
    }
}

impl Sink for PackageSink {
    type Done = Produced;

    fn wants_video(&self) -> bool {
        !self.rungs.is_empty()
    }

    fn wants_audio(&self) -> bool {
        !self.audio.is_empty()
    }

    fn video(&mut self, frame: &frame::Video) -> Result<Flow, MediaError> {
        for lane in self.rungs.iter_mut() {
            lane.send_video(frame);
        }
        self.check_rungs()?;
        Ok(Flow::Continue)
    }

    fn audio(&mut self, frame: &frame::Audio) -> Result<Flow, MediaError> {
        let muxers = &self.muxers;
        for rendition in self.audio.iter_mut() {
            let r = rendition.rendition;
            rendition.encoder.push(Some(frame), &mut |packet, tb| lock(muxers).write(r, packet, tb))?;
        }
        Ok(Flow::Continue)
    }

    fn finish(&mut self) -> Result<Produced, MediaError> {
        for lane in self.rungs.iter_mut() {
            lane.close(None);
        }
        // Join every rung before answering: none may still be writing once we return.
        let mut failed = None;
        for lane in std::mem::take(&mut self.rungs) {
            if let Err(err) = lane.join() {
                failed.get_or_insert(err);
            }
        }
        if let Some(err) = failed {
            return Err(err);
        }
        let muxers = &self.muxers;
        for rendition in self.audio.iter_mut() {
            let r = rendition.rendition;
            rendition.encoder.push(None, &mut |packet, tb| lock(muxers).write(r, packet, tb))?;
        }
        self.close_packages().map(Produced::Package)
    }
}

impl Drop for PackageSink {
    /// A package given up half way: stop the rung threads before the muxers go.
    fn drop(&mut self) {
        for lane in self.rungs.iter_mut() {
            lane.close(Some(MediaError::Cancelled));
        }
        for lane in std::mem::take(&mut self.rungs) {
            let _ = lane.join();
        }
    }
}

/// The sample aspect ratio that makes a `rung` display at the aspect of the `top` rung:
/// even sizes cannot all keep 16:9 exactly (854x480 is 427:240), and DASH requires one
/// display aspect per adaptation set. 854x480 at 1280:1281 displays at exactly 16:9.
fn rung_sar(top: (u32, u32), rung: (u32, u32)) -> Rational {
    let (mut num, mut den) = (0, 0);
    // SAFETY: pure arithmetic on its arguments.
    unsafe {
        ffmpeg::ffi::av_reduce(
            &mut num,
            &mut den,
            i64::from(top.0) * i64::from(rung.1),
            i64::from(top.1) * i64::from(rung.0),
            65535,
        );
    }
    if num > 0 && den > 0 { Rational::new(num, den) } else { Rational::new(1, 1) }
}

/// What a muxer stream is made from.
struct StreamSpec<'a> {
    encoder: &'a ffmpeg::encoder::Encoder,
    time_base: Rational,
    frame_rate: Option<Rational>,
    /// Declared to the muxer (DASH requires a bandwidth up front); corrected at the end.
    bit_rate: u32,
}

fn add_package_stream(muxer: &mut format::context::Output, spec: &StreamSpec<'_>, fmp4: bool) -> Result<usize, MediaError> {
    let index = add_stream(muxer, spec.encoder, spec.time_base, spec.frame_rate)?;
    if let Some(mut stream) = muxer.stream_mut(index) {
        // SAFETY: plain field of the stream's codec parameters, before the header.
        unsafe { (*(*stream.as_mut_ptr()).codecpar).bit_rate = i64::from(spec.bit_rate) * 1000 };
    }
    if fmp4 && spec.encoder.id() == ffmpeg::codec::Id::HEVC {
        // `hvc1` (parameter sets in the sample entry) is what Apple players require.
        set_codec_tag(muxer, index, *b"hvc1");
    }
    Ok(index)
}

fn open_hls(dir: &Path, stream: &StreamSpec<'_>, fmp4: bool, segment: f64, watch: &Arc<FileWatch>) -> Result<format::context::Output, MediaError> {
    std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;
    let playlist = dir.join(MEDIA_PLAYLIST);
    let mut muxer =
        format::output_as(&playlist, "hls").map_err(|source| MediaError::Open { path: playlist.display().to_string(), source })?;
    watch.attach(&mut muxer);
    add_package_stream(&mut muxer, stream, fmp4)?;
    let extension = if fmp4 { "m4s" } else { "ts" };
    let mut options = ffmpeg::Dictionary::new();
    options.set("hls_time", &segment.to_string());
    options.set("hls_playlist_type", "vod");
    options.set("hls_list_size", "0");
    options.set("hls_segment_type", if fmp4 { "fmp4" } else { "mpegts" });
    options.set("hls_segment_filename", &dir.join(format!("segment_%05d.{extension}")).display().to_string());
    options.set("hls_fmp4_init_filename", "init.mp4");
    options.set("hls_flags", "independent_segments");
    options.set("start_number", "1");
    write_header(&mut muxer, options, "HLS")?;
    Ok(muxer)
}

fn open_dash(dir: &Path, streams: &[StreamSpec<'_>], videos: usize, segment: f64, watch: &Arc<FileWatch>) -> Result<format::context::Output, MediaError> {
    std::fs::create_dir_all(dir).map_err(|e| MediaError::Unsupported(format!("cannot create {}: {e}", dir.display())))?;
    let manifest = dir.join(DASH_MANIFEST);
    let mut muxer =
        format::output_as(&manifest, "dash").map_err(|source| MediaError::Open { path: manifest.display().to_string(), source })?;
    watch.attach(&mut muxer);
    for stream in streams {
        add_package_stream(&mut muxer, stream, true)?;
    }
    // One adaptation set per media type: players switch within a set.
    let mut sets = Vec::new();
    if videos > 0 {
        sets.push(format!("id=0,streams={}", (0..videos).map(|i| i.to_string()).collect::<Vec<_>>().join(",")));
    }
    if streams.len() > videos {
        sets.push(format!("id=1,streams={}", (videos..streams.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(",")));
    }
    let mut options = ffmpeg::Dictionary::new();
    options.set("seg_duration", &segment.to_string());
    options.set("use_template", "1");
    options.set("use_timeline", "1");
    options.set("adaptation_sets", &sets.join(" "));
    options.set("init_seg_name", "init-$RepresentationID$.m4s");
    options.set("media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s");
    options.set("dash_segment_type", "mp4");
    write_header(&mut muxer, options, "DASH")?;
    Ok(muxer)
}

fn write_header(muxer: &mut format::context::Output, options: ffmpeg::Dictionary<'_>, what: &str) -> Result<(), MediaError> {
    // SAFETY: an open muxer with its streams; the dictionary is handed over and back.
    unsafe {
        let mut dict = options.disown();
        let status = ffmpeg::ffi::avformat_write_header(muxer.as_mut_ptr(), &mut dict);
        let left = ffmpeg::Dictionary::own(dict);
        if status < 0 {
            return Err(MediaError::Ffmpeg { stage: "starting a package", source: ffmpeg::Error::from(status) });
        }
        let unknown: Vec<&str> = left.iter().map(|(key, _)| key).collect();
        if !unknown.is_empty() {
            return Err(MediaError::Unsupported(format!("the {what} muxer does not take the option(s) {}", unknown.join(", "))));
        }
    }
    Ok(())
}

fn extradata(encoder: &ffmpeg::encoder::Encoder) -> &[u8] {
    // SAFETY: the opened encoder owns its extradata for as long as it lives.
    unsafe {
        let ctx = encoder.as_ptr();
        if (*ctx).extradata.is_null() || (*ctx).extradata_size <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts((*ctx).extradata, (*ctx).extradata_size as usize)
        }
    }
}

/// The bitrate a rung announces before it is encoded: its cap, or its target.
fn declared_kbps(plan: &VideoPlan) -> u32 {
    let maxrate = plan
        .encoder_options
        .iter()
        .find(|(k, _)| k == "maxrate")
        .and_then(|(_, v)| v.trim_end_matches(['k', 'K']).parse::<u32>().ok());
    maxrate.or(plan.bitrate_kbps).unwrap_or_else(|| {
        // Constant quality without a cap: a rough H.264 figure for the size.
        let pixels = u64::from(plan.width) * u64::from(plan.height);
        (pixels / 300).clamp(300, 20_000) as u32
    })
}

/// Files on disk over encoded bytes: what segment headers, TS packets and fragments add.
fn overhead(dir: &Path, meter: &Meter, belongs: impl Fn(&str) -> bool) -> f64 {
    let encoded: u64 = meter.windows.iter().sum();
    let Ok(entries) = std::fs::read_dir(dir) else { return 1.0 };
    let on_disk: u64 = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.ends_with(".m3u8") && !name.ends_with(".mpd") && !name.starts_with("init") && belongs(&name)
        })
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .sum();
    if encoded == 0 || on_disk == 0 { 1.0 } else { (on_disk as f64 / encoded as f64).max(1.0) }
}

/// Every file under `dir`, relative to it; playlists and manifests after media.
fn package_files(dir: &Path) -> Result<Vec<PathBuf>, MediaError> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(base, &path, out)?;
            } else if let Ok(relative) = path.strip_prefix(base) {
                if !relative.to_string_lossy().ends_with(".tmp") {
                    out.push(relative.to_path_buf());
                }
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files).map_err(|e| MediaError::Unsupported(format!("cannot list the package: {e}")))?;
    let manifest = |p: &PathBuf| p.extension().is_some_and(|e| e == "m3u8" || e == "mpd");
    // Media playlists before the master, so the master is the very last.
    files.sort_by_key(|p| (manifest(p), p.file_name().is_some_and(|n| n == HLS_MASTER || n == DASH_MANIFEST), p.clone()));
    Ok(files)
}

/// A name safe as one directory level.
fn safe_name(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if cleaned.is_empty() { "rendition".into() } else { cleaned }
}

fn unique(existing: &[(String, &AudioPlan)], name: String) -> String {
    if !existing.iter().any(|(n, _)| *n == name) {
        return name;
    }
    (2..).map(|i| format!("{name}-{i}")).find(|n| !existing.iter().any(|(e, _)| e == n)).unwrap_or(name)
}

/// The HLS master playlist: audio renditions as groups, one stream per variant with
/// the bandwidths measured on its segments (peak as BANDWIDTH, mean as AVERAGE-).
fn master_playlist(renditions: &[Rendition], variants: &[(Option<usize>, Option<usize>)], rates: &[(u64, u64)], fmp4: bool) -> String {
    let mut text = String::from("#EXTM3U\n");
    let _ = writeln!(text, "#EXT-X-VERSION:{}", if fmp4 { 7 } else { 4 });
    text.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let group = |a: usize| format!("audio-{}", renditions[a].name);
    let mut groups_written = Vec::new();
    for &(video, audio) in variants {
        let (Some(_), Some(a)) = (video, audio) else { continue };
        if groups_written.contains(&a) {
            continue;
        }
        groups_written.push(a);
        let r = &renditions[a];
        let channels = r.channels.map(|c| format!(",CHANNELS=\"{c}\"")).unwrap_or_default();
        let _ = writeln!(
            text,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{}\",NAME=\"{}\",DEFAULT=YES,AUTOSELECT=YES{channels},URI=\"{}/{MEDIA_PLAYLIST}\"",
            group(a),
            r.name,
            r.name
        );
    }
    for &(video, audio) in variants {
        let (mut peak, mut average) = (0, 0);
        let mut codecs = Vec::new();
        let mut attributes = String::new();
        for r in [video, audio].into_iter().flatten() {
            peak += rates[r].0;
            average += rates[r].1;
            codecs.extend(renditions[r].codec.clone());
        }
        let _ = write!(attributes, "BANDWIDTH={peak},AVERAGE-BANDWIDTH={average}");
        if let Some(v) = video.map(|v| &renditions[v]) {
            if let Some((w, h)) = v.size {
                let _ = write!(attributes, ",RESOLUTION={w}x{h}");
            }
            if let Some(fps) = v.frame_rate {
                let _ = write!(attributes, ",FRAME-RATE={fps:.3}");
            }
        }
        if !codecs.is_empty() {
            let _ = write!(attributes, ",CODECS=\"{}\"", codecs.join(","));
        }
        // An audio-only variant is the audio itself, not a picture that refers to it.
        if let (Some(_), Some(a)) = (video, audio) {
            let _ = write!(attributes, ",AUDIO=\"{}\"", group(a));
        }
        let uri = match (video, audio) {
            (Some(v), _) => &renditions[v].name,
            (None, Some(a)) => &renditions[a].name,
            (None, None) => continue,
        };
        let _ = writeln!(text, "#EXT-X-STREAM-INF:{attributes}\n{uri}/{MEDIA_PLAYLIST}");
    }
    text
}

/// Set `bandwidth` of `<Representation id="{id}"` in an MPD.
fn set_bandwidth(mpd: &str, id: usize, bits: u64) -> String {
    let tag = format!("<Representation id=\"{id}\"");
    let Some(start) = mpd.find(&tag) else { return mpd.to_string() };
    let end = mpd[start..].find('>').map_or(mpd.len(), |e| start + e);
    let element = &mpd[start..end];
    let replaced = match element.find("bandwidth=\"") {
        Some(at) => {
            let value_start = at + "bandwidth=\"".len();
            let value_end = element[value_start..].find('"').map_or(element.len(), |e| value_start + e);
            format!("{}{bits}{}", &element[..value_start], &element[value_end..])
        }
        None => format!("{tag} bandwidth=\"{bits}\"{}", &element[tag.len()..]),
    };
    format!("{}{replaced}{}", &mpd[..start], &mpd[end..])
}

/// Watches the files a muxer writes, through its `io_open`/`io_close2` callbacks, and
/// reports each media file once it is complete. FFmpeg's HLS and DASH muxers write
/// files under a temporary `.tmp` name and rename them after closing: those are
/// reported once the final name exists ([`FileWatch::settle`], called after writes).
struct FileWatch {
    state: Mutex<WatchState>,
    ready: Ready,
}

#[derive(Default)]
struct WatchState {
    /// Open for writing: AVIOContext address → path.
    open: HashMap<usize, PathBuf>,
    /// Closed under a temporary name: the final name to wait for.
    renaming: Vec<PathBuf>,
}

impl FileWatch {
    fn new(ready: Ready) -> Self {
        FileWatch { state: Mutex::new(WatchState::default()), ready }
    }

    fn state(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Route a muxer's file opening and closing through this watch. The muxer copies
    /// the callbacks and `opaque` into the muxers it nests (segments, fragments).
    fn attach(self: &Arc<Self>, muxer: &mut format::context::Output) {
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
    fn settle(&self) {
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
fn is_media(path: &Path) -> bool {
    !path.extension().is_some_and(|e| e == "m3u8" || e == "mpd")
}

/// `io_open` for watched muxers: FFmpeg's own file opening, remembered.
unsafe extern "C" fn watch_open(
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
unsafe extern "C" fn watch_close(s: *mut ffmpeg::ffi::AVFormatContext, pb: *mut ffmpeg::ffi::AVIOContext) -> c_int {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(name: &str, codec: &str, size: Option<(u32, u32)>) -> Rendition {
        Rendition {
            name: name.into(),
            codec: Some(codec.into()),
            size,
            frame_rate: size.map(|_| 25.0),
            channels: if size.is_none() { Some(2) } else { None },
        }
    }

    #[test]
    fn master_lists_variants_with_their_audio_group() {
        let renditions =
            [rendition("720p", "avc1.64001f", Some((1280, 720))), rendition("360p", "avc1.64001e", Some((640, 360))), rendition("audio", "mp4a.40.2", None)];
        let text = master_playlist(&renditions, &[(Some(0), Some(2)), (Some(1), Some(2))], &[(3_000_000, 2_000_000), (900_000, 600_000), (130_000, 128_000)], true);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3130000,AVERAGE-BANDWIDTH=2128000,RESOLUTION=1280x720,FRAME-RATE=25.000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio-audio\"\n720p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1030000,AVERAGE-BANDWIDTH=728000,RESOLUTION=640x360,FRAME-RATE=25.000,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"audio-audio\"\n360p/index.m3u8\n"
        );
    }

    #[test]
    fn an_audio_only_variant_is_its_own_stream() {
        let renditions = [rendition("360p", "avc1.64001e", Some((640, 360))), rendition("audio", "mp4a.40.2", None)];
        let text = master_playlist(&renditions, &[(Some(0), Some(1)), (None, Some(1))], &[(900_000, 600_000), (70_000, 64_000)], false);
        let last = text.lines().rev().take(2).collect::<Vec<_>>();
        assert_eq!(last, ["audio/index.m3u8", "#EXT-X-STREAM-INF:BANDWIDTH=70000,AVERAGE-BANDWIDTH=64000,CODECS=\"mp4a.40.2\""]);
        assert_eq!(text.matches("#EXT-X-MEDIA:").count(), 1);
    }

    #[test]
    fn meter_peak_and_average() {
        let mut meter = Meter::default();
        // 6 s segments: 600 kB in the first, 300 kB in a last one of 3 s.
        meter.add(600_000, 0.0, 0.04, 6.0);
        meter.add(300_000, 6.0, 3.0, 6.0);
        let (peak, average) = meter.rates(6.0, 1.0);
        assert_eq!(peak, 800_000);
        assert_eq!(average, 800_000);
        let (peak, _) = meter.rates(6.0, 1.1);
        assert_eq!(peak, 880_000);
    }

    #[test]
    fn rungs_display_at_the_top_rungs_aspect() {
        assert_eq!(rung_sar((1280, 720), (854, 480)), Rational::new(1280, 1281));
        assert_eq!(rung_sar((1280, 720), (640, 360)), Rational::new(1, 1));
        assert_eq!(rung_sar((1280, 720), (1280, 720)), Rational::new(1, 1));
        // The display aspect, width × sar / height, is the top rung's exactly.
        let sar = rung_sar((1920, 1080), (426, 240));
        assert_eq!(426 * i64::from(sar.numerator()) * 1080, 240 * i64::from(sar.denominator()) * 1920);
    }

    #[test]
    fn bandwidth_is_set_per_representation() {
        let mpd = r#"<Representation id="0" mimeType="video/mp4" bandwidth="3500000" width="1280"><Representation id="1" mimeType="audio/mp4" bandwidth="128000">"#;
        let out = set_bandwidth(&set_bandwidth(mpd, 1, 131_000), 0, 2_900_000);
        assert_eq!(out, r#"<Representation id="0" mimeType="video/mp4" bandwidth="2900000" width="1280"><Representation id="1" mimeType="audio/mp4" bandwidth="131000">"#);
        assert_eq!(set_bandwidth(r#"<Representation id="2" codecs="x">"#, 2, 5), r#"<Representation id="2" bandwidth="5" codecs="x">"#);
    }
}
