//! Where a job's inputs come from, for one tenant: the transfer client (the outbound
//! policy and the transfer timeouts), the tenant's `local` files and direct uploads,
//! and the storage plugins for inputs in a storage service.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::job::input_upload::{InputUploadError, TenantUploads};
use crate::job::spec::InputSpec;
use crate::net::HttpClient;
use crate::plugins::Plugins;
use crate::storage::{self, LocalFiles};

/// The HTTP client inputs, outputs and object stores are moved with: the outbound
/// policy, and the transfer limits' idle and total timeouts.
pub fn transfer_client(config: &Config) -> reqwest::Result<HttpClient> {
    let limits = &config.limits;
    let timeouts =
        crate::net::Timeouts { connect: std::time::Duration::from_secs(10), idle: limits.transfer_idle, total: Some(limits.transfer_total) };
    config.outbound.client(timeouts)
}

/// Where the tenant `owner`'s `local` storage reads and writes (its own directory, the
/// only one), and the URL prefix its files are served under.
pub fn local_files(config: &Config, owner: &str) -> LocalFiles {
    let tenant = crate::tenant::Tenant::of_owner(owner);
    LocalFiles {
        root: tenant.files_root(&config.files_dir()),
        url_base: tenant.files_url(&config.public_url),
        quota: config.limits.local_quota_bytes,
    }
}

/// Where a job's inputs are fetched from, for one tenant: URLs and storage services
/// (through `http` and the storage plugins), its `local` files and direct `uploads`.
pub struct InputSources<'a> {
    pub plugins: &'a Arc<Plugins>,
    pub http: &'a HttpClient,
    pub local: &'a LocalFiles,
    pub uploads: &'a TenantUploads,
}

/// Why an input could not be fetched; each says it in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A direct upload that cannot be read (the message says why).
    #[error("{0}")]
    Upload(InputUploadError),
    /// The bytes could not be had, from a URL or a storage service.
    #[error("The input could not be fetched: {0}")]
    Transfer(storage::StorageError),
    /// An input in a storage service that names no object.
    #[error("The input needs a 'key' (or 'path') of the object to fetch.")]
    NoObject,
    /// The storage plugin refused the object's key (one that leaves its root, say).
    #[error("{0}")]
    ObjectKey(crate::plugins::PluginError),
    /// The storage service's target could not be made from the input's block.
    #[error("{0}")]
    Service(storage::StorageError),
    /// A dry run's read of the input took longer than it waits.
    #[error("The input could not be fetched: a dry run reads its input for at most {} s.", .0.as_secs())]
    TimedOut(std::time::Duration),
}

impl FetchError {
    /// Whether the input was refused for its size (`max_input_bytes`).
    pub fn too_large(&self) -> bool {
        match self {
            FetchError::Upload(err) => matches!(err, InputUploadError::TooLarge { .. }),
            FetchError::Transfer(err) => matches!(err, storage::StorageError::TooLarge { .. }),
            _ => false,
        }
    }
}

impl InputSources<'_> {
    /// Fetch one of the job's inputs, of at most `max_bytes`, to `dest`; returns its
    /// size.
    pub async fn fetch(&self, input: &InputSpec, max_bytes: u64, dest: &Path) -> Result<u64, FetchError> {
        if let Some(id) = &input.upload {
            return self.uploads.fetch(id, dest, max_bytes).await.map_err(FetchError::Upload);
        }
        if let Some(url) = &input.url {
            return storage::fetch_http(self.http, url, dest, max_bytes).await.map_err(FetchError::Transfer);
        }
        let (key, source) = self.object_source(input).await?;
        source.download(&key, dest, max_bytes).await.map_err(FetchError::Transfer)
    }

    /// Fetch the part of an input a probe needs (`window` bytes of at most `max_bytes`;
    /// see [`storage::fetch_http_window`]) to `dest`.
    pub async fn fetch_window(&self, input: &InputSpec, max_bytes: u64, window: u64, dest: &Path) -> Result<storage::Window, FetchError> {
        if let Some(id) = &input.upload {
            // On this server's disk: the whole file, without a copy.
            let size = self.uploads.fetch(id, dest, max_bytes).await.map_err(FetchError::Upload)?;
            return Ok(storage::Window { size: Some(size), read: size, coverage: storage::Coverage::Whole });
        }
        if let Some(url) = &input.url {
            return storage::fetch_http_window(self.http, url, dest, max_bytes, window).await.map_err(FetchError::Transfer);
        }
        let (key, source) = self.object_source(input).await?;
        source.download_window(&key, dest, max_bytes, window).await.map_err(FetchError::Transfer)
    }

    /// An input in a storage service: its object's key and the service's client.
    async fn object_source(&self, input: &InputSpec) -> Result<(String, storage::Destination), FetchError> {
        let service = input.service.as_deref().unwrap_or_default();
        let (object, block) = input.object().ok_or(FetchError::NoObject)?;
        let key = self.plugins.storage_object_key(service, &block, object).await.map_err(FetchError::ObjectKey)?;
        let source = self.plugins.storage_destination(service, &input.raw.to_string(), self.local, self.http).await.map_err(FetchError::Service)?;
        Ok((key, source))
    }
}
