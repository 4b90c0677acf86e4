//! The "submit a job" use case, whatever API it came through: check it (limits, plugins,
//! outbound policy), seal its secrets, build its rows and hand them to the queue. The
//! HTTP handlers only translate requests into a `JobSpec` and answers out of the rows.

use copra_codes::ErrorCode;
use sea_orm::{DatabaseConnection, DbErr};

use super::status::{InputStatus, JobStatus};
use super::{JobError, JobSpec, stored, validate::validate};
use crate::config::Config;
use crate::db::{job, output};
use crate::plugins::Plugins;
use crate::queue;

/// What submitting needs from the server.
pub struct Submitter<'a> {
    pub db: &'a DatabaseConnection,
    pub plugins: &'a Plugins,
    pub config: &'a Config,
    /// Wakes this process's worker, if it runs one.
    pub wake: &'a tokio::sync::Notify,
}

/// Why a job was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The job can never run as sent: a 400 with the code that says why.
    #[error(transparent)]
    Invalid(#[from] JobError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("sealing the job's secrets failed: {0}")]
    Seal(#[from] stored::StoredSpecError),
}

impl Submitter<'_> {
    /// Validate `spec` for the tenant `owner`, store it and queue it; returns the stored
    /// rows. `api` only labels the log line.
    pub async fn submit(&self, owner: &str, mut spec: JobSpec, api: &'static str) -> Result<(job::Model, Vec<output::Model>), SubmitError> {
        super::input_upload::resolve(self.config, owner, &mut spec).await?;
        // The plugin versions validation used are the ones the job runs with.
        let checked = crate::plugins::one_instance_each(check(self.plugins, self.config, &spec));
        let (output_types, pins) = crate::plugins::record(checked).await;
        let output_types = output_types?;

        let created_at = crate::db::now_ms();
        let id = super::id::new_job_id(created_at);
        let job = job::Model {
            id: id.clone(),
            owner: owner.to_string(),
            status: JobStatus::Starting,
            input_status: InputStatus::Starting,
            progress: 0,
            // Storage credentials, webhook and presigned URLs: sealed at rest.
            spec: stored::seal_planned(&self.config.sealer, &spec, &pins)?,
            input_metadata: None,
            error: None,
            created_at,
            completed_at: None,
            lease_owner: None,
            lease_expires_at: None,
            attempts: 0,
        };
        let outputs: Vec<output::Model> = spec
            .outputs
            .iter()
            .zip(output_types)
            .enumerate()
            .map(|(position, (spec, output_type))| output::Model::waiting(&id, position as i32, &spec.key, &spec.format, output_type))
            .collect();
        super::input_upload::hold(self.config, owner, &spec, &id).await?;
        let stored = queue::enqueue(self.db, job, outputs, self.wake).await?;
        tracing::info!(job_id = %id, api, outputs = spec.outputs.len(), "job accepted");
        Ok(stored)
    }
}

/// Everything a job is checked for before it is accepted (limits, plugins, outbound
/// policy): a real submit and a dry run give the same 400s. Returns each output's type.
pub async fn check(plugins: &Plugins, config: &Config, spec: &JobSpec) -> Result<Vec<crate::db::status::OutputType>, JobError> {
    let limits = &config.limits;
    if spec.outputs.len() > limits.max_outputs {
        return Err(JobError::invalid(ErrorCode::OutputsNotValid,
            format!(
                "The job has {} outputs; this server takes at most {} per job (limits.max_outputs).",
                spec.outputs.len(),
                limits.max_outputs
            ),
        ));
    }
    let types = validate(spec, plugins, limits, &config.outbound).await?;
    super::budget::check_budget(plugins, limits, spec).await?;
    Ok(types)
}
