//! A job's spec as it rests in the database: sealed, because it carries storage
//! credentials, webhook URLs and presigned URLs. Every reader and writer of
//! `jobs.spec` goes through here. Beside the spec rest the plugin versions the job was
//! planned with (`plugins`, see `crate::plugins::Pin`); specs stored before have none.

use serde::{Deserialize, Serialize};

use crate::plugins::Pin;
use crate::secret::{SealError, Sealer};

use super::JobSpec;

#[derive(Debug, thiserror::Error)]
pub enum StoredSpecError {
    #[error("the job's stored spec cannot be opened: {0}")]
    Seal(#[from] SealError),
    #[error("the job's stored spec is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Sealing<'a> {
    #[serde(flatten)]
    spec: &'a JobSpec,
    #[serde(skip_serializing_if = "<[Pin]>::is_empty")]
    plugins: &'a [Pin],
}

#[derive(Deserialize)]
struct Opened {
    #[serde(flatten)]
    spec: JobSpec,
    #[serde(default)]
    plugins: Vec<Pin>,
}

/// The text to store for a spec.
pub fn seal_spec(sealer: &Sealer, spec: &JobSpec) -> Result<String, StoredSpecError> {
    seal_planned(sealer, spec, &[])
}

/// The text to store for a spec planned with the plugin versions `plugins`.
pub fn seal_planned(sealer: &Sealer, spec: &JobSpec, plugins: &[Pin]) -> Result<String, StoredSpecError> {
    Ok(sealer.seal(&serde_json::to_string(&Sealing { spec, plugins })?))
}

/// The spec of a stored job.
pub fn open_spec(sealer: &Sealer, stored: &str) -> Result<JobSpec, StoredSpecError> {
    Ok(open_planned(sealer, stored)?.0)
}

/// The spec of a stored job and the plugin versions it was planned with.
pub fn open_planned(sealer: &Sealer, stored: &str) -> Result<(JobSpec, Vec<Pin>), StoredSpecError> {
    let opened: Opened = serde_json::from_str(&sealer.open(stored)?)?;
    Ok((opened.spec, opened.plugins))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::PluginKind;

    fn spec() -> JobSpec {
        let body = serde_json::json!({
            "input": {"url": "https://example.com/in.mp4"},
            "storage": {"service": "local"},
            "outputs": {"mp4:240p": {"path": "/a.mp4", "if": "{{ input.width }} > 1"}},
        });
        JobSpec::parse(&body).unwrap()
    }

    #[test]
    fn the_plugin_versions_rest_beside_the_spec() {
        let sealer = Sealer::new(&[7; 32]);
        let pins = vec![Pin { kind: PluginKind::Condition, lookup: String::new(), plugin: "cond".into(), sha256: "ab".repeat(32) }];
        let stored = seal_planned(&sealer, &spec(), &pins).unwrap();
        let (opened, opened_pins) = open_planned(&sealer, &stored).unwrap();
        assert_eq!(opened_pins, pins);
        assert_eq!(opened.outputs[0].condition.as_deref(), Some("{{ input.width }} > 1"));
        assert_eq!(open_spec(&sealer, &stored).unwrap().outputs.len(), 1);
    }

    #[test]
    fn a_spec_stored_before_pins_opens_with_none() {
        let sealer = Sealer::new(&[7; 32]);
        let old = sealer.seal(&serde_json::to_string(&spec()).unwrap());
        let (opened, pins) = open_planned(&sealer, &old).unwrap();
        assert!(pins.is_empty());
        assert_eq!(opened.outputs[0].key, spec().outputs[0].key);
    }
}
