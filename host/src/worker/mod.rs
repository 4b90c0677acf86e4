//! The worker: claims jobs from the queue and runs each through fetch → probe →
//! conditions → plans → one native transcode → uploads → events.
//!
//! Ultrafast jobs (`ultrafast`) have their video outputs encoded in chunks (`chunk_encode`),
//! which every worker claims before new jobs.
//!
//! It owns the order of things and the statuses; the actual work is done by `storage`
//! (bytes), `media` (FFmpeg, on a blocking thread) and `plugins` (decisions).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod audio_tracks;
mod chunk_encode;
mod heartbeat;
mod ladder_planning;
mod loudness;
mod measured;
mod output_upload;
mod quality;
mod record;
mod stage;
mod subtitles;
mod target_quality;
mod transcode;
mod ultrafast;
mod ultrafast_errors;
mod ultrafast_package;
mod vtt;
mod watermarks;

use crate::config::Config;
use crate::db::jobs::{Lease, WriteError};
use crate::db::{self, output};
use crate::job::status::OutputState;
use crate::job::{JobSpec, OutputSpec};
use crate::confined::{Engine, EngineError};
use crate::media::{self, OutputTarget};
use crate::plugins::Plugins;
use crate::queue;
use crate::storage;
use crate::types::MediaInfo;
use crate::intake::{self, Decision};
use record::JobRun;

/// A job claimed this many times without finishing is failed instead of retried: it is
/// more likely to crash the worker again than to succeed.
const MAX_ATTEMPTS: i32 = 3;
/// The running-task key of a chunk (jobs are keyed by their id).
const CHUNK_KEY: &str = "chunk:";
/// How often an idle worker looks for work it was not woken for (other API nodes).
const POLL: Duration = Duration::from_secs(1);
/// How long a job told to stop (shutdown, stall) has to end before it is left behind.
const STOP_WAIT: Duration = Duration::from_secs(5);
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
    /// The name this process's leases carry.
    identity: String,
    /// Whether this process owns the node's stable worker id (see [`queue::Identity`]).
    owns_stable_id: bool,
    _identity: queue::Identity,
    /// The ultrafast work area in an object store, when one is configured.
    stage_store: Option<crate::storage::work_area::WorkArea>,
    /// FFmpeg, in a confined process per call.
    engine: Engine,
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        plugins: Arc<Plugins>,
        config: Arc<Config>,
        wake: Arc<Notify>,
        events: Arc<Notify>,
    ) -> anyhow::Result<Arc<Self>> {
        let http = intake::transfer_client(&config)?;
        let identity = queue::Identity::acquire(&config.data_dir, &config.worker_id)?;
        let engine = Engine::new(&config.limits);
        let stage_store = config.worker.ultrafast_store.as_ref().map(|store| crate::storage::work_area::WorkArea::new(store, &config)).transpose()?;
        Ok(Arc::new(Worker {
            db,
            plugins,
            config,
            http,
            wake,
            events,
            identity: identity.id.clone(),
            owns_stable_id: identity.owns_stable_id,
            _identity: identity,
            stage_store,
            engine,
        }))
    }

    /// Claim and run jobs until `stop` is cancelled; then claim nothing more, let the
    /// running jobs finish within `[worker] shutdown_grace_secs`, and stop the rest and
    /// release their leases so another worker takes them at once.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) -> anyhow::Result<()> {
        // Leases under the stable id can only be left by a process that died (the lock
        // file says no other live process holds the id): take them back at once.
        let released = if self.owns_stable_id { queue::release_all(&self.db, &self.identity).await? } else { 0 };
        if self.owns_stable_id {
            queue::chunks::release(&self.db, &self.identity, None).await?;
        }
        if released > 0 {
            tracing::info!(released, "took back jobs interrupted by the last shutdown");
        }
        tracing::info!(worker = %self.identity, concurrency = self.config.worker_concurrency, "worker claiming jobs");
        let slots = Arc::new(Semaphore::new(self.config.worker_concurrency));
        // Running jobs, each ending with its id; and how to stop each.
        let mut running: JoinSet<String> = JoinSet::new();
        let mut cancels: HashMap<String, Arc<AtomicBool>> = HashMap::new();
        loop {
            while let Some(done) = running.try_join_next() {
                if let Ok(job_id) = done {
                    cancels.remove(&job_id);
                }
            }
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit?,
                () = stop.cancelled() => break,
            };
            if stop.is_cancelled() {
                break;
            }
            // Chunks of ultrafast jobs first: a job already running waits for them.
            match queue::chunks::claim(&self.db, &self.identity, &self.config.queue, MAX_ATTEMPTS, None).await {
                Ok(Some(chunk)) => {
                    let worker = self.clone();
                    let key = format!("{CHUNK_KEY}{}", chunk.id);
                    let cancel = Arc::new(AtomicBool::new(false));
                    cancels.insert(key.clone(), cancel.clone());
                    let span = tracing::info_span!("chunk", job_id = %chunk.job_id, chunk = chunk.idx);
                    running.spawn(
                        async move {
                            worker.run_chunk(chunk, cancel).await;
                            drop(permit);
                            worker.wake.notify_one();
                            key
                        }
                        .instrument(span),
                    );
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::error!(%err, "claiming a chunk failed"),
            }
            match queue::claim(&self.db, &self.identity, &self.config.queue).await {
                Ok(Some(job_id)) => {
                    let worker = self.clone();
                    let cancel = Arc::new(AtomicBool::new(false));
                    cancels.insert(job_id.clone(), cancel.clone());
                    let span = tracing::info_span!("job", job_id = %job_id);
                    running.spawn(
                        async move {
                            worker.run_job(&job_id, cancel).await;
                            drop(permit);
                            // A slot is free (and a capped key may have room): look at once.
                            worker.wake.notify_one();
                            job_id
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::timeout(POLL, self.wake.notified()) => {}
                        () = stop.cancelled() => break,
                    }
                }
                Err(err) => {
                    drop(permit);
                    tracing::error!(%err, "claiming a job failed");
                    tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        () = stop.cancelled() => break,
                    }
                }
            }
        }
        self.drain(running, cancels).await;
        Ok(())
    }

    /// At shutdown: wait for running jobs within the grace, then stop the rest and give
    /// back their leases (the claim is not counted as an attempt).
    async fn drain(&self, mut running: JoinSet<String>, mut cancels: HashMap<String, Arc<AtomicBool>>) {
        let grace = self.config.worker.shutdown_grace;
        if !running.is_empty() {
            tracing::info!(jobs = running.len(), grace_secs = grace.as_secs(), "shutting down: claiming nothing more, waiting for running jobs");
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match tokio::time::timeout_at(deadline, running.join_next()).await {
                Ok(Some(Ok(job_id))) => {
                    cancels.remove(&job_id);
                }
                Ok(Some(Err(err))) => tracing::error!(%err, "a job's task failed"),
                Ok(None) => return,
                Err(_) => break,
            }
        }
        for (job_id, cancel) in &cancels {
            cancel.store(true, Ordering::Relaxed);
            if job_id.starts_with(CHUNK_KEY) {
                // The chunk gives its lease back itself once its encode stops.
                continue;
            }
            match queue::release(&self.db, job_id, &self.identity, true).await {
                Ok(true) => tracing::warn!(job_id, "shutdown grace over: job stopped and its lease released for another worker"),
                Ok(false) => {}
                Err(err) => tracing::error!(job_id, %err, "lease not released at shutdown; it frees when it expires"),
            }
        }
        // The stopped jobs write nothing more (their lease is gone); let them clean up.
        let _ = tokio::time::timeout(STOP_WAIT, async { while running.join_next().await.is_some() {} }).await;
        running.abort_all();
    }

    /// Run one claimed job to its end, keeping its lease alive and watching it meanwhile.
    async fn run_job(&self, job_id: &str, cancel: Arc<AtomicBool>) {
        let stalled = Arc::new(Notify::new());
        let activity = Arc::new(heartbeat::Activity::default());
        let watch = heartbeat::Watch {
            db: self.db.clone(),
            lease: Lease { job_id: job_id.to_string(), owner: self.identity.clone() },
            queue: self.config.queue.clone(),
            worker: self.config.worker.clone(),
            cancel: cancel.clone(),
            stalled: stalled.clone(),
            activity: activity.clone(),
        };
        let watch = tokio::spawn(watch.run().instrument(tracing::Span::current()));
        let work = storage::work_dir(&self.config.data_dir, job_id);
        let process = self.process(job_id, &work, &cancel, activity);
        tokio::pin!(process);
        let result = tokio::select! {
            result = &mut process => result,
            // A stalled encode may never return (a hung encoder): it is given a moment to
            // stop, then left behind so its slot serves other jobs.
            () = stalled.notified() => match tokio::time::timeout(STOP_WAIT, &mut process).await {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!("the stalled job did not stop; left behind")),
            },
        };
        watch.abort();
        if let Err(err) = result {
            tracing::error!(err = format!("{err:#}"), "job aborted");
        }
        if let Err(err) = tokio::fs::remove_dir_all(&work).await {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(%err, "work directory not removed");
            }
        }
    }

    async fn process(&self, job_id: &str, work: &Path, cancel: &Arc<AtomicBool>, activity: Arc<heartbeat::Activity>) -> anyhow::Result<()> {
        let Some((job, outputs)) = db::jobs::read(&self.db, job_id, None).await? else { return Ok(()) };
        if job.status.is_terminal() {
            return Ok(());
        }
        let lease = Lease { job_id: job_id.to_string(), owner: self.identity.clone() };
        let (spec, pins): (JobSpec, _) = match crate::job::stored::open_planned(&self.config.sealer, &job.spec) {
            Ok(opened) => opened,
            Err(err) => return self.unopenable(&job, &outputs, lease, activity, err).await,
        };
        let engine = self.engine.for_clips(&spec.input.clips).joining(intake::input_paths(&spec, work).1);
        let run = JobRun { worker: self, lease, spec: &spec, activity, attempts: job.attempts, engine };
        // The plugin versions the job was planned with, or none: never another version.
        let pins = crate::plugins::Pins::new(pins);
        if let Err(unready) = self.plugins.ready(&self.db, &pins, self.config.plugin_sync.version_wait).await {
            return Ok(run.fail_input(&outputs, unready.to_string()).await?);
        }
        let result = pins.scope(self.steps(&run, &job, &outputs, work, cancel)).await;
        match result {
            Err(err) if matches!(err.downcast_ref::<WriteError>(), Some(WriteError::LeaseLost(_))) || cancel.load(Ordering::Relaxed) => {
                // Another worker holds the job now; its statuses are that worker's to write.
                cancel.store(true, Ordering::Relaxed);
                tracing::warn!("lease lost during the job; leaving it to its new worker");
                Ok(())
            }
            other => other,
        }
    }

    /// The steps of one job: input, decisions and plans, one transcode, final state.
    async fn steps(
        &self,
        run: &JobRun<'_>,
        job: &db::job::Model,
        outputs: &[output::Model],
        work: &Path,
        cancel: &Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        let spec = run.spec;
        // The tenant's own directory is the only place `local` storage reads or writes.
        let local = intake::local_files(&self.config, &job.owner);
        if job.attempts > MAX_ATTEMPTS {
            let message = format!("The job was interrupted {MAX_ATTEMPTS} times (its worker stopped or lost its lease each time) and was given up.");
            return Ok(run.fail_input(outputs, message).await?);
        }
        tracing::info!(attempt = job.attempts, "job started");
        tokio::fs::create_dir_all(work).await?;

        // 1. Input: every input fetched and probed, their clips and themselves joined
        // (what plans and conditions see), held to the limits.
        run.input_transferring().await?;
        let (input_path, _) = intake::input_paths(spec, work);
        let uploads = crate::job::input_upload::TenantUploads::of(&self.config, &job.owner);
        let sources = intake::InputSources { plugins: &self.plugins, http: &self.http, local: &local, uploads: &uploads };
        let probed = intake::read_inputs(&sources, &self.engine, &job.id, spec, work, intake::Reading::Whole, &self.config.limits).await;
        let (info, input_metadata) = match probed {
            Ok(probed) => {
                crate::metrics::input_bytes(probed.bytes);
                (probed.info, probed.metadata)
            }
            Err(err) => {
                if let Some(crash) = &err.crash {
                    self.give_back(&job.id, job.attempts, crash).await?;
                }
                if let Some(metadata) = &err.metadata {
                    run.input_probed(metadata).await?;
                }
                return Ok(run.fail_input(outputs, err.message).await?);
            }
        };
        run.input_probed(&input_metadata).await?;
        run.input_transferred().await?;
        tracing::info!(width = info.width, height = info.height, duration = info.duration, "input probed");

        // 2. Decide and plan every output.
        let destination = self.plugins.storage_destination(spec.storage_service(), &spec.storage.to_string(), &local, &self.http)
            .await
            .map(|d| d.retrying(job.attempts > 1))
            .map_err(|e| e.to_string());
        let mut planned: Vec<Planned> = Vec::new();
        for (row, output_spec) in outputs.iter().zip(&spec.outputs) {
            match self.decide(&info, output_spec).await {
                Decision::Skip => run.set_output(row, OutputState::Skipped).await?,
                Decision::Fail(message) => run.fail_output(row, message).await?,
                Decision::Encode(plan) => {
                    if let Err(message) = &destination {
                        run.fail_output(row, message.clone()).await?;
                        continue;
                    }
                    run.set_output(row, OutputState::Queued).await?;
                    // A target quality: the setting (or a package's ladder) is searched on
                    // samples first.
                    let (plan, target, ladder) = match (plan.target_vmaf, plan.packaging.is_some()) {
                        (None, _) => (plan, None, None),
                        (Some(_), false) => match run.search_quality(&input_path, &info, output_spec, &plan, work, cancel).await {
                            Ok((plan, searched)) => (plan, Some(searched), None),
                            Err(err) => {
                                run.fail_output(row, err.to_string()).await?;
                                continue;
                            }
                        },
                        (Some(_), true) => match run.plan_ladder(&input_path, &info, output_spec, &plan, work, cancel).await {
                            Ok((plan, ladder)) => (plan, None, Some(ladder)),
                            Err(err) => {
                                run.fail_output(row, err.to_string()).await?;
                                continue;
                            }
                        },
                    };
                    // Pictures and packages are many files: they get a directory.
                    let path = if plan.image.is_some() || plan.packaging.is_some() {
                        work.join(format!("output-{}", row.position))
                    } else {
                        work.join(format!("output-{}.{}", row.position, plan.extension))
                    };
                    // An output encoded to a target quality is measured: its score is the proof.
                    let mut metrics = spec.metrics_of(output_spec);
                    if target.is_some() && !metrics.contains(&media::Metric::Vmaf) {
                        metrics.push(media::Metric::Vmaf);
                    }
                    planned.push(Planned {
                        row: row.clone(),
                        spec: output_spec.clone(),
                        target: OutputTarget { plan, path },
                        metrics,
                        search: target,
                        ladder,
                        subtitles: Vec::new(),
                        duration: 0.0,
                    });
                }
            }
        }

        // The plans together: the pictures they take and the memory they need at once,
        // now that the input's size is known (at submit it was not).
        if !planned.is_empty() {
            let outputs: Vec<(&str, &crate::types::OutputPlan)> = planned.iter().map(|p| (p.row.key.as_str(), &p.target.plan)).collect();
            if let Err(refusal) = media::check_job(&info, &outputs, &self.config.limits, false) {
                tracing::info!(%refusal, "the job's plans do not fit its limits");
                let message = refusal.to_string();
                for p in std::mem::take(&mut planned) {
                    run.fail_output(&p.row, message.clone()).await?;
                }
            }
        }

        // 3. One transcode for all outputs; each file uploads as soon as it is finished.
        if let (Ok(destination), false) = (&destination, planned.is_empty()) {
            for p in &planned {
                run.set_output(&p.row, OutputState::Working).await?;
            }
            // Alternate audio: each package's tracks, matched against the input's.
            let planned = run.select_audio_tracks(&info, planned).await?;
            // Loudness targets: the input's audio is measured first, for their gains.
            let planned = run.measure_loudness(&input_path, planned).await?;
            // Watermarks: their images are fetched once for every output that draws them.
            let planned = run.fetch_watermarks(work, planned).await?;
            // Subtitles (sidecar files and the input's own): read once, put on each output's timeline.
            let planned = run.fetch_subtitles(work, &input_path, &input_metadata, &info, planned).await?;
            // Ultrafast: the outputs that can be are encoded in chunks by any worker.
            let planned = if run.wants_ultrafast(&info) { run.ultrafast(&input_path, &info, work, planned, destination, cancel).await? } else { planned };
            if !planned.is_empty() {
                run.transcode_and_upload(&input_path, planned, destination, cancel).await?;
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(WriteError::LeaseLost(job.id.clone()).into());
        }

        // 4. Final state.
        Ok(run.finish().await?)
    }

    /// A job whose stored spec this node cannot open (sealed with another key, or
    /// damaged): given back for a node that can, and after its attempts failed with
    /// why. It is never claimed again and again.
    async fn unopenable(
        &self,
        job: &db::job::Model,
        outputs: &[output::Model],
        lease: Lease,
        activity: Arc<heartbeat::Activity>,
        err: crate::job::stored::StoredSpecError,
    ) -> anyhow::Result<()> {
        self.retry(&job.id, job.attempts, &err).await?;
        let spec = JobSpec::unreadable();
        let run = JobRun { worker: self, lease, spec: &spec, activity, attempts: job.attempts, engine: self.engine.for_clips(&spec.input.clips) };
        let message = format!("The job could not be run: {err}. Every node sharing a database needs the same COPRA_SECRET_KEY.");
        Ok(run.fail_input(outputs, message).await?)
    }

    /// When the engine's process died (not a media error, not a limit) and the job has
    /// attempts left, this attempt ends here (an error) and the job is given back for
    /// another (see [`Self::retry`]); otherwise the caller records the failure.
    async fn give_back(&self, job_id: &str, attempts: i32, err: &EngineError) -> anyhow::Result<()> {
        if err.is_crash() { self.retry(job_id, attempts, err).await } else { Ok(()) }
    }

    /// While the job has an attempt left, release its lease for any worker and end this
    /// claim with `why`; `Ok` once its attempts are spent (the caller then fails it).
    async fn retry(&self, job_id: &str, attempts: i32, why: &(dyn std::fmt::Display + Sync)) -> anyhow::Result<()> {
        if attempts < MAX_ATTEMPTS {
            queue::release(&self.db, job_id, &self.identity, false).await?;
            self.wake.notify_one();
            anyhow::bail!("{why}; the job is given back for attempt {} of {MAX_ATTEMPTS}", attempts + 1);
        }
        Ok(())
    }

    async fn decide(&self, info: &MediaInfo, spec: &OutputSpec) -> Decision {
        intake::decide(&self.plugins, &self.config.limits, info, spec).await
    }
}

struct Planned {
    row: output::Model,
    spec: OutputSpec,
    target: OutputTarget,
    /// The quality metrics the output asked for (none: not measured).
    metrics: Vec<crate::media::Metric>,
    /// How its setting was found, when it was encoded to a target quality.
    search: Option<crate::media::TargetSearch>,
    /// How its ladder was planned, when it was planned from the content.
    ladder: Option<crate::media::LadderReport>,
    /// A package's subtitle tracks, on its timeline (see `subtitles`).
    subtitles: Vec<crate::subtitles::package::Track>,
    /// How long the output lasts, seconds (set with its subtitles).
    duration: f64,
}

