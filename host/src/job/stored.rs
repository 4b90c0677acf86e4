//! A job's spec as it rests in the database: sealed, because it carries storage
//! credentials, webhook URLs and presigned URLs. Every reader and writer of
//! `jobs.spec` goes through here.

use crate::secret::{SealError, Sealer};

use super::JobSpec;

#[derive(Debug, thiserror::Error)]
pub enum StoredSpecError {
    #[error("the job's stored spec cannot be opened: {0}")]
    Seal(#[from] SealError),
    #[error("the job's stored spec is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

/// The text to store for a spec.
pub fn seal_spec(sealer: &Sealer, spec: &JobSpec) -> Result<String, StoredSpecError> {
    Ok(sealer.seal(&serde_json::to_string(spec)?))
}

/// The spec of a stored job.
pub fn open_spec(sealer: &Sealer, stored: &str) -> Result<JobSpec, StoredSpecError> {
    Ok(serde_json::from_str(&sealer.open(stored)?)?)
}
