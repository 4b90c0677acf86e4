//! Statuses and event names, one typed definition each, stored through sea-orm as the
//! strings Coconut's API uses (`job.completed`, `input.transferred`, ...). Nothing matches
//! a status by its text: code compares these enums, and the API's words come from them.

use sea_orm::entity::prelude::*;
use serde::Serialize;

pub use crate::types::OutputType;

/// A job's overall status (Coconut has three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, utoipa::ToSchema)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum JobStatus {
    #[sea_orm(string_value = "job.starting")]
    #[serde(rename = "job.starting")]
    Starting,
    #[sea_orm(string_value = "job.completed")]
    #[serde(rename = "job.completed")]
    Completed,
    #[sea_orm(string_value = "job.failed")]
    #[serde(rename = "job.failed")]
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Starting => "job.starting",
            JobStatus::Completed => "job.completed",
            JobStatus::Failed => "job.failed",
        }
    }

    /// Whether the job is over: nothing about it changes any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed)
    }
}

/// The input's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, utoipa::ToSchema)]
#[schema(as = InputStatusName)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum InputStatus {
    #[sea_orm(string_value = "input.starting")]
    #[serde(rename = "input.starting")]
    Starting,
    #[sea_orm(string_value = "input.transferring")]
    #[serde(rename = "input.transferring")]
    Transferring,
    #[sea_orm(string_value = "input.transferred")]
    #[serde(rename = "input.transferred")]
    Transferred,
    #[sea_orm(string_value = "input.failed")]
    #[serde(rename = "input.failed")]
    Failed,
}

impl InputStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InputStatus::Starting => "input.starting",
            InputStatus::Transferring => "input.transferring",
            InputStatus::Transferred => "input.transferred",
            InputStatus::Failed => "input.failed",
        }
    }
}

/// Where an output is in its life. Its Coconut status is this state in the words of its
/// type ([`output_status`]): `video.encoding` but `image.processing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum OutputState {
    /// Submitted; the input is not there yet.
    #[sea_orm(string_value = "waiting")]
    Waiting,
    /// Planned; waiting for the transcode to start.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// Being encoded (pictures: processed; packages: variants encoding).
    #[sea_orm(string_value = "working")]
    Working,
    /// A package whose ladder is encoded, its playlists being put in place.
    #[sea_orm(string_value = "packaging")]
    Packaging,
    /// Finished and uploaded.
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Its `if` was false.
    #[sea_orm(string_value = "skipped")]
    Skipped,
}

impl OutputState {
    /// Whether the output is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, OutputState::Done | OutputState::Failed | OutputState::Skipped)
    }

    /// The state an output status of the API names (`video.encoded` → `Done`).
    pub fn from_status(status: &str) -> Option<Self> {
        let (_, word) = status.split_once('.')?;
        Some(match word {
            "waiting" => OutputState::Waiting,
            "queued" => OutputState::Queued,
            "encoding" | "processing" | "variants.encoding" => OutputState::Working,
            "packaging" => OutputState::Packaging,
            "encoded" | "created" | "packaged" => OutputState::Done,
            "failed" => OutputState::Failed,
            "skipped" => OutputState::Skipped,
            _ => return None,
        })
    }
}

/// An output's status as Coconut words it: `<type>.<state>`, where the word for a state
/// depends on the type (`video.encoded` but `image.created`, `httpstream.packaged`).
pub fn output_status(output_type: OutputType, state: OutputState) -> String {
    use OutputState::*;
    use OutputType::*;
    let word = match (output_type, state) {
        (_, Waiting) => "waiting",
        (_, Queued) => "queued",
        (Image, Working) => "processing",
        (Httpstream, Working) => "variants.encoding",
        (_, Working) => "encoding",
        (_, Packaging) => "packaging",
        (Image, Done) => "created",
        (Httpstream, Done) => "packaged",
        (_, Done) => "encoded",
        (_, Failed) => "failed",
        (_, Skipped) => "skipped",
    };
    format!("{}.{word}", output_type.as_str())
}

/// The events a job records (and its notifier delivers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EventName {
    #[sea_orm(string_value = "input.transferred")]
    #[serde(rename = "input.transferred")]
    InputTransferred,
    #[sea_orm(string_value = "output.completed")]
    #[serde(rename = "output.completed")]
    OutputCompleted,
    #[sea_orm(string_value = "output.failed")]
    #[serde(rename = "output.failed")]
    OutputFailed,
    #[sea_orm(string_value = "job.completed")]
    #[serde(rename = "job.completed")]
    JobCompleted,
    #[sea_orm(string_value = "job.failed")]
    #[serde(rename = "job.failed")]
    JobFailed,
    /// A running job's progress, recorded at most every `notification.progress_interval`
    /// seconds, and only for jobs that asked for it.
    #[sea_orm(string_value = "job.progress")]
    #[serde(rename = "job.progress")]
    JobProgress,
    /// A worker saw the job's encode stop moving and gave it back for another attempt.
    /// Recorded in the job's history, not delivered: Coconut's clients do not know it.
    #[sea_orm(string_value = "job.stalled")]
    #[serde(rename = "job.stalled")]
    JobStalled,
    /// How the worker ran the job, where it differs from what was asked (an ultrafast
    /// job's outputs that could not be chunked). History only, not delivered.
    #[sea_orm(string_value = "job.note")]
    #[serde(rename = "job.note")]
    JobNote,
}

impl EventName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::InputTransferred => "input.transferred",
            EventName::OutputCompleted => "output.completed",
            EventName::OutputFailed => "output.failed",
            EventName::JobCompleted => "job.completed",
            EventName::JobFailed => "job.failed",
            EventName::JobProgress => "job.progress",
            EventName::JobStalled => "job.stalled",
            EventName::JobNote => "job.note",
        }
    }

    /// Whether this is a job's last event.
    pub fn ends_job(self) -> bool {
        matches!(self, EventName::JobCompleted | EventName::JobFailed)
    }
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    #[test]
    fn every_output_status_reads_back_as_its_state() {
        for output_type in [OutputType::Video, OutputType::Audio, OutputType::Image, OutputType::Httpstream] {
            for state in OutputState::iter() {
                let status = output_status(output_type, state);
                assert!(status.starts_with(output_type.as_str()), "{status}");
                assert_eq!(OutputState::from_status(&status), Some(state), "{status}");
            }
        }
        assert_eq!(output_status(OutputType::Image, OutputState::Done), "image.created");
        assert_eq!(output_status(OutputType::Httpstream, OutputState::Working), "httpstream.variants.encoding");
        assert_eq!(output_status(OutputType::Httpstream, OutputState::Packaging), "httpstream.packaging");
    }

    #[test]
    fn stored_values_are_coconuts_words() {
        assert_eq!(JobStatus::Completed.to_value(), "job.completed");
        assert_eq!(InputStatus::Transferred.to_value(), "input.transferred");
        assert_eq!(EventName::OutputFailed.to_value(), "output.failed");
        for status in JobStatus::iter() {
            assert_eq!(status.to_value(), status.as_str());
        }
        for event in EventName::iter() {
            assert_eq!(event.to_value(), event.as_str());
        }
    }
}
