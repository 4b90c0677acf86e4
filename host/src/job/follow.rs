//! Following a job as its tenant sees it, for the event stream (`GET
//! /v2/jobs/{id}/events`): each recorded event exactly once, in order, and the job's
//! status whenever it changed, until its final event and final status are out. It reads
//! the database, so it works the same whichever node runs the job.

use std::collections::VecDeque;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::db::{self, event};

/// How often a follower looks for news: status messages are at most this frequent.
const TICK: Duration = Duration::from_millis(250);

/// One message for the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A recorded event (`input.transferred`, `job.completed`, ...): its id, name and
    /// payload.
    Event { id: i64, name: &'static str, data: String },
    /// The job as `GET /v2/jobs/{id}` shows it, with the id of the last event sent.
    Status { last_event_id: i64, data: String },
}

/// One client's view of a job: what it has been sent so far.
pub struct Follower {
    db: DatabaseConnection,
    job_id: String,
    owner: String,
    last_event_id: i64,
    last_status: Option<super::view::JobView>,
    /// Messages read but not sent yet, next first.
    queue: VecDeque<Message>,
    ended: bool,
    /// The server is shutting down: the stream ends (the client resumes elsewhere with
    /// `Last-Event-ID`).
    stopping: CancellationToken,
}

impl Follower {
    /// Follow `owner`'s job `job_id` from after `last_event_id` (0: from the start).
    pub fn new(db: DatabaseConnection, job_id: String, owner: String, last_event_id: i64, stopping: CancellationToken) -> Self {
        Follower { db, job_id, owner, last_event_id, last_status: None, queue: VecDeque::new(), ended: false, stopping }
    }

    /// The next message, waiting for one; `None` once the job has ended and all was sent.
    pub async fn next(&mut self) -> Option<Message> {
        let mut first = true;
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Some(message);
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
    async fn read(&mut self) -> Result<(), DbErr> {
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
            self.queue.push_back(event_message(event));
            self.last_event_id = event.id;
        }
        let status = super::view::job_view(&job, &outputs);
        if self.last_status.as_ref() != Some(&status) {
            let data = serde_json::to_string(&status).unwrap_or_default();
            self.queue.push_back(Message::Status { last_event_id: self.last_event_id, data });
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

fn event_message(event: &event::Model) -> Message {
    let data = serde_json::from_str::<Value>(&event.payload).unwrap_or_else(|_| Value::String(event.payload.clone()));
    Message::Event { id: event.id, name: event.event.as_str(), data: data.to_string() }
}
