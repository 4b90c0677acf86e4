//! The join of an ultrafast output: its video pieces, in order, and its audio, copied
//! into the output's container without re-encoding. Packets keep the timestamps the
//! encoders gave them (each piece was encoded at its place in the input's timeline),
//! so the result is timed exactly as a one-piece encode. [`PieceChain`] reads one
//! stream's pieces as if they were one file; packages are made from such chains too.

use std::path::{Path, PathBuf};

use ffmpeg::{Rational, Rescale, codec, format};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::file::{muxer_options, set_codec_tag, write_packet};
use super::piece::PieceReader;

/// One encoded stream, read from its pieces in turn.
pub(super) struct PieceChain {
    pieces: std::vec::IntoIter<PathBuf>,
    reader: PieceReader,
    /// The first piece's stream, as a muxer stream is described.
    pub parameters: codec::Parameters,
    /// Zero when the piece does not say (audio).
    pub frame_rate: Rational,
    pub aspect: Rational,
    /// A packet's duration when the piece does not say (the last one matters to MP4).
    duration: i64,
    next: Option<ffmpeg::Packet>,
}

impl PieceChain {
    pub fn open(pieces: Vec<PathBuf>) -> Result<Self, MediaError> {
        let mut pieces = pieces.into_iter();
        let first = pieces.next().ok_or_else(|| MediaError::Unsupported("no piece to join".into()))?;
        let reader = PieceReader::open(&first)?;
        let (parameters, frame_rate, aspect) = {
            let stream = reader.stream();
            // SAFETY: plain field of an open stream.
            let aspect = unsafe { (*stream.as_ptr()).sample_aspect_ratio };
            // An owned copy: the piece it describes is closed at the next one.
            (stream.parameters().clone(), stream.avg_frame_rate(), Rational::from(aspect))
        };
        let time_base = reader.time_base;
        let duration = if parameters.medium() == ffmpeg::media::Type::Video && frame_rate.numerator() > 0 {
            1i64.rescale(frame_rate.invert(), time_base).max(1)
        } else {
            // SAFETY: plain field of the piece's codec parameters.
            i64::from(unsafe { (*parameters.as_ptr()).frame_size }.max(0))
        };
        let mut chain = PieceChain { pieces, reader, parameters, frame_rate, aspect, duration, next: None };
        chain.advance()?;
        Ok(chain)
    }

    /// The time base packets are handed out in: the encoder's.
    pub fn time_base(&self) -> Rational {
        self.reader.time_base
    }

    /// Read the next packet, going on to the next piece at the end of one.
    fn advance(&mut self) -> Result<(), MediaError> {
        loop {
            if let Some(mut packet) = self.reader.next()? {
                if packet.duration() <= 0 && self.duration > 0 {
                    packet.set_duration(self.duration);
                }
                self.next = Some(packet);
                return Ok(());
            }
            let Some(path) = self.pieces.next() else {
                self.next = None;
                return Ok(());
            };
            let reader = PieceReader::open(&path)?;
            if reader.time_base != self.reader.time_base {
                return Err(MediaError::Corrupt(format!("{} was encoded in another time base", path.display())));
            }
            self.reader = reader;
        }
    }

    /// When the next packet is decoded, in microseconds (for interleaving); `None` at the end.
    pub fn due(&self) -> Option<i64> {
        let packet = self.next.as_ref()?;
        let ts = packet.dts().or(packet.pts()).unwrap_or(0);
        Some(ts.rescale(self.reader.time_base, Rational::new(1, 1_000_000)))
    }

    /// The next packet (in [`Self::time_base`]), or `None` at the end.
    pub fn take(&mut self) -> Result<Option<ffmpeg::Packet>, MediaError> {
        let packet = self.next.take();
        if packet.is_some() {
            self.advance()?;
        }
        Ok(packet)
    }
}

/// One stream of the output, fed from pieces in turn.
struct Feed {
    chain: PieceChain,
    stream: usize,
}

impl Feed {
    fn open(pieces: Vec<PathBuf>, muxer: &mut format::context::Output, container: &str) -> Result<Self, MediaError> {
        let chain = PieceChain::open(pieces)?;
        let video = chain.parameters.medium() == ffmpeg::media::Type::Video;
        let hevc = chain.parameters.id() == codec::Id::HEVC;
        let index = {
            let mut stream = muxer.add_stream(ffmpeg::encoder::find(codec::Id::None)).map_err(MediaError::at("adding a stream"))?;
            stream.set_parameters(chain.parameters.clone());
            stream.set_time_base(chain.time_base());
            if video && chain.frame_rate.numerator() > 0 {
                stream.set_avg_frame_rate(chain.frame_rate);
            }
            // SAFETY: plain fields of the new stream and its parameters, before the header.
            unsafe {
                (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0;
                (*stream.as_mut_ptr()).sample_aspect_ratio = chain.aspect.into();
            }
            stream.index()
        };
        if hevc && matches!(container, "mp4" | "mov") {
            set_codec_tag(muxer, index, *b"hvc1");
        }
        Ok(Feed { chain, stream: index })
    }
}

/// Join `video` pieces (in order) and the `audio` piece into `output`, a file in
/// `container` (an FFmpeg muxer name).
pub fn join(video: &[PathBuf], audio: Option<&Path>, container: &str, output: &Path) -> Result<(), MediaError> {
    super::ffmpeg_init::init();
    let result = join_inner(video, audio, container, output);
    if result.is_err() {
        let _ = std::fs::remove_file(output);
    }
    result
}

fn join_inner(video: &[PathBuf], audio: Option<&Path>, container: &str, output: &Path) -> Result<(), MediaError> {
    let mut muxer = format::output_as(output, container).map_err(|source| MediaError::Open { path: output.display().to_string(), source })?;
    let mut feeds = vec![Feed::open(video.to_vec(), &mut muxer, container)?];
    if let Some(audio) = audio {
        feeds.push(Feed::open(vec![audio.to_path_buf()], &mut muxer, container)?);
    }
    muxer.write_header_with(muxer_options(container)).map_err(MediaError::at("writing the container header"))?;
    // Always the feed whose next packet is due first: the muxer gets them in order.
    while let Some(feed) = feeds.iter_mut().filter(|f| f.chain.due().is_some()).min_by_key(|f| f.chain.due()) {
        let time_base = feed.chain.time_base();
        let Some(mut packet) = feed.chain.take()? else { break };
        write_packet(&mut muxer, feed.stream, &mut packet, time_base)?;
    }
    muxer.write_trailer().map_err(MediaError::at("writing the container trailer"))?;
    Ok(())
}
