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
//! the database, so it works the same whichever node runs the job (`crate::job::follow`);
//! this file only makes its messages Server-Sent Events.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;

use super::auth::ApiKey;
use super::{ApiError, AppState};
use crate::job::follow::{Follower, Message};

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
        (status = 401, description = "Authentication failed.", body = super::schema::Error),
        (status = 404, description = "Job not found.", body = super::schema::Error),
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
    let follower = Follower::new(state.db.clone(), id, key.owner.clone(), last_event_id, state.stopping.clone());
    let stream = futures::stream::unfold(follower, |mut follower| async move {
        let event = match follower.next().await? {
            Message::Event { id, name, data } => Event::default().event(name).id(id.to_string()).data(data),
            Message::Status { last_event_id, data } => Event::default().event("job.status").id(last_event_id.to_string()).data(data),
        };
        Some((Ok(event), follower))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
