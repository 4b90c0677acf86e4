//! Server configuration: environment variables, optionally on top of a TOML file.
//!
//! Precedence: environment > config file > defaults. Every key of the file has the
//! environment variable `COPRA_<KEY>` in capitals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::secret::{Sealer, Secret};

mod limits;
mod queue;
mod ultrafast_store;
mod webhooks;
pub use limits::{LIMIT_ENV_NAMES, Limits};
pub use queue::{QueueConfig, WorkerConfig};
pub use ultrafast_store::UltrafastStore;
pub use webhooks::{DEFAULT_REDELIVERIES_PER_MINUTE, DEFAULT_RETRY_SCHEDULE_SECS, DEFAULT_SECRET_OVERLAP_SECS, WebhookConfig};

/// Everything the server runs with. Its `Debug` shows no secret: keys, the database
/// URL and the sealing key are [`Secret`]s.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// May carry a password (`postgres://user:pw@host/db`).
    pub database_url: Secret<String>,
    pub plugin_dir: PathBuf,
    /// API keys accepted for the job API; each is a tenant.
    pub api_keys: Vec<Secret<String>>,
    /// The base URL clients reach this server at; used for `local` storage URLs.
    pub public_url: String,
    /// Whether `public_url` was given (`COPRA_PUBLIC_URL`, `public_url`) rather than made
    /// from `listen`: a node without one takes the cluster's (`crate::cluster`).
    pub public_url_given: bool,
    /// Jobs one worker runs at once.
    pub worker_concurrency: usize,
    /// This worker's identity in leases. Stable across restarts of the same node.
    pub worker_id: String,
    /// The key of the admin API (`/admin/...`), separate from job API keys.
    pub admin_key: Secret<String>,
    /// What each plugin (by name) is granted beyond the defaults.
    pub plugin_grants: HashMap<String, PluginGrant>,
    /// What one job, input or peer may cost (`[limits]`).
    pub limits: Limits,
    /// Where the server may connect: public addresses, plus `outbound_allow`
    /// (`COPRA_OUTBOUND_ALLOW`: comma-separated CIDRs and host names).
    pub outbound: crate::net::Outbound,
    /// Seals secrets at rest (job specs), with `secret_key` (`COPRA_SECRET_KEY`: 64 hex
    /// digits or base64 of 32 bytes; the same on every node sharing a database) or a key
    /// generated into `<data_dir>/secret-key` on first start.
    pub sealer: Sealer,
    /// How webhooks are signed (the root `webhook_secret`, `webhook_secret_overlap_secs`,
    /// `[webhooks.secrets]`), retried (`[webhooks] retry_schedule_secs`) and redelivered
    /// (`[webhooks] redeliveries_per_minute`).
    pub webhooks: WebhookConfig,
    /// Leases and fairness between API keys (`[queue]`).
    pub queue: QueueConfig,
    /// Shutdown grace and stall detection of worker processes (`[worker]`).
    pub worker: WorkerConfig,
    /// How plugins added through the admin API reach every node (`plugin_sync_ms`,
    /// `plugin_version_wait_secs`).
    pub plugin_sync: PluginSync,
    /// Origins besides the server's own whose pages may send requests that change
    /// something (`allowed_origins`, `COPRA_ALLOWED_ORIGINS`: comma-separated, such as
    /// `https://dashboard.example.com`; default none): for a dashboard served elsewhere.
    pub allowed_origins: Vec<String>,
}

/// Plugins in a cluster: how often a node looks at the database's plugin set, and how
/// long a worker waits for the plugin versions a job was planned with.
#[derive(Debug, Clone)]
pub struct PluginSync {
    /// How often each node compares its plugins with the database's and loads or
    /// unloads the difference (`plugin_sync_ms`, `COPRA_PLUGIN_SYNC_MS`; default 2000).
    pub interval: std::time::Duration,
    /// How long a worker waits for a plugin version a job was planned with to be loaded
    /// before failing the job (`plugin_version_wait_secs`,
    /// `COPRA_PLUGIN_VERSION_WAIT_SECS`; default 60).
    pub version_wait: std::time::Duration,
}

/// What the operator grants one plugin, from `[plugins.NAME]` in the config file
/// (checked when the plugin host starts). Defaults: no network, no storage scheme,
/// 64 MiB, 1 s of CPU and 10 s of wall clock per call, no environment, priority 0; the
/// first-party `storage-s3` gets `schemes = ["s3"]`, `storage-cloud`
/// `schemes = ["azblob", "gcs", "sftp", "swift"]`, and `notifier-http`
/// `allowed_hosts = ["*"]`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginGrant {
    /// Hosts the plugin may reach with outgoing HTTP: `host:port`, `host:*`,
    /// `*.domain:port` or `*`. A notifier reaches, per delivery, only those of them that
    /// its configuration names.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Cap on the plugin's linear memory, in MiB (default 64).
    pub memory_mib: Option<u64>,
    /// CPU time of one call in milliseconds (default 1000), counted while it runs.
    pub time_ms: Option<u64>,
    /// Wall-clock time of one call in milliseconds, waiting on the network included
    /// (default 10 000, or `time_ms` if larger; never below `time_ms`).
    pub deadline_ms: Option<u64>,
    /// opendal schemes a storage plugin's targets may use (e.g. `["s3"]`). Default:
    /// `["s3"]` for `storage-s3`, `["azblob", "gcs", "sftp", "swift"]` for `storage-cloud`, none
    /// for other plugins. `fs` is never granted.
    pub schemes: Option<Vec<String>>,
    /// Environment variables (secrets, settings) the plugin can read.
    #[serde(default)]
    pub env: HashMap<String, String>,
    /// When two plugins provide the same name, the higher priority wins; on a tie the
    /// plugin loaded first keeps it and the other is refused.
    #[serde(default)]
    pub priority: i32,
}

/// The environment's values are secrets (tokens, signing keys): `Debug` names them only.
impl std::fmt::Debug for PluginGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut env: Vec<&str> = self.env.keys().map(String::as_str).collect();
        env.sort_unstable();
        f.debug_struct("PluginGrant")
            .field("allowed_hosts", &self.allowed_hosts)
            .field("memory_mib", &self.memory_mib)
            .field("time_ms", &self.time_ms)
            .field("deadline_ms", &self.deadline_ms)
            .field("schemes", &self.schemes)
            .field("env", &env)
            .field("priority", &self.priority)
            .finish()
    }
}

/// The optional file; every field may be omitted.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    plugin_dir: Option<PathBuf>,
    api_keys: Option<Vec<String>>,
    public_url: Option<String>,
    worker_concurrency: Option<usize>,
    worker_id: Option<String>,
    admin_key: Option<String>,
    secret_key: Option<String>,
    /// The root every key's webhook signing secret is derived from, `whsec_<base64>`.
    webhook_secret: Option<String>,
    /// How long a rotated-out webhook secret still signs beside the new one, in seconds.
    webhook_secret_overlap_secs: Option<u64>,
    #[serde(default)]
    webhooks: webhooks::FileWebhooks,
    #[serde(default)]
    plugins: HashMap<String, PluginGrant>,
    /// How often the plugin set is synced from the database, in ms.
    plugin_sync_ms: Option<u64>,
    /// How long a worker waits for a job's plugin versions, in seconds.
    plugin_version_wait_secs: Option<u64>,
    #[serde(default)]
    limits: limits::FileLimits,
    #[serde(default)]
    queue: queue::FileQueue,
    #[serde(default)]
    worker: queue::FileWorker,
    /// CIDRs and host names the server may connect to besides public addresses.
    #[serde(default)]
    outbound_allow: Vec<String>,
    /// Other origins whose pages may send changing requests.
    #[serde(default)]
    allowed_origins: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("{name} is not valid: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
}

impl Config {
    /// Load from `file` (if given) and the environment, creating the data directory and,
    /// when no API key is configured, a generated key stored in it.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?
            }
            None => FileConfig::default(),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());

        let listen_text = env("COPRA_LISTEN").or(file_config.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|e: std::net::AddrParseError| ConfigError::Invalid { name: "COPRA_LISTEN", message: e.to_string() })?;
        let data_dir = env("COPRA_DATA_DIR").map(PathBuf::from).or(file_config.data_dir).unwrap_or_else(|| "data".into());
        create_private_dir(&data_dir).map_err(|source| ConfigError::DataDir { path: data_dir.clone(), source })?;
        let data_dir = data_dir.canonicalize().map_err(|source| ConfigError::DataDir { path: data_dir.clone(), source })?;

        let database_url = env("COPRA_DATABASE_URL")
            .or(file_config.database_url)
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("copra.db").display()));
        let plugin_dir = env("COPRA_PLUGIN_DIR")
            .map(PathBuf::from)
            .or(file_config.plugin_dir)
            .unwrap_or_else(|| default_plugin_dir(&data_dir));
        let given_public_url = env("COPRA_PUBLIC_URL").or(file_config.public_url).filter(|url| !url.trim().is_empty());
        let public_url_given = given_public_url.is_some();
        let public_url = given_public_url.unwrap_or_else(|| format!("http://{listen}"));
        let worker_concurrency = match env("COPRA_WORKER_CONCURRENCY") {
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid { name: "COPRA_WORKER_CONCURRENCY", message: format!("'{v}' is not a number") })?,
            None => file_config.worker_concurrency.unwrap_or(1),
        };

        let api_keys = match env("COPRA_API_KEYS") {
            Some(keys) => split_keys(&keys),
            None => file_config.api_keys.unwrap_or_default(),
        };
        let api_keys = if api_keys.is_empty() { vec![generated_key(&data_dir)?] } else { api_keys };
        let webhooks = webhooks::load(file_config.webhooks, file_config.webhook_secret, file_config.webhook_secret_overlap_secs, &api_keys, &data_dir, &env)?;

        let worker_id = match env("COPRA_WORKER_ID").or(file_config.worker_id) {
            Some(id) => id,
            None => persistent_id(&data_dir.join("worker-id"), "worker-")?,
        };

        let sealer = match env("COPRA_SECRET_KEY").or(file_config.secret_key) {
            Some(key) => Sealer::from_text(&key).map_err(|e| ConfigError::Invalid { name: "COPRA_SECRET_KEY", message: e.to_string() })?,
            None => {
                let path = data_dir.join("secret-key");
                let key = persistent_secret(&path, Sealer::generate_key)?;
                Sealer::from_text(&key).map_err(|e| ConfigError::Invalid { name: "secret-key file", message: format!("{}: {e}", path.display()) })?
            }
        };

        let admin_key = match env("COPRA_ADMIN_KEY").or(file_config.admin_key) {
            Some(key) => key,
            None => persistent_id(&data_dir.join("admin-key"), "admin-")?,
        };

        let (queue, worker) = queue::load(file_config.queue, file_config.worker, &env)?;

        let outbound_allow = env("COPRA_OUTBOUND_ALLOW").unwrap_or_else(|| file_config.outbound_allow.join(","));
        let outbound = crate::net::Policy::parse(&outbound_allow)
            .map_err(|e| ConfigError::Invalid { name: "COPRA_OUTBOUND_ALLOW", message: e.to_string() })?;

        let number = |name: &'static str, file: Option<u64>, default: u64| match env(name) {
            Some(v) => v.parse::<u64>().map_err(|_| ConfigError::Invalid { name, message: format!("'{v}' is not a number") }),
            None => Ok(file.unwrap_or(default)),
        };
        let plugin_sync = PluginSync {
            interval: std::time::Duration::from_millis(number("COPRA_PLUGIN_SYNC_MS", file_config.plugin_sync_ms, 2000)?.max(100)),
            version_wait: std::time::Duration::from_secs(number("COPRA_PLUGIN_VERSION_WAIT_SECS", file_config.plugin_version_wait_secs, 60)?),
        };

        let allowed_origins = match env("COPRA_ALLOWED_ORIGINS") {
            Some(list) => split_keys(&list),
            None => file_config.allowed_origins,
        };
        let allowed_origins = allowed_origins.iter().map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase()).filter(|o| !o.is_empty()).collect();

        Ok(Config {
            listen,
            data_dir,
            database_url: Secret::new(database_url),
            plugin_dir,
            api_keys: api_keys.into_iter().map(Secret::new).collect(),
            public_url,
            public_url_given,
            worker_concurrency: worker_concurrency.max(1),
            worker_id,
            admin_key: Secret::new(admin_key),
            plugin_grants: file_config.plugins,
            limits: Limits::load(file_config.limits, &env)?,
            outbound: crate::net::Outbound::new(outbound),
            sealer,
            webhooks,
            queue,
            worker,
            plugin_sync,
            allowed_origins,
        })
    }

    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }

    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache").join("plugins")
    }
}

fn split_keys(keys: &str) -> Vec<String> {
    keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_string).collect()
}

/// The first-party plugins sit in `plugins/dist` of a source checkout; an installed
/// server keeps them in its data directory.
fn default_plugin_dir(data_dir: &Path) -> PathBuf {
    let dist = PathBuf::from("plugins/dist");
    if dist.is_dir() { dist } else { data_dir.join("plugins") }
}

/// The key generated on first start, kept in the data directory so it survives restarts.
fn generated_key(data_dir: &Path) -> Result<String, ConfigError> {
    let path = data_dir.join("api-key");
    let existed = path.exists();
    let key = persistent_id(&path, "")?;
    if !existed {
        tracing::warn!(path = %path.display(), "no COPRA_API_KEYS set; generated an API key");
    }
    Ok(key)
}

/// Read an identifier from `path`, or create a random one there.
fn persistent_id(path: &Path, prefix: &str) -> Result<String, ConfigError> {
    persistent_secret(path, || format!("{prefix}{}", crate::random_id(24)))
}

/// Read a value kept in the data directory, or create it with `make`. The file is
/// readable by the server's user only, whoever created it.
fn persistent_secret(path: &Path, make: impl FnOnce() -> String) -> Result<String, ConfigError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| ConfigError::DataDir { path: path.into(), source };
    let found = std::fs::read_to_string(path);
    if let Ok(existing) = &found {
        let existing = existing.trim();
        if !existing.is_empty() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            return Ok(existing.to_string());
        }
    }
    let value = make();
    // Written beside under a name of its own, then linked into place, so a crash never
    // leaves an empty key behind and, when several processes start on one data directory
    // at once, exactly one value wins and every process uses it. Created owner-only so
    // the value is never readable by others, not even for a moment.
    let tmp = path.with_extension(format!("{}.tmp", crate::random_id(8)));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(value.as_bytes())?;
        file.sync_all()?;
        if found.is_ok() {
            // An empty file left by an older release: replaced.
            std::fs::rename(&tmp, path)
        } else {
            std::fs::hard_link(&tmp, path)
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(value),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let winner = std::fs::read_to_string(path).map_err(io)?.trim().to_string();
            if winner.is_empty() {
                return Err(io(std::io::Error::other("another process created this file empty")));
            }
            Ok(winner)
        }
        Err(err) => Err(io(err)),
    }
}

/// Create the data directory owner-only (it holds keys, the database and every
/// tenant's files); an existing directory is left as the operator made it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_and_empty_ones_dropped() {
        assert_eq!(split_keys(" a, b,,c "), ["a", "b", "c"]);
    }

    #[test]
    fn persistent_id_survives_a_second_read_and_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = persistent_id(&dir.path().join("id"), "w-").unwrap();
        assert!(first.starts_with("w-"));
        assert_eq!(persistent_id(&dir.path().join("id"), "w-").unwrap(), first);
        let mode = std::fs::metadata(dir.path().join("id")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn processes_starting_at_once_agree_on_one_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret-key");
        let values: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| persistent_id(&path, "k-").unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(values.iter().all(|v| v == &values[0]), "{values:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), values[0]);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "no temporary left: {leftovers:?}");
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("copra.toml");
        std::fs::write(
            &file,
            format!(
                "data_dir = {:?}\napi_keys = [\"key-in-file\"]\nadmin_key = \"admin-in-file\"\ndatabase_url = \"postgres://u:dbpass@h/db\"\nsecret_key = \"{}\"\nwebhook_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n[plugins.x]\nenv = {{ TOKEN = \"tok-in-file\" }}\n",
                dir.path().join("data"),
                "ab".repeat(32)
            ),
        )
        .unwrap();
        let config = Config::load(Some(&file)).unwrap();
        let shown = format!("{config:?}");
        for secret in ["key-in-file", "admin-in-file", "dbpass", "tok-in-file", &"ab".repeat(32), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("TOKEN"));
    }

    #[test]
    fn a_new_data_dir_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        create_private_dir(&data).unwrap();
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
