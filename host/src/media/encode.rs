//! Encoders: a filter graph in front of an FFmpeg encoder, taking decoded frames and
//! handing out packets. They know nothing of files: a muxer (file, HLS, DASH) takes
//! the packets through the `emit` callback.

use ffmpeg::{Rational, codec, filter, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::filters::{self, Picture};
use super::input::{AudioFormat, VideoFormat, auto_threads};
use crate::types::{AudioPlan, TimeRange, VideoPlan};

/// Where packets go: the encoder's time base is passed along for rescaling.
pub(super) type Emit<'a> = dyn FnMut(&mut ffmpeg::Packet, Rational) -> Result<(), MediaError> + 'a;

/// The FFmpeg encoder for a logical codec name.
pub(super) fn encoder_name(codec: &str) -> Result<&'static str, MediaError> {
    Ok(match codec {
        "h264" => "libx264",
        "hevc" | "h265" => "libx265",
        "vp8" => "libvpx",
        "vp9" => "libvpx-vp9",
        "av1" => "libsvtav1",
        "mpeg4" => "mpeg4",
        "theora" => "libtheora",
        "gif" => "gif",
        "mjpeg" | "jpeg" => "mjpeg",
        "png" => "png",
        "webp" => "libwebp",
        "aac" => "aac",
        "opus" => "libopus",
        "vorbis" => "libvorbis",
        "mp3" => "libmp3lame",
        "flac" => "flac",
        "pcm_s16le" => "pcm_s16le",
        other => return Err(MediaError::Unsupported(format!("no encoder for codec '{other}'"))),
    })
}

pub(super) fn find_encoder(codec: &str) -> Result<(ffmpeg::Codec, &'static str), MediaError> {
    let name = encoder_name(codec)?;
    let found = ffmpeg::encoder::find_by_name(name)
        .ok_or_else(|| MediaError::Unsupported(format!("the encoder {name} is not available in this FFmpeg")))?;
    Ok((found, name))
}

/// `avcodec_open2` with options, refusing any option the encoder did not take: a plan
/// that asks for something the encoder ignores would otherwise succeed silently.
///
/// # Safety
/// `context` must be a valid, unopened codec context for `codec`.
pub(super) unsafe fn open_checked(
    context: *mut ffmpeg::ffi::AVCodecContext,
    codec: &ffmpeg::Codec,
    name: &str,
    options: ffmpeg::Dictionary,
) -> Result<(), MediaError> {
    // SAFETY: per the function's contract; the dictionary is handed over and taken back.
    unsafe {
        let mut dict = options.disown();
        let status = ffmpeg::ffi::avcodec_open2(context, codec.as_ptr(), &mut dict);
        let left = ffmpeg::Dictionary::own(dict);
        restore_normal_scheduling(name);
        if status < 0 {
            return Err(MediaError::Encoder { codec: name.to_string(), stage: "opening", source: ffmpeg::Error::from(status) });
        }
        let unknown: Vec<&str> = left.iter().map(|(key, _)| key).collect();
        if !unknown.is_empty() {
            return Err(MediaError::Unsupported(format!("the {name} encoder does not take the option(s) {}", unknown.join(", "))));
        }
    }
    Ok(())
}

/// SVT-AV1 (1.4), when the process runs as root, switches the thread that opens it to
/// real-time SCHED_FIFO 99. On a server that thread (and every thread it spawns) would
/// then starve the API, the other encoders, and livelock encoders that spin-wait
/// (libvpx). Put the thread back to normal scheduling after every encoder opens.
fn restore_normal_scheduling(encoder: &str) {
    // SAFETY: sched_getscheduler/sched_setscheduler on the calling thread (pid 0) with a
    // valid, zeroed parameter block.
    unsafe {
        if libc::sched_getscheduler(0) != libc::SCHED_OTHER {
            let param = libc::sched_param { sched_priority: 0 };
            if libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) == 0 {
                tracing::debug!(encoder, "real-time scheduling set by the encoder undone");
            } else {
                tracing::warn!(encoder, "the encoder set real-time scheduling and it could not be undone");
            }
        }
    }
}

/// Forces a keyframe at every multiple of an interval (in seconds of output time), so
/// that the renditions of a ladder can be cut into segments at the same instants.
struct KeyframeClock {
    interval: f64,
    next: f64,
}

impl KeyframeClock {
    fn mark(&mut self, frame: &mut frame::Video, time_base: Rational) {
        let Some(pts) = frame.pts() else { return };
        let t = pts as f64 * f64::from(time_base);
        // A millisecond of slack: rates like 30000/1001 never land exactly on a second.
        if t + 1e-3 >= self.next {
            frame.set_kind(ffmpeg::picture::Type::I);
            self.next = ((t + 1e-3) / self.interval).floor() * self.interval + self.interval;
        }
    }
}

/// How an output uses a video encoder, beyond what the plan says.
#[derive(Clone, Copy)]
pub(super) struct VideoSetup<'a> {
    /// Encode only this part of the input.
    pub range: Option<&'a TimeRange>,
    /// Sample aspect ratio of the output: 1:1 but for ladder rungs (see [`Picture::sar`]).
    pub sar: Rational,
    /// The muxer wants codec headers out of band (MP4, Matroska, DASH...).
    pub global_header: bool,
    /// The format stores a frame rate, not timestamps (AVI, Ogg, Theora): frames are
    /// retimed onto a constant rate, duplicated or dropped as the ffmpeg command does.
    pub constant_rate: bool,
    /// A GIF's palette, made by a first pass over the input, from the GIF's first pass.
    pub palette: Option<&'a frame::Video>,
}

impl VideoSetup<'_> {
    pub fn plain() -> Self {
        VideoSetup { range: None, sar: Rational::new(1, 1), global_header: false, constant_rate: false, palette: None }
    }
}

pub(super) struct VideoEncoder {
    graph: filter::Graph,
    encoder: ffmpeg::encoder::Encoder,
    /// The encoder's name, for error messages.
    pub name: &'static str,
    /// Time base of the frames leaving the graph and of the encoder.
    pub time_base: Rational,
    pub frame_rate: Rational,
    filtered: frame::Video,
    packet: ffmpeg::Packet,
    keyframes: Option<KeyframeClock>,
    /// Where the input fed so far ends (last frame's pts plus one frame), in the
    /// input's time base.
    input_end: Option<i64>,
    input_frame: i64,
    /// One output frame in `time_base`, for packets the encoder leaves without a duration.
    frame_duration: i64,
    /// Watermarks drawn over the picture.
    overlays: super::overlay::Overlays,
}

impl VideoEncoder {
    pub fn open(plan: &VideoPlan, input: &VideoFormat, setup: VideoSetup<'_>) -> Result<Self, MediaError> {
        let (codec, name) = find_encoder(&plan.codec)?;
        if plan.width == 0 || plan.height == 0 {
            return Err(MediaError::Unsupported(format!("invalid output size {}x{}", plan.width, plan.height)));
        }
        let tone_map = plan.tone_map && filters::is_hdr(input);
        let overlays = super::overlay::Overlays::load(plan)?;
        let mut graph = match (plan.codec == "gif", setup.palette) {
            (true, Some(palette)) => filters::palette_graph(input, &picture_chain(plan, input, &setup, tone_map).join(","), palette)?,
            (true, None) => return Err(MediaError::Unsupported("a GIF is encoded with a palette made by a first pass".into())),
            (false, _) if !overlays.is_empty() => overlays.graph(input, &video_chain(plan, input, &setup, tone_map), plan, setup.range)?,
            (false, _) => filters::video_graph(input, &video_chain(plan, input, &setup, tone_map))?,
        };
        let time_base = filters::sink_time_base(&mut graph, input.time_base);
        let frame_rate = match plan.fps {
            // SAFETY: pure arithmetic.
            Some(fps) => Rational::from(unsafe { ffmpeg::ffi::av_d2q(fps, 1_001_000) }),
            None => input.frame_rate,
        };

        let mut context = codec::context::Context::new_with_codec(codec);
        auto_threads(&mut context);
        let mut encoder = context.encoder().video().map_err(MediaError::encoder(name, "setting up"))?;
        encoder.set_width(plan.width);
        encoder.set_height(plan.height);
        encoder.set_format(output_pixel(plan)?);
        encoder.set_time_base(time_base);
        encoder.set_frame_rate(Some(frame_rate));
        encoder.set_aspect_ratio(setup.sar);
        // The context's default is 200 kbit/s, which quality modes (libvpx, SVT-AV1)
        // would read as a cap: no bitrate in the plan means none at all.
        encoder.set_bit_rate(plan.bitrate_kbps.map_or(0, |kbps| kbps as usize * 1000));
        if setup.global_header {
            encoder.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut options = ffmpeg::Dictionary::new();
        if let Some(crf) = plan.crf {
            // With crf and a bitrate, x264/x265 use crf (the bitrate then only informs
            // VBV via maxrate/bufsize), as with `ffmpeg -crf N -b:v R`.
            options.set("crf", &crf.to_string());
        }
        let mut x265_params: Vec<String> = Vec::new();
        if name == "libx265" {
            // x265 prints its banner and statistics straight to stderr otherwise.
            x265_params.push("log-level=error".into());
        }
        let keyframes = plan.keyframe_interval.filter(|i| *i > 0.0).map(|interval| {
            // Keyframes come only from the clock: no scene-cut ones, a GOP longer than
            // the interval, and forced keyframes that are IDR (segments start clean).
            let frames = (interval * f64::from(frame_rate)).ceil().max(1.0) as u32;
            encoder.set_gop(frames.saturating_mul(4));
            match name {
                "libx264" => {
                    options.set("sc_threshold", "0");
                    options.set("forced-idr", "1");
                }
                "libx265" => {
                    x265_params.push("scenecut=0".into());
                    options.set("forced-idr", "1");
                }
                _ => {}
            }
            KeyframeClock { interval, next: 0.0 }
        });
        if let Some(gop) = plan.gop.filter(|_| keyframes.is_none()) {
            encoder.set_gop(gop);
        }
        for (key, value) in &plan.encoder_options {
            if key == "x265-params" {
                x265_params.push(value.clone());
            } else {
                options.set(key, value);
            }
        }
        if !x265_params.is_empty() {
            options.set("x265-params", &x265_params.join(":"));
        }
        set_colors(&mut encoder, input, tone_map);
        let mut encoder = encoder.0;
        // SAFETY: a valid, unopened context for `codec`.
        unsafe { open_checked(encoder.as_mut_ptr(), &codec, name, options)? };
        Ok(VideoEncoder {
            graph,
            encoder,
            name,
            time_base,
            frame_rate,
            filtered: frame::Video::empty(),
            packet: ffmpeg::Packet::empty(),
            keyframes,
            input_end: None,
            input_frame: ffmpeg::Rescale::rescale(&1i64, input.frame_rate.invert(), input.time_base).max(1),
            frame_duration: ffmpeg::Rescale::rescale(&1i64, frame_rate.invert(), time_base).max(1),
            overlays,
        })
    }

    /// The opened encoder, to describe a muxer stream from.
    pub fn context(&self) -> &ffmpeg::encoder::Encoder {
        &self.encoder
    }

    /// Filter and encode one decoded frame, or with `None` flush graph and encoder.
    pub fn push(&mut self, frame: Option<&frame::Video>, emit: &mut Emit<'_>) -> Result<(), MediaError> {
        match (frame, self.input_end) {
            (Some(frame), _) => {
                if let Some(pts) = frame.pts() {
                    self.input_end = Some(pts + self.input_frame);
                }
                filters::feed(&mut self.graph, Some(frame))?;
                self.overlays.feed(&mut self.graph, frame.pts())?;
            }
            (None, Some(end)) => {
                filters::close(&mut self.graph, end)?;
                self.overlays.close(&mut self.graph, Some(end))?;
            }
            (None, None) => {
                filters::feed(&mut self.graph, None)?;
                self.overlays.close(&mut self.graph, None)?;
            }
        }
        while filters::pull(&mut self.graph, &mut self.filtered)? {
            if let Some(clock) = self.keyframes.as_mut() {
                clock.mark(&mut self.filtered, self.time_base);
            }
            self.encoder.send_frame(&self.filtered).map_err(MediaError::encoder(self.name, "encoding"))?;
            self.drain(emit)?;
        }
        if frame.is_none() {
            self.encoder.send_eof().map_err(MediaError::encoder(self.name, "flushing"))?;
            self.drain(emit)?;
        }
        Ok(())
    }

    /// Hand out ready packets. Encoders with a delay (x264, x265) leave durations unset;
    /// muxers need them for the last frame (MP4's last sample, HLS's last segment).
    fn drain(&mut self, emit: &mut Emit<'_>) -> Result<(), MediaError> {
        let frame_duration = self.frame_duration;
        drain(&mut self.encoder, self.name, &mut self.packet, self.time_base, &mut |packet, tb| {
            if packet.duration() <= 0 {
                packet.set_duration(frame_duration);
            }
            emit(packet, tb)
        })
    }
}

/// The pixel format the encoder is opened with: the plan's, except for GIF, whose
/// palette filter hands out `pal8` whatever the plan says.
fn output_pixel(plan: &VideoPlan) -> Result<ffmpeg::format::Pixel, MediaError> {
    let name = if plan.codec == "gif" { "pal8" } else { plan.pix_fmt.as_str() };
    name.parse().map_err(|_| MediaError::Unsupported(format!("unknown pixel format '{name}'")))
}

/// The chain from decoded frames to what the encoder takes: the pictures (see
/// [`picture_chain`]), then the pixel format. (A GIF's chain ends in its palette
/// instead: `filters::palette_graph`.)
fn video_chain(plan: &VideoPlan, input: &VideoFormat, setup: &VideoSetup<'_>, tone_map: bool) -> String {
    let mut chain = picture_chain(plan, input, setup, tone_map);
    chain.push(format!("format={}", plan.pix_fmt));
    chain.join(",")
}

/// The kept range, the planned rate (before scaling, so dropped frames are never
/// scaled), tone mapping, size and turn.
pub(super) fn picture_chain(plan: &VideoPlan, input: &VideoFormat, setup: &VideoSetup<'_>, tone_map: bool) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    chain.extend(filters::video_trim(setup.range));
    match plan.fps {
        Some(fps) => chain.push(format!("fps={fps}")),
        // The fps filter hands out frames in 1/rate, the time base such formats need.
        None if setup.constant_rate => chain.push(format!("fps={}/{}", input.frame_rate.numerator(), input.frame_rate.denominator())),
        None => {}
    }
    if tone_map {
        chain.push(filters::TONE_MAP.into());
    }
    let picture =
        Picture { width: plan.width, height: plan.height, fit: plan.fit, scaler: &plan.scaler, turn: input.rotation + plan.rotate, sar: setup.sar };
    chain.extend(picture.chain());
    // Subtitles drawn in at the output's size, on its timeline (the script was written
    // for it); the path is the worker's own file, quoted for the graph's parser.
    if let Some(script) = plan.burn_in_file.as_ref().and_then(|p| p.to_str()).filter(|p| !p.contains(['\'', '\\'])) {
        chain.push(format!("ass=filename='{script}'"));
    }
    chain
}

/// Tag the output's colours: BT.709 after tone mapping, else as the input said (so an
/// HDR input encoded to 10-bit HEVC stays HDR).
fn set_colors(encoder: &mut ffmpeg::encoder::video::Video, input: &VideoFormat, tone_mapped: bool) {
    use ffmpeg::ffi::*;
    // SAFETY: plain fields of a codec context not yet opened.
    unsafe {
        let ctx = encoder.as_mut_ptr();
        if tone_mapped {
            (*ctx).color_primaries = AVColorPrimaries::AVCOL_PRI_BT709;
            (*ctx).color_trc = AVColorTransferCharacteristic::AVCOL_TRC_BT709;
            (*ctx).colorspace = AVColorSpace::AVCOL_SPC_BT709;
            (*ctx).color_range = AVColorRange::AVCOL_RANGE_MPEG;
        } else {
            (*ctx).color_primaries = input.colors.primaries;
            (*ctx).color_trc = input.colors.transfer;
            (*ctx).colorspace = input.colors.space;
            (*ctx).color_range = input.colors.range;
        }
    }
}

pub(super) struct AudioEncoder {
    graph: filter::Graph,
    encoder: ffmpeg::encoder::Encoder,
    pub name: &'static str,
    pub time_base: Rational,
    sink_time_base: Rational,
    filtered: frame::Audio,
    packet: ffmpeg::Packet,
}

impl AudioEncoder {
    pub fn open(plan: &AudioPlan, input: &AudioFormat, range: Option<&TimeRange>, global_header: bool) -> Result<Self, MediaError> {
        let (codec, name) = find_encoder(&plan.codec)?;
        if plan.sample_rate == 0 || plan.channels == 0 {
            return Err(MediaError::Unsupported(format!("invalid audio plan: {} Hz, {} channels", plan.sample_rate, plan.channels)));
        }
        let audio_codec = codec.audio().map_err(MediaError::encoder(name, "setting up"))?;
        let sample_format = audio_codec
            .formats()
            .and_then(|mut formats| formats.next())
            .ok_or_else(|| MediaError::Unsupported(format!("the {name} encoder lists no sample format")))?;
        let layout = ffmpeg::ChannelLayout::default(plan.channels as i32);
        let time_base = Rational::new(1, plan.sample_rate as i32);

        let context = codec::context::Context::new_with_codec(codec);
        let mut encoder = context.encoder().audio().map_err(MediaError::encoder(name, "setting up"))?;
        encoder.set_rate(plan.sample_rate as i32);
        encoder.set_channel_layout(layout);
        encoder.set_channels(layout.channels());
        encoder.set_format(sample_format);
        encoder.set_bit_rate(plan.bitrate_kbps as usize * 1000);
        encoder.set_time_base(time_base);
        if global_header {
            encoder.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut encoder = encoder.0;
        // SAFETY: a valid, unopened context for `codec`.
        unsafe { open_checked(encoder.as_mut_ptr(), &codec, name, ffmpeg::Dictionary::new())? };
        // SAFETY: plain field of the opened context.
        let frame_size = unsafe { (*encoder.as_ptr()).frame_size };

        // async=1 stretches or pads over timestamp gaps so audio stays in sync; first_pts=0
        // makes audio start with the video at zero.
        let mut chain: Vec<String> = filters::audio_trim(range).into_iter().collect();
        chain.push(format!("aresample={}:async=1:first_pts=0", plan.sample_rate));
        // Loudness: the gain (and limiter) applies to the audio as it will be encoded,
        // mixed to the plan's channels, as the input was measured.
        if let Some(adjustment) = plan.loudness.as_ref().and_then(|l| super::loudness::adjustment(l, super::loudness::is_lossy(&plan.codec))) {
            chain.push(format!("aformat=channel_layouts=0x{:x}", layout.bits()));
            chain.push(super::loudness::filters(&adjustment, plan.sample_rate));
        }
        chain.push(format!("aformat=sample_fmts={}:channel_layouts=0x{:x}", sample_format.name(), layout.bits()));
        let fixed_frames = !audio_codec.capabilities().contains(codec::capabilities::Capabilities::VARIABLE_FRAME_SIZE) && frame_size > 0;
        let mut graph = filters::audio_graph(input, &chain.join(","), |out| {
            out.set_sample_format(sample_format);
            out.set_channel_layout(layout);
            out.set_sample_rate(plan.sample_rate);
        })?;
        if fixed_frames && let Some(mut out) = graph.get("out") {
            out.sink().set_frame_size(frame_size as u32);
        }
        let sink_time_base = filters::sink_time_base(&mut graph, time_base);
        Ok(AudioEncoder {
            graph,
            encoder,
            name,
            time_base,
            sink_time_base,
            filtered: frame::Audio::empty(),
            packet: ffmpeg::Packet::empty(),
        })
    }

    pub fn context(&self) -> &ffmpeg::encoder::Encoder {
        &self.encoder
    }

    pub fn push(&mut self, frame: Option<&frame::Audio>, emit: &mut Emit<'_>) -> Result<(), MediaError> {
        filters::feed(&mut self.graph, frame.map(|f| f as &frame::Frame))?;
        while filters::pull(&mut self.graph, &mut self.filtered)? {
            if self.sink_time_base != self.time_base
                && let Some(pts) = self.filtered.pts()
            {
                self.filtered.set_pts(Some(ffmpeg::Rescale::rescale(&pts, self.sink_time_base, self.time_base)));
            }
            self.encoder.send_frame(&self.filtered).map_err(MediaError::encoder(self.name, "encoding"))?;
            drain(&mut self.encoder, self.name, &mut self.packet, self.time_base, emit)?;
        }
        if frame.is_none() {
            self.encoder.send_eof().map_err(MediaError::encoder(self.name, "flushing"))?;
            drain(&mut self.encoder, self.name, &mut self.packet, self.time_base, emit)?;
        }
        Ok(())
    }
}

/// Hand every packet the encoder has ready to `emit`.
pub(super) fn drain(
    encoder: &mut ffmpeg::encoder::Encoder,
    name: &str,
    packet: &mut ffmpeg::Packet,
    time_base: Rational,
    emit: &mut Emit<'_>,
) -> Result<(), MediaError> {
    loop {
        match encoder.receive_packet(packet) {
            Ok(()) => emit(packet, time_base)?,
            Err(ffmpeg::Error::Eof) => return Ok(()),
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => return Ok(()),
            Err(source) => return Err(MediaError::Encoder { codec: name.to_string(), stage: "encoding", source }),
        }
    }
}
