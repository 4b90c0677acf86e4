//! Moving files: building opendal operators from what a storage block resolves to, streaming
//! outputs to them, and fetching inputs. Nothing here holds a whole file in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use opendal::{Operator, Scheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::HttpClient;

pub mod endpoint;
mod harden;
mod http;
pub mod local;
pub mod local_quota;
pub mod local_sweep;
mod multipart;
pub mod object_options;
mod sftp;
mod swift_auth;
mod swift_upload;
mod target;
mod window;
pub mod work_area;

pub use http::{InputTooLarge, fetch_http, put_http};
pub use target::{SelfUpload, StorageTarget};
pub use window::{Coverage, Window, fetch_http_window};

/// Bytes read from disk per write; also the multipart part size for object stores.
const CHUNK: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage is not usable: {0}")]
    Config(String),
    /// A target's `copra.` options are refused.
    #[error("storage is not usable: {0}")]
    Options(#[from] object_options::ObjectOptionsError),
    /// An opendal target is refused before its operator is built.
    #[error("storage is not usable: {0}")]
    Target(#[from] endpoint::TargetError),
    /// A `swift` target's sign-in failed.
    #[error("storage is not usable: {0}")]
    SwiftSignIn(#[from] swift_auth::SwiftAuthError),
    #[error("upload of '{key}' failed: {source}")]
    Upload { key: String, source: opendal::Error },
    #[error("download of '{what}' failed: {message}")]
    Download { what: String, message: String },
    /// An input past `max_input_bytes` (from a URL or a storage service).
    #[error("download of '{what}' failed: {source}")]
    TooLarge { what: String, source: InputTooLarge },
    /// A ranged read of an HTTP(S) input (see [`fetch_http_window`]).
    #[error("download of '{what}' failed: {source}")]
    Window { what: String, source: window::WindowError },
    /// An upload done by a plugin or by HTTP PUT to a URL the user gave.
    #[error("upload of '{key}' failed: {message}")]
    UploadFailed { key: String, message: String },
    /// The host's own request for an S3 output failed (its ACL).
    #[error("upload of '{key}' failed: {source}")]
    S3 { key: String, source: multipart::S3Error },
    /// The host's own streaming of a Swift output failed.
    #[error("upload of '{key}' failed: {source}")]
    Swift { key: String, source: swift_upload::SwiftError },
    #[error("local file error: {0}")]
    Io(#[from] std::io::Error),
    /// A `local` write would pass the tenant's `limits.local_quota_bytes`.
    #[error(transparent)]
    Quota(#[from] local_quota::QuotaExceeded),
}

/// A place output files go.
#[derive(Clone)]
pub struct Destination {
    place: Place,
    /// Set for a retried job: before a key is written, what an interrupted earlier
    /// attempt left for it (open multipart uploads, local temporaries) is removed.
    retry: bool,
}

#[derive(Clone)]
enum Place {
    /// Streamed natively through opendal; objects are reachable under `url_base`. An S3
    /// target also knows its bucket, to abort the uploads a killed attempt left open.
    /// `object` is what the host does to each object it writes (ACL, headers).
    /// A `swift` target's outputs are streamed by the host (`swift`), not opendal.
    Opendal {
        operator: Operator,
        url_base: String,
        s3: Option<(Arc<multipart::S3Bucket>, HttpClient)>,
        swift: Option<(Arc<swift_upload::SwiftTarget>, HttpClient)>,
        object: Arc<object_options::ObjectOptions>,
    },
    /// The tenant's own directory: written through a temporary and a rename, within its
    /// quota of bytes if it has one; read (inputs) through `operator`.
    Local { root: PathBuf, operator: Operator, url_base: String, quota: Option<u64> },
    /// An SFTP server, through the host's own SSH client.
    Sftp { target: Arc<sftp::SftpTarget>, url_base: String, http: HttpClient },
    /// The storage service uploads each file itself (`custom` target).
    SelfUploading(Arc<dyn SelfUpload>),
}

/// Where one tenant's `local` files live and the URL prefix they are served under (see
/// [`crate::tenant::Tenant`]); the plugin never names this place.
#[derive(Debug, Clone)]
pub struct LocalFiles {
    pub root: PathBuf,
    pub url_base: String,
    /// The bytes the tenant's files may take in all (`limits.local_quota_bytes`).
    pub quota: Option<u64>,
}

/// Build the destination of a storage block that resolved to `target`. A `local` target
/// is the tenant's own directory, `local`. An opendal target is checked against the
/// outbound policy and talks through `http`. A `custom` target uploads through
/// `uploader`, which its service gives.
pub async fn destination(
    target: StorageTarget,
    uploader: Option<Arc<dyn SelfUpload>>,
    local: &LocalFiles,
    http: &HttpClient,
) -> Result<Destination, StorageError> {
    let config = |e: opendal::Error| StorageError::Config(e.to_string());
    let place = match target {
        StorageTarget::Opendal { scheme, options, url_base } if scheme == "sftp" => {
            let target = sftp::SftpTarget::parse(http.policy(), &options).map_err(|refused| StorageError::Config(refused.to_string()))?;
            Place::Sftp { target: Arc::new(target), url_base, http: http.clone() }
        }
        StorageTarget::Opendal { scheme, options, mut url_base } => {
            let options = endpoint::check_target(http.policy(), &scheme, &options)?;
            let (mut options, object) = object_options::split(&scheme, &options)?;
            if scheme == "swift" {
                if swift_auth::signs_in(&options) {
                    options = swift_auth::sign_in(http, &options).await?;
                }
                // A signed-in account's URL is known only now: objects are below it.
                if url_base.is_empty() {
                    let option = |key: &str| options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
                    url_base = format!("{}/{}", option("endpoint"), option("container"));
                }
            }
            let s3 = (scheme == "s3").then(|| multipart::S3Bucket::of_options(&options)).flatten().map(|b| (Arc::new(b), http.clone()));
            let swift = (scheme == "swift").then(|| swift_upload::SwiftTarget::of_options(&options)).flatten().map(|t| (Arc::new(t), http.clone()));
            if object.acl.is_some() && s3.is_none() {
                return Err(StorageError::Config("an acl needs the target's own access key and secret".into()));
            }
            let scheme: Scheme = scheme.parse().map_err(config)?;
            let operator = Operator::via_iter(scheme, options).map_err(config)?;
            let operator = endpoint::under_policy_with(operator, http, object.create_headers.clone());
            Place::Opendal { operator, url_base, s3, swift, object: Arc::new(object) }
        }
        StorageTarget::Local => {
            let root = local.root.to_string_lossy().to_string();
            let operator = Operator::via_iter(Scheme::Fs, [("root".to_string(), root)]).map_err(config)?;
            Place::Local { root: local.root.clone(), operator, url_base: local.url_base.clone(), quota: local.quota }
        }
        StorageTarget::Custom => match uploader {
            Some(uploader) => Place::SelfUploading(uploader),
            None => return Err(StorageError::Config("the storage service uploads files itself, but it gave no uploader".into())),
        },
    };
    Ok(Destination { place, retry: false })
}

impl Destination {
    /// The destination of a retried job: each key is cleared of what an interrupted
    /// earlier attempt left for it before it is written.
    pub fn retrying(mut self, retry: bool) -> Self {
        self.retry = retry;
        self
    }

    /// Stream a finished file to `key`; returns its URL.
    pub async fn upload(&self, file: &Path, key: &str, content_type: &str) -> Result<String, StorageError> {
        let key = &checked(key)?;
        let url = |base: &str| format!("{}/{}", base.trim_end_matches('/'), key.trim_start_matches('/'));
        match &self.place {
            Place::Opendal { operator, url_base, s3, swift, object } => {
                if let Some((swift, http)) = swift {
                    swift.upload(http, file, key, content_type).await.map_err(|source| StorageError::Swift { key: key.to_string(), source })?;
                    return Ok(url(url_base));
                }
                if let (true, Some((bucket, http))) = (self.retry, s3) {
                    // Best effort: an upload left open costs storage, not correctness.
                    match bucket.abort_open_uploads(http, key).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(key, aborted = n, "aborted multipart uploads an earlier attempt left open"),
                        Err(err) => tracing::warn!(key, %err, "the multipart uploads an earlier attempt left could not be aborted"),
                    }
                }
                upload_opendal(operator, file, key, content_type, object.cache_control.as_deref()).await?;
                if let (Some(acl), Some((bucket, http))) = (&object.acl, s3) {
                    bucket.put_acl(http, key, acl).await.map_err(|source| StorageError::S3 { key: key.to_string(), source })?;
                }
                Ok(url(url_base))
            }
            Place::Local { root, url_base, quota, .. } => {
                if self.retry {
                    match local::clean_stale(root, key).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(key, removed = n, "removed temporaries an earlier attempt left"),
                        Err(err) => tracing::warn!(key, %err, "the temporaries an earlier attempt left could not be removed"),
                    }
                }
                local::write(root, file, key, *quota).await?;
                Ok(url(url_base))
            }
            Place::Sftp { target, url_base, http } => {
                let failed = |err: sftp::SftpError| StorageError::UploadFailed { key: key.to_string(), message: err.to_string() };
                target.upload(http.policy(), http.timeouts().connect, file, key).await.map_err(failed)?;
                Ok(url(url_base))
            }
            Place::SelfUploading(uploader) => uploader.upload(key, content_type, file).await,
        }
    }

    fn operator(&self, what: &str) -> Result<&Operator, StorageError> {
        match &self.place {
            Place::Opendal { operator, .. } | Place::Local { operator, .. } => Ok(operator),
            // SFTP inputs are read by `Destination::download` before it asks for this.
            Place::Sftp { .. } => Err(StorageError::Download { what: what.to_string(), message: "not an opendal target".into() }),
            Place::SelfUploading(uploader) => Err(StorageError::Download {
                what: what.to_string(),
                message: format!("the storage service '{}' can store outputs but not serve inputs", uploader.service()),
            }),
        }
    }

    /// Stream an object to a local file (inputs given as `service` + `key`/`path`);
    /// one larger than `max_bytes` is refused and its partial copy removed.
    pub async fn download(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<u64, StorageError> {
        let key = &checked(key)?;
        if let Place::Sftp { target, http, .. } = &self.place {
            return match target.download(http.policy(), http.timeouts().connect, key, dest, max_bytes).await {
                Ok(total) => Ok(total),
                Err(err) => {
                    let _ = tokio::fs::remove_file(dest).await;
                    let what = key.to_string();
                    Err(match err {
                        sftp::SftpError::TooLarge(max_bytes) => StorageError::TooLarge { what, source: InputTooLarge::Arrived { max_bytes } },
                        err => StorageError::Download { what, message: err.to_string() },
                    })
                }
            };
        }
        let err = |e: opendal::Error| StorageError::Download { what: key.to_string(), message: e.to_string() };
        let reader = self.operator(key)?.reader_with(key).chunk(CHUNK).await.map_err(err)?;
        let mut stream = reader.into_bytes_stream(..).await.map_err(err)?;
        let mut out = tokio::fs::File::create(dest).await?;
        let mut total = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            total += chunk.len() as u64;
            if total > max_bytes {
                drop(out);
                let _ = tokio::fs::remove_file(dest).await;
                return Err(StorageError::TooLarge { what: key.to_string(), source: InputTooLarge::Arrived { max_bytes } });
            }
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(total)
    }
}

/// The key checked again right before the I/O it names, whoever checked it before
/// (defence in depth: a key that reaches opendal can never leave the target's root).
fn checked(key: &str) -> Result<String, StorageError> {
    crate::object_key::object_key(key).map_err(|e| StorageError::Config(format!("the object key '{}' is refused: {e}", key.escape_debug())))
}

/// Stream a file to `key` of an operator the host built itself (the ultrafast work area).
pub async fn upload_to(operator: &Operator, file: &Path, key: &str, content_type: &str) -> Result<(), StorageError> {
    upload_opendal(operator, file, &checked(key)?, content_type, None).await
}

/// Stream a finished file to `key` of an opendal operator. A failed upload is aborted
/// (an S3 multipart upload with it), and so is one whose future is dropped (the job's
/// lease was lost or the job aborted): see [`Aborting`].
async fn upload_opendal(operator: &Operator, file: &Path, key: &str, content_type: &str, cache_control: Option<&str>) -> Result<(), StorageError> {
    let upload_err = |source| StorageError::Upload { key: key.to_string(), source };
    // Open the file first: a writer, once made, must be closed or aborted.
    let mut source = tokio::fs::File::open(file).await?;
    let mut writer = operator.writer_with(key).content_type(content_type).chunk(CHUNK).concurrent(4);
    if let Some(cache_control) = cache_control {
        writer = writer.cache_control(cache_control);
    }
    let writer = writer.await.map_err(upload_err)?;
    let mut writer = Aborting(Some(writer));
    loop {
        let mut buf = Vec::with_capacity(CHUNK);
        let read = match (&mut source).take(CHUNK as u64).read_to_end(&mut buf).await {
            Ok(read) => read,
            Err(err) => {
                writer.abort().await;
                return Err(err.into());
            }
        };
        if read == 0 {
            break;
        }
        if let Err(err) = writer.get().write(Bytes::from(buf)).await {
            writer.abort().await;
            return Err(upload_err(err));
        }
    }
    match writer.get().close().await {
        Ok(_) => {
            writer.0 = None;
            Ok(())
        }
        Err(err) => {
            writer.abort().await;
            Err(upload_err(err))
        }
    }
}

/// A writer that is aborted unless it was closed: dropped mid-upload, it aborts in a
/// task of its own, so no multipart upload stays open after a cancelled job.
struct Aborting(Option<opendal::Writer>);

impl Aborting {
    fn get(&mut self) -> &mut opendal::Writer {
        self.0.as_mut().expect("the writer is used only until it is closed or aborted")
    }

    async fn abort(&mut self) {
        if let Some(mut writer) = self.0.take() {
            let _ = writer.abort().await;
        }
    }
}

impl Drop for Aborting {
    fn drop(&mut self) {
        if let (Some(mut writer), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                if let Err(err) = writer.abort().await {
                    tracing::warn!(%err, "a cancelled upload could not be aborted");
                }
            });
        }
    }
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
