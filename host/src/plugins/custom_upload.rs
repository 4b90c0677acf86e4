//! A storage block's destination, and the uploads a storage plugin does itself (`custom`
//! targets): the host streams a finished file through the plugin's `upload` resource in
//! chunks, each chunk call with a fresh CPU budget and its own wall-clock deadline.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;

use tokio::io::AsyncReadExt;
use tracing::Instrument;

use super::error::{classify, outcome, within};
use super::registry::PluginKind;
use super::{PluginError, Plugins};
use crate::net::HttpClient;
use crate::storage::{self, Destination, LocalFiles, SelfUpload, StorageError, StorageTarget};

/// Bytes handed to the plugin per `write` call.
const CHUNK: usize = 1 << 20;

impl Plugins {
    /// Ask the storage plugin for `service` where a storage block's files go, and build
    /// the destination (see [`storage::destination`]).
    pub async fn storage_destination(
        self: &Arc<Self>,
        service: &str,
        spec_json: &str,
        local: &LocalFiles,
        http: &HttpClient,
    ) -> Result<Destination, StorageError> {
        let target = self.storage_resolve(service, spec_json).await.map_err(|e| StorageError::Config(e.describe()))?;
        let uploader = matches!(target, StorageTarget::Custom).then(|| {
            Arc::new(PluginUpload { plugins: self.clone(), service: service.to_string(), spec_json: spec_json.to_string() }) as Arc<dyn SelfUpload>
        });
        storage::destination(target, uploader, local, http).await
    }

    /// Stream `file` to `key` (already checked by [`Plugins::storage_object_key`])
    /// through a storage plugin's own `upload`. Returns the file's URL.
    pub async fn storage_upload(
        &self,
        service: &str,
        spec_json: &str,
        key: &str,
        content_type: &str,
        file: &Path,
    ) -> Result<String, PluginError> {
        let plugin = self.catalog.find(PluginKind::Storage, service)?;
        let span = tracing::debug_span!("plugin_upload", plugin = %plugin.name);
        async {
            let sandbox = &plugin.sandbox;
            let deadline = sandbox.deadline;
            let mut store = self.runtime.store(&plugin, sandbox.allowed_hosts.clone());
            let io_error = |e: std::io::Error| PluginError::Trapped { plugin: plugin.name.to_string(), message: format!("reading the file: {e}") };
            let mut source = tokio::fs::File::open(file).await.map_err(io_error)?;
            let size = source.metadata().await.map_err(io_error)?.len();

            let bound = within(deadline, plugin.pre.instantiate(&mut store)).await;
            let bound = outcome(&plugin, &store, bound.map(Ok))?;
            let storage = bound.storage().map_err(|e| classify(&plugin, e))?.copra_plugin_storage();
            let opened = within(deadline, storage.call_open_upload(&mut store, spec_json, key, content_type, size)).await;
            let upload = outcome(&plugin, &store, opened)?;
            let mut buffer = vec![0u8; CHUNK];
            loop {
                let read = source.read(&mut buffer).await.map_err(io_error)?;
                if read == 0 {
                    break;
                }
                sandbox.renew_budget(&mut store);
                let written = within(deadline, storage.upload().call_write(&mut store, upload, &buffer[..read])).await;
                outcome(&plugin, &store, written)?;
            }
            sandbox.renew_budget(&mut store);
            let finished = within(deadline, storage.upload().call_finish(&mut store, upload)).await;
            let url = outcome(&plugin, &store, finished)?;
            let _ = within(deadline, upload.resource_drop_async(&mut store)).await;
            Ok(url)
        }
        .instrument(span)
        .await
    }
}

/// A `custom` target's uploads, through its storage plugin.
struct PluginUpload {
    plugins: Arc<Plugins>,
    service: String,
    spec_json: String,
}

impl SelfUpload for PluginUpload {
    fn service(&self) -> &str {
        &self.service
    }

    fn upload<'a>(&'a self, key: &'a str, content_type: &'a str, file: &'a Path) -> BoxFuture<'a, Result<String, StorageError>> {
        Box::pin(async move {
            self.plugins
                .storage_upload(&self.service, &self.spec_json, key, content_type, file)
                .await
                .map_err(|e| StorageError::UploadFailed { key: key.to_string(), message: e.describe() })
        })
    }
}
