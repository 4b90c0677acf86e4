//! The uploads of every tenant on disk: create one, append a chunk, read its state, hold
//! it for a job, delete it. Each call names the tenant, and an upload is looked up only
//! in its tenant's directory, so another key's upload is "not found" like one that never
//! existed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::storage::work_area::WorkArea;
use crate::tenant::Tenant;

/// The work area of this process's config, built once (an operator and its HTTP client).
fn work_area(config: &crate::config::Config) -> Option<WorkArea> {
    static AREA: std::sync::OnceLock<Option<WorkArea>> = std::sync::OnceLock::new();
    let store = config.worker.ultrafast_store.as_ref()?;
    AREA.get_or_init(|| match WorkArea::new(store, config) {
        Ok(area) => Some(area),
        Err(err) => {
            tracing::error!(err = format!("{err:#}"), "the work area cannot be reached: uploads stay on this node's disk");
            None
        }
    })
    .clone()
}

/// Length of an upload id: 26 alphanumerics, about 154 random bits, so ids cannot be
/// guessed.
const ID_LEN: usize = 26;

/// Where uploads live, and their limits.
#[derive(Debug, Clone)]
pub struct Uploads {
    root: PathBuf,
    /// Largest upload (`limits.max_upload_bytes`).
    pub max_bytes: u64,
    /// How long an upload lives after its last change (`limits.upload_expiry_secs`).
    pub expiry: Duration,
    /// Declared bytes of one tenant's uploads in all (`limits.upload_quota_bytes`).
    pub quota: Option<u64>,
    /// Uploads one tenant holds at once (`limits.max_uploads_per_key`).
    pub max_per_tenant: usize,
    /// The operator's work area, when nodes share no file system: a finished upload is
    /// copied there, for the worker that runs its job.
    pub area: Option<WorkArea>,
}

/// One upload as stored: its `.info` file, and its offset (the length of its bytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    #[serde(skip)]
    pub id: String,
    /// Bytes the upload will have when it is finished (`Upload-Length`).
    pub length: u64,
    /// `Upload-Metadata` as sent: comma-separated `key base64value` pairs.
    #[serde(default)]
    pub metadata: String,
    pub created_ms: i64,
    /// When it is swept unless it changes or a job holds it.
    pub expires_ms: i64,
    /// The jobs that take it as their input; it is kept while any of them runs.
    #[serde(default)]
    pub held_by: Vec<String>,
    /// Bytes received and synced.
    #[serde(skip)]
    pub offset: u64,
}

impl Upload {
    pub fn finished(&self) -> bool {
        self.offset == self.length
    }

    /// A value of its metadata (`filename`, `filetype`), decoded.
    pub fn metadata_value(&self, key: &str) -> Option<String> {
        use base64::Engine as _;
        self.metadata.split(',').find_map(|pair| {
            let mut parts = pair.trim().splitn(2, ' ');
            (parts.next()? == key).then(|| {
                let value = parts.next().unwrap_or("");
                base64::engine::general_purpose::STANDARD.decode(value).ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default()
            })
        })
    }
}

/// A chunk's checksum as the client sent it (`Upload-Checksum: <algorithm> <base64>`).
#[derive(Debug, Clone)]
pub struct Checksum {
    pub algorithm: &'static ring::digest::Algorithm,
    pub name: &'static str,
    pub expected: Vec<u8>,
}

/// The checksum algorithms a chunk may be sent with, as `Tus-Checksum-Algorithm` lists them.
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256,sha512";

impl Checksum {
    /// Parse an `Upload-Checksum` header.
    pub fn parse(header: &str) -> Result<Self, UploadError> {
        use base64::Engine as _;
        let (name, value) = header.trim().split_once(' ').ok_or_else(|| UploadError::Invalid("Upload-Checksum must be '<algorithm> <base64 digest>'.".into()))?;
        let (name, algorithm) = match name.to_ascii_lowercase().as_str() {
            "sha1" => ("sha1", &ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
            "sha256" => ("sha256", &ring::digest::SHA256),
            "sha512" => ("sha512", &ring::digest::SHA512),
            other => {
                return Err(UploadError::Invalid(format!(
                    "The checksum algorithm '{}' is not supported: use one of {CHECKSUM_ALGORITHMS}.",
                    other.escape_debug()
                )));
            }
        };
        let expected = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| UploadError::Invalid("The Upload-Checksum digest is not base64.".into()))?;
        Ok(Checksum { algorithm, name, expected })
    }
}

/// Why an upload request could not be carried out; each a sentence for the client.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("Upload '{0}' not found.")]
    NotFound(String),
    #[error("The upload would be {length} bytes; this server takes at most {limit} (limits.max_upload_bytes).")]
    TooLarge { length: u64, limit: u64 },
    #[error("The upload's offset is {actual}, not {sent}: ask with HEAD and resume from there.")]
    OffsetMismatch { sent: u64, actual: u64 },
    #[error("The chunk passes the upload's length of {length} bytes.")]
    PastLength { length: u64 },
    #[error("The chunk's {algorithm} checksum does not match its bytes; they were discarded.")]
    ChecksumMismatch { algorithm: &'static str },
    #[error("Another request is writing to this upload; try again when it ends.")]
    Busy,
    #[error("Your uploads would take {} bytes with this one of {length}, more than your quota of {quota} (limits.upload_quota_bytes); delete some (DELETE /v2/uploads/{{id}}).", used.saturating_add(*length))]
    QuotaExceeded { used: u64, length: u64, quota: u64 },
    #[error("You hold {limit} uploads, as many as this server keeps per API key (limits.max_uploads_per_key); delete some or wait for them to expire.")]
    TooMany { limit: usize },
    #[error("{0}")]
    Invalid(String),
    #[error("This server speaks tus 1.0.0: send 'Tus-Resumable: 1.0.0' (not '{sent}').")]
    Version { sent: String },
    #[error("A chunk's body must be 'Content-Type: application/offset+octet-stream'.")]
    ContentType,
    #[error("the upload store failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Uploads {
    pub fn of(config: &crate::config::Config) -> Self {
        let limits = &config.limits;
        Uploads {
            root: config.data_dir.join("uploads"),
            max_bytes: limits.max_upload_bytes,
            expiry: limits.upload_expiry,
            quota: limits.upload_quota_bytes,
            max_per_tenant: limits.max_uploads_per_key,
            area: work_area(config),
        }
    }

    /// All tenants' uploads, one directory each.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one tenant's uploads.
    pub fn dir(&self, tenant: &Tenant) -> PathBuf {
        self.root.join(tenant.namespace())
    }

    /// The bytes of upload `id` in a tenant's directory; `None` for what cannot be an id
    /// (so no id reaches outside the directory).
    pub fn data_path(dir: &Path, id: &str) -> Option<PathBuf> {
        valid_id(id).then(|| dir.join(id))
    }

    /// The key of a finished upload in the work area.
    fn area_key(area: &WorkArea, tenant: &Tenant, id: &str) -> String {
        area.key(&format!("uploads/{}/{id}", tenant.namespace()))
    }

    /// Whether the work area holds the finished upload `id` of `tenant` (one another
    /// node took).
    pub async fn in_area(&self, tenant: &Tenant, id: &str) -> bool {
        let Some(area) = &self.area else { return false };
        valid_id(id) && area.operator.stat(&Self::area_key(area, tenant, id)).await.is_ok()
    }

    /// Put the finished upload `id` at `dest`: a hard link to (or a copy of) this node's
    /// file, or a download from the work area. Returns its size.
    pub async fn fetch(&self, tenant: &Tenant, id: &str, dest: &Path) -> Result<u64, UploadError> {
        let source = Self::data_path(&self.dir(tenant), id).ok_or_else(|| UploadError::NotFound(id.to_string()))?;
        let _ = tokio::fs::remove_file(dest).await;
        if tokio::fs::metadata(&source).await.is_ok() {
            if tokio::fs::hard_link(&source, dest).await.is_err() {
                tokio::fs::copy(&source, dest).await?;
            }
        } else if let Some(area) = &self.area {
            crate::storage::work_area::download(&area.operator, &Self::area_key(area, tenant, id), dest)
                .await
                .map_err(|_| UploadError::NotFound(id.to_string()))?;
        } else {
            return Err(UploadError::NotFound(id.to_string()));
        }
        Ok(tokio::fs::metadata(dest).await?.len())
    }

    /// Copy a finished upload to the work area, if there is one.
    async fn share(&self, tenant: &Tenant, id: &str) -> Result<(), UploadError> {
        let Some(area) = &self.area else { return Ok(()) };
        let path = self.dir(tenant).join(id);
        crate::storage::upload_to(&area.operator, &path, &Self::area_key(area, tenant, id), "application/octet-stream")
            .await
            .map_err(|e| UploadError::Io(std::io::Error::other(format!("copying the upload to the work area: {e}"))))
    }

    /// Remove an upload's copy in the work area, if there is one.
    pub(super) async fn unshare(&self, tenant_namespace: &str, id: &str) {
        let Some(area) = &self.area else { return };
        let key = area.key(&format!("uploads/{tenant_namespace}/{id}"));
        if let Err(err) = area.operator.delete(&key).await {
            tracing::warn!(upload = id, %err, "an upload's copy in the work area could not be deleted");
        }
    }

    fn info_path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.info"))
    }

    fn expiry_ms(&self) -> i64 {
        crate::db::now_ms().saturating_add(self.expiry.as_millis().min(i64::MAX as u128) as i64)
    }

    /// A new, empty upload of `length` bytes.
    pub async fn create(&self, tenant: &Tenant, length: u64, metadata: &str) -> Result<Upload, UploadError> {
        if length > self.max_bytes {
            return Err(UploadError::TooLarge { length, limit: self.max_bytes });
        }
        check_metadata(metadata)?;
        let dir = self.dir(tenant);
        tokio::fs::create_dir_all(&dir).await?;
        let (count, declared) = held(&dir).await?;
        if count >= self.max_per_tenant {
            return Err(UploadError::TooMany { limit: self.max_per_tenant });
        }
        if let Some(quota) = self.quota {
            if declared.saturating_add(length) > quota {
                return Err(UploadError::QuotaExceeded { used: declared, length, quota });
            }
        }
        let id = crate::random_id(ID_LEN);
        let upload = Upload {
            id: id.clone(),
            length,
            metadata: metadata.to_string(),
            created_ms: crate::db::now_ms(),
            expires_ms: self.expiry_ms(),
            held_by: Vec::new(),
            offset: 0,
        };
        // The bytes' file first: an `.info` always has its file.
        tokio::fs::File::create_new(dir.join(&id)).await?.sync_all().await?;
        write_info(&dir, &upload).await?;
        if upload.finished() {
            self.share(tenant, &id).await?;
        }
        Ok(upload)
    }

    /// The upload `id` of `tenant`, if it exists and has not expired (or a job holds it).
    pub async fn get(&self, tenant: &Tenant, id: &str) -> Result<Upload, UploadError> {
        let dir = self.dir(tenant);
        let upload = read(&dir, id).await?.ok_or_else(|| UploadError::NotFound(id.to_string()))?;
        if upload.expires_ms < crate::db::now_ms() && upload.held_by.is_empty() {
            return Err(UploadError::NotFound(id.to_string()));
        }
        Ok(upload)
    }

    /// Append the bytes of `body` at `offset`; returns the new offset, synced to disk.
    /// A body that breaks off keeps what arrived (the client resumes from there), unless
    /// it came with a checksum, which only a whole chunk can meet.
    pub async fn append<S, E>(&self, tenant: &Tenant, id: &str, offset: u64, body: S, checksum: Option<Checksum>) -> Result<u64, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let dir = self.dir(tenant);
        let upload = self.get(tenant, id).await?;
        let path = Self::data_path(&dir, id).ok_or_else(|| UploadError::NotFound(id.to_string()))?;
        let file = std::fs::OpenOptions::new().append(true).open(&path).map_err(|e| not_found_or(e, id))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(UploadError::Busy),
            Err(std::fs::TryLockError::Error(err)) => return Err(err.into()),
        }
        // The offset under the lock is the one that counts.
        let start = file.metadata()?.len();
        if start != offset {
            return Err(UploadError::OffsetMismatch { sent: offset, actual: start });
        }
        let room = upload.length - start;
        let written = super::chunk_writer::write(file, start, room, body, checksum.as_ref().map(|c| c.algorithm), upload.length).await?;
        if let (Some(checksum), Some(digest)) = (&checksum, &written.digest) {
            if written.broken || digest.as_ref() != checksum.expected.as_slice() {
                let file = written.file;
                tokio::task::spawn_blocking(move || file.set_len(start).and_then(|()| file.sync_data()))
                    .await
                    .map_err(|e| UploadError::Io(std::io::Error::other(e)))??;
                if written.broken {
                    return Ok(start);
                }
                return Err(UploadError::ChecksumMismatch { algorithm: checksum.name });
            }
        }
        drop(written.file);
        tracing::debug!(upload = id, start, bytes = written.bytes, broken = written.broken, "an upload's chunk is on disk");
        // Read again: the upload may have been deleted meanwhile (its `.info` is not
        // brought back), or held.
        let mut upload = read(&dir, id).await?.ok_or_else(|| UploadError::NotFound(id.to_string()))?;
        upload.expires_ms = self.expiry_ms();
        write_info(&dir, &upload).await?;
        if upload.finished() {
            // Before the last offset is acknowledged: a job may name it at once.
            self.share(tenant, id).await?;
        }
        Ok(upload.offset)
    }

    /// Hold a finished upload for `job`: kept while the job runs, then for another expiry.
    pub async fn hold(&self, tenant: &Tenant, id: &str, job: &str) -> Result<(), UploadError> {
        let dir = self.dir(tenant);
        let mut upload = self.get(tenant, id).await?;
        upload.held_by.push(job.to_string());
        upload.expires_ms = self.expiry_ms();
        write_info(&dir, &upload).await
    }

    /// Delete an upload (termination); a writer still sending to it loses its file.
    pub async fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), UploadError> {
        let dir = self.dir(tenant);
        self.get(tenant, id).await?;
        remove(&dir, id).await?;
        self.unshare(tenant.namespace(), id).await;
        Ok(())
    }
}

/// How many uploads a tenant's directory holds, and their declared bytes in all.
async fn held(dir: &Path) -> Result<(usize, u64), UploadError> {
    let (mut count, mut bytes) = (0, 0u64);
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".info")) else { continue };
        if let Ok(Some(upload)) = read(dir, id).await {
            count += 1;
            bytes = bytes.saturating_add(upload.length);
        }
    }
    Ok((count, bytes))
}

/// Remove an upload's files, the `.info` last (an `.info` always has its file).
pub(super) async fn remove(dir: &Path, id: &str) -> std::io::Result<()> {
    for path in [dir.join(id), Uploads::info_path(dir, id)] {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The upload `id` in `dir`, with its offset; `None` when there is none.
pub(super) async fn read(dir: &Path, id: &str) -> Result<Option<Upload>, UploadError> {
    let Some(path) = Uploads::data_path(dir, id) else { return Ok(None) };
    let text = match tokio::fs::read(Uploads::info_path(dir, id)).await {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let mut upload: Upload =
        serde_json::from_slice(&text).map_err(|e| UploadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    upload.id = id.to_string();
    upload.offset = match tokio::fs::metadata(&path).await {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    Ok(Some(upload))
}

/// Write an upload's `.info` whole or not at all: a temporary, synced, renamed.
async fn write_info(dir: &Path, upload: &Upload) -> Result<(), UploadError> {
    let text = serde_json::to_vec(upload).map_err(|e| UploadError::Io(std::io::Error::other(e)))?;
    let temporary = dir.join(format!("{}.info.{}", upload.id, crate::random_id(8)));
    let mut file = tokio::fs::File::create(&temporary).await?;
    file.write_all(&text).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&temporary, Uploads::info_path(dir, &upload.id)).await?;
    Ok(())
}

fn not_found_or(err: std::io::Error, id: &str) -> UploadError {
    if err.kind() == std::io::ErrorKind::NotFound { UploadError::NotFound(id.to_string()) } else { err.into() }
}

/// Whether `id` can be an upload id: alphanumerics only, so it names a file in the
/// tenant's directory and nothing else.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `Upload-Metadata`: comma-separated pairs of a key (no spaces or commas) and an
/// optional base64 value; at most 4 KiB.
fn check_metadata(metadata: &str) -> Result<(), UploadError> {
    use base64::Engine as _;
    if metadata.len() > 4096 {
        return Err(UploadError::Invalid("Upload-Metadata is longer than 4096 bytes.".into()));
    }
    if metadata.trim().is_empty() {
        return Ok(());
    }
    for pair in metadata.split(',') {
        let mut parts = pair.trim().split(' ');
        let key = parts.next().unwrap_or("");
        let value = parts.next();
        if key.is_empty() || parts.next().is_some() || value.is_some_and(|v| base64::engine::general_purpose::STANDARD.decode(v).is_err()) {
            return Err(UploadError::Invalid("Upload-Metadata must be comma-separated 'key base64value' pairs.".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Uploads {
        Uploads { root: dir.to_path_buf(), max_bytes: 100, expiry: Duration::from_secs(60), quota: Some(150), max_per_tenant: 3, area: None }
    }

    fn body(chunks: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter(chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn chunks_append_at_their_offset_and_tenants_are_apart() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = store(dir.path());
        let (a, b) = (Tenant::of_key("a"), Tenant::of_key("b"));
        assert!(matches!(uploads.create(&a, 101, "").await, Err(UploadError::TooLarge { length: 101, limit: 100 })));
        let upload = uploads.create(&a, 10, "filename aGVsbG8ubXA0").await.unwrap();
        assert_eq!(upload.metadata_value("filename").as_deref(), Some("hello.mp4"));
        assert_eq!(uploads.append(&a, &upload.id, 0, body(&[b"abc", b"de"]), None).await.unwrap(), 5);
        assert!(matches!(uploads.append(&a, &upload.id, 0, body(&[b"x"]), None).await, Err(UploadError::OffsetMismatch { sent: 0, actual: 5 })));
        assert!(matches!(uploads.append(&a, &upload.id, 5, body(&[b"123456"]), None).await, Err(UploadError::PastLength { length: 10 })));
        assert!(matches!(uploads.get(&b, &upload.id).await, Err(UploadError::NotFound(_))));
        assert!(matches!(uploads.append(&b, &upload.id, 5, body(&[b"x"]), None).await, Err(UploadError::NotFound(_))));
        let bad = Checksum::parse("sha256 AAAA").unwrap();
        assert!(matches!(uploads.append(&a, &upload.id, 5, body(&[b"fghij"]), Some(bad)).await, Err(UploadError::ChecksumMismatch { .. })));
        assert_eq!(uploads.get(&a, &upload.id).await.unwrap().offset, 5);
        use base64::Engine as _;
        let digest = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, b"fghij"));
        let good = Checksum::parse(&format!("sha256 {digest}")).unwrap();
        assert_eq!(uploads.append(&a, &upload.id, 5, body(&[b"fg", b"hij"]), Some(good)).await.unwrap(), 10);
        let done = uploads.get(&a, &upload.id).await.unwrap();
        assert!(done.finished());
        assert_eq!(std::fs::read(uploads.dir(&a).join(&upload.id)).unwrap(), b"abcdefghij");
        uploads.delete(&a, &upload.id).await.unwrap();
        assert!(matches!(uploads.get(&a, &upload.id).await, Err(UploadError::NotFound(_))));
    }

    #[tokio::test]
    async fn a_tenant_holds_a_bounded_number_and_size_of_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = store(dir.path());
        let (a, b) = (Tenant::of_key("a"), Tenant::of_key("b"));
        let first = uploads.create(&a, 100, "").await.unwrap();
        assert!(matches!(uploads.create(&a, 60, "").await, Err(UploadError::QuotaExceeded { used: 100, length: 60, quota: 150 })));
        uploads.create(&b, 100, "").await.unwrap();
        uploads.create(&a, 50, "").await.unwrap();
        uploads.delete(&a, &first.id).await.unwrap();
        uploads.create(&a, 1, "").await.unwrap();
        uploads.create(&a, 1, "").await.unwrap();
        assert!(matches!(uploads.create(&a, 1, "").await, Err(UploadError::TooMany { limit: 3 })));
    }

    #[test]
    fn ids_and_metadata_are_checked() {
        assert!(valid_id("abcXYZ019") && !valid_id("../x") && !valid_id("") && !valid_id("a.info"));
        assert!(check_metadata("filename aGVsbG8=,filetype dmlkZW8vbXA0,is_confidential").is_ok());
        assert!(check_metadata("filename not base64!").is_err());
        assert!(Checksum::parse("md5 AAAA").is_err());
    }
}
