//! Limits on everything a job or a peer controls: sizes, counts and times. Each has a
//! default and a key in the `[limits]` table of the config file; the environment
//! variable `COPRA_LIMITS_<KEY>` (in capitals) overrides it.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// What one job, one input or one peer may cost the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body the API reads (`max_body_bytes`, default 1 MiB); more is a 413.
    pub max_body_bytes: usize,
    /// Outputs in one job (`max_outputs`, default 50); each is an encoder and a thread.
    pub max_outputs: usize,
    /// Renditions in one adaptive-streaming package (`max_variants`, default 12).
    pub max_variants: usize,
    /// Pictures one output may take: thumbnails, sprite tiles (`max_pictures`, default 10,000).
    pub max_pictures: usize,
    /// Pictures one job may take, all its outputs together (`max_job_pictures`, default
    /// 20,000): fifty outputs of `max_pictures` each would otherwise write half a million.
    pub max_job_pictures: usize,
    /// Bytes of one input (`max_input_bytes`, default 20 GiB); a download is cut off past it.
    pub max_input_bytes: u64,
    /// Width × height of an input's or an output's picture (`max_pixels`, default
    /// 8192×4320, DCI 8K), checked when the input is probed, and on every decoded
    /// picture (decoders are opened with it).
    pub max_pixels: u64,
    /// Seconds of one input (`max_duration_secs`, default 6 hours), checked at probe on
    /// what the file declares, and on the decoded frames' timestamps.
    pub max_duration: Duration,
    /// Longest silence of a peer during a download or an upload (`transfer_idle_secs`,
    /// default 30 s): a stalled server fails the transfer instead of holding a worker.
    pub transfer_idle: Duration,
    /// Longest time one download or upload may take in all (`transfer_total_secs`,
    /// default 2 hours).
    pub transfer_total: Duration,
    /// Longest time one webhook delivery may take, connection and answer included
    /// (`webhook_timeout_secs`, default 10 s). Deliveries to one receiver never wait
    /// for another's.
    pub webhook_timeout: Duration,
    /// Widest number placeholder in a numbered path (`%.Nd`, `max_path_digits`, default 10).
    pub max_path_digits: usize,
    /// Memory one job's media engine may use, in bytes (`max_job_memory_mib`, default
    /// 2048 MiB): a plan whose estimate passes it is refused, and the engine's process is
    /// stopped if it grows past it anyway.
    pub max_job_memory: u64,
    /// Bytes one job may write: its outputs, pictures and segments together
    /// (`max_output_bytes`, default 64 GiB). Past it the job fails naming the key.
    pub max_output_bytes: u64,
    /// CPU time one media engine process may use (`max_job_cpu_secs`, default 24 hours,
    /// summed over its threads): a runaway encode is stopped instead of holding a core.
    pub max_job_cpu: Duration,
    /// Bytes one tenant's `local` files may take in all (`local_quota_bytes`; default:
    /// unset, no quota). A write that would pass it fails its output naming the key.
    pub local_quota_bytes: Option<u64>,
    /// How long `local` files are kept (`local_retention_days`; default: unset, for
    /// ever). A sweeper deletes every tenant's files older than this.
    pub local_retention: Option<Duration>,
    /// How often the retention sweeper looks (`local_sweep_interval_secs`, default 1 hour).
    pub local_sweep_interval: Duration,
    /// Dry runs the API node runs at once, over all tenants (`dry_run_concurrency`,
    /// default 4); one more is a 429 with `Retry-After`.
    pub dry_run_concurrency: usize,
    /// Dry runs one tenant runs at once (`dry_run_per_tenant`, default 2).
    pub dry_run_per_tenant: usize,
    /// Bytes of an input a dry run reads to probe it (`dry_run_probe_bytes`, default
    /// 32 MiB): its first and its last half, with HTTP ranges or ranged object reads
    /// (so an MP4 whose index is at the end still probes); the first bytes only when
    /// the server ignores ranges.
    pub dry_run_probe_bytes: u64,
    /// Bytes of one direct upload (`max_upload_bytes`, default: `max_input_bytes`); a
    /// larger `Upload-Length` is a 413.
    pub max_upload_bytes: u64,
    /// How long an upload lives after its last change (`upload_expiry_secs`, default
    /// 24 hours); a job that takes it as input keeps it until the job ends.
    pub upload_expiry: Duration,
    /// Bytes one API key's uploads may take in all, by their declared lengths
    /// (`upload_quota_bytes`; default: unset, no quota). Past it a new upload is a 413.
    pub upload_quota_bytes: Option<u64>,
    /// Uploads one API key may hold at once (`max_uploads_per_key`, default 1,000);
    /// one more is a 429 until some finish their jobs and expire, or are deleted.
    pub max_uploads_per_key: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_outputs: 50,
            max_variants: 12,
            max_pictures: 10_000,
            max_job_pictures: 20_000,
            max_input_bytes: 20 << 30,
            max_pixels: 8192 * 4320,
            max_duration: Duration::from_secs(6 * 3600),
            transfer_idle: Duration::from_secs(30),
            transfer_total: Duration::from_secs(2 * 3600),
            webhook_timeout: Duration::from_secs(10),
            max_path_digits: 10,
            max_job_memory: 2048 << 20,
            max_output_bytes: 64 << 30,
            max_job_cpu: Duration::from_secs(24 * 3600),
            local_quota_bytes: None,
            local_retention: None,
            local_sweep_interval: Duration::from_secs(3600),
            dry_run_concurrency: 4,
            dry_run_per_tenant: 2,
            dry_run_probe_bytes: 32 << 20,
            max_upload_bytes: 20 << 30,
            upload_expiry: Duration::from_secs(24 * 3600),
            upload_quota_bytes: None,
            max_uploads_per_key: 1000,
        }
    }
}

/// The `[limits]` table of the config file; every key may be omitted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLimits {
    max_body_bytes: Option<u64>,
    max_outputs: Option<u64>,
    max_variants: Option<u64>,
    max_pictures: Option<u64>,
    max_job_pictures: Option<u64>,
    max_input_bytes: Option<u64>,
    max_pixels: Option<u64>,
    max_duration_secs: Option<u64>,
    transfer_idle_secs: Option<u64>,
    transfer_total_secs: Option<u64>,
    webhook_timeout_secs: Option<u64>,
    max_path_digits: Option<u64>,
    max_job_memory_mib: Option<u64>,
    max_output_bytes: Option<u64>,
    max_job_cpu_secs: Option<u64>,
    local_quota_bytes: Option<u64>,
    local_retention_days: Option<u64>,
    local_sweep_interval_secs: Option<u64>,
    dry_run_concurrency: Option<u64>,
    dry_run_per_tenant: Option<u64>,
    dry_run_probe_bytes: Option<u64>,
    max_upload_bytes: Option<u64>,
    upload_expiry_secs: Option<u64>,
    upload_quota_bytes: Option<u64>,
    max_uploads_per_key: Option<u64>,
}

impl Limits {
    /// Defaults, overridden by the file's `[limits]`, overridden by the environment.
    pub(super) fn load(file: FileLimits, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Limits::default();
        // One value: environment, then file, then default; zero is refused (a limit of
        // nothing would make the server refuse everything).
        let get = |key: &'static str, file: Option<u64>, default: u64| -> Result<u64, ConfigError> {
            let name = LIMIT_ENV_NAMES.iter().find(|(k, _)| *k == key).map(|(_, n)| *n).unwrap_or("COPRA_LIMITS");
            let value = match env(name) {
                Some(text) => text
                    .trim()
                    .replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| ConfigError::Invalid { name, message: format!("'{text}' is not a whole number") })?,
                None => file.unwrap_or(default),
            };
            if value == 0 {
                return Err(ConfigError::Invalid { name, message: "a limit must be above zero".into() });
            }
            Ok(value)
        };
        // An optional limit: unset means none; zero is refused like any limit's.
        let optional = |key: &'static str, file: Option<u64>| -> Result<Option<u64>, ConfigError> {
            let name = LIMIT_ENV_NAMES.iter().find(|(k, _)| *k == key).map(|(_, n)| *n).unwrap_or("COPRA_LIMITS");
            if env(name).is_none() && file.is_none() {
                return Ok(None);
            }
            get(key, file, 0).map(Some)
        };
        let secs = Duration::from_secs;
        let max_input_bytes = get("max_input_bytes", file.max_input_bytes, d.max_input_bytes)?;
        Ok(Limits {
            max_body_bytes: get("max_body_bytes", file.max_body_bytes, d.max_body_bytes as u64)? as usize,
            max_outputs: get("max_outputs", file.max_outputs, d.max_outputs as u64)? as usize,
            max_variants: get("max_variants", file.max_variants, d.max_variants as u64)? as usize,
            max_pictures: get("max_pictures", file.max_pictures, d.max_pictures as u64)? as usize,
            max_job_pictures: get("max_job_pictures", file.max_job_pictures, d.max_job_pictures as u64)? as usize,
            max_input_bytes,
            max_pixels: get("max_pixels", file.max_pixels, d.max_pixels)?,
            max_duration: secs(get("max_duration_secs", file.max_duration_secs, d.max_duration.as_secs())?),
            transfer_idle: secs(get("transfer_idle_secs", file.transfer_idle_secs, d.transfer_idle.as_secs())?),
            transfer_total: secs(get("transfer_total_secs", file.transfer_total_secs, d.transfer_total.as_secs())?),
            webhook_timeout: secs(get("webhook_timeout_secs", file.webhook_timeout_secs, d.webhook_timeout.as_secs())?),
            max_path_digits: get("max_path_digits", file.max_path_digits, d.max_path_digits as u64)? as usize,
            max_job_memory: get("max_job_memory_mib", file.max_job_memory_mib, d.max_job_memory >> 20)?.saturating_mul(1 << 20),
            max_output_bytes: get("max_output_bytes", file.max_output_bytes, d.max_output_bytes)?,
            max_job_cpu: secs(get("max_job_cpu_secs", file.max_job_cpu_secs, d.max_job_cpu.as_secs())?),
            local_quota_bytes: optional("local_quota_bytes", file.local_quota_bytes)?,
            local_retention: optional("local_retention_days", file.local_retention_days)?.map(|days| secs(days.saturating_mul(24 * 3600))),
            local_sweep_interval: secs(get("local_sweep_interval_secs", file.local_sweep_interval_secs, d.local_sweep_interval.as_secs())?),
            dry_run_concurrency: get("dry_run_concurrency", file.dry_run_concurrency, d.dry_run_concurrency as u64)? as usize,
            dry_run_per_tenant: get("dry_run_per_tenant", file.dry_run_per_tenant, d.dry_run_per_tenant as u64)? as usize,
            dry_run_probe_bytes: get("dry_run_probe_bytes", file.dry_run_probe_bytes, d.dry_run_probe_bytes)?,
            max_upload_bytes: get("max_upload_bytes", file.max_upload_bytes, max_input_bytes)?,
            upload_expiry: secs(get("upload_expiry_secs", file.upload_expiry_secs, d.upload_expiry.as_secs())?),
            upload_quota_bytes: optional("upload_quota_bytes", file.upload_quota_bytes)?,
            max_uploads_per_key: get("max_uploads_per_key", file.max_uploads_per_key, d.max_uploads_per_key as u64)? as usize,
        })
    }
}

/// Each `[limits]` key and its environment variable.
pub const LIMIT_ENV_NAMES: &[(&str, &str)] = &[
    ("max_body_bytes", "COPRA_LIMITS_MAX_BODY_BYTES"),
    ("max_outputs", "COPRA_LIMITS_MAX_OUTPUTS"),
    ("max_variants", "COPRA_LIMITS_MAX_VARIANTS"),
    ("max_pictures", "COPRA_LIMITS_MAX_PICTURES"),
    ("max_job_pictures", "COPRA_LIMITS_MAX_JOB_PICTURES"),
    ("max_input_bytes", "COPRA_LIMITS_MAX_INPUT_BYTES"),
    ("max_pixels", "COPRA_LIMITS_MAX_PIXELS"),
    ("max_duration_secs", "COPRA_LIMITS_MAX_DURATION_SECS"),
    ("transfer_idle_secs", "COPRA_LIMITS_TRANSFER_IDLE_SECS"),
    ("transfer_total_secs", "COPRA_LIMITS_TRANSFER_TOTAL_SECS"),
    ("webhook_timeout_secs", "COPRA_LIMITS_WEBHOOK_TIMEOUT_SECS"),
    ("max_path_digits", "COPRA_LIMITS_MAX_PATH_DIGITS"),
    ("max_job_memory_mib", "COPRA_LIMITS_MAX_JOB_MEMORY_MIB"),
    ("max_output_bytes", "COPRA_LIMITS_MAX_OUTPUT_BYTES"),
    ("max_job_cpu_secs", "COPRA_LIMITS_MAX_JOB_CPU_SECS"),
    ("local_quota_bytes", "COPRA_LIMITS_LOCAL_QUOTA_BYTES"),
    ("local_retention_days", "COPRA_LIMITS_LOCAL_RETENTION_DAYS"),
    ("local_sweep_interval_secs", "COPRA_LIMITS_LOCAL_SWEEP_INTERVAL_SECS"),
    ("dry_run_concurrency", "COPRA_LIMITS_DRY_RUN_CONCURRENCY"),
    ("dry_run_per_tenant", "COPRA_LIMITS_DRY_RUN_PER_TENANT"),
    ("dry_run_probe_bytes", "COPRA_LIMITS_DRY_RUN_PROBE_BYTES"),
    ("max_upload_bytes", "COPRA_LIMITS_MAX_UPLOAD_BYTES"),
    ("upload_expiry_secs", "COPRA_LIMITS_UPLOAD_EXPIRY_SECS"),
    ("upload_quota_bytes", "COPRA_LIMITS_UPLOAD_QUOTA_BYTES"),
    ("max_uploads_per_key", "COPRA_LIMITS_MAX_UPLOADS_PER_KEY"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_beats_file_beats_default() {
        let file = FileLimits { max_outputs: Some(7), max_pixels: Some(100), ..Default::default() };
        let env = |name: &str| (name == "COPRA_LIMITS_MAX_PIXELS").then(|| "1_000".to_string());
        let limits = Limits::load(file, &env).unwrap();
        assert_eq!(limits.max_outputs, 7);
        assert_eq!(limits.max_pixels, 1000);
        assert_eq!(limits.webhook_timeout, Duration::from_secs(10));
    }

    #[test]
    fn zero_and_garbage_are_refused() {
        let env = |name: &str| (name == "COPRA_LIMITS_MAX_OUTPUTS").then(|| "0".to_string());
        assert!(Limits::load(FileLimits::default(), &env).is_err());
        let env = |name: &str| (name == "COPRA_LIMITS_WEBHOOK_TIMEOUT_SECS").then(|| "ten".to_string());
        assert!(Limits::load(FileLimits::default(), &env).is_err());
    }

    #[test]
    fn local_quota_and_retention_are_unset_unless_given() {
        let limits = Limits::load(FileLimits::default(), &|_: &str| None).unwrap();
        assert_eq!((limits.local_quota_bytes, limits.local_retention), (None, None));
        assert_eq!(limits.local_sweep_interval, Duration::from_secs(3600));
        let file = FileLimits { local_retention_days: Some(2), ..Default::default() };
        let env = |name: &str| (name == "COPRA_LIMITS_LOCAL_QUOTA_BYTES").then(|| "1_000_000".to_string());
        let limits = Limits::load(file, &env).unwrap();
        assert_eq!(limits.local_quota_bytes, Some(1_000_000));
        assert_eq!(limits.local_retention, Some(Duration::from_secs(2 * 24 * 3600)));
        let env = |name: &str| (name == "COPRA_LIMITS_LOCAL_QUOTA_BYTES").then(|| "0".to_string());
        let err = Limits::load(FileLimits::default(), &env).unwrap_err().to_string();
        assert!(err.contains("COPRA_LIMITS_LOCAL_QUOTA_BYTES"), "{err}");
    }
}
