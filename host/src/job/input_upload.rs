//! A job whose input is a direct upload (`"input": {"upload": "<id>"}`, or the upload's
//! URL as `input.url`): at submit the upload must be the submitting key's and finished,
//! and it is held for the job; the worker then reads it from the shared data directory
//! instead of fetching anything.

use copra_codes::ErrorCode;
use std::path::Path;

use super::{JobError, JobSpec};
use crate::config::Config;
use crate::tenant::Tenant;
use crate::upload::{UploadError, Uploads};

/// The id of an upload of this server named by its URL (`<public_url>/v2/uploads/<id>`).
fn id_in_url(public_url: &str, url: &str) -> Option<String> {
    let prefix = format!("{}/v2/uploads/", public_url.trim_end_matches('/'));
    let id = url.strip_prefix(&prefix).or_else(|| {
        // The scheme and host in any case.
        (url.len() > prefix.len() && url[..prefix.len()].eq_ignore_ascii_case(&prefix)).then(|| &url[prefix.len()..])
    })?;
    let id = id.trim_end_matches('/');
    crate::upload::store::valid_id(id).then(|| id.to_string())
}

/// Turn an upload's URL into an upload input, then check that the upload is `owner`'s
/// and finished: a 400 that names it otherwise (another key's upload is "not found").
pub async fn resolve(config: &Config, owner: &str, spec: &mut JobSpec) -> Result<(), JobError> {
    if let Some(id) = spec.input.url.as_deref().and_then(|url| id_in_url(&config.public_url, url)) {
        spec.input.url = None;
        spec.input.upload = Some(id);
    }
    let Some(id) = spec.input.upload.clone() else { return Ok(()) };
    let uploads = Uploads::of(config);
    let tenant = Tenant::of_owner(owner);
    let upload = match uploads.get(&tenant, &id).await {
        Ok(upload) => upload,
        // Taken by another API node, which copied it to the work area once finished.
        Err(UploadError::NotFound(_)) if uploads.in_area(&tenant, &id).await => return Ok(()),
        Err(UploadError::NotFound(_)) => {
            return Err(JobError::invalid(ErrorCode::InputNotValid, format!("The input upload '{}' does not exist (or it expired).", id.escape_debug())));
        }
        Err(other) => return Err(JobError::invalid(ErrorCode::InputNotValid, format!("The input upload '{id}' cannot be read: {other}"))),
    };
    if !upload.finished() {
        return Err(JobError::invalid(ErrorCode::InputNotValid,
            format!("The input upload '{id}' is not finished: {} of its {} bytes have arrived.", upload.offset, upload.length),
        ));
    }
    Ok(())
}

/// Hold the job's input upload, if it has one, for the job `job_id` (on the node that
/// took it; one only in the work area follows its own node's expiry).
pub async fn hold(config: &Config, owner: &str, spec: &JobSpec, job_id: &str) -> Result<(), JobError> {
    let Some(id) = &spec.input.upload else { return Ok(()) };
    match Uploads::of(config).hold(&Tenant::of_owner(owner), id, job_id).await {
        Ok(()) | Err(UploadError::NotFound(_)) => Ok(()),
        Err(err) => Err(JobError::invalid(ErrorCode::InputNotValid, format!("The input upload '{id}' cannot be held for the job: {err}"))),
    }
}

/// One tenant's uploads, where a job of theirs reads an upload input from.
pub struct TenantUploads {
    uploads: Uploads,
    tenant: Tenant,
}

impl TenantUploads {
    pub fn of(config: &Config, owner: &str) -> Self {
        TenantUploads { uploads: Uploads::of(config), tenant: Tenant::of_owner(owner) }
    }

    /// Put the upload `id` at `dest` (this node's file, linked or copied, or a download
    /// from the work area); returns its size.
    pub async fn fetch(&self, id: &str, dest: &Path, max_bytes: u64) -> Result<u64, InputUploadError> {
        fetch(&self.uploads, &self.tenant, id, dest, max_bytes).await
    }
}

/// Why a job's input upload could not be read by the worker; each a sentence for the
/// user.
#[derive(Debug, thiserror::Error)]
pub enum InputUploadError {
    /// The upload is gone since the job was submitted.
    #[error("The input upload '{0}' no longer exists (it was deleted or it expired).")]
    Gone(String),
    /// The upload store failed otherwise.
    #[error("The input upload could not be read: {0}")]
    Unreadable(UploadError),
    /// The upload is larger than the server takes as an input.
    #[error("The input upload is {size} bytes, more than the {max} this server takes (limits.max_input_bytes).")]
    TooLarge {
        /// The upload's size in bytes.
        size: u64,
        /// `limits.max_input_bytes` (or what the job's inputs have left of it).
        max: u64,
    },
}

async fn fetch(uploads: &Uploads, tenant: &Tenant, id: &str, dest: &Path, max_bytes: u64) -> Result<u64, InputUploadError> {
    let size = uploads.fetch(tenant, id, dest).await.map_err(|err| match err {
        UploadError::NotFound(_) => InputUploadError::Gone(id.to_string()),
        other => InputUploadError::Unreadable(other),
    })?;
    if size > max_bytes {
        let _ = tokio::fs::remove_file(dest).await;
        return Err(InputUploadError::TooLarge { size, max: max_bytes });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uploads_url_names_it() {
        let public = "http://copra.example:8080/";
        assert_eq!(id_in_url(public, "http://copra.example:8080/v2/uploads/abc123").as_deref(), Some("abc123"));
        assert_eq!(id_in_url(public, "HTTP://Copra.Example:8080/v2/uploads/abc123/").as_deref(), Some("abc123"));
        assert_eq!(id_in_url(public, "http://copra.example:8080/v2/uploads/../x"), None);
        assert_eq!(id_in_url(public, "http://other.example/v2/uploads/abc123"), None);
        assert_eq!(id_in_url(public, "http://copra.example:8080/files/abc123"), None);
    }

    #[test]
    fn fetch_failures_are_told() {
        assert_eq!(
            InputUploadError::Gone("abc123".into()).to_string(),
            "The input upload 'abc123' no longer exists (it was deleted or it expired)."
        );
        let io = std::io::Error::other("disk on fire");
        assert_eq!(
            InputUploadError::Unreadable(UploadError::Io(io)).to_string(),
            "The input upload could not be read: the upload store failed: disk on fire"
        );
        assert_eq!(
            InputUploadError::TooLarge { size: 2000, max: 1000 }.to_string(),
            "The input upload is 2000 bytes, more than the 1000 this server takes (limits.max_input_bytes)."
        );
    }
}
