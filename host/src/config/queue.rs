//! How the queue hands out work (`[queue]`) and how a worker process behaves when it is
//! told to stop or a job stops moving (`[worker]`). Each key has the environment variable
//! `COPRA_QUEUE_<KEY>` or `COPRA_WORKER_<KEY>` (in capitals) that overrides it.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The queue's settings, the same on every node sharing a database.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// How long a claim lasts without a heartbeat (`lease_secs`, default 30, at least 3):
    /// a job whose worker died is taken by another within this time. Heartbeats renew it
    /// every third of it.
    pub lease: Duration,
    /// Jobs of one API key (tenant) running at once across all workers
    /// (`max_running_per_key`, default 0: no cap). Whatever the cap, claims rotate between
    /// keys, so one key's backlog never starves another's job.
    pub max_running_per_key: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { lease: Duration::from_secs(30), max_running_per_key: 0 }
    }
}

impl QueueConfig {
    /// How often a worker renews its leases.
    pub fn heartbeat(&self) -> Duration {
        self.lease / 3
    }
}

/// What a worker process does at shutdown and with stalled jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// On SIGTERM or Ctrl-C, how long running jobs may take to finish before they are
    /// stopped and their leases released for another worker (`shutdown_grace_secs`,
    /// default 30).
    pub shutdown_grace: Duration,
    /// A job whose encode has not moved for this long is reported (`job.stalled` event
    /// and a log line), stopped, and its lease released for another attempt
    /// (`stall_after_secs`, default 300; 0 turns the watch off).
    pub stall_after: Option<Duration>,
    /// Ultrafast (chunked parallel) encoding for every job whose input lasts at least
    /// this long, as if it asked for `settings.ultrafast` (`ultrafast_min_duration_secs`,
    /// default 0: only jobs that ask).
    pub ultrafast_min_duration: Option<Duration>,
    /// About how long an ultrafast chunk is (`ultrafast_chunk_secs`, default 15).
    pub ultrafast_chunk: Duration,
    /// Where an ultrafast job's input and pieces are staged for every worker
    /// (`ultrafast_dir`, default `<data_dir>/ultrafast`): a directory all workers share.
    pub ultrafast_dir: Option<std::path::PathBuf>,
    /// An object-store work area for ultrafast jobs (`ultrafast_store`, an
    /// `s3://bucket/prefix` URL, with its `ultrafast_store_*` keys): when set, chunks and
    /// pieces go through it instead of `ultrafast_dir`, so workers need share no file system.
    pub ultrafast_store: Option<super::ultrafast_store::UltrafastStore>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            shutdown_grace: Duration::from_secs(30),
            stall_after: Some(Duration::from_secs(300)),
            ultrafast_min_duration: None,
            ultrafast_chunk: Duration::from_secs(15),
            ultrafast_dir: None,
            ultrafast_store: None,
        }
    }
}

/// The `[queue]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileQueue {
    lease_secs: Option<u64>,
    max_running_per_key: Option<u32>,
}

/// The `[worker]` table of the config file (no `Debug`: it holds a secret).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWorker {
    shutdown_grace_secs: Option<u64>,
    stall_after_secs: Option<u64>,
    ultrafast_min_duration_secs: Option<u64>,
    ultrafast_chunk_secs: Option<u64>,
    ultrafast_dir: Option<std::path::PathBuf>,
    ultrafast_store: Option<String>,
    ultrafast_store_endpoint: Option<String>,
    ultrafast_store_region: Option<String>,
    ultrafast_store_access_key_id: Option<String>,
    ultrafast_store_secret_access_key: Option<String>,
    ultrafast_store_path_style: Option<bool>,
}

fn number<T: std::str::FromStr>(name: &'static str, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<T>, ConfigError> {
    env(name)
        .map(|text| text.trim().parse::<T>().map_err(|_| ConfigError::Invalid { name, message: format!("'{text}' is not a whole number") }))
        .transpose()
}

pub(super) fn load(
    queue: FileQueue,
    worker: FileWorker,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(QueueConfig, WorkerConfig), ConfigError> {
    let (dq, dw) = (QueueConfig::default(), WorkerConfig::default());
    let lease = number("COPRA_QUEUE_LEASE_SECS", env)?.or(queue.lease_secs).unwrap_or(dq.lease.as_secs());
    if lease < 3 {
        return Err(ConfigError::Invalid { name: "COPRA_QUEUE_LEASE_SECS", message: "a lease must last at least 3 seconds".into() });
    }
    let max_running_per_key =
        number("COPRA_QUEUE_MAX_RUNNING_PER_KEY", env)?.or(queue.max_running_per_key).unwrap_or(dq.max_running_per_key);
    let grace =
        number("COPRA_WORKER_SHUTDOWN_GRACE_SECS", env)?.or(worker.shutdown_grace_secs).unwrap_or(dw.shutdown_grace.as_secs());
    let stall = number("COPRA_WORKER_STALL_AFTER_SECS", env)?.or(worker.stall_after_secs).unwrap_or(300);
    let ultrafast_min = number("COPRA_WORKER_ULTRAFAST_MIN_DURATION_SECS", env)?.or(worker.ultrafast_min_duration_secs).unwrap_or(0);
    let chunk = number("COPRA_WORKER_ULTRAFAST_CHUNK_SECS", env)?.or(worker.ultrafast_chunk_secs).unwrap_or(15);
    if chunk < 1 {
        return Err(ConfigError::Invalid { name: "COPRA_WORKER_ULTRAFAST_CHUNK_SECS", message: "a chunk must last at least a second".into() });
    }
    let ultrafast_dir = env("COPRA_WORKER_ULTRAFAST_DIR").map(std::path::PathBuf::from).or(worker.ultrafast_dir);
    let store = super::ultrafast_store::FileStore {
        ultrafast_store: worker.ultrafast_store,
        ultrafast_store_endpoint: worker.ultrafast_store_endpoint,
        ultrafast_store_region: worker.ultrafast_store_region,
        ultrafast_store_access_key_id: worker.ultrafast_store_access_key_id,
        ultrafast_store_secret_access_key: worker.ultrafast_store_secret_access_key,
        ultrafast_store_path_style: worker.ultrafast_store_path_style,
    };
    let ultrafast_store = super::ultrafast_store::load(store, env)?;
    Ok((
        QueueConfig { lease: Duration::from_secs(lease), max_running_per_key },
        WorkerConfig {
            shutdown_grace: Duration::from_secs(grace),
            stall_after: (stall > 0).then(|| Duration::from_secs(stall)),
            ultrafast_min_duration: (ultrafast_min > 0).then(|| Duration::from_secs(ultrafast_min)),
            ultrafast_chunk: Duration::from_secs(chunk),
            ultrafast_dir,
            ultrafast_store,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_beats_file_beats_default() {
        let env = |name: &str| (name == "COPRA_QUEUE_LEASE_SECS").then(|| "6".to_string());
        let file = FileWorker { stall_after_secs: Some(0), ..FileWorker::default() };
        let (queue, worker) = load(FileQueue { lease_secs: Some(60), max_running_per_key: Some(2) }, file, &env).unwrap();
        assert_eq!(queue, QueueConfig { lease: Duration::from_secs(6), max_running_per_key: 2 });
        assert_eq!(queue.heartbeat(), Duration::from_secs(2));
        assert_eq!(worker, WorkerConfig { stall_after: None, ..WorkerConfig::default() });
        let short = |name: &str| (name == "COPRA_QUEUE_LEASE_SECS").then(|| "1".to_string());
        assert!(load(FileQueue::default(), FileWorker::default(), &short).is_err());
    }

    #[test]
    fn the_ultrafast_store_from_the_worker_table() {
        let file: FileWorker = toml::from_str(
            "ultrafast_store = \"s3://work-area/uf\"\nultrafast_store_endpoint = \"http://minio:9000\"\n\
             ultrafast_store_access_key_id = \"AKID\"\nultrafast_store_secret_access_key = \"s3cr3t\"\nultrafast_store_path_style = false\n",
        )
        .unwrap();
        let (_, worker) = load(FileQueue::default(), file, &|_: &str| None).unwrap();
        let store = worker.ultrafast_store.expect("configured");
        assert_eq!((store.bucket.as_str(), store.prefix.as_str(), store.endpoint.as_deref()), ("work-area", "uf", Some("http://minio:9000")));
        assert!(!store.path_style);
        assert_eq!(store.secret_access_key.as_ref().map(|s| s.expose().as_str()), Some("s3cr3t"));
        assert_eq!(WorkerConfig::default().ultrafast_store, None);
    }
}
