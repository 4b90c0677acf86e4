//! The audio of joined inputs, one lane per joined track. Each file's track is made like
//! the joined audio (resampled, its gaps filled, in one sample format and channel
//! layout) and waits for the pictures: at the end of a file it is cut at its last
//! picture's end, or padded with silence to it, so the next file starts in sync.
//!
//! Which of a file's tracks plays a joined track: the one in its language, else the
//! file's main track (an intro's music plays under every language), else silence.

use std::collections::VecDeque;

use ffmpeg::{filter, frame};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::filters::{feed, pull};
use super::input::{AudioFormat, Decoded};
use crate::types::AudioTrack;

/// The joined input's audio tracks: those of the input that has the most (the first of
/// those), so that a programme's languages are offered after a one-track intro. Their
/// `stream` is that input's stream index: the joined track's id.
pub fn joined_tracks<'a>(inputs: impl IntoIterator<Item = &'a [AudioTrack]>) -> Vec<AudioTrack> {
    let mut widest: &[AudioTrack] = &[];
    for tracks in inputs {
        if tracks.len() > widest.len() {
            widest = tracks;
        }
    }
    widest.to_vec()
}

/// The stream of an input's `tracks` (main first) that plays joined `track`: the one in
/// its language, else the input's main track; none when the input has no audio.
pub fn source_track(track: &AudioTrack, tracks: &[AudioTrack]) -> Option<usize> {
    let language = track.language.as_deref();
    let same = tracks.iter().find(|t| language.zip(t.language.as_deref()).is_some_and(|(a, b)| crate::languages::same_language(a, b)));
    same.or(tracks.first()).map(|t| t.stream)
}

/// Where a file's timeline starts against its audio's.
#[derive(Debug, Clone, Copy)]
pub(super) enum Lead {
    /// At its audio's start (the first file: its own timeline is the joined one).
    None,
    /// At its first picture, which has not been decoded yet: the audio waits.
    Unknown,
    /// At its first picture, this many seconds in: as much audio is cut.
    At(f64),
}

/// One joined track through one file.
pub(super) struct TrackLane {
    /// The joined track's id.
    pub id: usize,
    /// Whether it is the main track (handed out as `Decoded::Audio`).
    main: bool,
    /// The file's stream that plays it; none: silence.
    pub source: Option<usize>,
    graph: Option<filter::Graph>,
    /// Conformed audio not handed out yet.
    held: VecDeque<frame::Audio>,
    /// Samples handed out for this file.
    pub samples: u64,
    lead_cut: bool,
}

impl TrackLane {
    /// The lane of joined track `id`, played by the file's stream `source` (of `format`).
    pub fn open(id: usize, main: bool, source: Option<(usize, &AudioFormat)>, target: &AudioFormat) -> Result<TrackLane, MediaError> {
        let graph = match source {
            Some((_, format)) => {
                let spec = format!(
                    "aresample={rate}:async=1:first_pts=0,aformat=sample_fmts={fmt}:sample_rates={rate}:channel_layouts=0x{layout:x}",
                    rate = target.rate,
                    fmt = target.sample_format.name(),
                    layout = target.layout.bits(),
                );
                Some(super::filters::audio_graph(format, &spec, |_| {})?)
            }
            None => None,
        };
        Ok(TrackLane { id, main, source: source.map(|(s, _)| s), graph, held: VecDeque::new(), samples: 0, lead_cut: false })
    }

    /// A decoded frame of the source stream; what the graph makes waits.
    pub fn take(&mut self, frame: &frame::Audio) -> Result<(), MediaError> {
        let Some(graph) = self.graph.as_mut() else { return Ok(()) };
        feed(graph, Some(frame))?;
        self.drain()
    }

    /// The end of the source stream: the graph's last samples.
    pub fn flush(&mut self) -> Result<(), MediaError> {
        let Some(graph) = self.graph.as_mut() else { return Ok(()) };
        feed(graph, None)?;
        self.drain()
    }

    fn drain(&mut self) -> Result<(), MediaError> {
        let Some(graph) = self.graph.as_mut() else { return Ok(()) };
        loop {
            let mut out = frame::Audio::empty();
            if !pull(graph, &mut out)? {
                return Ok(());
            }
            self.held.push_back(out);
        }
    }

    /// Hand out held audio up to `until` seconds of the file's timeline (all of it for
    /// none), stamped by the samples counted (the graph filled the gaps, so the count
    /// is the time) from `start`, where the file starts on the joined timeline. While
    /// the file is read, audio past `until` waits for more pictures; at its end
    /// (`last`), a frame across `until` is cut there and the rest dropped.
    pub fn give(&mut self, until: Option<f64>, last: bool, lead: Lead, target: &AudioFormat, start: f64, each: &mut dyn FnMut(Decoded<'_>)) {
        let rate = f64::from(target.rate.max(1));
        if !self.lead_cut {
            match lead {
                Lead::Unknown if !last => return,
                Lead::At(lead) => self.cut_lead((lead * rate).round() as usize, target),
                _ => {}
            }
            self.lead_cut = true;
        }
        let limit = until.map(|t| (t * rate).round().max(0.0) as u64);
        while let Some(mut frame) = self.held.pop_front() {
            let count = frame.samples() as u64;
            let room = limit.map_or(count, |l| l.saturating_sub(self.samples));
            if count <= room {
                self.emit(&mut frame, start, rate, each);
            } else if last {
                if room > 0 {
                    let mut part = super::clips::cut_samples(&frame, 0, room as usize, target.layout);
                    self.emit(&mut part, start, rate, each);
                }
                self.held.clear();
            } else {
                self.held.push_front(frame);
                return;
            }
        }
    }

    /// Drop the first `skip` samples held: the audio before the file's first picture.
    fn cut_lead(&mut self, mut skip: usize, target: &AudioFormat) {
        while skip > 0
            && let Some(frame) = self.held.pop_front()
        {
            if frame.samples() > skip {
                self.held.push_front(super::clips::cut_samples(&frame, skip, frame.samples(), target.layout));
                return;
            }
            skip -= frame.samples();
        }
    }

    /// Silence from the audio handed out to `end` seconds (a file without this track's
    /// audio, or whose audio stops before its pictures).
    pub fn pad(&mut self, end: f64, target: &AudioFormat, start: f64, each: &mut dyn FnMut(Decoded<'_>)) {
        let rate = f64::from(target.rate.max(1));
        let end = (end * rate).round().max(0.0) as u64;
        while self.samples < end {
            let count = (end - self.samples).min(1024) as usize;
            let mut silence = silence(target, count);
            self.emit(&mut silence, start, rate, each);
        }
    }

    fn emit(&mut self, frame: &mut frame::Audio, start: f64, rate: f64, each: &mut dyn FnMut(Decoded<'_>)) {
        let seconds = start + self.samples as f64 / rate;
        frame.set_pts(Some((seconds * rate).round() as i64));
        self.samples += frame.samples() as u64;
        if self.main {
            each(Decoded::Audio(frame, seconds));
        } else {
            each(Decoded::Track(self.id, frame, seconds));
        }
    }
}

/// `count` samples of silence in `format`.
fn silence(format: &AudioFormat, count: usize) -> frame::Audio {
    let mut frame = frame::Audio::new(format.sample_format, count, format.layout);
    frame.set_rate(format.rate);
    // SAFETY: ffmpeg-next's `data_mut(i)` is sized by `linesize[i]`, which FFmpeg sets
    // for the first plane of audio only, so FFmpeg itself writes the silence (zero, or
    // the midpoint of unsigned samples) into every plane. The frame was allocated for
    // `count` samples of its format and channels; `extended_data` points to each plane.
    unsafe {
        let ptr = frame.as_mut_ptr();
        ffmpeg::ffi::av_samples_set_silence(
            (*ptr).extended_data,
            0,
            count as i32,
            frame.channels() as i32,
            ffmpeg::ffi::AVSampleFormat::from(format.sample_format),
        );
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(stream: usize, language: Option<&str>) -> AudioTrack {
        AudioTrack { stream, language: language.map(str::to_string), title: None, channels: 2 }
    }

    #[test]
    fn the_programme_defines_the_tracks_and_each_input_plays_its_own_language_or_its_main() {
        let intro = vec![track(1, None)];
        let programme = vec![track(1, Some("eng")), track(2, Some("fre"))];
        let outro = vec![track(3, Some("fra")), track(4, Some("eng"))];
        let joined = joined_tracks([intro.as_slice(), programme.as_slice(), outro.as_slice()]);
        assert_eq!(joined, programme, "the input with the most tracks, the first of those");
        assert_eq!(source_track(&joined[0], &intro), Some(1), "the intro's music under English");
        assert_eq!(source_track(&joined[1], &intro), Some(1), "and under French");
        assert_eq!(source_track(&joined[1], &outro), Some(3), "fre and fra are one language");
        assert_eq!(source_track(&joined[0], &outro), Some(4));
        assert_eq!(source_track(&joined[0], &[]), None, "no audio: silence");
    }
}
