//! Ultrafast jobs, as the worker that claimed the job coordinates them: the input is
//! cut at keyframes into chunk tasks that any worker encodes (this one too), the audio
//! is encoded once here, and when the last chunk is done each output's pieces are
//! joined without re-encoding and uploaded (a package's rungs are outputs of their own,
//! packaged after the join: `ultrafast_package`). Outputs that cannot be chunked take
//! the normal path, with a `job.note` event saying so.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::chunk_encode::{ChunkOutput, ChunkPlan, staged_pieces};
use super::stage::{Stage, chunk_files, piece_name};
use super::record::JobRun;
use super::ultrafast_errors::{JoinFailed, Unchunkable};
use super::ultrafast_package::{alignment, audio_renditions, chunk_outputs, package_chunkable};
use super::{MAX_ATTEMPTS, Planned, output_upload};
use crate::db::jobs::WriteError;
use crate::media::{self, Produced};
use crate::queue::chunks::{self, ChunkState};
use crate::storage::Destination;
use crate::types::{MediaInfo, OutputPlan};

/// How often the coordinator looks at its chunks while none is left for it to encode.
const LOOK_EVERY: Duration = Duration::from_millis(300);

/// Whether an output's plan can be encoded in chunks and joined by stream copy, for an
/// input of `input_fps` frames a second; if not, why.
pub(super) fn chunkable(plan: &OutputPlan, input_fps: f64) -> Result<(), Unchunkable> {
    if plan.image.is_some() {
        return Err(Unchunkable::Pictures);
    }
    if plan.range.is_some() {
        return Err(Unchunkable::Range);
    }
    if !plan.tracks.is_empty() {
        return Err(Unchunkable::Tracks);
    }
    if let Some(package) = &plan.packaging {
        return Ok(package_chunkable(package, input_fps)?);
    }
    let Some(video) = &plan.video else { return Err(Unchunkable::NoVideo) };
    if video.fps.is_some() {
        return Err(Unchunkable::OwnFrameRate);
    }
    match (plan.container.as_str(), video.codec.as_str()) {
        ("mp4" | "mov" | "matroska", "h264" | "hevc" | "h265") | ("webm", "vp9") => Ok(()),
        (container, codec) => Err(Unchunkable::Codec { codec: codec.to_string(), container: container.to_string() }),
    }
}

impl JobRun<'_> {
    /// Whether the job runs ultrafast: it asked, or its input is longer than the
    /// operator's threshold.
    pub fn wants_ultrafast(&self, info: &MediaInfo) -> bool {
        let asked = self.spec.settings.get("ultrafast").and_then(serde_json::Value::as_bool) == Some(true);
        let long = self.worker.config.worker.ultrafast_min_duration.is_some_and(|min| info.duration >= min.as_secs_f64());
        // Chunks are cut from the input's own timeline; clips and inputs are joined in one decode.
        (asked || long) && self.spec.input.clips.is_empty() && self.spec.joined.is_empty()
    }

    /// Run the chunkable outputs of `planned` ultrafast; returns the others, for the
    /// normal path.
    pub async fn ultrafast(
        &self,
        input: &Path,
        info: &MediaInfo,
        work: &Path,
        planned: Vec<Planned>,
        destination: &Destination,
        cancel: &Arc<AtomicBool>,
    ) -> anyhow::Result<Vec<Planned>> {
        // An output whose quality is measured is measured on its whole encode, with the
        // job's other outputs, in one decode of the input.
        let chunk = |p: &Planned| if p.metrics.is_empty() { chunkable(&p.target.plan, info.fps) } else { Err(Unchunkable::Metrics) };
        let (chunked, rest): (Vec<Planned>, Vec<Planned>) = planned.into_iter().partition(|p| chunk(p).is_ok());
        for p in &rest {
            if let Err(why) = chunk(p) {
                self.note(format!("ultrafast: output {} ({why}) is encoded in one piece", p.row.key)).await?;
            }
        }
        if chunked.is_empty() {
            return Ok(rest);
        }
        let config = &self.worker.config;
        let started = Instant::now();
        let engine = &self.engine;
        let label = self.lease.job_id.as_str();
        let ranges = engine.chunk_ranges(label, input, config.worker.ultrafast_chunk.as_secs_f64(), &alignment(&chunked)).await;
        let ranges = match ranges {
            Ok(ranges) if ranges.len() > 1 => ranges,
            Ok(_) => {
                self.note("ultrafast: the input is too short to cut into chunks; encoded in one piece".into()).await?;
                return Ok(chunked.into_iter().chain(rest).collect());
            }
            Err(err) => {
                self.note(format!("ultrafast: the input could not be cut into chunks ({err}); encoded in one piece")).await?;
                return Ok(chunked.into_iter().chain(rest).collect());
            }
        };
        let job_id = self.lease.job_id.clone();
        let stage = self.worker.stage_of(&job_id)?;
        if stage.cuts_chunks() {
            // Each chunk a file of its own in the work dir, uploaded when the tasks are made.
            if let Err(err) = engine.cut_chunks(label, input, &ranges, &chunk_files(work, ranges.len())).await {
                self.note(format!("ultrafast: the input could not be cut into chunk files ({err}); encoded in one piece")).await?;
                return Ok(chunked.into_iter().chain(rest).collect());
            }
        }
        let result = self.run_chunked(input, work, &stage, &ranges, &chunked, destination, cancel, started).await;
        let taken_over = match &result {
            Err(err) => matches!(err.downcast_ref::<WriteError>(), Some(WriteError::LeaseLost(_))) || cancel.load(Ordering::Relaxed),
            Ok(()) => false,
        };
        // A job taken over by another worker: the chunks and files are its coordinator's now.
        if !taken_over {
            if let Err(err) = chunks::delete(&self.worker.db, &job_id).await {
                tracing::warn!(%err, "the job's chunks were not deleted");
            }
            if let Err(err) = stage.remove().await {
                tracing::warn!(%err, "the job's staging area was not cleared");
            }
        }
        tracing::info!(chunks = ranges.len(), seconds = started.elapsed().as_secs_f64(), "ultrafast outputs done");
        result?;
        Ok(rest)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_chunked(
        &self,
        input: &Path,
        work: &Path,
        stage: &Stage,
        ranges: &[media::ChunkRange],
        chunked: &[Planned],
        destination: &Destination,
        cancel: &Arc<AtomicBool>,
        split_started: Instant,
    ) -> anyhow::Result<()> {
        let db = &self.worker.db;
        let job_id = self.lease.job_id.as_str();
        // 1. Stage the input (or each chunk's file) where every worker finds it, and make
        //    the chunk tasks.
        stage.create().await?;
        if stage.cuts_chunks() {
            let upload_started = Instant::now();
            let bytes = stage.put_chunks(work, ranges.len()).await?;
            let seconds = upload_started.elapsed().as_secs_f64();
            tracing::info!(chunks = ranges.len(), bytes, seconds, "chunk files uploaded to the ultrafast store");
        } else {
            stage.put("input", input).await?;
        }
        let outputs: Vec<ChunkOutput> = chunked.iter().flat_map(|p| chunk_outputs(p.row.position, &p.target.plan)).collect();
        // A job taken over: the chunks its last coordinator finished are not encoded again.
        let reusable = staged_pieces(db, stage, job_id, &outputs).await?;
        let input_bytes = tokio::fs::metadata(input).await?.len();
        let payload = serde_json::to_string(&ChunkPlan { outputs, input_bytes })?;
        let bounds: Vec<(Option<i64>, Option<i64>)> = ranges.iter().map(|r| (r.start, r.end)).collect();
        let kept = chunks::create(db, job_id, &bounds, &payload, &reusable).await?;
        self.worker.wake.notify_one();
        let split_secs = split_started.elapsed().as_secs_f64();
        self.note(format!("ultrafast: {} chunks of about {} s for {} output(s)", ranges.len(), self.worker.config.worker.ultrafast_chunk.as_secs(), chunked.len()))
            .await?;
        if !kept.is_empty() {
            let list = kept.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(", ");
            tracing::info!(kept = %list, "chunks done before the takeover kept");
            self.note(format!("ultrafast: chunk(s) {list} of {} were done before the job was taken over; kept", ranges.len())).await?;
        }

        // 2. The audio, once, beside the chunks (a package's renditions each once).
        let renditions: Vec<_> = chunked.iter().map(|p| audio_renditions(p.row.position, &p.target.plan, work)).collect();
        let audio_paths: Vec<Vec<PathBuf>> = renditions.iter().map(|r| r.iter().map(|(_, path)| path.clone()).collect()).collect();
        let audio = {
            let plans: Vec<_> = renditions.iter().flatten().map(|(plan, _)| plan.clone()).collect();
            let paths: Vec<PathBuf> = audio_paths.iter().flatten().cloned().collect();
            let (engine, label, input, cancel) = (self.engine.clone(), job_id.to_string(), input.to_path_buf(), cancel.clone());
            tokio::spawn(async move { if plans.is_empty() { Ok(()) } else { engine.encode_audio(&label, &input, &plans, &paths, &cancel).await } })
        };

        // 3. Chunks: this worker encodes them too, and watches all of them.
        let encode_started = Instant::now();
        let states = self.await_chunks(job_id, cancel).await?;
        let audio = audio.await?;
        let encode_secs = encode_started.elapsed().as_secs_f64();
        let states = match (states, audio) {
            (Ok(states), Ok(())) => states,
            (Err(failed), _) => {
                for p in chunked {
                    self.fail_output(&p.row, failed.to_string()).await?;
                }
                return Ok(());
            }
            (_, Err(err)) => {
                for p in chunked {
                    self.fail_output(&p.row, format!("Encoding the audio failed: {err}")).await?;
                }
                return Ok(());
            }
        };

        // 4. Join each output (or package its joined rungs) and upload it.
        let store = output_upload::Store {
            plugins: self.worker.plugins.clone(),
            destination: destination.clone(),
            service: self.spec.storage_service().to_string(),
            storage_json: self.spec.storage.to_string(),
        };
        let join_started = Instant::now();
        for (p, audio) in chunked.iter().zip(audio_paths) {
            if cancel.load(Ordering::Relaxed) {
                return Err(WriteError::LeaseLost(job_id.to_string()).into());
            }
            let made = if p.target.plan.packaging.is_some() {
                self.package_pieces(p, stage, work, &states, audio, cancel).await?
            } else {
                let names: Vec<String> = states.iter().map(|s| piece_name(s.id, p.row.position, None)).collect();
                match stage.get_pieces(&names, work).await {
                    Err(err) => Err(JoinFailed::Fetch(err)),
                    Ok(pieces) => {
                        let joined = self.engine.join(job_id, &pieces, audio.first().map(PathBuf::as_path), &p.target.plan.container, &p.target.path).await;
                        stage.discard_fetched(&pieces).await;
                        joined.map(|()| Produced::File).map_err(JoinFailed::Join)
                    }
                }
            };
            let produced = match made {
                Ok(produced) => match self.with_subtitles(p, produced).await {
                    Ok(produced) => produced,
                    Err(err) => {
                        self.fail_output(&p.row, err.to_string()).await?;
                        continue;
                    }
                },
                Err(failed) => {
                    self.fail_output(&p.row, failed.to_string()).await?;
                    continue;
                }
            };
            crate::metrics::encoded(p.spec.format.split(':').next().unwrap_or_default(), encode_started.elapsed());
            let loudness = super::loudness::OutputLoudness::of(&p.target.plan, &p.target.path, &produced);
            let upload = output_upload::Upload {
                http: self.worker.http.clone(),
                engine: self.engine.clone(),
                label: self.lease.job_id.clone(),
                store: store.clone(),
                row: p.row.clone(),
                spec: p.spec.clone(),
                path: p.target.path.clone(),
                produced,
                mime_type: p.target.plan.mime_type.clone(),
                segments: Default::default(),
                described: None,
                measured: p.ladder.clone().map(|ladder| super::measured::Measured::Variants(Vec::new(), Some(ladder))),
                loudness,
            };
            let (row, result) = upload.run().await;
            match result {
                Ok(output_upload::Uploaded { url, urls, metadata }) => self.output_done(&row, url, urls, metadata).await?,
                Err(err) => self.fail_output(&row, err.to_string()).await?,
            }
        }
        tracing::info!(
            chunks = states.len(),
            split_secs,
            encode_secs,
            join_and_upload_secs = join_started.elapsed().as_secs_f64(),
            "ultrafast timings"
        );
        Ok(())
    }

    /// Encode this job's chunks that no one holds, and wait for the rest; the job's
    /// progress is the sum over its chunks. Ok(Err(why)): a chunk failed for good.
    async fn await_chunks(&self, job_id: &str, cancel: &Arc<AtomicBool>) -> anyhow::Result<Result<Vec<ChunkState>, JoinFailed>> {
        let worker = self.worker;
        let mut last_percent = -1;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(WriteError::LeaseLost(job_id.to_string()).into());
            }
            let states = chunks::states(&worker.db, job_id).await?;
            if states.is_empty() {
                // Another coordinator took the job over and replaced them.
                return Err(WriteError::LeaseLost(job_id.to_string()).into());
            }
            let total: i64 = states.iter().map(|s| i64::from(s.progress)).sum();
            let percent = ((total / states.len() as i64) / 10).min(99) as i32;
            if percent != last_percent {
                last_percent = percent;
                self.progress(percent).await?;
            }
            if states.iter().all(|s| s.status == "done") {
                return Ok(Ok(states));
            }
            let given_up = |s: &&ChunkState| s.status == "failed" || (s.status == "pending" && s.attempts >= MAX_ATTEMPTS && !s.leased);
            if let Some(bad) = states.iter().find(given_up) {
                let why = bad.error.clone().unwrap_or_else(|| "its worker stopped each time".into());
                return Ok(Err(JoinFailed::Chunk { number: i64::from(bad.idx) + 1, count: states.len(), attempts: bad.attempts, why }));
            }
            match chunks::claim(&worker.db, &worker.identity, &worker.config.queue, MAX_ATTEMPTS, Some(job_id)).await? {
                Some(chunk) => {
                    let run = worker.run_chunk(chunk, cancel.clone());
                    tokio::pin!(run);
                    loop {
                        tokio::select! {
                            () = &mut run => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {
                                let states = chunks::states(&worker.db, job_id).await?;
                                let total: i64 = states.iter().map(|s| i64::from(s.progress)).sum();
                                let percent = ((total / states.len().max(1) as i64) / 10).min(99) as i32;
                                if percent != last_percent {
                                    last_percent = percent;
                                    self.progress(percent).await?;
                                }
                            }
                        }
                    }
                }
                None => tokio::time::sleep(LOOK_EVERY).await,
            }
        }
    }
}
