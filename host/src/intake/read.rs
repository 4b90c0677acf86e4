//! Reading a job's inputs: each fetched and probed, cut to its own clips, the inputs
//! joined into one (see `job::inputs`), the whole held to the limits on pixels and
//! duration before anything is decoded. `max_input_bytes` holds on the inputs together.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::InputSources;
use super::sources::FetchError;
use crate::config::Limits;
use crate::confined::{Engine, EngineError};
use crate::job::JobSpec;
use crate::media::{self, JoinedFile};
use crate::storage;
use crate::types::MediaInfo;

/// How much of each input is read.
#[derive(Debug, Clone, Copy)]
pub enum Reading {
    /// All of it: a job.
    Whole,
    /// Its first and last `bytes` (ranged reads), within `time`: a dry run.
    Window { bytes: u64, time: Duration },
}

/// The input every output is made from.
#[derive(Debug)]
pub struct Probed {
    /// The inputs joined (their clips joined): what plans and conditions see.
    pub info: MediaInfo,
    /// The first input's metadata; with joined inputs, `joined` says what each brought.
    pub metadata: Value,
    /// Bytes fetched, all inputs together.
    pub bytes: u64,
}

/// Why the inputs cannot be used: a message for the user, and when the engine's
/// process died (not a media error), that error, so that a worker can give the job
/// back for another attempt. Once the first input was probed, its metadata comes too
/// (a job refused for its length still shows what it was).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct IntakeError {
    pub message: String,
    pub crash: Option<EngineError>,
    pub metadata: Option<Value>,
}

impl IntakeError {
    fn user(message: String) -> Self {
        IntakeError { message, crash: None, metadata: None }
    }
}

/// Where a job's inputs are fetched to in `work`: the first, and those joined after it
/// with their clips (which the engine reads after the first).
pub fn input_paths(spec: &JobSpec, work: &Path) -> (PathBuf, Vec<JoinedFile>) {
    let joined = spec.joined.iter().enumerate().map(|(i, input)| JoinedFile { path: work.join(format!("input-{}", i + 2)), clips: input.clips.clone() });
    (work.join("input"), joined.collect())
}

/// Fetch every input of `spec` into `work` (as `reading` says), probe each with
/// `engine`, and join them into the input the outputs are made from.
pub async fn read_inputs(
    sources: &InputSources<'_>,
    engine: &Engine,
    label: &str,
    spec: &JobSpec,
    work: &Path,
    reading: Reading,
    limits: &Limits,
) -> Result<Probed, IntakeError> {
    let mut first_metadata = None;
    read(sources, engine, label, spec, work, reading, limits, &mut first_metadata)
        .await
        .map_err(|err| IntakeError { metadata: first_metadata, ..err })
}

/// [`read_inputs`], noting the first input's metadata in `first_metadata` once probed.
#[allow(clippy::too_many_arguments)]
async fn read(
    sources: &InputSources<'_>,
    engine: &Engine,
    label: &str,
    spec: &JobSpec,
    work: &Path,
    reading: Reading,
    limits: &Limits,
    first_metadata: &mut Option<Value>,
) -> Result<Probed, IntakeError> {
    let (first_path, joined) = input_paths(spec, work);
    let paths = std::iter::once(first_path).chain(joined.into_iter().map(|j| j.path));
    let numbered = !spec.joined.is_empty();
    let name = |number: usize, message: String| if numbered { format!("Input {number}: {message}") } else { message };
    let mut bytes = 0u64;
    let mut probed: Vec<(MediaInfo, Value)> = Vec::with_capacity(spec.joined.len() + 1);
    for (i, (input, path)) in spec.inputs().zip(paths).enumerate() {
        let number = i + 1;
        let left = limits.max_input_bytes.saturating_sub(bytes);
        let (read, partial) = match reading {
            Reading::Whole => (sources.fetch(input, left, &path).await, String::new()),
            Reading::Window { bytes: window, time } => match tokio::time::timeout(time, sources.fetch_window(input, left, window, &path)).await {
                Ok(Ok(w)) => (Ok(w.size.unwrap_or(w.read)), partly_read(&w)),
                Ok(Err(err)) => (Err(err), String::new()),
                Err(_) => (Err(FetchError::TimedOut(time)), String::new()),
            },
        };
        match read {
            Ok(read) => bytes += read,
            Err(err) if number > 1 && err.too_large() => {
                let max = limits.max_input_bytes;
                return Err(IntakeError::user(name(number, format!("{err} (the inputs of a job share max_input_bytes: {left} of {max} were left)"))));
            }
            Err(err) => return Err(IntakeError::user(name(number, err.to_string()))),
        }
        let (info, metadata) = match engine.probe(label, &path).await {
            Ok(probed) => probed,
            Err(err) if err.is_crash() => return Err(IntakeError { message: err.to_string(), crash: Some(err), metadata: None }),
            Err(err) if numbered => return Err(IntakeError::user(format!("Input {number} is not a media file that can be read{partial}: {err}"))),
            Err(err) => return Err(IntakeError::user(format!("The input is not a media file that can be read{partial}: {err}"))),
        };
        if number == 1 {
            *first_metadata = Some(metadata.clone());
        }
        let info = crate::job::clips::joined_info(&input.clips, info).map_err(|e| IntakeError::user(name(number, e.to_string())))?;
        // Each input is held to the limits on its own too (a later one is conformed to
        // the first's size, but decoded at its own).
        if numbered {
            media::check_input(&info, limits).map_err(|refused| IntakeError::user(name(number, refused.to_string())))?;
        }
        probed.push((info, metadata));
    }
    let (first, mut metadata) = probed.remove(0);
    let info = if probed.is_empty() {
        first
    } else {
        let others: Vec<MediaInfo> = probed.into_iter().map(|(info, _)| info).collect();
        let parts: Vec<Value> = std::iter::once(&first).chain(&others).map(part_of_timeline).collect();
        let info = crate::job::inputs::joined_info(first, &others).map_err(|e| IntakeError::user(e.to_string()))?;
        metadata["joined"] = json!({"duration": info.duration, "inputs": parts});
        tracing::info!(inputs = others.len() + 1, duration = info.duration, "inputs joined");
        info
    };
    // Held to the limits on pixels and duration before anything is decoded.
    media::check_input(&info, limits).map_err(|refused| IntakeError::user(refused.to_string()))?;
    Ok(Probed { info, metadata, bytes })
}

/// What a probe of a partly read input says of it.
fn partly_read(window: &storage::Window) -> String {
    match window.coverage {
        storage::Coverage::Head => {
            format!(" (read from its first {} bytes only: the server does not answer ranged requests; dry_run_probe_bytes)", window.read)
        }
        _ => String::new(),
    }
}

/// What one input brings to the joined timeline (its clips joined), for the metadata.
fn part_of_timeline(info: &MediaInfo) -> Value {
    json!({
        "duration": info.duration,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "has_audio": info.has_audio,
    })
}
