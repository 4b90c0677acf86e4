//! Jobs: what a client submits, how it is validated, and the statuses it moves through.

pub mod budget;
pub mod clips;
pub mod dry_run_gate;
pub mod follow;
pub mod id;
pub mod input_upload;
pub mod inputs;
pub mod metrics;
pub mod octet;
pub mod spec;
pub mod stored;
pub mod submit;
pub mod subtitles;
pub mod validate;
pub mod view;

pub use copra_codes::ErrorCode;
pub use spec::{JobSpec, OutputSpec};

/// A job that cannot be accepted, with the Coconut error code that says why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    code: ErrorCode,
    message: String,
}

impl JobError {
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        JobError { code, message: message.into() }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

/// Statuses and event names (one typed definition, stored through sea-orm in `db`).
pub mod status {
    pub use crate::db::status::{EventName, InputStatus, JobStatus, OutputState, OutputType, output_status};
}
