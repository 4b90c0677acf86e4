//! Moving files: building opendal operators from what storage plugins return, streaming
//! outputs to them, and fetching inputs. Nothing here holds a whole file in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use opendal::{Operator, Scheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::plugins::{Plugins, StorageTarget};

pub mod key;

/// Bytes read from disk per write; also the multipart part size for object stores.
const CHUNK: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage is not usable: {0}")]
    Config(String),
    #[error("upload of '{key}' failed: {source}")]
    Upload { key: String, source: opendal::Error },
    #[error("download of '{what}' failed: {message}")]
    Download { what: String, message: String },
    /// An upload done by a plugin or by HTTP PUT to a URL the user gave.
    #[error("upload of '{key}' failed: {message}")]
    UploadFailed { key: String, message: String },
    #[error("local file error: {0}")]
    Io(#[from] std::io::Error),
}

/// A place output files go.
#[derive(Clone)]
pub enum Destination {
    /// Streamed natively through opendal; objects are reachable under `url_base`.
    Opendal { operator: Operator, url_base: String },
    /// The storage plugin uploads each file itself (`custom` target).
    Plugin { plugins: Arc<Plugins>, service: String, spec_json: String },
}

/// Ask the storage plugin for `service` where a storage block's files go, and build the
/// destination. `files_dir` and `public_url` serve the `local` target: files land below
/// `files_dir` and are served by the API under `{public_url}/files/`.
pub async fn destination(
    plugins: &Arc<Plugins>,
    service: &str,
    spec_json: &str,
    files_dir: &Path,
    public_url: &str,
) -> Result<Destination, StorageError> {
    let target = plugins.storage_resolve(service, spec_json).await.map_err(|e| StorageError::Config(e.describe()))?;
    let config = |e: opendal::Error| StorageError::Config(e.to_string());
    Ok(match target {
        StorageTarget::Opendal { scheme, options, url_base } => {
            let scheme: Scheme = scheme.parse().map_err(config)?;
            Destination::Opendal { operator: Operator::via_iter(scheme, options).map_err(config)?, url_base }
        }
        StorageTarget::Local => {
            let root = files_dir.to_string_lossy().to_string();
            let operator = Operator::via_iter(Scheme::Fs, [("root".to_string(), root)]).map_err(config)?;
            Destination::Opendal { operator, url_base: format!("{}/files", public_url.trim_end_matches('/')) }
        }
        StorageTarget::Custom => {
            Destination::Plugin { plugins: plugins.clone(), service: service.to_string(), spec_json: spec_json.to_string() }
        }
    })
}

impl Destination {
    /// Stream a finished file to `key`; returns its URL.
    pub async fn upload(&self, file: &Path, key: &str, content_type: &str) -> Result<String, StorageError> {
        match self {
            Destination::Opendal { operator, url_base } => {
                upload_opendal(operator, file, key, content_type).await?;
                Ok(format!("{}/{}", url_base.trim_end_matches('/'), key.trim_start_matches('/')))
            }
            Destination::Plugin { plugins, service, spec_json } => plugins
                .storage_upload(service, spec_json, key, content_type, file)
                .await
                .map_err(|e| StorageError::UploadFailed { key: key.to_string(), message: e.describe() }),
        }
    }

    fn operator(&self, what: &str) -> Result<&Operator, StorageError> {
        match self {
            Destination::Opendal { operator, .. } => Ok(operator),
            Destination::Plugin { service, .. } => Err(StorageError::Download {
                what: what.to_string(),
                message: format!("the storage service '{service}' can store outputs but not serve inputs"),
            }),
        }
    }

    /// Stream an object to a local file (inputs given as `service` + `key`/`path`).
    pub async fn download(&self, key: &str, dest: &Path) -> Result<u64, StorageError> {
        let err = |e: opendal::Error| StorageError::Download { what: key.to_string(), message: e.to_string() };
        let reader = self.operator(key)?.reader_with(key).chunk(CHUNK).await.map_err(err)?;
        let mut stream = reader.into_bytes_stream(..).await.map_err(err)?;
        let mut out = tokio::fs::File::create(dest).await?;
        let mut total = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            total += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(total)
    }
}

/// Stream a finished file to `key` of an opendal operator.
async fn upload_opendal(operator: &Operator, file: &Path, key: &str, content_type: &str) -> Result<(), StorageError> {
    let upload_err = |source| StorageError::Upload { key: key.to_string(), source };
    // Open the file first: a writer, once made, must be closed or aborted.
    let mut source = tokio::fs::File::open(file).await?;
    let mut writer = operator.writer_with(key).content_type(content_type).chunk(CHUNK).concurrent(4).await.map_err(upload_err)?;
    loop {
        let mut buf = Vec::with_capacity(CHUNK);
        let read = match (&mut source).take(CHUNK as u64).read_to_end(&mut buf).await {
            Ok(read) => read,
            Err(err) => {
                let _ = writer.abort().await;
                return Err(err.into());
            }
        };
        if read == 0 {
            break;
        }
        if let Err(err) = writer.write(Bytes::from(buf)).await {
            let _ = writer.abort().await;
            return Err(upload_err(err));
        }
    }
    writer.close().await.map_err(upload_err)?;
    Ok(())
}

/// Stream an HTTP(S) input to a local file. Non-2xx answers are errors naming the status.
pub async fn fetch_http(client: &reqwest::Client, url: &str, dest: &Path) -> Result<u64, StorageError> {
    let err = |message: String| StorageError::Download { what: url.to_string(), message };
    let response = client.get(url).send().await.map_err(|e| err(describe_reqwest(&e)))?;
    if !response.status().is_success() {
        return Err(err(format!("the server answered {}", response.status())));
    }
    let mut out = tokio::fs::File::create(dest).await?;
    let mut stream = response.bytes_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.try_next().await.map_err(|e| err(describe_reqwest(&e)))? {
        total += chunk.len() as u64;
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok(total)
}

/// Upload a file with HTTP PUT to a URL the user gave (e.g. a presigned URL).
pub async fn put_http(client: &reqwest::Client, url: &str, file: &Path, content_type: &str) -> Result<(), StorageError> {
    let err = |message: String| StorageError::UploadFailed { key: url.to_string(), message };
    let source = tokio::fs::File::open(file).await?;
    let length = source.metadata().await?.len();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(source, 1 << 20));
    let response = client
        .put(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(reqwest::header::CONTENT_LENGTH, length)
        .body(body)
        .send()
        .await
        .map_err(|e| err(describe_reqwest(&e)))?;
    if !response.status().is_success() {
        return Err(err(format!("upload answered {}", response.status())));
    }
    Ok(())
}

/// reqwest's Display hides the cause ("error sending request"); users need the cause.
fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The working directory of one job; removed when the job ends.
pub fn work_dir(data_dir: &Path, job_id: &str) -> PathBuf {
    data_dir.join("work").join(job_id)
}

impl From<opendal::Error> for StorageError {
    fn from(e: opendal::Error) -> Self {
        StorageError::Download { what: "object".into(), message: e.to_string() }
    }
}
