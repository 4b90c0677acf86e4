//! Server configuration: environment variables, optionally on top of a TOML file.
//!
//! Precedence: environment > config file > defaults. Every key of the file has the
//! environment variable `COPRA_<KEY>` in capitals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod limits;
pub use limits::{LIMIT_ENV_NAMES, Limits};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub plugin_dir: PathBuf,
    /// API keys accepted for the job API.
    pub api_keys: Vec<String>,
    /// The base URL clients reach this server at; used for `local` storage URLs.
    pub public_url: String,
    /// Jobs one worker runs at once.
    pub worker_concurrency: usize,
    /// This worker's identity in leases. Stable across restarts of the same node.
    pub worker_id: String,
    /// The key of the admin API (`/admin/...`), separate from job API keys.
    pub admin_key: String,
    /// What each plugin (by name) is granted beyond the defaults.
    pub plugin_grants: HashMap<String, PluginGrant>,
    /// What one job, input or peer may cost (`[limits]`).
    pub limits: Limits,
    /// Where the server may connect: public addresses, plus `outbound_allow`
    /// (`COPRA_OUTBOUND_ALLOW`: comma-separated CIDRs and host names).
    pub outbound: crate::net::Outbound,
}

/// What the operator grants one plugin, from `[plugins.NAME]` in the config file
/// (checked when the plugin host starts). Defaults: no network, no storage scheme,
/// 64 MiB, 1 s of CPU and 10 s of wall clock per call, no environment, priority 0; the
/// first-party `storage-s3` gets `schemes = ["s3"]` and `notifier-http`
/// `allowed_hosts = ["*"]`.
#[derive(Debug, Clone, Default, Deserialize)]
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
    /// `["s3"]` for `storage-s3`, none for other plugins. `fs` is never granted.
    pub schemes: Option<Vec<String>>,
    /// Environment variables (secrets, settings) the plugin can read.
    #[serde(default)]
    pub env: HashMap<String, String>,
    /// When two plugins provide the same name, the higher priority wins; on a tie the
    /// plugin loaded first keeps it and the other is refused.
    #[serde(default)]
    pub priority: i32,
}

/// The optional file; every field may be omitted.
#[derive(Debug, Default, Deserialize)]
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
    #[serde(default)]
    plugins: HashMap<String, PluginGrant>,
    #[serde(default)]
    limits: limits::FileLimits,
    /// CIDRs and host names the server may connect to besides public addresses.
    #[serde(default)]
    outbound_allow: Vec<String>,
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
        std::fs::create_dir_all(&data_dir).map_err(|source| ConfigError::DataDir { path: data_dir.clone(), source })?;
        let data_dir = data_dir.canonicalize().map_err(|source| ConfigError::DataDir { path: data_dir.clone(), source })?;

        let database_url = env("COPRA_DATABASE_URL")
            .or(file_config.database_url)
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("copra.db").display()));
        let plugin_dir = env("COPRA_PLUGIN_DIR")
            .map(PathBuf::from)
            .or(file_config.plugin_dir)
            .unwrap_or_else(|| default_plugin_dir(&data_dir));
        let public_url = env("COPRA_PUBLIC_URL").or(file_config.public_url).unwrap_or_else(|| format!("http://{listen}"));
        let worker_concurrency = match env("COPRA_WORKER_CONCURRENCY") {
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid { name: "COPRA_WORKER_CONCURRENCY", message: format!("'{v}' is not a number") })?,
            None => file_config.worker_concurrency.unwrap_or(1),
        };

        let api_keys = match env("COPRA_API_KEYS") {
            Some(keys) => split_keys(&keys),
            None => file_config.api_keys.unwrap_or_default(),
        };
        let api_keys = if api_keys.is_empty() { vec![generated_key(&data_dir)?] } else { api_keys };

        let worker_id = match env("COPRA_WORKER_ID").or(file_config.worker_id) {
            Some(id) => id,
            None => persistent_id(&data_dir.join("worker-id"), "worker-")?,
        };

        let admin_key = match env("COPRA_ADMIN_KEY").or(file_config.admin_key) {
            Some(key) => key,
            None => persistent_id(&data_dir.join("admin-key"), "admin-")?,
        };

        let outbound_allow = env("COPRA_OUTBOUND_ALLOW").unwrap_or_else(|| file_config.outbound_allow.join(","));
        let outbound = crate::net::Policy::parse(&outbound_allow)
            .map_err(|message| ConfigError::Invalid { name: "COPRA_OUTBOUND_ALLOW", message })?;

        Ok(Config {
            listen,
            data_dir,
            database_url,
            plugin_dir,
            api_keys,
            public_url,
            worker_concurrency: worker_concurrency.max(1),
            worker_id,
            admin_key,
            plugin_grants: file_config.plugins,
            limits: Limits::load(file_config.limits, &env)?,
            outbound: crate::net::Outbound::new(outbound),
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
    let io = |source| ConfigError::DataDir { path: path.into(), source };
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(existing.to_string());
        }
    }
    let id = format!("{prefix}{}", crate::random_id(24));
    std::fs::write(path, &id).map_err(io)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_and_empty_ones_dropped() {
        assert_eq!(split_keys(" a, b,,c "), ["a", "b", "c"]);
    }

    #[test]
    fn persistent_id_survives_a_second_read() {
        let dir = tempfile::tempdir().unwrap();
        let first = persistent_id(&dir.path().join("id"), "w-").unwrap();
        assert!(first.starts_with("w-"));
        assert_eq!(persistent_id(&dir.path().join("id"), "w-").unwrap(), first);
    }
}
