//! A job being run, and what it writes: statuses, outputs and the events that report
//! them, each change with its event in one transaction under the worker's lease. A
//! worker whose lease was taken over gets [`WriteError::LeaseLost`] and writes nothing.

use serde_json::{Map, Value, json};

use super::Worker;
use crate::db::jobs::{self, JobChange, Lease, NewEvent, OutputChange, WriteError};
use crate::db::{job, output};
use crate::job::status::{EventName, InputStatus, JobStatus, OutputState};
use crate::job::{JobSpec, view};

pub(super) struct JobRun<'a> {
    pub worker: &'a Worker,
    pub lease: Lease,
    pub spec: &'a JobSpec,
    /// What the encode shows of its life, for the stall watch.
    pub activity: std::sync::Arc<super::heartbeat::Activity>,
    /// This claim's attempt, from 1.
    pub attempts: i32,
    /// The media engine for this job: it decodes only the input's `clips`.
    pub engine: crate::confined::Engine,
}

impl JobRun<'_> {
    fn job_id(&self) -> &str {
        &self.lease.job_id
    }

    /// Whether the job asked for notifications (events are recorded either way).
    fn notify(&self) -> bool {
        self.spec.notification.is_some()
    }

    fn wants_metadata(&self) -> bool {
        self.spec.notification.as_ref().and_then(|n| n.get("metadata")).and_then(Value::as_bool).unwrap_or(false)
    }

    /// Apply a change (and its event) under the lease; wake the notifier if it owes one.
    async fn apply(&self, change: JobChange, outputs: Vec<(i64, OutputChange)>, event: Option<NewEvent>) -> Result<(), WriteError> {
        let delivers = event.as_ref().is_some_and(|e| e.deliver);
        jobs::apply(&self.worker.db, &self.lease, change, outputs, event).await?;
        if delivers {
            self.worker.events.notify_one();
        }
        Ok(())
    }

    /// An event whose payload is the job as the change leaves it, plus `data` and
    /// `metadata` made from it too.
    fn event(
        &self,
        name: EventName,
        dedupe_key: String,
        data: impl FnOnce(&job::Model, &[output::Model]) -> (Value, Option<Value>) + Send + 'static,
    ) -> NewEvent {
        let job_id = self.job_id().to_string();
        NewEvent {
            name,
            dedupe_key,
            deliver: self.notify(),
            payload: Box::new(move |job, outputs| {
                let (data, metadata) = data(job, outputs);
                json!({
                    "event": name.as_str(),
                    "job_id": job_id,
                    "job": view::job_view(job, outputs),
                    "data": data,
                    "metadata": metadata,
                })
            }),
        }
    }

    pub async fn input_transferring(&self) -> Result<(), WriteError> {
        self.apply(JobChange { input_status: Some(InputStatus::Transferring), ..Default::default() }, Vec::new(), None).await
    }

    /// The input's metadata, recorded as soon as it is probed (before limits are checked).
    pub async fn input_probed(&self, metadata: &Value) -> Result<(), WriteError> {
        self.apply(JobChange { input_metadata: Some(metadata.clone()), ..Default::default() }, Vec::new(), None).await
    }

    pub async fn input_transferred(&self) -> Result<(), WriteError> {
        let event = self.event(EventName::InputTransferred, "input.transferred".into(), |_, _| {
            (json!({"status": InputStatus::Transferred.as_str()}), None)
        });
        self.apply(JobChange { input_status: Some(InputStatus::Transferred), ..Default::default() }, Vec::new(), Some(event)).await
    }

    pub async fn set_output(&self, row: &output::Model, state: OutputState) -> Result<(), WriteError> {
        self.apply(JobChange::default(), vec![(row.id, OutputChange { state: Some(state), ..Default::default() })], None).await
    }

    pub async fn fail_output(&self, row: &output::Model, message: String) -> Result<(), WriteError> {
        tracing::warn!(output = ?row.key, message = ?message, "output failed");
        let key = row.key.clone();
        let data = json!({"key": key, "error": message});
        let event = self.event(EventName::OutputFailed, format!("output.failed:{key}"), move |_, _| (data, None));
        let change = OutputChange { state: Some(OutputState::Failed), error: Some(message), ..Default::default() };
        self.apply(JobChange::default(), vec![(row.id, change)], Some(event)).await
    }

    /// A note in the job's history on how it was run (not delivered).
    pub async fn note(&self, message: String) -> Result<(), WriteError> {
        tracing::info!(message, "job note");
        let job_id = self.job_id().to_string();
        let event = NewEvent {
            name: EventName::JobNote,
            dedupe_key: format!("job.note:{message}"),
            deliver: false,
            payload: Box::new(move |_, _| json!({"event": EventName::JobNote.as_str(), "job_id": job_id, "data": {"message": message}})),
        };
        self.apply(JobChange::default(), Vec::new(), Some(event)).await
    }

    /// An output finished and uploaded: its URLs and metadata, and `output.completed`.
    pub async fn output_done(
        &self,
        row: &output::Model,
        url: Option<String>,
        urls: Option<Value>,
        metadata: Value,
    ) -> Result<(), WriteError> {
        let (id, wants_metadata, event_metadata) = (row.id, self.wants_metadata(), metadata.clone());
        let event = self.event(EventName::OutputCompleted, format!("output.completed:{}", row.key), move |_, outputs| {
            let data = outputs.iter().find(|o| o.id == id).map(|o| json!(view::output_view(o))).unwrap_or(Value::Null);
            (data, wants_metadata.then_some(event_metadata))
        });
        let change = OutputChange { state: Some(OutputState::Done), url, urls, metadata: Some(metadata), ..Default::default() };
        self.apply(JobChange::default(), vec![(row.id, change)], Some(event)).await
    }

    /// The input could not be used: every output fails with it and the job ends, in one
    /// transaction with its `job.failed` event.
    pub async fn fail_input(&self, outputs: &[output::Model], message: String) -> Result<(), WriteError> {
        tracing::warn!(message, "input failed");
        let change = JobChange {
            input_status: Some(InputStatus::Failed),
            error: Some(message.clone()),
            finished: Some(JobStatus::Failed),
            ..Default::default()
        };
        let failed = outputs
            .iter()
            .filter(|row| !row.state.is_terminal())
            .map(|row| (row.id, OutputChange { state: Some(OutputState::Failed), error: Some(message.clone()), ..Default::default() }))
            .collect();
        self.apply(change, failed, Some(self.final_event(JobStatus::Failed))).await?;
        tracing::info!(status = JobStatus::Failed.as_str(), "job finished");
        Ok(())
    }

    /// End the job: completed unless an output failed.
    pub async fn finish(&self) -> Result<(), WriteError> {
        let outputs = jobs::outputs(&self.worker.db, self.job_id()).await?;
        let status = if outputs.iter().any(|o| o.state == OutputState::Failed) { JobStatus::Failed } else { JobStatus::Completed };
        self.apply(JobChange { finished: Some(status), ..Default::default() }, Vec::new(), Some(self.final_event(status))).await?;
        tracing::info!(status = status.as_str(), "job finished");
        Ok(())
    }

    fn final_event(&self, status: JobStatus) -> NewEvent {
        let name = if status == JobStatus::Completed { EventName::JobCompleted } else { EventName::JobFailed };
        let wants_metadata = self.wants_metadata();
        self.event(name, name.as_str().into(), move |job, outputs| {
            (json!(view::job_view(job, outputs)), wants_metadata.then(|| all_metadata(job, outputs)))
        })
    }

    pub async fn progress(&self, percent: i32) -> Result<(), WriteError> {
        jobs::set_progress(&self.worker.db, &self.lease, percent).await
    }

    /// `job.progress`, for a job that asked for progress webhooks: its `data` is the job
    /// as it stands. One per percent value (a run again after a crash adds none twice).
    pub async fn progress_event(&self, percent: i32) -> Result<(), WriteError> {
        let event = self.event(EventName::JobProgress, format!("job.progress:{percent}"), |job, outputs| (json!(view::job_view(job, outputs)), None));
        self.apply(JobChange::default(), Vec::new(), Some(event)).await
    }
}

/// The ffprobe-shaped metadata of the input (`source`) and of every finished output.
fn all_metadata(job: &job::Model, outputs: &[output::Model]) -> Value {
    let parse = |t: &Option<String>| t.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
    let mut all = Map::new();
    if let Some(source) = parse(&job.input_metadata) {
        all.insert("source".into(), source);
    }
    for output in outputs {
        if let Some(m) = parse(&output.metadata) {
            all.insert(output.key.clone(), m);
        }
    }
    Value::Object(all)
}
