//! Animated GIFs in two passes, so that their memory is flat in their length.
//!
//! A GIF's 256 colours are chosen for the whole clip (`palettegen`), and every frame is
//! then mapped onto them (`paletteuse`). Done in one graph, `paletteuse` cannot map the
//! first frame before `palettegen` has seen the last, so every frame of the clip waited
//! in memory: a minute of 4K at 30 frames a second is 60 GB. Here a first pass decodes
//! the clip's range on its own and keeps only `palettegen`'s colour counts (bounded by
//! the 2^24 colours there are, whatever the length); the second pass, in the shared
//! decode, maps each frame as it comes with that palette. The frames and the palette are
//! the very ones the single graph made, so the GIF is the same file.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::decode_limits::DecodeLimits;
use super::encode::{VideoSetup, picture_chain};
use super::filters;
use super::input::Decoded;
use super::stitch::Source;
use crate::types::VideoPlan;

/// The first pass: decode `input`'s video over the GIF's range (the same frames the
/// encode will see), through the GIF's own chain into `palettegen`, and return the
/// palette. `alive` is called as frames are decoded (the pass makes no output).
pub(super) fn palette(
    input: &Path,
    plan: &VideoPlan,
    setup: &VideoSetup<'_>,
    limits: &DecodeLimits,
    cancel: &AtomicBool,
    alive: &dyn Fn(),
) -> Result<frame::Video, MediaError> {
    let mut demuxer = Source::open(input, limits)?;
    let format = demuxer.video_format().ok_or_else(|| MediaError::Unsupported("a GIF needs a video stream but the input has none".into()))?;
    let tone_map = plan.tone_map && filters::is_hdr(&format);
    let mut chain = picture_chain(plan, &format, setup, tone_map);
    chain.push("palettegen=stats_mode=diff".into());
    let mut graph = filters::video_graph(&format, &chain.join(","))?;
    // As the encode's track: frames from the range's end on are not fed, and the input
    // ends one frame after the last one fed.
    let end = setup.range.and_then(|r| r.duration.map(|d| r.offset + d));
    let one_frame = ffmpeg::Rescale::rescale(&1i64, format.frame_rate.invert(), format.time_base).max(1);
    let mut input_end: Option<i64> = None;
    let mut past_end = false;
    let mut fed: Result<(), MediaError> = Ok(());
    let mut scratch = frame::Video::empty();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(MediaError::Cancelled);
        }
        let more = demuxer.step(true, false, &mut |decoded| {
            let Decoded::Video(frame, seconds) = decoded else { return };
            if past_end || fed.is_err() || end.is_some_and(|end| seconds >= end) {
                past_end = true;
                return;
            }
            if let Some(pts) = frame.pts() {
                input_end = Some(pts + one_frame);
            }
            // Fed, then pulled: pulling is what runs the graph, so each frame is counted
            // and let go now instead of queueing at the source (palettegen, counting
            // the clip's colours, hands out nothing before its end).
            fed = filters::feed(&mut graph, Some(frame)).and_then(|()| filters::pull(&mut graph, &mut scratch).map(drop));
            alive();
        })?;
        fed.clone()?;
        if !more || past_end {
            break;
        }
    }
    match input_end {
        Some(end) => filters::close(&mut graph, end)?,
        None => return Err(MediaError::Corrupt("no video frame could be decoded for the GIF".into())),
    }
    let mut palette = frame::Video::empty();
    if !filters::pull(&mut graph, &mut palette)? {
        return Err(MediaError::Unsupported("the GIF's palette could not be made".into()));
    }
    // The time base the palette's timestamp is in, for the second pass's source.
    let time_base = filters::sink_time_base(&mut graph, format.time_base);
    // SAFETY: plain field of an owned frame; the time base travels with it.
    unsafe { (*palette.as_mut_ptr()).time_base = time_base.into() };
    Ok(palette)
}

