//! One transcode for all of a job's outputs: the media engine runs in its confined
//! process, and its events are handled here: progress is written to the job, and each
//! finished file is uploaded while the others still encode.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::record::JobRun;
use super::{PROGRESS_EVERY, Planned, output_upload, quality};
use crate::db::jobs::WriteError;
use crate::job::status::OutputState;
use crate::confined::{EngineError, Event};
use crate::media::{OutputTarget, Produced};
use crate::storage::Destination;

impl JobRun<'_> {
    pub async fn transcode_and_upload(
        &self,
        input: &Path,
        planned: Vec<Planned>,
        destination: &Destination,
        cancel: &Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let started = Instant::now();
        // Watched as an encode until the engine returns, whatever its percent.
        let encoding = self.activity.encoding();
        let targets: Vec<OutputTarget> = planned.iter().map(|p| p.target.clone()).collect();
        let engine = {
            let (engine, label, input, cancel) = (self.engine.clone(), self.lease.job_id.clone(), input.to_path_buf(), cancel.clone());
            tokio::spawn(async move { engine.transcode(&label, &input, &targets, &cancel, &tx).await }.instrument(tracing::Span::current()))
        };
        // Outputs whose end the engine reported; the others end with the engine.
        let mut finished: HashSet<usize> = HashSet::new();

        let store = output_upload::Store {
            plugins: self.worker.plugins.clone(),
            destination: destination.clone(),
            service: self.spec.storage_service().to_string(),
            storage_json: self.spec.storage.to_string(),
        };
        let mut uploads = tokio::task::JoinSet::new();
        // Outputs made that wait for their quality to be measured, before their upload.
        let mut waiting: Vec<quality::Waiting> = Vec::new();
        // Segments of packages being sent while their ladders still encode.
        let mut segments: HashMap<usize, output_upload::Segments> = HashMap::new();
        let mut last_progress = Instant::now() - PROGRESS_EVERY;
        // Progress webhooks, when the job asked for them: at most one an interval.
        let progress_interval = self.spec.progress_interval();
        let mut last_progress_event: Option<Instant> = None;
        // A lost lease stops the engine; what it still reports is not this worker's to write.
        let lost = |err: WriteError| {
            if matches!(err, WriteError::LeaseLost(_)) {
                cancel.store(true, Ordering::Relaxed);
            }
            anyhow::Error::from(err)
        };
        while let Some(event) = rx.recv().await {
            // Every report is a sign of life, even at the same percent (an input longer
            // than it declared sits at 99 %; one without a duration at 0).
            self.activity.tick();
            if cancel.load(Ordering::Relaxed) {
                continue;
            }
            match event {
                Event::Progress(fraction) => {
                    if last_progress.elapsed() >= PROGRESS_EVERY {
                        last_progress = Instant::now();
                        // 100% is reserved for a finished job.
                        let percent = ((fraction * 100.0).floor() as i32).min(99);
                        if let Err(err) = self.progress(percent).await {
                            tracing::warn!(err = %lost(err), "progress not written; stopping");
                            continue;
                        }
                        if let Some(interval) = progress_interval
                            && last_progress_event.is_none_or(|at| at.elapsed() >= interval)
                        {
                            last_progress_event = Some(Instant::now());
                            if let Err(err) = self.progress_event(percent).await {
                                tracing::warn!(err = %lost(err), "progress event not written; stopping");
                            }
                        }
                    }
                }
                Event::FileReady { index, path } => {
                    let Some(done) = planned.get(index) else { continue };
                    segments.entry(index).or_default().send(&store, &done.spec, &done.target.path, path);
                }
                Event::OutputFinished { index, result, described } => {
                    let Some(done) = planned.get(index) else { continue };
                    finished.insert(index);
                    // A failed package's segments in flight are dropped (their tasks abort).
                    let sent = segments.remove(&index).unwrap_or_default();
                    match result {
                        Ok(produced) => {
                            // A file given subtitle streams is another file: read back at upload.
                            let described = if matches!(produced, Produced::File) && !done.subtitles.is_empty() { None } else { described };
                            let produced = match self.with_subtitles(done, produced).await {
                                Ok(produced) => produced,
                                Err(err) => {
                                    self.fail_output(&done.row, err.to_string()).await.map_err(lost)?;
                                    continue;
                                }
                            };
                            let family = done.spec.format.split(':').next().unwrap_or_default();
                            crate::metrics::encoded(family, started.elapsed());
                            if matches!(produced, Produced::Package(_)) {
                                self.set_output(&done.row, OutputState::Packaging).await.map_err(lost)?;
                            }
                            let loudness = super::loudness::OutputLoudness::of(&done.target.plan, &done.target.path, &produced);
                            let upload = output_upload::Upload {
                                http: self.worker.http.clone(),
                                engine: self.engine.clone(),
                                label: self.lease.job_id.clone(),
                                store: store.clone(),
                                row: done.row.clone(),
                                spec: done.spec.clone(),
                                path: done.target.path.clone(),
                                produced,
                                mime_type: done.target.plan.mime_type.clone(),
                                segments: sent,
                                described,
                                measured: None,
                                loudness,
                            };
                            if done.metrics.is_empty() {
                                // A ladder planned from the content reports how, measured or not.
                                let measured = done.ladder.clone().map(|ladder| super::measured::Measured::Variants(Vec::new(), Some(ladder)));
                                let upload = output_upload::Upload { measured, ..upload };
                                uploads.spawn(crate::plugins::carry(upload.run()).instrument(tracing::Span::current()));
                            } else {
                                let per_frame = self.spec.per_frame_of(&done.spec);
                                match quality::targets(&upload.produced, &done.target.plan, &done.target.path, &done.metrics, per_frame) {
                                    Ok(targets) => waiting.push(quality::Waiting { upload, targets, search: done.search.clone(), ladder: done.ladder.clone() }),
                                    Err(why) => {
                                        let upload = output_upload::Upload { measured: Some(super::measured::Measured::Not(why)), ..upload };
                                        uploads.spawn(crate::plugins::carry(upload.run()).instrument(tracing::Span::current()));
                                    }
                                }
                            }
                        }
                        // A cancelled encode (lost lease) is not this worker's failure to record.
                        Err(_) if cancel.load(Ordering::Relaxed) => {}
                        Err(err) => self.fail_output(&done.row, format!("Encoding failed: {err}")).await.map_err(lost)?,
                    }
                }
            }
        }
        let ended = engine.await?;
        drop(encoding);
        if let Err(err) = ended {
            let unfinished: Vec<&Planned> = planned.iter().enumerate().filter(|(i, _)| !finished.contains(i)).map(|(_, p)| p).collect();
            if !matches!(err, EngineError::Cancelled) && !cancel.load(Ordering::Relaxed) && !unfinished.is_empty() {
                tracing::warn!(%err, outputs = unfinished.len(), "the media engine ended before every output");
                if let Err(retry) = self.worker.give_back(&self.lease.job_id, self.attempts, &err).await {
                    uploads.abort_all();
                    return Err(retry);
                }
                for p in unfinished {
                    self.fail_output(&p.row, format!("Encoding failed: {err}")).await.map_err(lost)?;
                }
            }
        }
        // The outputs that asked for their quality: measured together, then uploaded.
        if !waiting.is_empty() && !cancel.load(Ordering::Relaxed) {
            for upload in self.measure(input, std::mem::take(&mut waiting)).await {
                uploads.spawn(crate::plugins::carry(upload.run()).instrument(tracing::Span::current()));
            }
        }
        while let Some(finished) = uploads.join_next().await {
            if cancel.load(Ordering::Relaxed) {
                // The job is another worker's now: the uploads still running are dropped,
                // which aborts their multipart uploads.
                uploads.abort_all();
                continue;
            }
            let (row, result) = finished?;
            match result {
                Ok(output_upload::Uploaded { url, urls, metadata }) => {
                    let shown = url.as_deref().map(crate::secret::redact_url).unwrap_or_default();
                    self.output_done(&row, url, urls, metadata).await.map_err(lost)?;
                    tracing::info!(output = ?row.key, url = shown, "output uploaded");
                }
                Err(err) => self.fail_output(&row, err.to_string()).await.map_err(lost)?,
            }
        }
        Ok(())
    }
}
