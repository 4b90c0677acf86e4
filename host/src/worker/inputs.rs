//! The inputs joined after the first (a job's `"inputs"`), as a job step: each fetched
//! beside the first (`input-2`, `input-3`, …), probed in the engine's confined process
//! and cut to its own clips; then the joined input is what every plan and condition
//! sees. The engine reads them after the first as one timeline (see `media::stitch`).

use std::path::Path;

use serde_json::{Value, json};

use super::record::JobRun;
use crate::db;
use crate::job::JobSpec;
use crate::job::prepare::InputSources;
use crate::media::JoinedFile;
use crate::types::MediaInfo;

/// Where each input joined after the first is fetched to, with its clips.
pub(super) fn joined_files(spec: &JobSpec, work: &Path) -> Vec<JoinedFile> {
    spec.joined.iter().enumerate().map(|(i, input)| JoinedFile { path: work.join(format!("input-{}", i + 2)), clips: input.clips.clone() }).collect()
}

impl JobRun<'_> {
    /// Fetch and probe the inputs joined after the first, whose `first` (its clips
    /// joined, and its size) is known: the joined input, or a message for the user
    /// naming the input at fault. `max_input_bytes` holds on the inputs together. The input's metadata (`metadata`, the first's) gains `joined`: each
    /// input's part of the timeline and the total. An error only when the engine's
    /// process died and the job is given back.
    pub(super) async fn join_inputs(
        &self,
        job: &db::job::Model,
        sources: &InputSources<'_>,
        work: &Path,
        (first, first_bytes): (MediaInfo, u64),
        metadata: &Value,
    ) -> anyhow::Result<Result<MediaInfo, String>> {
        let spec = self.spec;
        if spec.joined.is_empty() {
            return Ok(Ok(first));
        }
        let worker = self.worker;
        let max_bytes = worker.config.limits.max_input_bytes;
        let mut fetched = first_bytes;
        let mut others = Vec::with_capacity(spec.joined.len());
        for (input, file) in spec.joined.iter().zip(joined_files(spec, work)) {
            let number = others.len() + 2;
            let left = max_bytes.saturating_sub(fetched);
            match sources.fetch(input, left, &file.path).await {
                Ok(bytes) => {
                    crate::metrics::input_bytes(bytes);
                    fetched += bytes;
                }
                Err(message) if left < max_bytes && message.contains("max_input_bytes") => {
                    return Ok(Err(format!("Input {number}: {message} (the inputs of a job share max_input_bytes: {left} of {max_bytes} were left)")));
                }
                Err(message) => return Ok(Err(format!("Input {number}: {message}"))),
            }
            let info = match self.engine.probe(&job.id, &file.path).await {
                Ok((info, _)) => info,
                Err(err) => {
                    worker.give_back(&job.id, job.attempts, &err).await?;
                    return Ok(Err(format!("Input {number} is not a media file that can be read: {err}")));
                }
            };
            match crate::job::clips::joined_info(&input.clips, info) {
                Ok(info) => others.push(info),
                Err(message) => return Ok(Err(format!("Input {number}: {message}"))),
            }
        }
        let parts: Vec<Value> = std::iter::once(&first).chain(&others).map(part_of_timeline).collect();
        let joined = match crate::job::inputs::joined_info(first, &others) {
            Ok(joined) => joined,
            Err(message) => return Ok(Err(message)),
        };
        let mut metadata = metadata.clone();
        metadata["joined"] = json!({"duration": joined.duration, "inputs": parts});
        self.input_probed(&metadata).await?;
        tracing::info!(inputs = others.len() + 1, duration = joined.duration, "inputs joined");
        Ok(Ok(joined))
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
