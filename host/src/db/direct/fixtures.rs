//! Rows for the direct paths' tests, the same on both backends.

use sea_orm::Set;

use crate::db::status::{InputStatus, JobStatus, OutputType};
use crate::db::{job, output};

/// A new job of `owner` with `outputs` outputs (a video, a picture, a video, ...).
pub fn new_job(id: &str, owner: &str, outputs: usize) -> (job::Model, Vec<output::Model>) {
    let job = job::Model {
        id: id.into(),
        owner: owner.into(),
        status: JobStatus::Starting,
        input_status: InputStatus::Starting,
        progress: 0,
        spec: r#"{"input":{"url":"http://x/a.mp4"}}"#.into(),
        input_metadata: None,
        error: None,
        created_at: 1_764_000_000_000,
        completed_at: None,
        lease_owner: None,
        lease_expires_at: None,
        attempts: 0,
    };
    let kinds = [("mp4:360p", OutputType::Video), ("jpg:200x", OutputType::Image), ("webm", OutputType::Video)];
    let outputs = (0..outputs)
        .map(|position| {
            let (key, output_type) = kinds[position % kinds.len()];
            output::Model::waiting(id, position as i32, format!("{key}#{position}"), key, output_type)
        })
        .collect();
    (job, outputs)
}

/// `job` changed so that every column has a value, none its first one.
pub fn every_column_set(job: job::Model) -> job::ActiveModel {
    let mut changed: job::ActiveModel = job.into();
    changed.status = Set(JobStatus::Completed);
    changed.input_status = Set(InputStatus::Transferred);
    changed.progress = Set(100);
    changed.input_metadata = Set(Some("{}".into()));
    changed.error = Set(Some("e".into()));
    changed.completed_at = Set(Some(5));
    changed.lease_owner = Set(Some("w".into()));
    changed.lease_expires_at = Set(Some(6));
    changed.attempts = Set(2);
    changed
}
