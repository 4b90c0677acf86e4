//! The worker: claims jobs from the queue and runs each through fetch → probe →
//! conditions → plans → one native transcode → uploads → events.
//!
//! It owns the order of things and the statuses; the actual work is done by `storage`
//! (bytes), `media` (FFmpeg, on a blocking thread) and `plugins` (decisions).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, mpsc};
use tracing::Instrument;

mod upload;
mod vtt;

use crate::config::Config;
use crate::db::{self, jobs::OutputUpdate, output};
use crate::job::status::{self, OutputState};
use crate::job::{JobSpec, OutputSpec, view};
use crate::media::{self, OutputTarget, Produced, TranscodeEvent};
use crate::plugins::Plugins;
use crate::queue;
use crate::storage::{self, Destination, LocalFiles};
use crate::tenant::Tenant;
use crate::types::{MediaInfo, OutputPlan};

/// A job claimed this many times without finishing is failed instead of retried: it is
/// more likely to crash the worker again than to succeed.
const MAX_ATTEMPTS: i32 = 3;
/// How often an idle worker looks for work it was not woken for (other API nodes).
const POLL: Duration = Duration::from_secs(1);
/// Progress is written at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

pub struct Worker {
    db: DatabaseConnection,
    plugins: Arc<Plugins>,
    config: Arc<Config>,
    /// Input downloads, output PUTs and object stores, under the outbound policy.
    http: crate::net::HttpClient,
    wake: Arc<Notify>,
    /// Told when an event to deliver is recorded, so webhooks leave at once.
    events: Arc<Notify>,
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        plugins: Arc<Plugins>,
        config: Arc<Config>,
        wake: Arc<Notify>,
        events: Arc<Notify>,
    ) -> anyhow::Result<Arc<Self>> {
        let limits = &config.limits;
        let timeouts =
            crate::net::Timeouts { connect: Duration::from_secs(10), idle: limits.transfer_idle, total: Some(limits.transfer_total) };
        let http = config.outbound.client(timeouts)?;
        Ok(Arc::new(Worker { db, plugins, config, http, wake, events }))
    }

    /// Claim and run jobs until the process ends.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let released = queue::release_all(&self.db, &self.config.worker_id).await?;
        if released > 0 {
            tracing::info!(released, "took back jobs interrupted by the last shutdown");
        }
        let slots = Arc::new(Semaphore::new(self.config.worker_concurrency));
        loop {
            let permit = slots.clone().acquire_owned().await?;
            match queue::claim(&self.db, &self.config.worker_id).await {
                Ok(Some(job_id)) => {
                    let worker = self.clone();
                    let span = tracing::info_span!("job", job_id = %job_id);
                    tokio::spawn(
                        async move {
                            worker.run_job(&job_id).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
                }
                Err(err) => {
                    drop(permit);
                    tracing::error!(%err, "claiming a job failed");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Run one claimed job to its end, keeping its lease alive meanwhile.
    async fn run_job(&self, job_id: &str) {
        let lost_lease = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (db, worker_id, job_id, lost) = (self.db.clone(), self.config.worker_id.clone(), job_id.to_string(), lost_lease.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(queue::HEARTBEAT).await;
                    if !matches!(queue::heartbeat(&db, &job_id, &worker_id).await, Ok(true)) {
                        tracing::warn!(job_id, "lease lost; stopping work on the job");
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            })
        };
        let work = storage::work_dir(&self.config.data_dir, job_id);
        let result = self.process(job_id, &work, &lost_lease).await;
        heartbeat.abort();
        if let Err(err) = result {
            tracing::error!(err = format!("{err:#}"), "job aborted");
        }
        if let Err(err) = tokio::fs::remove_dir_all(&work).await {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(%err, "work directory not removed");
            }
        }
    }

    async fn process(&self, job_id: &str, work: &Path, cancel: &Arc<AtomicBool>) -> anyhow::Result<()> {
        let Some((job, outputs)) = db::jobs::find(&self.db, job_id, None).await? else { return Ok(()) };
        if status::is_job_terminal(&job.status) {
            return Ok(());
        }
        let spec: JobSpec = crate::job::stored::open_spec(&self.config.sealer, &job.spec)?;
        // The tenant's own directory is the only place `local` storage reads or writes.
        let tenant = Tenant::of_owner(&job.owner);
        let local = LocalFiles { root: tenant.files_root(&self.config.files_dir()), url_base: tenant.files_url(&self.config.public_url) };
        let run = JobRun { worker: self, job_id, spec: &spec, notify: spec.notification.is_some() };
        if job.attempts > MAX_ATTEMPTS {
            return run.fail_input(&outputs, format!("The job was interrupted {MAX_ATTEMPTS} times and was given up.")).await;
        }
        tracing::info!(attempt = job.attempts, "job started");
        tokio::fs::create_dir_all(work).await?;

        // 1. Input.
        db::jobs::set_input_status(&self.db, job_id, status::INPUT_TRANSFERRING, None).await?;
        let input_path = work.join("input");
        if let Err(message) = self.fetch_input(&spec, &local, &input_path).await {
            return run.fail_input(&outputs, message).await;
        }
        let probed = {
            let path = input_path.clone();
            tokio::task::spawn_blocking(move || media::probe(&path)).await?
        };
        let (info, input_metadata) = match probed {
            Ok(probed) => probed,
            Err(err) => return run.fail_input(&outputs, format!("The input is not a media file that can be read: {err}")).await,
        };
        db::jobs::set_input_metadata(&self.db, job_id, &input_metadata).await?;
        // Held to the limits on pixels and duration before anything is decoded.
        if let Err(message) = media::check_input(&info, &self.config.limits) {
            return run.fail_input(&outputs, message).await;
        }
        db::jobs::set_input_status(&self.db, job_id, status::INPUT_TRANSFERRED, None).await?;
        run.event("input.transferred", json!({"status": status::INPUT_TRANSFERRED}), None).await?;
        tracing::info!(width = info.width, height = info.height, duration = info.duration, "input probed");

        // 2. Decide and plan every output.
        let destination = storage::destination(&self.plugins, spec.storage_service(), &spec.storage.to_string(), &local, &self.http)
            .await
            .map_err(|e| e.to_string());
        let mut planned: Vec<Planned> = Vec::new();
        for (row, output_spec) in outputs.iter().zip(&spec.outputs) {
            match self.decide(&info, row, output_spec).await {
                Decision::Skip => run.set_output(row, OutputState::Skipped, OutputUpdate::default()).await?,
                Decision::Fail(message) => run.fail_output(row, message).await?,
                Decision::Encode(plan) => {
                    if let Err(message) = &destination {
                        run.fail_output(row, message.clone()).await?;
                        continue;
                    }
                    run.set_output(row, OutputState::Queued, OutputUpdate::default()).await?;
                    // Pictures and packages are many files: they get a directory.
                    let path = if plan.image.is_some() || plan.packaging.is_some() {
                        work.join(format!("output-{}", row.position))
                    } else {
                        work.join(format!("output-{}.{}", row.position, plan.extension))
                    };
                    planned.push(Planned { row: row.clone(), spec: output_spec.clone(), target: OutputTarget { plan, path } });
                }
            }
        }

        // 3. One transcode for all outputs; each file uploads as soon as it is finished.
        if let (Ok(destination), false) = (&destination, planned.is_empty()) {
            for p in &planned {
                run.set_output(&p.row, OutputState::Working, OutputUpdate::default()).await?;
            }
            run.transcode_and_upload(&input_path, planned, destination, cancel).await?;
        }
        if cancel.load(Ordering::Relaxed) {
            // Another worker holds the job now; its statuses are that worker's to write.
            tracing::warn!("lease lost during the job; leaving it to its new worker");
            return Ok(());
        }

        // 4. Final state.
        let outputs = db::jobs::outputs(&self.db, job_id).await?;
        let failed = outputs.iter().any(|o| o.status.ends_with(".failed"));
        run.finish(if failed { status::JOB_FAILED } else { status::JOB_COMPLETED }).await
    }

    async fn fetch_input(&self, spec: &JobSpec, local: &LocalFiles, dest: &Path) -> Result<u64, String> {
        if let Some(url) = &spec.input.url {
            return storage::fetch_http(&self.http, url, dest, self.config.limits.max_input_bytes)
                .await
                .map_err(|e| format!("The input could not be fetched: {e}"));
        }
        let service = spec.input.service.as_deref().unwrap_or_default();
        let raw = spec.input.raw.to_string();
        let (object, block) =
            spec.input.object().ok_or_else(|| "The input needs a 'key' (or 'path') of the object to fetch.".to_string())?;
        let key = self.plugins.storage_object_key(service, &block, object).await.map_err(|e| e.to_string())?;
        let source = storage::destination(&self.plugins, service, &raw, local, &self.http)
            .await
            .map_err(|e| e.to_string())?;
        source.download(&key, dest, self.config.limits.max_input_bytes).await.map_err(|e| format!("The input could not be fetched: {e}"))
    }

    async fn decide(&self, info: &MediaInfo, row: &output::Model, spec: &OutputSpec) -> Decision {
        if let Some(condition) = &spec.condition {
            match self.plugins.condition_evaluate(condition, info).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(output = %row.key, condition, "condition false; output skipped");
                    return Decision::Skip;
                }
                Err(err) => return Decision::Fail(format!("The condition could not be evaluated: {}", err.describe())),
            }
        }
        match self.plugins.format_plan(&spec.format, &spec.plugin_params(), info).await {
            // The plan is the plugin's answer: held to the host's bounds before any encode.
            Ok(plan) => match media::check_plan(&plan, &self.config.limits) {
                Ok(()) => Decision::Encode(plan),
                Err(problem) => Decision::Fail(format!("The format plugin planned something this server refuses: {problem}.")),
            },
            Err(err) => Decision::Fail(err.describe()),
        }
    }
}

enum Decision {
    Skip,
    Fail(String),
    Encode(OutputPlan),
}

struct Planned {
    row: output::Model,
    spec: OutputSpec,
    target: OutputTarget,
}

/// One job being run: the status and event writes that go with it.
struct JobRun<'a> {
    worker: &'a Worker,
    job_id: &'a str,
    spec: &'a JobSpec,
    /// Whether the job asked for notifications (events are recorded either way).
    notify: bool,
}

impl JobRun<'_> {
    fn db(&self) -> &DatabaseConnection {
        &self.worker.db
    }

    /// Record an event with the job's current view; the notifier delivers it.
    async fn event(&self, event: &str, data: Value, metadata: Option<Value>) -> anyhow::Result<()> {
        let (job, outputs) = db::jobs::find(self.db(), self.job_id, None).await?.ok_or_else(|| anyhow::anyhow!("job vanished"))?;
        let payload = json!({
            "event": event,
            "job_id": self.job_id,
            "job": view::job_view(&job, &outputs),
            "data": data,
            "metadata": metadata,
        });
        db::jobs::add_event(self.db(), self.job_id, event, &payload, self.notify).await?;
        if self.notify {
            self.worker.events.notify_one();
        }
        Ok(())
    }

    async fn set_output(&self, row: &output::Model, state: OutputState, mut update: OutputUpdate) -> anyhow::Result<()> {
        update.status = Some(status::output(&row.output_type, state));
        db::jobs::update_output(self.db(), row.id, update).await?;
        Ok(())
    }

    async fn fail_output(&self, row: &output::Model, message: String) -> anyhow::Result<()> {
        tracing::warn!(output = %row.key, message, "output failed");
        self.set_output(row, OutputState::Failed, OutputUpdate { error: Some(message.clone()), ..Default::default() }).await?;
        self.event("output.failed", json!({"key": row.key, "error": message}), None).await
    }

    /// The input could not be used: every output fails with it and the job ends.
    async fn fail_input(&self, outputs: &[output::Model], message: String) -> anyhow::Result<()> {
        tracing::warn!(message, "input failed");
        db::jobs::set_input_status(self.db(), self.job_id, status::INPUT_FAILED, Some(message.clone())).await?;
        for row in outputs {
            self.set_output(row, OutputState::Failed, OutputUpdate { error: Some(message.clone()), ..Default::default() }).await?;
        }
        self.finish(status::JOB_FAILED).await
    }

    async fn finish(&self, final_status: &str) -> anyhow::Result<()> {
        db::jobs::finish(self.db(), self.job_id, final_status).await?;
        let metadata = if self.wants_metadata() { Some(self.all_metadata().await?) } else { None };
        let (job, outputs) = db::jobs::find(self.db(), self.job_id, None).await?.ok_or_else(|| anyhow::anyhow!("job vanished"))?;
        let event = if final_status == status::JOB_COMPLETED { "job.completed" } else { "job.failed" };
        self.event(event, view::job_view(&job, &outputs), metadata).await?;
        tracing::info!(status = final_status, "job finished");
        Ok(())
    }

    fn wants_metadata(&self) -> bool {
        self.spec.notification.as_ref().and_then(|n| n.get("metadata")).and_then(Value::as_bool).unwrap_or(false)
    }

    async fn all_metadata(&self) -> anyhow::Result<Value> {
        let Some((job, outputs)) = db::jobs::find(self.db(), self.job_id, None).await? else { return Ok(Value::Null) };
        let mut all = serde_json::Map::new();
        let parse = |t: &Option<String>| t.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
        if let Some(source) = parse(&job.input_metadata) {
            all.insert("source".into(), source);
        }
        for output in outputs {
            if let Some(m) = parse(&output.metadata) {
                all.insert(output.key, m);
            }
        }
        Ok(Value::Object(all))
    }

    /// Run the media engine on a blocking thread; react to its events here: progress is
    /// written to the job, and each finished file is uploaded while the others encode.
    async fn transcode_and_upload(
        &self,
        input: &Path,
        planned: Vec<Planned>,
        destination: &Destination,
        cancel: &Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let targets: Vec<OutputTarget> = planned.iter().map(|p| p.target.clone()).collect();
        let engine = {
            let (input, cancel) = (input.to_path_buf(), cancel.clone());
            let events: media::EventSink = Arc::new(move |event| {
                let _ = tx.send(event);
            });
            tokio::task::spawn_blocking(move || media::transcode(&input, &targets, events, &cancel))
        };

        let store = upload::Store {
            plugins: self.worker.plugins.clone(),
            destination: destination.clone(),
            service: self.spec.storage_service().to_string(),
            storage_json: self.spec.storage.to_string(),
        };
        let mut uploads = tokio::task::JoinSet::new();
        // Segments of packages being sent while their ladders still encode.
        let mut segments: HashMap<usize, upload::Segments> = HashMap::new();
        let mut last_progress = Instant::now() - PROGRESS_EVERY;
        while let Some(event) = rx.recv().await {
            match event {
                TranscodeEvent::Progress(fraction) => {
                    if last_progress.elapsed() >= PROGRESS_EVERY {
                        last_progress = Instant::now();
                        // 100% is reserved for a finished job.
                        let percent = ((fraction * 100.0).floor() as i32).min(99);
                        db::jobs::set_progress(self.db(), self.job_id, percent).await?;
                    }
                }
                TranscodeEvent::FileReady { index, path } => {
                    let Some(done) = planned.get(index) else { continue };
                    segments.entry(index).or_default().send(&store, &done.spec, &done.target.path, path);
                }
                TranscodeEvent::OutputFinished { index, result } => {
                    let Some(done) = planned.get(index) else { continue };
                    // A failed package's segments in flight are dropped (their tasks abort).
                    let sent = segments.remove(&index).unwrap_or_default();
                    match result {
                        Ok(produced) => {
                            if matches!(produced, Produced::Package(_)) {
                                let update = OutputUpdate { status: Some(status::HTTPSTREAM_PACKAGING.into()), ..Default::default() };
                                db::jobs::update_output(self.db(), done.row.id, update).await?;
                            }
                            let upload = upload::Upload {
                                http: self.worker.http.clone(),
                                store: store.clone(),
                                row: done.row.clone(),
                                spec: done.spec.clone(),
                                path: done.target.path.clone(),
                                produced,
                                mime_type: done.target.plan.mime_type.clone(),
                                segments: sent,
                            };
                            uploads.spawn(upload.run().instrument(tracing::Span::current()));
                        }
                        // A cancelled encode (lost lease) is not this worker's failure to record.
                        Err(_) if cancel.load(Ordering::Relaxed) => {}
                        Err(err) => self.fail_output(&done.row, format!("Encoding failed: {err}")).await?,
                    }
                }
            }
        }
        engine.await?;
        while let Some(finished) = uploads.join_next().await {
            let (row, result) = finished?;
            match result {
                Ok(upload::Uploaded { url, urls, metadata }) => {
                    let update = OutputUpdate { url: url.clone(), urls, metadata: Some(metadata.clone()), ..Default::default() };
                    self.set_output(&row, OutputState::Done, update).await?;
                    let outputs = db::jobs::outputs(self.db(), self.job_id).await?;
                    let data = outputs.iter().find(|o| o.id == row.id).map(view::output_view).unwrap_or(Value::Null);
                    let metadata = self.wants_metadata().then_some(metadata);
                    self.event("output.completed", data, metadata).await?;
                    tracing::info!(output = %row.key, url = url.as_deref().map(crate::secret::redact_url).unwrap_or_default(), "output uploaded");
                }
                Err(message) => self.fail_output(&row, message).await?,
            }
        }
        Ok(())
    }
}

