//! One output file (video, audio, or an animated GIF): a muxer with at most one video
//! encoder and one audio encoder per audio track kept (the main one alone unless the
//! plan names tracks).

use std::path::Path;

use ffmpeg::{Rational, format, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::encode::{AudioEncoder, Emit, VideoEncoder, VideoSetup};
use super::sink::{Flow, Produced, Sink};
use super::input::{Tracks, VideoFormat};
use crate::types::{AudioTrack, OutputPlan};

struct Track<E> {
    encoder: E,
    stream: usize,
    /// The input's time base, to tell when the kept range is over.
    input_time_base: Rational,
    /// Past the end of the kept range: flushed at `finish`, fed nothing more.
    done: bool,
}

pub(super) struct FileSink {
    muxer: format::context::Output,
    video: Option<Track<VideoEncoder>>,
    audio: Option<Track<AudioEncoder>>,
    /// The input's other audio tracks kept, by their stream index in the input.
    others: Vec<(usize, Track<AudioEncoder>)>,
    /// Input time (seconds) after which the output needs nothing more.
    end: Option<f64>,
}

/// Formats that store a frame rate rather than a timestamp per frame: AVI's index and
/// Ogg's granules count frames, and Theora takes its time base as its frame rate.
pub(super) fn constant_rate(container: &str, codec: &str) -> bool {
    matches!(container, "avi" | "ogg") || codec == "theora"
}

/// Muxer options that make files ready for the web: MP4-family files get their index
/// at the front so players can start before the download ends.
pub(super) fn muxer_options(container: &str) -> ffmpeg::Dictionary<'static> {
    let mut options = ffmpeg::Dictionary::new();
    if matches!(container, "mp4" | "mov" | "ipod" | "3gp") {
        options.set("movflags", "+faststart");
    }
    options
}

impl FileSink {
    /// Open the output's encoders and muxer; a GIF comes with its palette
    /// (made by the GIF's first pass).
    pub fn open(
        plan: &OutputPlan,
        path: &Path,
        video_in: Option<&VideoFormat>,
        tracks: &Tracks,
        palette: Option<&frame::Video>,
    ) -> Result<Self, MediaError> {
        let result = Self::open_inner(plan, path, video_in, tracks, palette);
        if result.is_err() {
            // The muxer may have created the file before failing.
            let _ = std::fs::remove_file(path);
        }
        result
    }

    fn open_inner(
        plan: &OutputPlan,
        path: &Path,
        video_in: Option<&VideoFormat>,
        tracks: &Tracks,
        palette: Option<&frame::Video>,
    ) -> Result<Self, MediaError> {
        let audio_in = tracks.formats.first().filter(|_| tracks.main.is_some()).map(|(_, f)| f);
        if plan.video.is_some() && video_in.is_none() && plan.audio.is_none() {
            return Err(MediaError::Unsupported("the output needs video but the input has none".into()));
        }
        if plan.audio.is_some() && audio_in.is_none() && plan.video.is_none() {
            return Err(MediaError::Unsupported("the output needs audio but the input has none".into()));
        }
        let mut muxer = format::output_as(path, &plan.container)
            .map_err(|source| MediaError::Open { path: path.display().to_string(), source })?;
        let global_header = muxer.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let range = plan.range.as_ref();

        let video = match (&plan.video, video_in) {
            (Some(video_plan), Some(input)) => {
                let constant_rate = constant_rate(&plan.container, &video_plan.codec);
                let setup = VideoSetup { range, global_header, constant_rate, palette, ..VideoSetup::plain() };
                let encoder = VideoEncoder::open(video_plan, input, setup)?;
                let stream = add_stream(&mut muxer, encoder.context(), encoder.time_base, Some(encoder.frame_rate))?;
                if encoder.name == "libx265" && matches!(plan.container.as_str(), "mp4" | "mov") {
                    // `hvc1` (parameter sets in the header only) is what Apple players require.
                    set_codec_tag(&mut muxer, stream, *b"hvc1");
                }
                Some(Track { encoder, stream, input_time_base: input.time_base, done: false })
            }
            _ => None,
        };
        let (mut audio, mut others) = (None, Vec::new());
        if let (Some(audio_plan), Some(_)) = (&plan.audio, audio_in) {
            // Each track kept, in the plan's order (the first is the default); none
            // named: the main one.
            let sources: Vec<(usize, Option<&AudioTrack>)> = match tracks.main {
                Some(main) if plan.tracks.is_empty() => vec![(main, None)],
                _ => plan.tracks.iter().map(|t| (t.stream, Some(t))).collect(),
            };
            for (n, (source, track)) in sources.into_iter().enumerate() {
                let (_, input) = tracks.formats.iter().find(|(s, _)| *s == source).ok_or_else(|| {
                    MediaError::Unsupported(format!("the input's audio track (stream {source}) cannot be decoded"))
                })?;
                let encoder = AudioEncoder::open(&audio_plan.for_track(source), input, range, global_header)?;
                let stream = add_stream(&mut muxer, encoder.context(), encoder.time_base, None)?;
                if let Some(track) = track {
                    describe_track(&mut muxer, stream, track, n == 0);
                }
                let kept = Track { encoder, stream, input_time_base: input.time_base, done: false };
                if Some(source) == tracks.main {
                    audio = Some(kept);
                } else {
                    others.push((source, kept));
                }
            }
        }
        if video.is_none() && audio.is_none() && others.is_empty() {
            return Err(MediaError::Unsupported("the output would have no stream: the input lacks what the format needs".into()));
        }
        muxer.write_header_with(muxer_options(&plan.container)).map_err(MediaError::at("writing the container header"))?;
        let end = range.and_then(|r| r.duration.map(|d| r.offset + d));
        Ok(FileSink { muxer, video, audio, others, end })
    }

    fn all_done(&self) -> bool {
        self.video.as_ref().is_none_or(|t| t.done) && self.audio.as_ref().is_none_or(|t| t.done) && self.others.iter().all(|(_, t)| t.done)
    }
}

/// An audio stream kept from one of the input's tracks says its language and title,
/// and the first is the default one.
fn describe_track(muxer: &mut format::context::Output, stream: usize, track: &AudioTrack, default: bool) {
    let Some(mut added) = muxer.stream_mut(stream) else { return };
    let mut metadata = ffmpeg::Dictionary::new();
    if let Some(language) = track.language.as_deref().and_then(super::audio_tracks::iso639_2) {
        metadata.set("language", &language);
    }
    if let Some(title) = &track.title {
        metadata.set("title", title);
    }
    added.set_metadata(metadata);
    let disposition = if default { ffmpeg::ffi::AV_DISPOSITION_DEFAULT } else { 0 };
    // SAFETY: plain field of a stream of this muxer, before the header is written.
    unsafe { (*added.as_mut_ptr()).disposition = disposition };
}

/// What a track's encoder is: video and audio alike take frames and hand out packets.
trait Encode {
    type Frame: std::ops::Deref<Target = frame::Frame>;
    fn push(&mut self, frame: Option<&Self::Frame>, emit: &mut Emit<'_>) -> Result<(), MediaError>;
}

impl Encode for VideoEncoder {
    type Frame = frame::Video;
    fn push(&mut self, frame: Option<&frame::Video>, emit: &mut Emit<'_>) -> Result<(), MediaError> {
        VideoEncoder::push(self, frame, emit)
    }
}

impl Encode for AudioEncoder {
    type Frame = frame::Audio;
    fn push(&mut self, frame: Option<&frame::Audio>, emit: &mut Emit<'_>) -> Result<(), MediaError> {
        AudioEncoder::push(self, frame, emit)
    }
}

impl<E: Encode> Track<E> {
    /// Encode a decoded frame into the muxer, unless the kept range is over (`end`, in
    /// seconds of the input): from then on the track is done and takes nothing more.
    fn take(&mut self, frame: &E::Frame, end: Option<f64>, muxer: &mut format::context::Output) -> Result<(), MediaError> {
        if self.done {
            return Ok(());
        }
        let past_end = match (end, frame.pts()) {
            (Some(end), Some(pts)) => pts as f64 * f64::from(self.input_time_base) >= end,
            _ => false,
        };
        if past_end {
            self.done = true;
            return Ok(());
        }
        let stream = self.stream;
        self.encoder.push(Some(frame), &mut |packet, tb| write_packet(muxer, stream, packet, tb))
    }

    /// Flush the filters and the encoder into the muxer.
    fn flush(&mut self, muxer: &mut format::context::Output) -> Result<(), MediaError> {
        let stream = self.stream;
        self.encoder.push(None, &mut |packet, tb| write_packet(muxer, stream, packet, tb))
    }
}

/// Add a stream described by an opened encoder.
pub(super) fn add_stream(
    muxer: &mut format::context::Output,
    encoder: &ffmpeg::encoder::Encoder,
    time_base: Rational,
    frame_rate: Option<Rational>,
) -> Result<usize, MediaError> {
    let codec = encoder.codec().ok_or_else(|| MediaError::Unsupported("encoder without a codec".into()))?;
    let mut stream = muxer.add_stream(codec).map_err(MediaError::at("adding a stream"))?;
    stream.set_parameters(encoder);
    stream.set_time_base(time_base);
    // Muxers read the pixel aspect from the stream itself (DASH checks its adaptation
    // sets with it), not only from the codec parameters.
    // SAFETY: plain fields of the encoder's context and of the new stream.
    unsafe { (*stream.as_mut_ptr()).sample_aspect_ratio = (*encoder.as_ptr()).sample_aspect_ratio };
    if let Some(rate) = frame_rate {
        stream.set_avg_frame_rate(rate);
    }
    Ok(stream.index())
}

pub(super) fn set_codec_tag(muxer: &mut format::context::Output, stream: usize, tag: [u8; 4]) {
    if let Some(mut stream) = muxer.stream_mut(stream) {
        // SAFETY: plain field of the stream's codec parameters, before the header is written.
        unsafe {
            (*(*stream.as_mut_ptr()).codecpar).codec_tag = u32::from_le_bytes(tag);
        }
    }
}

/// Write one packet to a muxer stream, in that stream's time base (which the muxer may
/// have changed when writing the header).
pub(super) fn write_packet(
    muxer: &mut format::context::Output,
    stream: usize,
    packet: &mut ffmpeg::Packet,
    encoder_time_base: Rational,
) -> Result<(), MediaError> {
    let stream_time_base = muxer.stream(stream).map(|s| s.time_base()).unwrap_or(encoder_time_base);
    packet.set_stream(stream);
    packet.rescale_ts(encoder_time_base, stream_time_base);
    packet.set_position(-1);
    // Not `Packet::write_interleaved`: it refuses empty packets, and an encoder's last
    // packet may carry only side data (FLAC's final STREAMINFO, with the MD5 and length).
    use ffmpeg::packet::Mut as _;
    // SAFETY: a valid packet for a stream of this open muxer; the muxer takes its data
    // by reference and leaves the packet blank.
    let status = unsafe { ffmpeg::ffi::av_interleaved_write_frame(muxer.as_mut_ptr(), packet.as_mut_ptr()) };
    if status < 0 { Err(MediaError::Ffmpeg { stage: "writing the output", source: ffmpeg::Error::from(status) }) } else { Ok(()) }
}

impl Sink for FileSink {
    type Done = Produced;

    fn wants_video(&self) -> bool {
        self.video.as_ref().is_some_and(|t| !t.done)
    }

    fn wants_audio(&self) -> bool {
        self.audio.as_ref().is_some_and(|t| !t.done)
    }

    fn video(&mut self, frame: &frame::Video) -> Result<Flow, MediaError> {
        if let Some(track) = self.video.as_mut() {
            track.take(frame, self.end, &mut self.muxer)?;
        }
        Ok(if self.all_done() { Flow::Done } else { Flow::Continue })
    }

    fn audio(&mut self, frame: &frame::Audio) -> Result<Flow, MediaError> {
        if let Some(track) = self.audio.as_mut() {
            track.take(frame, self.end, &mut self.muxer)?;
        }
        Ok(if self.all_done() { Flow::Done } else { Flow::Continue })
    }

    fn tracks(&self) -> Vec<usize> {
        self.others.iter().map(|(source, _)| *source).collect()
    }

    fn track(&mut self, stream: usize, frame: &frame::Audio) -> Result<Flow, MediaError> {
        if let Some((_, track)) = self.others.iter_mut().find(|(source, _)| *source == stream) {
            track.take(frame, self.end, &mut self.muxer)?;
        }
        Ok(if self.all_done() { Flow::Done } else { Flow::Continue })
    }

    /// Flush filters and encoders, then write the trailer.
    fn finish(&mut self) -> Result<Produced, MediaError> {
        if let Some(track) = self.video.as_mut() {
            track.flush(&mut self.muxer)?;
        }
        if let Some(track) = self.audio.as_mut() {
            track.flush(&mut self.muxer)?;
        }
        for (_, track) in self.others.iter_mut() {
            track.flush(&mut self.muxer)?;
        }
        self.muxer.write_trailer().map_err(MediaError::at("writing the container trailer"))?;
        Ok(Produced::File)
    }
}
