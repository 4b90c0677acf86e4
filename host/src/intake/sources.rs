//! Where a job's inputs come from, for one tenant: the transfer client (the outbound
//! policy and the transfer timeouts), the tenant's `local` files and direct uploads,
//! and the storage plugins for inputs in a storage service.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::job::input_upload::TenantUploads;
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

impl InputSources<'_> {
    /// Fetch one of the job's inputs, of at most `max_bytes`, to `dest`; returns its
    /// size, or a message for the user.
    pub async fn fetch(&self, input: &InputSpec, max_bytes: u64, dest: &Path) -> Result<u64, String> {
        if let Some(id) = &input.upload {
            return self.uploads.fetch(id, dest, max_bytes).await;
        }
        if let Some(url) = &input.url {
            return storage::fetch_http(self.http, url, dest, max_bytes).await.map_err(|e| format!("The input could not be fetched: {e}"));
        }
        let (key, source) = self.object_source(input).await?;
        source.download(&key, dest, max_bytes).await.map_err(|e| format!("The input could not be fetched: {e}"))
    }

    /// Fetch the part of an input a probe needs (`window` bytes of at most `max_bytes`;
    /// see [`storage::fetch_http_window`]) to `dest`.
    pub async fn fetch_window(&self, input: &InputSpec, max_bytes: u64, window: u64, dest: &Path) -> Result<storage::Window, String> {
        if let Some(id) = &input.upload {
            // On this server's disk: the whole file, without a copy.
            let size = self.uploads.fetch(id, dest, max_bytes).await?;
            return Ok(storage::Window { size: Some(size), read: size, coverage: storage::Coverage::Whole });
        }
        let failed = |e: storage::StorageError| format!("The input could not be fetched: {e}");
        if let Some(url) = &input.url {
            return storage::fetch_http_window(self.http, url, dest, max_bytes, window).await.map_err(failed);
        }
        let (key, source) = self.object_source(input).await?;
        source.download_window(&key, dest, max_bytes, window).await.map_err(failed)
    }

    /// An input in a storage service: its object's key and the service's client.
    async fn object_source(&self, input: &InputSpec) -> Result<(String, storage::Destination), String> {
        let service = input.service.as_deref().unwrap_or_default();
        let (object, block) = input.object().ok_or_else(|| "The input needs a 'key' (or 'path') of the object to fetch.".to_string())?;
        let key = self.plugins.storage_object_key(service, &block, object).await.map_err(|e| e.to_string())?;
        let source = storage::destination(self.plugins, service, &input.raw.to_string(), self.local, self.http).await.map_err(|e| e.to_string())?;
        Ok((key, source))
    }
}
