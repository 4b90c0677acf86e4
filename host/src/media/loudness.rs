//! Loudness (ITU-R BS.1770-4 with EBU R128 gating): measured with libavfilter's
//! `ebur128` (integrated loudness, loudness range, true peak by 4× oversampling), and
//! normalized as one linear gain, with a true-peak limiter only where the gain would
//! push the peaks past the ceiling.
//!
//! A job's input is measured before its encode, once for each part of it and channel
//! count its outputs use ([`measure_loudness`], audio only: a fraction of a video
//! decode); each encoder then applies [`adjustment`] in its audio graph. An output is
//! measured again from its own file ([`measure_output_loudness`]), so what the metadata
//! says is what a listener gets.

use std::path::Path;

use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::decode_limits::DecodeLimits;
use super::filters;
use super::input::{AudioFormat, Decoded, Demuxer};
use super::stitch::Source;
use crate::types::{Loudness, LoudnessPlan, TimeRange};

/// What `ebur128` reports for silence (its absolute gate) and below which nothing is
/// normalized: there is no programme to bring to a level.
pub const SILENCE_LUFS: f64 = -70.0;

/// The lowest true peak reported (digital silence has none).
const FLOOR_DBTP: f64 = -144.0;

/// Room kept under a true-peak ceiling for what the codec adds: a lossy encoder's
/// reconstruction overshoots the peaks it was given (AAC by a decibel on clicks).
const LOSSY_HEADROOM_DB: f64 = 1.5;
const LOSSLESS_HEADROOM_DB: f64 = 0.1;

/// The limiter's look-ahead (attack) and release, milliseconds.
const LIMITER_ATTACK_MS: f64 = 1.0;
const LIMITER_RELEASE_MS: f64 = 50.0;

/// Which audio to measure: a part of the input, mixed to a channel count (none: as
/// the input has it), and through an adjustment (as an encoder at `rate` Hz applies it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoudnessRequest {
    pub range: Option<TimeRange>,
    pub channels: Option<u32>,
    #[serde(default)]
    pub through: Option<(Adjustment, u32)>,
    /// The input's audio track (stream index); none: the main one.
    #[serde(default)]
    pub stream: Option<usize>,
}

/// The most gain added for what the limiter takes off, dB.
const MAX_MAKEUP_DB: f64 = 6.0;

/// How an encoder changes the audio to reach a loudness target.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adjustment {
    /// The linear gain, dB.
    pub gain_db: f64,
    /// The limiter's ceiling (dBTP) when the gain alone would exceed the target's
    /// true peak; none when the gain is linear all through.
    pub limit_db: Option<f64>,
}

/// What reaching `plan`'s target takes, from the input measured as `plan.input`; none
/// when the plan only measures, the input was not measured, or it is silent. With a
/// limiter, the loudness it takes off (`plan.limited`, measured through this
/// adjustment) is made up in the gain, up to [`MAX_MAKEUP_DB`].
pub fn adjustment(plan: &LoudnessPlan, lossy: bool) -> Option<Adjustment> {
    let measured = plan.input.filter(|_| !plan.measure_only)?;
    if !measured.integrated.is_finite() || measured.integrated <= SILENCE_LUFS {
        return None;
    }
    let gain_db = plan.integrated - measured.integrated;
    let ceiling = plan.true_peak - if lossy { LOSSY_HEADROOM_DB } else { LOSSLESS_HEADROOM_DB };
    let limit_db = (measured.true_peak + gain_db > ceiling).then_some(ceiling);
    let makeup = match (limit_db, plan.limited) {
        (Some(_), Some(limited)) if limited.integrated.is_finite() => (plan.integrated - limited.integrated).clamp(0.0, MAX_MAKEUP_DB),
        _ => 0.0,
    };
    Some(Adjustment { gain_db: gain_db + makeup, limit_db })
}

/// The measurement that makes up for the limiter: `plan`'s audio through its
/// adjustment before any makeup, when that needs the limiter.
pub fn limiter_request(plan: &LoudnessPlan, lossy: bool, range: Option<TimeRange>, channels: u32, rate: u32) -> Option<LoudnessRequest> {
    let unmade = LoudnessPlan { limited: None, ..plan.clone() };
    let adjustment = adjustment(&unmade, lossy).filter(|a| a.limit_db.is_some())?;
    Some(LoudnessRequest { range, channels: Some(channels), through: Some((adjustment, rate)), stream: None })
}

/// The filters applying `adjustment` to audio at `rate` Hz: the gain, then the limiter
/// at 4× the rate (so that it holds the peaks between samples too, as a true-peak
/// meter sees them), back at `rate`.
pub(super) fn filters(adjustment: &Adjustment, rate: u32) -> String {
    let mut chain = format!("volume={:.4}dB:precision=double", adjustment.gain_db);
    if let Some(limit) = adjustment.limit_db {
        let linear = 10f64.powf(limit / 20.0);
        chain.push_str(&format!(
            ",aresample={up},alimiter=limit={linear:.6}:attack={LIMITER_ATTACK_MS}:release={LIMITER_RELEASE_MS}:level=false:latency=true,aresample={rate}",
            up = rate.saturating_mul(4)
        ));
    }
    chain
}

/// Whether a codec's reconstruction differs from its input (its peaks can overshoot).
pub fn is_lossy(codec: &str) -> bool {
    !matches!(codec, "flac" | "pcm_s16le" | "pcm_s24le" | "alac")
}

/// Measure each request of `input`'s audio, from one decode of it; `progress` sees the
/// share of the input read (about once a second of it).
pub fn measure_loudness(
    input: &Path,
    requests: &[LoudnessRequest],
    limits: &DecodeLimits,
    progress: &dyn Fn(f64),
) -> Result<Vec<Result<Loudness, MediaError>>, MediaError> {
    super::ffmpeg_init::init();
    let mut demuxer = Source::open(input, limits)?;
    measure(&mut demuxer, requests, limits, progress)
}

/// Measure a file the engine made (a package's media playlist with its segments too).
pub fn measure_output_loudness(file: &Path, limits: &DecodeLimits) -> Result<Loudness, MediaError> {
    super::ffmpeg_init::init();
    let mut demuxer = Source::One(Demuxer::open_own(file, limits)?);
    measure(&mut demuxer, &[LoudnessRequest { range: None, channels: None, through: None, stream: None }], limits, &|_| {})?
        .pop()
        .unwrap_or_else(|| Err(MediaError::Unsupported("nothing was measured".into())))
}

fn measure(demuxer: &mut Source, requests: &[LoudnessRequest], limits: &DecodeLimits, progress: &dyn Fn(f64)) -> Result<Vec<Result<Loudness, MediaError>>, MediaError> {
    let main = demuxer.main_audio().ok_or_else(|| MediaError::Unsupported("the file has no audio to measure".into()))?;
    let others: Vec<usize> = requests.iter().filter_map(|r| r.stream).filter(|s| *s != main).collect();
    demuxer.open_tracks(&others, limits);
    let formats = demuxer.track_formats();
    // Each meter's track: the main one's frames come as the main audio.
    let sources: Vec<Option<usize>> = requests.iter().map(|r| r.stream.filter(|s| *s != main)).collect();
    let mut meters: Vec<Result<Meter, MediaError>> = requests
        .iter()
        .map(|r| {
            let stream = r.stream.unwrap_or(main);
            let (_, format) = formats.iter().find(|(s, _)| *s == stream).ok_or_else(|| MediaError::Unsupported(format!("audio track {stream} cannot be decoded")))?;
            Meter::open(format, r)
        })
        .collect();
    let (duration, mut reported) = (demuxer.duration(), 0.0);
    let mut failure = None;
    loop {
        let step = demuxer.step(false, true, &mut |decoded| {
            let (source, frame, time) = match decoded {
                Decoded::Audio(frame, time) => (None, frame, time),
                Decoded::Track(stream, frame, time) => (Some(stream), frame, time),
                Decoded::Video(..) => return,
            };
            if source.is_none() && duration > 0.0 && time - reported >= 1.0 {
                reported = time;
                progress((time / duration).clamp(0.0, 1.0));
            }
            for (meter, _) in meters.iter_mut().zip(&sources).filter(|(_, s)| **s == source) {
                if let Ok(m) = meter
                    && let Err(err) = m.push(Some(frame))
                {
                    *meter = Err(err);
                }
            }
        });
        match step {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(meters.into_iter().map(|m| m.and_then(Meter::finish)).collect())
}

/// One `ebur128` graph and what it has said so far. The filter attaches its running
/// figures to the frames it passes on: integrated loudness and range are running
/// values (the last frame's hold for the whole), true peaks running maxima per channel.
struct Meter {
    graph: ffmpeg::filter::Graph,
    out: frame::Audio,
    integrated: Option<f64>,
    lra: Option<f64>,
    /// Linear, the highest of any channel.
    peak: Option<f64>,
}

impl Meter {
    fn open(format: &AudioFormat, request: &LoudnessRequest) -> Result<Self, MediaError> {
        let mut chain: Vec<String> = filters::audio_trim(request.range.as_ref()).into_iter().collect();
        if let Some((_, rate)) = request.through {
            chain.push(format!("aresample={rate}"));
        }
        if let Some(channels) = request.channels {
            chain.push(format!("aformat=channel_layouts=0x{:x}", ffmpeg::ChannelLayout::default(channels as i32).bits()));
        }
        if let Some((adjustment, rate)) = &request.through {
            chain.push(filters(adjustment, *rate));
        }
        chain.push("ebur128=peak=true:metadata=1".into());
        let graph = filters::audio_graph(format, &chain.join(","), |_| {})?;
        Ok(Meter { graph, out: frame::Audio::empty(), integrated: None, lra: None, peak: None })
    }

    fn push(&mut self, frame: Option<&frame::Audio>) -> Result<(), MediaError> {
        filters::feed(&mut self.graph, frame.map(|f| f as &frame::Frame))?;
        while filters::pull(&mut self.graph, &mut self.out)? {
            let metadata = self.out.metadata();
            let number = |key: &str| metadata.get(key).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite());
            if let Some(i) = number("lavfi.r128.I") {
                self.integrated = Some(i);
            }
            if let Some(lra) = number("lavfi.r128.LRA") {
                self.lra = Some(lra);
            }
            for (key, value) in metadata.iter() {
                if key.starts_with("lavfi.r128.true_peaks_ch")
                    && let Ok(v) = value.trim().parse::<f64>()
                    && v.is_finite()
                {
                    self.peak = Some(self.peak.map_or(v, |p| p.max(v)));
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Loudness, MediaError> {
        self.push(None)?;
        let integrated = self.integrated.ok_or_else(|| MediaError::Unsupported("the audio is too short to measure (under 400 ms)".into()))?;
        let true_peak = self.peak.map_or(FLOOR_DBTP, |p| if p > 0.0 { (20.0 * p.log10()).max(FLOOR_DBTP) } else { FLOOR_DBTP });
        Ok(Loudness { integrated: integrated.max(SILENCE_LUFS), lra: self.lra.unwrap_or(0.0).max(0.0), true_peak })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(integrated: f64, true_peak: f64, input: Option<Loudness>) -> LoudnessPlan {
        LoudnessPlan { integrated, true_peak, lra: 11.0, measure_only: false, input, limited: None, tracks: Vec::new() }
    }

    fn measured(integrated: f64, true_peak: f64) -> Option<Loudness> {
        Some(Loudness { integrated, lra: 5.0, true_peak })
    }

    #[test]
    fn linear_gain_where_the_peaks_allow_it() {
        let a = adjustment(&plan(-16.0, -1.5, measured(-8.0, -0.5)), true).unwrap();
        assert_eq!(a, Adjustment { gain_db: -8.0, limit_db: None });
        let a = adjustment(&plan(-16.0, -1.5, measured(-30.0, -20.0)), true).unwrap();
        assert_eq!(a, Adjustment { gain_db: 14.0, limit_db: None }, "peaks end at -6 dBTP");
    }

    #[test]
    fn a_limiter_where_the_gain_would_pass_the_ceiling() {
        let a = adjustment(&plan(-16.0, -1.5, measured(-35.0, -14.0)), true).unwrap();
        assert_eq!(a.gain_db, 19.0);
        assert_eq!(a.limit_db, Some(-3.0), "a lossy codec keeps headroom");
        let a = adjustment(&plan(-16.0, -1.5, measured(-35.0, -14.0)), false).unwrap();
        assert!((a.limit_db.unwrap() + 1.6).abs() < 1e-9);
        let chain = filters(&a, 48000);
        assert!(chain.starts_with("volume=19.0000dB") && chain.contains("aresample=192000,alimiter=limit=0.83") && chain.ends_with("aresample=48000"), "{chain}");
        assert_eq!(filters(&Adjustment { gain_db: -3.0, limit_db: None }, 44100), "volume=-3.0000dB:precision=double");
    }

    #[test]
    fn what_the_limiter_takes_off_is_made_up() {
        let quiet = plan(-16.0, -1.5, measured(-35.0, -14.0));
        let request = limiter_request(&quiet, true, None, 2, 48000).unwrap();
        assert_eq!(request.through, Some((Adjustment { gain_db: 19.0, limit_db: Some(-3.0) }, 48000)));
        let limited = LoudnessPlan { limited: measured(-17.2, -2.5), ..quiet.clone() };
        let a = adjustment(&limited, true).unwrap();
        assert!((a.gain_db - 20.2).abs() < 1e-9 && a.limit_db == Some(-3.0), "{a:?}");
        let crushed = LoudnessPlan { limited: measured(-40.0, -2.5), ..quiet };
        assert_eq!(adjustment(&crushed, true).unwrap().gain_db, 19.0 + MAX_MAKEUP_DB);
        assert!(limiter_request(&plan(-16.0, -1.5, measured(-8.0, -0.5)), true, None, 2, 48000).is_none(), "no limiter, nothing to make up");
    }

    #[test]
    fn nothing_to_do_when_only_measuring_unmeasured_or_silent() {
        assert!(adjustment(&plan(-16.0, -1.5, None), true).is_none());
        assert!(adjustment(&plan(-16.0, -1.5, measured(SILENCE_LUFS, FLOOR_DBTP)), true).is_none());
        let only = LoudnessPlan { measure_only: true, ..plan(-16.0, -1.5, measured(-20.0, -3.0)) };
        assert!(adjustment(&only, true).is_none());
        assert!(is_lossy("aac") && is_lossy("opus") && !is_lossy("flac") && !is_lossy("pcm_s16le"));
    }
}
