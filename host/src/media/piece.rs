//! Pieces of an ultrafast job: one encoded stream per file, in NUT, which keeps every
//! packet's exact timestamp in a time base of its own. Two things make a piece join back
//! without a seam:
//! - every timestamp is shifted forward by a fixed [`SHIFT_SECS`] (NUT refuses negative
//!   ones, which encoders with B-frames or priming make, and libavformat would otherwise
//!   shift the file by an amount of its own choosing);
//! - the encoder's time base is kept in the file's metadata, so the join writes packets
//!   in exactly the time base a one-piece encode would have;
//! - NUT keeps no decoding timestamps (its demuxer guesses them, and none for the first
//!   frames of an encoder with B-frames), so each packet's pts, dts and duration, as the
//!   encoder gave them, are also written to a side file (`<piece>.times`, a line each)
//!   and the reader restores them from it.

use std::path::Path;

use ffmpeg::{Rational, Rescale, format};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::file::{add_stream, write_packet};

/// Seconds every timestamp of a piece is moved forward by.
const SHIFT_SECS: i64 = 1_000;
const TIME_BASE_KEY: &str = "copra_time_base";

/// The shift, in `time_base` units (the same integer on both sides of a piece).
fn shift(time_base: Rational) -> i64 {
    SHIFT_SECS.rescale(Rational::new(1, 1), time_base)
}

/// Writes one encoder's packets to a piece.
pub(super) struct PieceWriter {
    muxer: format::context::Output,
    time_base: Rational,
    times: std::io::BufWriter<std::fs::File>,
}

/// The side file of a piece, with its packets' exact timestamps.
fn times_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".times");
    name.into()
}

/// A missing timestamp in the side file.
const NONE: i64 = i64::MIN;

impl PieceWriter {
    pub fn create(path: &Path, encoder: &ffmpeg::encoder::Encoder, time_base: Rational, frame_rate: Option<Rational>) -> Result<Self, MediaError> {
        let mut muxer = format::output_as(path, "nut").map_err(|source| MediaError::Open { path: path.display().to_string(), source })?;
        add_stream(&mut muxer, encoder, time_base, frame_rate)?;
        let mut metadata = ffmpeg::Dictionary::new();
        metadata.set(TIME_BASE_KEY, &format!("{}/{}", time_base.numerator(), time_base.denominator()));
        muxer.set_metadata(metadata);
        muxer.write_header().map_err(MediaError::at("writing a piece's header"))?;
        let times = std::fs::File::create(times_path(path)).map_err(|e| MediaError::Unsupported(format!("creating a piece's side file: {e}")))?;
        Ok(PieceWriter { muxer, time_base, times: std::io::BufWriter::new(times) })
    }

    /// Write a packet the encoder made (in its time base `tb`).
    pub fn write(&mut self, packet: &mut ffmpeg::Packet, tb: Rational) -> Result<(), MediaError> {
        use std::io::Write as _;
        packet.rescale_ts(tb, self.time_base);
        let line = format!("{} {} {}\n", packet.pts().unwrap_or(NONE), packet.dts().unwrap_or(NONE), packet.duration());
        self.times.write_all(line.as_bytes()).map_err(|e| MediaError::Unsupported(format!("writing a piece's side file: {e}")))?;
        let shift = shift(self.time_base);
        packet.set_pts(packet.pts().map(|t| t + shift));
        packet.set_dts(packet.dts().map(|t| t + shift));
        write_packet(&mut self.muxer, 0, packet, self.time_base)
    }

    pub fn finish(mut self) -> Result<(), MediaError> {
        use std::io::Write as _;
        self.times.flush().map_err(|e| MediaError::Unsupported(format!("writing a piece's side file: {e}")))?;
        self.muxer.write_trailer().map_err(MediaError::at("writing a piece's trailer"))
    }
}

/// Reads a piece's packets back with their original timestamps.
pub(super) struct PieceReader {
    input: super::open::LocalInput,
    /// The encoder's time base, which packets are handed out in.
    pub time_base: Rational,
    /// Each packet's pts, dts and duration, in order.
    times: std::vec::IntoIter<(i64, i64, i64)>,
    path: std::path::PathBuf,
}

impl PieceReader {
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let input = super::open::open_local(path, &super::decode_limits::DecodeLimits::unlimited())?;
        input.stream(0).ok_or(MediaError::NoStreams)?;
        let time_base = input
            .metadata()
            .get(TIME_BASE_KEY)
            .and_then(|text| {
                let (num, den) = text.split_once('/')?;
                Some(Rational::new(num.parse().ok()?, den.parse().ok()?))
            })
            .filter(|tb| tb.numerator() > 0 && tb.denominator() > 0)
            .ok_or_else(|| MediaError::Corrupt(format!("{} is not a piece of an ultrafast job", path.display())))?;
        let corrupt = || MediaError::Corrupt(format!("the side file of {} is damaged", path.display()));
        let text = std::fs::read_to_string(times_path(path)).map_err(|_| corrupt())?;
        let times = text
            .lines()
            .map(|line| {
                let mut fields = line.split(' ').map(str::parse::<i64>);
                match (fields.next(), fields.next(), fields.next()) {
                    (Some(Ok(pts)), Some(Ok(dts)), Some(Ok(duration))) => Ok((pts, dts, duration)),
                    _ => Err(corrupt()),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PieceReader { input, time_base, times: times.into_iter(), path: path.to_path_buf() })
    }

    pub fn stream(&self) -> format::stream::Stream<'_> {
        self.input.stream(0).expect("a piece has its stream")
    }

    /// The next packet, in [`Self::time_base`], or `None` at the end.
    pub fn next(&mut self) -> Result<Option<ffmpeg::Packet>, MediaError> {
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut self.input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => return Ok(None),
            Err(source) => return Err(MediaError::Ffmpeg { stage: "reading a piece", source }),
        }
        let (pts, dts, duration) =
            self.times.next().ok_or_else(|| MediaError::Corrupt(format!("{} has more packets than its side file", self.path.display())))?;
        packet.set_pts((pts != NONE).then_some(pts));
        packet.set_dts((dts != NONE).then_some(dts));
        packet.set_duration(duration);
        Ok(Some(packet))
    }
}
