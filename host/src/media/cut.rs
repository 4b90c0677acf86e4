//! The chunks of an ultrafast job's input as files of their own, for workers that share
//! no file system with the coordinator: each holds the main video stream's packets of
//! one chunk, copied without decoding, in NUT. A chunk worker then fetches its chunk
//! only, not the whole input.
//!
//! A chunk file decodes to exactly the frames, with exactly the timestamps, that the
//! chunk's range of the whole input decodes to:
//! - it starts at the chunk's keyframe and ends with the next chunk's keyframe and the
//!   packets after it that are shown before it (the leading frames of an open GOP,
//!   which belong to this chunk);
//! - timestamps are the input's, from its start, moved forward by [`SHIFT_SECS`] (NUT
//!   refuses negative ones); what NUT does not keep (the stream's time base, which its
//!   muxer may refine, the frame rate, the rotation, the input's duration) is written to
//!   the file's metadata and restored by [`CutInfo::of`] when the worker opens it.

use std::path::{Path, PathBuf};

use ffmpeg::media::Type;
use ffmpeg::{Rational, Rescale, format};
use ffmpeg_next as ffmpeg;

use super::decode_limits::DecodeLimits;
use super::error::MediaError;
use super::file::write_packet;
use super::streams::{main_stream, rotation_of};
use super::split::ChunkRange;
use super::cut_info::{CUT_KEY, CutInfo};

/// Seconds every timestamp of a chunk file is moved forward by.
const SHIFT_SECS: i64 = 1_000;

/// One chunk file being written.
struct ChunkFile {
    muxer: format::context::Output,
    /// The chunk's end (input time, from the start), while its trailing packets come.
    end: Option<i64>,
}

impl ChunkFile {
    fn create(path: &Path, parameters: &ffmpeg::codec::Parameters, aspect: ffmpeg::ffi::AVRational, info: &CutInfo) -> Result<Self, MediaError> {
        let mut muxer = format::output_as(path, "nut").map_err(|source| MediaError::Open { path: path.display().to_string(), source })?;
        {
            let mut stream = muxer.add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None)).map_err(MediaError::at("adding a stream"))?;
            stream.set_parameters(parameters.clone());
            stream.set_time_base(info.time_base);
            stream.set_avg_frame_rate(info.frame_rate);
            // SAFETY: plain fields of the new stream and its parameters, before the header;
            // the input's tag (`avc1`, ...) means nothing to NUT, which picks its own.
            unsafe {
                (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0;
                (*stream.as_mut_ptr()).sample_aspect_ratio = aspect;
            }
        }
        let mut metadata = ffmpeg::Dictionary::new();
        metadata.set(CUT_KEY, &info.text());
        muxer.set_metadata(metadata);
        muxer.write_header().map_err(MediaError::at("writing a chunk's header"))?;
        Ok(ChunkFile { muxer, end: None })
    }

    fn write(&mut self, packet: &ffmpeg::Packet, info: &CutInfo) -> Result<(), MediaError> {
        let mut packet = packet.clone();
        write_packet(&mut self.muxer, 0, &mut packet, info.time_base)
    }

    fn finish(mut self) -> Result<(), MediaError> {
        self.muxer.write_trailer().map_err(MediaError::at("writing a chunk's trailer"))
    }
}

/// Write the packets of each of `ranges` (from [`super::chunk_ranges`] on the same
/// input) to the file of the same index in `paths`. The packets are held to `limits`:
/// their times and count to `max_duration_secs`, the stream's declared size to
/// `max_pixels` (each chunk's decode holds its pictures to it too).
pub fn cut_chunks(input: &Path, ranges: &[ChunkRange], paths: &[PathBuf], limits: &DecodeLimits) -> Result<(), MediaError> {
    super::ffmpeg_init::init();
    if ranges.is_empty() || ranges.len() != paths.len() {
        return Err(MediaError::Unsupported("one file per chunk is needed".into()));
    }
    let mut context = super::open::open_local(input, limits)?;
    let index = main_stream(&context, Type::Video).ok_or_else(|| MediaError::Unsupported("the input has no video".into()))?;
    // SAFETY: plain field of an open format context.
    let start_time = unsafe { (*context.as_ptr()).start_time };
    let start_time = if start_time == ffmpeg::ffi::AV_NOPTS_VALUE { 0 } else { start_time };
    let duration = if context.duration() > 0 { context.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) } else { 0.0 };
    let (info, offset, parameters, aspect) = {
        let stream = context.stream(index).ok_or(MediaError::NoStreams)?;
        let time_base = stream.time_base();
        // As the decoder of the whole input chooses it (see `input::VideoInput`).
        let frame_rate = [stream.avg_frame_rate(), stream.rate()]
            .into_iter()
            .find(|r| r.numerator() > 0 && r.denominator() > 0)
            .unwrap_or(Rational::new(25, 1));
        let shift = SHIFT_SECS.rescale(Rational::new(1, 1), time_base);
        // SAFETY: plain field of an open stream.
        let aspect = unsafe { (*stream.as_ptr()).sample_aspect_ratio };
        let info = CutInfo { time_base, frame_rate, rotation: rotation_of(&stream), shift, duration };
        // SAFETY: plain fields of an open stream's codec parameters.
        let (width, height) = unsafe { ((*(*stream.as_ptr()).codecpar).width, (*(*stream.as_ptr()).codecpar).height) };
        let (width, height) = (width.max(0) as u32, height.max(0) as u32);
        if u64::from(width) * u64::from(height) > limits.max_pixels {
            return Err(MediaError::PixelLimit { width, height, limit: limits.max_pixels });
        }
        (info, start_time.rescale(ffmpeg::rescale::TIME_BASE, time_base), stream.parameters(), aspect)
    };
    let mut packets = super::split::PacketWatch::new(limits);
    // The chunk being filled, and the one before it while its trailing packets come.
    let mut current = 0usize;
    let mut open = ChunkFile::create(&paths[0], &parameters, aspect, &info)?;
    let mut tail: Option<ChunkFile> = None;
    for (stream, mut packet) in context.packets() {
        if stream.index() != index {
            continue;
        }
        let ts = packet.pts().or(packet.dts()).map(|t| t - offset);
        let Some(pts) = ts else {
            return Err(MediaError::Unsupported(format!("a video packet of chunk {} has no timestamp", current + 1)));
        };
        packets.packet(Some(pts as f64 * f64::from(info.time_base)))?;
        let next_start = ranges.get(current + 1).and_then(|r| r.start);
        if packet.is_key() && next_start == Some(pts) {
            if let Some(done) = tail.take() {
                done.finish()?;
            }
            let mut previous = std::mem::replace(&mut open, ChunkFile::create(&paths[current + 1], &parameters, aspect, &info)?);
            previous.end = Some(pts);
            tail = Some(previous);
            current += 1;
        }
        let shifted = |t: i64| t - offset + info.shift;
        let pts_in = packet.pts().or(packet.dts()).map(shifted);
        let dts_in = packet.dts().map(shifted);
        if pts_in.is_some_and(|t| t < 0) || dts_in.is_some_and(|t| t < 0) {
            return Err(MediaError::Unsupported("the input's video starts too far before its own start".into()));
        }
        packet.set_pts(pts_in);
        packet.set_dts(dts_in);
        // The previous chunk also gets this chunk's keyframe and the frames after it that
        // are shown before it; the first packet shown later ends it.
        let for_tail = tail.as_ref().and_then(|t| t.end).is_some_and(|end| pts < end || (packet.is_key() && pts == end));
        match tail.as_mut() {
            Some(previous) if for_tail => previous.write(&packet, &info)?,
            Some(_) => tail.take().expect("matched Some").finish()?,
            None => {}
        }
        open.write(&packet, &info)?;
    }
    if let Some(done) = tail.take() {
        done.finish()?;
    }
    open.finish()?;
    if current + 1 != ranges.len() {
        return Err(MediaError::Corrupt(format!("the keyframe chunk {} starts at was not found", current + 2)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::VideoPlan;

    fn plan() -> VideoPlan {
        crate::media::test_fixtures::h264(160, 90, 28.0, "ultrafast")
    }

    /// Cut `input` into chunks of ~2 s and check that each chunk encoded from its own
    /// file gives exactly the piece the same range of the whole input gives.
    /// (With `whole: false`, only that every frame is in exactly one chunk: seeking the
    /// whole input is not exact in every container.)
    fn chunks_encode_as_their_ranges(dir: &Path, input: &Path, chunks: usize, whole: bool) {
        let ranges = super::super::chunk_ranges(input, 2.0).unwrap();
        assert_eq!(ranges.len(), chunks, "{ranges:?}");
        let stem = input.file_stem().unwrap().to_string_lossy().to_string();
        let files: Vec<PathBuf> = (0..ranges.len()).map(|i| dir.join(format!("{stem}-chunk-{i}.nut"))).collect();
        cut_chunks(input, &ranges, &files, &DecodeLimits::unlimited()).unwrap();
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let mut frames = 0;
        for (i, (range, file)) in ranges.iter().zip(&files).enumerate() {
            let own = dir.join(format!("{stem}-own-{i}.nut"));
            let n_own = super::super::encode_video_chunk(file, true, *range, &[(plan(), (1, 1))], &[own.clone()], &|_| {}, &cancel, &DecodeLimits::unlimited()).unwrap();
            frames += n_own;
            assert!(std::fs::metadata(file).unwrap().len() < std::fs::metadata(input).unwrap().len());
            if !whole {
                continue;
            }
            let whole = dir.join(format!("{stem}-whole-{i}.nut"));
            let n_whole = super::super::encode_video_chunk(input, false, *range, &[(plan(), (1, 1))], &[whole.clone()], &|_| {}, &cancel, &DecodeLimits::unlimited()).unwrap();
            assert_eq!(n_own, n_whole, "{stem} chunk {i}");
            let times = |p: &Path| std::fs::read_to_string(format!("{}.times", p.display())).unwrap();
            assert_eq!(times(&own), times(&whole), "{stem} chunk {i}: timestamps differ");
            assert_eq!(std::fs::read(&own).unwrap(), std::fs::read(&whole).unwrap(), "{stem} chunk {i}: pieces differ");
        }
        assert_eq!(frames, 150, "{stem}: 6 s at 25 fps");
    }

    fn ffmpeg(args: &[&str], out: &Path) {
        let status = std::process::Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).arg(out).status().expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg failed making {}", out.display());
    }

    /// MP4 with B-frames in open GOPs (leading frames that belong to the chunk before),
    /// a start offset and a rotation; WebM VP9 (a millisecond time base); MPEG-TS (90
    /// kHz, starting at 1.4 s), where a plain seek lands a keyframe late (so
    /// `Demuxer::seek_video` checks where it landed).
    #[test]
    fn a_chunk_file_encodes_as_its_range_of_the_whole_input() {
        let dir = tempfile::tempdir().unwrap();
        let source = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6"];
        let mp4 = dir.path().join("open-gop.mp4");
        let x264 = ["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-x264-params", "open-gop=1:keyint=25:min-keyint=25:scenecut=0"];
        ffmpeg(&[&source[..], &x264, &["-output_ts_offset", "1.5", "-metadata:s:v", "rotate=90"]].concat(), &mp4);
        chunks_encode_as_their_ranges(dir.path(), &mp4, 3, true);
        let ts = dir.path().join("stream.ts");
        ffmpeg(&[&source[..], &x264].concat(), &ts);
        chunks_encode_as_their_ranges(dir.path(), &ts, 3, true);
        let webm = dir.path().join("vp9.webm");
        ffmpeg(&[&source[..], &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "25", "-keyint_min", "25"]].concat(), &webm);
        chunks_encode_as_their_ranges(dir.path(), &webm, 3, true);
    }
}
