//! Uploads: each output's files to the job's storage (or its own `url`), as soon as
//! they are made. Pictures go to their numbered paths, sprites get their WebVTT map,
//! and a package's segments are sent while the ladder is still being encoded, its
//! playlists and manifests last, so that no player sees a playlist whose segments are
//! missing.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::vtt;
use crate::db::output;
use crate::job::OutputSpec;
use crate::job::spec::numbered_path;
use crate::confined::{Engine, MediaFailure};
use crate::media::{Package, Produced, QualityReport, SpriteTile};
use crate::plugins::Plugins;
use crate::storage::{self, Destination};

/// Files sent at once; thumbnails and segments are small and many.
const PARALLEL_UPLOADS: usize = 8;

/// Why an output's files did not all reach its storage; each a sentence for the user,
/// recorded as the output's error.
#[derive(Debug, thiserror::Error)]
pub(super) enum OutputUploadError {
    /// The storage plugin did not give a key for a path.
    #[error("{0}")]
    Key(#[from] crate::plugins::PluginError),
    #[error("{0}")]
    Storage(#[from] storage::StorageError),
    #[error("The output has neither a 'path' nor a 'url'.")]
    NoTarget,
    #[error("The output has no 'path'.")]
    NoPath,
    #[error("No picture was produced.")]
    NoPicture,
    #[error("writing the WebVTT map: {0}")]
    WebVtt(std::io::Error),
    #[error("No storage path for {}", .0.display())]
    NoPackagePath(PathBuf),
    #[error("Uploading a segment failed: {0}")]
    Segment(Box<OutputUploadError>),
    #[error("an upload stopped: {0}")]
    Task(String),
    #[error("The encoded file could not be read back: {0}")]
    ReadBack(MediaFailure),
}

/// The job's storage: where relative paths go, through its storage plugin.
#[derive(Clone)]
pub(super) struct Store {
    pub plugins: Arc<Plugins>,
    pub destination: Destination,
    pub service: String,
    pub storage_json: String,
}

impl Store {
    /// Send one file to `path` (relative to the storage block); returns its URL.
    pub async fn put(&self, file: &Path, path: &str, mime_type: &str) -> Result<String, OutputUploadError> {
        let key = self.plugins.storage_object_key(&self.service, &self.storage_json, path).await?;
        let url = self.destination.upload(file, &key, mime_type).await?;
        if let Ok(stored) = tokio::fs::metadata(file).await {
            crate::metrics::output_bytes(stored.len());
        }
        Ok(url)
    }
}

/// Segments of a package sent while it is still being made, at most
/// [`PARALLEL_UPLOADS`] at once (a slow store must not pile up thousands of uploads).
pub(super) struct Segments {
    started: HashSet<PathBuf>,
    tasks: JoinSet<Result<String, OutputUploadError>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Default for Segments {
    fn default() -> Self {
        Segments { started: HashSet::new(), tasks: JoinSet::new(), slots: Arc::new(tokio::sync::Semaphore::new(PARALLEL_UPLOADS)) }
    }
}

impl Segments {
    /// Start sending a finished segment of the package written under `dir`.
    pub fn send(&mut self, store: &Store, spec: &OutputSpec, dir: &Path, file: PathBuf) {
        let Some(path) = package_path(spec, dir, &file) else {
            tracing::warn!(file = %file.display(), "segment outside the package's directories");
            return;
        };
        if !self.started.insert(file.clone()) {
            return;
        }
        let (store, slots) = (store.clone(), self.slots.clone());
        self.tasks.spawn(crate::plugins::carry(async move {
            let _slot = slots.acquire_owned().await.map_err(|e| OutputUploadError::Task(e.to_string()))?;
            store.put(&file, &path, mime_type(&file)).await
        }));
    }
}

/// Everything one output's upload needs, owned, so it can run as its own task.
pub(super) struct Upload {
    pub http: crate::net::HttpClient,
    /// Reads back what was made, for the output's metadata.
    pub engine: Engine,
    /// The job's id, naming the engine's processes.
    pub label: String,
    pub store: Store,
    pub row: output::Model,
    pub spec: OutputSpec,
    /// The target path the engine wrote to (a file, or a directory of pictures/package).
    pub path: PathBuf,
    pub produced: Produced,
    pub mime_type: String,
    /// A package's segments already on their way.
    pub segments: Segments,
    /// The description of the file that stands for the output, when the engine read
    /// it back as it finished (see `Produced::described_by`); else it is read here.
    pub described: Option<Result<Value, MediaFailure>>,
    /// The output's quality, when it asked for it (see `quality`).
    pub measured: Option<super::measured::Measured>,
    /// The output's loudness, when its audio has a loudness plan (see `loudness`).
    pub loudness: Option<super::loudness::OutputLoudness>,
}

/// Where an output ended up: one `url`, or `urls` (pictures: strings; packages:
/// `{"format", "url"}` objects; sprites also have the WebVTT map as `url`), and the
/// metadata of what was made.
pub(super) struct Uploaded {
    pub url: Option<String>,
    pub urls: Option<Value>,
    pub metadata: Value,
}

impl Upload {
    /// Upload what the output produced, then probe it for the output's metadata.
    pub async fn run(mut self) -> (output::Model, Result<Uploaded, OutputUploadError>) {
        let segments = std::mem::take(&mut self.segments);
        let result = match &self.produced {
            Produced::File => self.upload_file().await,
            Produced::Images { files, tiles } => self.upload_pictures(files, tiles).await,
            Produced::Package(package) => self.upload_package(package, segments).await,
        };
        (self.row, result)
    }

    async fn upload_file(&self) -> Result<Uploaded, OutputUploadError> {
        let url = match (&self.spec.url, &self.spec.path) {
            (Some(url), _) => {
                storage::put_http(&self.http, url, &self.path, &self.mime_type).await?;
                // Reported without the signature that allowed the upload.
                crate::secret::location_of(url)
            }
            (None, Some(path)) => self.store.put(&self.path, path, &self.mime_type).await?,
            (None, None) => return Err(OutputUploadError::NoTarget),
        };
        let mut metadata = self.probe_metadata(&self.path).await?;
        self.add_measurements(&mut metadata).await?;
        Ok(Uploaded { url: Some(url), urls: None, metadata })
    }

    /// The `quality` of the output's metadata: its scores (with the URL of a file's
    /// per-frame CSV, sent beside it), or why it was not measured.
    async fn quality(&self, measured: &super::measured::Measured) -> Result<Value, OutputUploadError> {
        let mut report = measured.report();
        // An output sent to its own URL has no storage to put the CSV in.
        if let (super::measured::Measured::File { per_frame: Some(csv), .. }, Some(path), QualityReport::Measured(scores)) =
            (measured, &self.spec.path, &mut report)
        {
            scores.per_frame_url = Some(self.store.put(csv, &super::measured::csv_storage_path(path), "text/csv").await?);
        }
        Ok(json!(report))
    }

    /// Put `measured` into `metadata` as its `quality`, and the output's loudness as its
    /// `loudness`.
    async fn add_measurements(&self, metadata: &mut Value) -> Result<(), OutputUploadError> {
        if let Some(measured) = &self.measured {
            let quality = self.quality(measured).await?;
            if let Value::Object(fields) = metadata {
                fields.insert("quality".into(), quality);
            }
        }
        if let Some(loudness) = &self.loudness {
            let report = loudness.report(&self.engine, &self.label).await;
            if let Value::Object(fields) = metadata {
                fields.insert("loudness".into(), report);
            }
        }
        Ok(())
    }

    /// Upload each picture to its numbered path (`thumb_%.2d.jpg` → `thumb_01.jpg`, ...)
    /// and, for sprites, the WebVTT map that points into the sheets.
    async fn upload_pictures(&self, files: &[PathBuf], tiles: &[SpriteTile]) -> Result<Uploaded, OutputUploadError> {
        let pattern = self.spec.path.as_deref().ok_or(OutputUploadError::NoPath)?;
        let pattern = numbered_pattern(pattern, files.len());
        let jobs: Vec<(PathBuf, String)> =
            files.iter().enumerate().map(|(i, file)| (file.clone(), numbered_path(&pattern, i as u32 + 1))).collect();
        let urls = self.put_each(jobs).await?;
        let url = if tiles.is_empty() {
            None
        } else {
            let vtt_path = self.spec.string_param("vtt").map(str::to_string).unwrap_or_else(|| default_vtt_path(&pattern));
            let map = self.path.join("sprite.vtt");
            tokio::fs::write(&map, vtt::render(tiles, &urls)).await.map_err(OutputUploadError::WebVtt)?;
            Some(self.store.put(&map, &vtt_path, "text/vtt").await?)
        };
        let first = files.first().ok_or(OutputUploadError::NoPicture)?;
        let mut metadata = self.probe_metadata(first).await?;
        self.add_measurements(&mut metadata).await?;
        Ok(Uploaded { url, urls: Some(json!(urls)), metadata })
    }

    /// Wait for the segments already sent, send the rest of the package's media, then
    /// its playlists and manifests (in the order the engine listed them: masters last).
    async fn upload_package(&self, package: &Package, segments: Segments) -> Result<Uploaded, OutputUploadError> {
        let Segments { started, mut tasks, .. } = segments;
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            let result = done.map_err(|e| OutputUploadError::Task(e.to_string())).and_then(|r| r);
            if let Err(err) = result {
                first_error.get_or_insert(err);
            }
        }
        if let Some(err) = first_error {
            return Err(OutputUploadError::Segment(Box::new(err)));
        }
        let mut media = Vec::new();
        let mut manifests = Vec::new();
        for relative in &package.files {
            let file = self.path.join(relative);
            if started.contains(&file) {
                continue;
            }
            let path = package_path(&self.spec, &self.path, &file).ok_or_else(|| OutputUploadError::NoPackagePath(relative.clone()))?;
            if is_manifest(&file) { manifests.push((file, path)) } else { media.push((file, path)) }
        }
        self.put_each(media).await?;
        let mut urls = Vec::new();
        for (file, path) in manifests {
            let url = self.store.put(&file, &path, mime_type(&file)).await?;
            let format = match &file {
                f if package.dash_manifest.as_ref().is_some_and(|m| f.ends_with(m)) => Some("dash"),
                f if package.hls_master.as_ref().is_some_and(|m| f.ends_with(m)) => Some("hls"),
                _ => None,
            };
            if let Some(format) = format {
                urls.push(json!({"format": format, "url": url}));
            }
        }
        // Coconut lists DASH before HLS.
        urls.sort_by_key(|u| u["format"] != "dash");
        let master = package.hls_master.as_ref().or(package.dash_manifest.as_ref()).map(|m| self.path.join(m));
        let mut metadata = match master {
            Some(master) => self.probe_metadata(&master).await.unwrap_or(Value::Null),
            None => Value::Null,
        };
        self.add_measurements(&mut metadata).await?;
        Ok(Uploaded { url: None, urls: Some(json!(urls)), metadata })
    }

    /// The ffprobe-shaped description of a produced file: the engine's, when it read
    /// this very file back, else from an engine of its own.
    async fn probe_metadata(&self, file: &Path) -> Result<Value, OutputUploadError> {
        let probed = match &self.described {
            Some(described) if self.produced.described_by(&self.path).as_deref() == Some(file) => described.clone(),
            _ => self.engine.probe_output(&self.label, file).await.map(|(_, metadata)| metadata).map_err(|e| MediaFailure::from(&e)),
        };
        probed.map_err(OutputUploadError::ReadBack)
    }

    /// Upload `(file, path)` pairs, several at once, in order; URLs come back in order.
    async fn put_each(&self, jobs: Vec<(PathBuf, String)>) -> Result<Vec<String>, OutputUploadError> {
        // Owned pairs: a stream of futures borrowing from an iterator is not `Send`-able.
        futures::stream::iter(jobs)
            .map(|(file, path)| async move { self.store.put(&file, &path, mime_type(&file)).await })
            .buffered(PARALLEL_UPLOADS)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }
}


/// The storage path of a file of a package: `<dir>/hls/720p/segment_00001.ts` goes
/// below the output's `hls.path`, `<dir>/dash/...` below its `dash.path`.
fn package_path(spec: &OutputSpec, dir: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(dir).ok()?;
    let mut parts = relative.components();
    let Some(Component::Normal(block)) = parts.next() else { return None };
    let base = spec.package_path(block.to_str()?)?;
    let rest: Vec<&str> = parts.map(|c| c.as_os_str().to_str()).collect::<Option<_>>()?;
    Some(format!("{}/{}", base.trim_end_matches('/'), rest.join("/")))
}

fn is_manifest(file: &Path) -> bool {
    file.extension().is_some_and(|e| e == "m3u8" || e == "mpd")
}

/// Content types of the files a package is made of.
fn mime_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mpd") => "application/dash+xml",
        Some("ts") => "video/mp2t",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("vtt") => "text/vtt",
        Some("jpg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

/// A path for `count` files: as given when it has a number placeholder (`%d`,
/// `%.2d`, `#num#`) or names one file; else numbered before its extension
/// (`thumb.jpg` → `thumb_%d.jpg`) so pictures do not overwrite each other.
fn numbered_pattern(path: &str, count: usize) -> String {
    if count <= 1 || numbered_path(path, 1) != numbered_path(path, 2) {
        return path.to_string();
    }
    match path.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => format!("{stem}_%d.{ext}"),
        _ => format!("{path}_%d"),
    }
}

/// Where a sprite's WebVTT map goes when the output does not say: beside the sheets.
fn default_vtt_path(pattern: &str) -> String {
    match pattern.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/thumbnails.vtt"),
        None => "thumbnails.vtt".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_pictures_never_share_a_path() {
        assert_eq!(numbered_pattern("thumb_%.2d.jpg", 10), "thumb_%.2d.jpg");
        assert_eq!(numbered_pattern("/t/#num#.png", 3), "/t/#num#.png");
        assert_eq!(numbered_pattern("/t/poster.jpg", 1), "/t/poster.jpg");
        assert_eq!(numbered_pattern("/t/thumb.jpg", 4), "/t/thumb_%d.jpg");
        assert_eq!(numbered_pattern("/t.d/thumb", 4), "/t.d/thumb_%d");
    }

    #[test]
    fn vtt_goes_beside_the_sheets() {
        assert_eq!(default_vtt_path("/sprites/sheet_%d.jpg"), "/sprites/thumbnails.vtt");
        assert_eq!(default_vtt_path("sheet_%d.jpg"), "thumbnails.vtt");
    }

    #[test]
    fn package_files_go_below_their_block() {
        let spec: crate::job::JobSpec = serde_json::from_value(json!({
            "input": {"raw": {}},
            "storage": {"service": "s3"},
            "outputs": [{"key": "httpstream", "format": "httpstream", "params": {"hls": {"path": "/hls/"}, "dash": {"path": "out/dash"}}}]
        }))
        .unwrap();
        let spec = &spec.outputs[0];
        let dir = Path::new("/work/output-0");
        assert_eq!(package_path(spec, dir, &dir.join("hls/720p/segment_00001.ts")).as_deref(), Some("/hls/720p/segment_00001.ts"));
        assert_eq!(package_path(spec, dir, &dir.join("dash/master.mpd")).as_deref(), Some("out/dash/master.mpd"));
        assert_eq!(package_path(spec, dir, &dir.join("other/x")), None);
        assert_eq!(package_path(spec, dir, Path::new("/elsewhere/hls/x")), None);
    }
}
