//! Loudness, as a job step: before the encode, the input's audio is measured once for
//! each part of it and channel count the outputs' loudness targets need (one engine
//! call, an audio-only decode), and each plan carries its measurement, from which the
//! encoder takes its gain (`media::adjustment`). After the encode, a normalized output
//! is measured from its own file, and the metadata says both.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::Planned;
use super::record::JobRun;
use crate::confined::{Engine, MediaFailure};
use crate::media::{self, LoudnessRequest, Produced};
use crate::types::{AudioPlan, Loudness, LoudnessPlan, OutputPlan, TrackLoudness};

/// What `audio` asks measured of the input, in `plan`'s range: mixed to its channels
/// for a target (the gain applies after the mix), as the input has it for measure-only.
fn request(range: Option<crate::types::TimeRange>, audio: &AudioPlan) -> Option<LoudnessRequest> {
    let loudness = audio.loudness.as_ref()?;
    Some(LoudnessRequest { range, channels: (!loudness.measure_only).then_some(audio.channels), through: None, stream: None })
}

/// The input's tracks an output's audio is made from, each measured on its own; none
/// (the main track alone): `[None]`.
fn sources(plan: &OutputPlan) -> Vec<Option<usize>> {
    if plan.tracks.is_empty() { vec![None] } else { plan.tracks.iter().map(|t| Some(t.stream)).collect() }
}

/// What `ask` says of `audio` made from `source`, asked of that track.
fn ask_of(ask: Ask, range: Option<crate::types::TimeRange>, audio: &AudioPlan, source: Option<usize>) -> Option<LoudnessRequest> {
    let view = match source {
        Some(stream) => audio.for_track(stream),
        None => audio.clone(),
    };
    ask(range, &view).map(|r| LoudnessRequest { stream: source, ..r })
}

/// Give `measured` to `loudness` (to its track's own measurements for `source`).
fn put_in(loudness: &mut LoudnessPlan, source: Option<usize>, measured: Loudness, put: Put) {
    let Some(stream) = source else { return put(loudness, measured) };
    let mut view = loudness.for_track(stream);
    put(&mut view, measured);
    match loudness.tracks.iter_mut().find(|t| t.stream == stream) {
        Some(t) => (t.input, t.limited) = (view.input, view.limited),
        None => loudness.tracks.push(TrackLoudness { stream, input: view.input, limited: view.limited }),
    }
}

/// What `audio` asks measured through its gain and limiter, when it needs the limiter.
fn limiter_request(range: Option<crate::types::TimeRange>, audio: &AudioPlan) -> Option<LoudnessRequest> {
    media::limiter_request(audio.loudness.as_ref()?, media::is_lossy(&audio.codec), range, audio.channels, audio.sample_rate)
}

type Ask = fn(Option<crate::types::TimeRange>, &AudioPlan) -> Option<LoudnessRequest>;
type Put = fn(&mut LoudnessPlan, Loudness);

impl JobRun<'_> {
    /// Measure what the outputs' loudness plans need and put each measurement in its
    /// plan: the input first; then, for the gains that need the limiter, the input
    /// through gain and limiter (what the limiter takes off is made up in the gain).
    /// An output whose input measurement failed is failed; the others go on.
    pub(super) async fn measure_loudness(&self, input: &Path, planned: Vec<Planned>) -> anyhow::Result<Vec<Planned>> {
        let (mut planned, failed) = self.measure_pass(input, planned, request, |l, m| l.input = Some(m)).await;
        for (p, why) in failed {
            self.fail_output(&p.row, format!("Measuring the input's loudness failed: {why}")).await?;
        }
        let (limited, failed) = self.measure_pass(input, std::mem::take(&mut planned), limiter_request, |l, m| l.limited = Some(m)).await;
        planned = limited;
        for (p, why) in failed {
            // Without it the limiter's loss is not made up: the output is still made.
            tracing::warn!(output = %p.row.key, %why, "the loudness through the limiter was not measured");
            planned.push(p);
        }
        Ok(planned)
    }

    /// One engine call measuring what `ask` says of every audio plan, each result given
    /// to its plans by `put`; returns the outputs measured (or with nothing to measure)
    /// and those that failed, with why.
    async fn measure_pass(&self, input: &Path, planned: Vec<Planned>, ask: Ask, put: Put) -> (Vec<Planned>, Vec<(Planned, String)>) {
        let mut requests: Vec<LoudnessRequest> = Vec::new();
        for p in &planned {
            let range = p.target.plan.range;
            for audio in p.target.plan.audio_plans() {
                for source in sources(&p.target.plan) {
                    if let Some(r) = ask_of(ask, range, audio, source).filter(|r| !requests.contains(r)) {
                        requests.push(r);
                    }
                }
            }
        }
        if requests.is_empty() {
            return (planned, Vec::new());
        }
        tracing::info!(requests = requests.len(), "measuring the input's loudness");
        let results = {
            let _watched = self.activity.encoding();
            let activity = self.activity.clone();
            let mut progress = move |_fraction: f64| activity.tick();
            self.engine.loudness(&self.lease.job_id, input, &requests, &mut progress).await
        };
        let results: Vec<Result<Loudness, MediaFailure>> = results.unwrap_or_else(|err| vec![Err(MediaFailure::from(&err)); requests.len()]);
        let (mut kept, mut failed) = (Vec::with_capacity(planned.len()), Vec::new());
        for mut p in planned {
            let range = p.target.plan.range;
            let sources = sources(&p.target.plan);
            let mut why = None;
            for audio in p.target.plan.audio_plans_mut() {
                for &source in &sources {
                    let Some(r) = ask_of(ask, range, audio, source) else { continue };
                    match requests.iter().position(|q| *q == r).and_then(|i| results.get(i)) {
                        Some(Ok(measured)) => {
                            if let Some(loudness) = audio.loudness.as_mut() {
                                put_in(loudness, source, *measured, put);
                            }
                        }
                        Some(Err(e)) => why = Some(e.to_string()),
                        None => why = Some(MediaFailure::no_answer().to_string()),
                    }
                }
            }
            match why {
                Some(why) => failed.push((p, why)),
                None => kept.push(p),
            }
        }
        (kept, failed)
    }
}

/// What an output's metadata says of its loudness.
#[derive(Debug, Clone)]
pub(super) struct OutputLoudness {
    plan: LoudnessPlan,
    codec: String,
    /// The file to measure (a file, a package's HLS audio playlist or its MPD); none for
    /// measure-only, whose figures are the input's.
    file: Option<PathBuf>,
}

impl OutputLoudness {
    /// For an output whose audio has a loudness plan.
    pub fn of(plan: &OutputPlan, path: &Path, produced: &Produced) -> Option<Self> {
        let (audio, file) = match (produced, &plan.packaging) {
            (Produced::Package(package), Some(stream)) => {
                let audio = stream.variants.iter().filter_map(|v| v.audio.as_ref()).find(|a| a.loudness.is_some())?;
                // Its HLS audio rendition, else the DASH manifest (read with its segments).
                let playlist = media::audio_playlists(stream).ok().and_then(|p| p.into_iter().next()).or_else(|| package.dash_manifest.clone());
                (audio, playlist.map(|p| path.join(p)))
            }
            _ => (plan.audio.as_ref()?, Some(path.to_path_buf())),
        };
        // Several tracks: the figures are the default (first) track's.
        let loudness = match plan.tracks.first() {
            Some(first) => audio.loudness.as_ref()?.for_track(first.stream),
            None => audio.loudness.clone()?,
        };
        let file = file.filter(|_| !loudness.measure_only);
        Some(OutputLoudness { plan: loudness, codec: audio.codec.clone(), file })
    }

    /// The `loudness` of the output's metadata: the figures (the output's, or for
    /// measure-only the input's), what was asked and what was done.
    pub async fn report(&self, engine: &Engine, label: &str) -> Value {
        let input = self.plan.input;
        if self.plan.measure_only {
            return serde_json::to_value(Report { measured: input, of: "input", ..Report::default() }).unwrap_or(Value::Null);
        }
        let adjustment = media::adjustment(&self.plan, media::is_lossy(&self.codec));
        let (measured, not_measured) = match &self.file {
            Some(file) => match engine.output_loudness(label, file).await {
                Ok(measured) => (Some(measured), None),
                Err(why) => (None, Some(why.to_string())),
            },
            None => (None, Some("the package has neither an HLS audio rendition nor a DASH manifest to read back".to_string())),
        };
        let report = Report {
            measured,
            of: "output",
            target: Some(Target { integrated: self.plan.integrated, true_peak: self.plan.true_peak, lra: self.plan.lra }),
            input,
            gain: adjustment.map(|a| (a.gain_db * 100.0).round() / 100.0),
            limiter: Some(adjustment.is_some_and(|a| a.limit_db.is_some())),
            not_measured,
        };
        serde_json::to_value(report).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Default, Serialize)]
struct Report {
    /// `integrated`, `lra`, `true_peak`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    measured: Option<Loudness>,
    /// Whose figures they are: `output`, or `input` for measure-only.
    of: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<Loudness>,
    /// The gain applied, dB (none: the input is silent, or was left as it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    gain: Option<f64>,
    /// Whether the true-peak limiter ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    limiter: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_measured: Option<String>,
}

#[derive(Debug, Serialize)]
struct Target {
    integrated: f64,
    true_peak: f64,
    lra: f64,
}
