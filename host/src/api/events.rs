//! `GET /v2/jobs/{id}/events`: a job's progress as Server-Sent Events, for its tenant.
//!
//! Two kinds of message, in order:
//! - each recorded event (`input.transferred`, `output.completed`, `job.completed`, ...)
//!   with `id:` its event id and `data:` its payload, exactly once;
//! - `job.status`, the job as `GET /v2/jobs/{id}` shows it, whenever it changed (status,
//!   progress, an output's status), at most a few times a second, carrying the id of the
//!   last event sent so far.
//!
//! The stream ends after the job's final event and final status (or when the server
//! shuts down). A client that reconnects with
//! `Last-Event-ID` gets every event after that id (none lost, none repeated) and the
//! current status. Another key's job is a 404, like every job route. The stream reads
//! the database, so it works the same whichever node runs the job.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use serde_json::Value;

use super::auth::ApiKey;
use super::{ApiError, AppState};
use crate::db::{self, event};

/// How often the stream looks for news: status ticks are at most this frequent.
const TICK: Duration = Duration::from_millis(250);

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs/{id}/events", get(stream))
}

#[utoipa::path(
    get,
    path = "/v2/jobs/{jobId}/events",
    operation_id = "streamJobEvents",
    tag = "Events",
    summary = "Follow a job as Server-Sent Events",
    description = "Each recorded event (`id:` its event id), and `job.status` (the job as `GET /v2/jobs/{jobId}` \
        shows it) whenever it changed; ends after the job's final event. `Last-Event-ID` resumes.",
    params(
        ("jobId" = String, Path, description = "The identifier of the job."),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id."),
    ),
    responses(
        (status = 200, description = "The event stream.", content_type = "text/event-stream", body = String),
        (status = 401, description = "Authentication failed.", body = super::openapi::Error),
        (status = 404, description = "Job not found.", body = super::openapi::Error),
    ),
    security(("basicAuth" = []), ("bearerAuth" = []))
)]
async fn stream(
    State(state): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    super::jobs::own_job(&state, &key, &id).await?;
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
    let watch = Watch {
        db: state.db.clone(),
        job_id: id,
        owner: key.owner.clone(),
        last_event_id,
        last_status: None,
        queue: Vec::new(),
        ended: false,
        stopping: state.stopping.clone(),
    };
    let stream = futures::stream::unfold(watch, |mut watch| async move {
        let event = watch.next().await?;
        Some((Ok(event), watch))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One client's view of a job: what it has been sent so far.
struct Watch {
    db: sea_orm::DatabaseConnection,
    job_id: String,
    owner: String,
    last_event_id: i64,
    last_status: Option<Value>,
    /// Messages read but not sent yet, next first.
    queue: Vec<Event>,
    ended: bool,
    /// The server is shutting down: the stream ends (the client resumes elsewhere with
    /// `Last-Event-ID`).
    stopping: tokio_util::sync::CancellationToken,
}

impl Watch {
    /// The next message, waiting for one; `None` once the job has ended and all was sent.
    async fn next(&mut self) -> Option<Event> {
        let mut first = true;
        loop {
            if !self.queue.is_empty() {
                return Some(self.queue.remove(0));
            }
            if self.ended {
                return None;
            }
            if !first {
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = self.stopping.cancelled() => return None,
                }
            }
            first = false;
            if let Err(err) = self.read().await {
                tracing::warn!(job_id = %self.job_id, %err, "event stream could not read the job");
            }
        }
    }

    /// Reads news from the database into the queue.
    async fn read(&mut self) -> Result<(), sea_orm::DbErr> {
        // The job first, then its events: an event is written with its status change,
        // so events newer than the job read mean the job moved on; read it again then.
        let Some((mut job, mut outputs)) = db::jobs::read(&self.db, &self.job_id, Some(&self.owner)).await? else {
            self.ended = true;
            return Ok(());
        };
        let events = db::jobs::events_after(&self.db, &self.job_id, self.last_event_id).await?;
        let saw_final = events.iter().any(|e| e.event.ends_job());
        if saw_final && !job.status.is_terminal() {
            if let Some((j, o)) = db::jobs::read(&self.db, &self.job_id, Some(&self.owner)).await? {
                (job, outputs) = (j, o);
            }
        }
        for event in &events {
            self.queue.push(event_message(event));
            self.last_event_id = event.id;
        }
        let status = crate::job::view::job_view(&job, &outputs);
        if self.last_status.as_ref() != Some(&status) {
            self.queue.push(Event::default().event("job.status").id(self.last_event_id.to_string()).data(status.to_string()));
            self.last_status = Some(status);
        }
        // Ends once the final event and the final status are out; a client resuming
        // after the final event gets the status and the end.
        if saw_final || (job.status.is_terminal() && events.is_empty()) {
            self.ended = true;
        }
        Ok(())
    }
}

fn event_message(event: &event::Model) -> Event {
    let data = serde_json::from_str::<Value>(&event.payload).unwrap_or_else(|_| Value::String(event.payload.clone()));
    Event::default().event(event.event.as_str()).id(event.id.to_string()).data(data.to_string())
}
