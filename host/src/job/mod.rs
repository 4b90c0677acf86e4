//! Jobs: what a client submits, how it is validated, and the statuses it moves through.

pub mod octet;
pub mod spec;
pub mod stored;
pub mod validate;
pub mod view;

pub use spec::{JobSpec, OutputSpec};

/// A job that cannot be accepted, with the Coconut error code that says why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    code: String,
    message: String,
}

impl JobError {
    pub fn invalid(code: impl Into<String>, message: impl Into<String>) -> Self {
        JobError { code: code.into(), message: message.into() }
    }

    pub fn code(&self) -> &str {
        &self.code
    }
}

/// Job statuses (Coconut's names).
pub mod status {
    pub const JOB_STARTING: &str = "job.starting";
    pub const JOB_COMPLETED: &str = "job.completed";
    pub const JOB_FAILED: &str = "job.failed";

    pub const INPUT_STARTING: &str = "input.starting";
    pub const INPUT_TRANSFERRING: &str = "input.transferring";
    pub const INPUT_TRANSFERRED: &str = "input.transferred";
    pub const INPUT_FAILED: &str = "input.failed";

    /// Between encoding a ladder and having every playlist in place.
    pub const HTTPSTREAM_PACKAGING: &str = "httpstream.packaging";

    /// An output status: `<type>.<state>`, where the state word depends on the type
    /// (`video.encoded` but `image.created`, `httpstream.packaged`).
    pub fn output(output_type: &str, state: OutputState) -> String {
        let word = match (output_type, state) {
            (_, OutputState::Waiting) => "waiting",
            (_, OutputState::Queued) => "queued",
            ("image", OutputState::Working) => "processing",
            ("httpstream", OutputState::Working) => "variants.encoding",
            (_, OutputState::Working) => "encoding",
            ("image", OutputState::Done) => "created",
            ("httpstream", OutputState::Done) => "packaged",
            (_, OutputState::Done) => "encoded",
            (_, OutputState::Failed) => "failed",
            (_, OutputState::Skipped) => "skipped",
        };
        format!("{output_type}.{word}")
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum OutputState {
        Waiting,
        Queued,
        Working,
        Done,
        Failed,
        Skipped,
    }

    pub fn is_job_terminal(status: &str) -> bool {
        status == JOB_COMPLETED || status == JOB_FAILED
    }
}
