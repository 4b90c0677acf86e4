//! Where an ultrafast job's chunks and pieces are staged for every worker: a directory
//! they all share (`[worker] ultrafast_dir`; the data directory of a single process), or
//! an object store (`[worker] ultrafast_store`) for machines that share no file system.
//!
//! Files are named, not pathed: `put` stages a local file under a name, `get` gives a
//! local path to a staged one (the staged file itself in a directory; a download into
//! the caller's scratch directory from a store), `remove` clears the job's whole area.

use std::path::{Path, PathBuf};

use opendal::Operator;

use crate::storage::work_area::WorkArea;

/// Chunk files uploaded to a store side by side.
const UPLOADS_AT_ONCE: usize = 4;

/// The file holding chunk `idx` of the input, in a staging area that has one per chunk.
fn chunk_name(idx: i32) -> String {
    format!("chunk-{idx}.nut")
}

/// A chunk's piece of one output, or of one rung of a package output (named by the
/// chunk's row, so a piece left by an earlier coordinator's chunk is never mistaken for
/// this one's); its side file of timestamps is the same name with `.times`.
pub(super) fn piece_name(chunk_id: i64, position: i32, rung: Option<usize>) -> String {
    match rung {
        None => format!("c{chunk_id}-o{position}.nut"),
        Some(rung) => format!("c{chunk_id}-o{position}-r{rung}.nut"),
    }
}

/// The side file of a piece (see `media::piece`).
pub(super) fn times_name(piece: &str) -> String {
    format!("{piece}.times")
}

/// The local files the coordinator cuts the input's chunks into, before they are staged.
pub(super) fn chunk_files(work: &Path, count: usize) -> Vec<PathBuf> {
    (0..count).map(|idx| work.join(chunk_name(idx as i32))).collect()
}

/// Why a file could not be staged, fetched or cleared; each a sentence for the job's
/// log and, through the job's failure, its user.
#[derive(Debug, thiserror::Error)]
pub(super) enum StageError {
    #[error("the job id {0:?} cannot name a staging area")]
    JobId(String),
    #[error("creating the staging directory {}: {source}", dir.display())]
    CreateDir { dir: PathBuf, source: std::io::Error },
    #[error("staging {name} in {}: {source}", dir.display())]
    Copy { name: String, dir: PathBuf, source: std::io::Error },
    #[error("uploading {name} to the ultrafast store: {source}")]
    Upload { name: String, source: crate::storage::StorageError },
    #[error("downloading {name} from the ultrafast store: {source}")]
    Download { name: String, source: anyhow::Error },
    #[error("a chunk upload stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("removing {}: {source}", dir.display())]
    RemoveDir { dir: PathBuf, source: std::io::Error },
    #[error("removing {root} from the ultrafast store: {source}")]
    RemoveStore { root: String, source: opendal::Error },
}

/// One job's staging area.
#[derive(Clone)]
pub(super) enum Stage {
    /// `<ultrafast_dir>/<job id>/`.
    Dir(PathBuf),
    /// `<prefix>/<job id>/` in the operator's bucket.
    Store { operator: Operator, root: String },
}

/// Job ids are the host's own, but they name a directory or a key: only plain ones do.
fn plain(job_id: &str) -> bool {
    !job_id.is_empty() && job_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Stage {
    /// The staging area of `job_id`: in the store when there is one, else below `dirs`.
    pub fn of(dirs: &Path, store: Option<&WorkArea>, job_id: &str) -> Result<Stage, StageError> {
        if !plain(job_id) {
            return Err(StageError::JobId(job_id.to_string()));
        }
        Ok(match store {
            Some(area) => {
                Stage::Store { operator: area.operator.clone(), root: area.key(&format!("{job_id}/")) }
            }
            None => Stage::Dir(dirs.join(job_id)),
        })
    }

    /// Whether chunks are staged as files of their own (a store), rather than the
    /// whole input once (a shared directory).
    pub fn cuts_chunks(&self) -> bool {
        matches!(self, Stage::Store { .. })
    }

    /// Where a file to be staged is best written: the directory itself, or `scratch`.
    pub fn local_dir<'a>(&'a self, scratch: &'a Path) -> &'a Path {
        match self {
            Stage::Dir(dir) => dir,
            Stage::Store { .. } => scratch,
        }
    }

    /// Make the area ready for files.
    pub async fn create(&self) -> Result<(), StageError> {
        match self {
            Stage::Dir(dir) => tokio::fs::create_dir_all(dir).await.map_err(|source| StageError::CreateDir { dir: dir.clone(), source }),
            Stage::Store { .. } => Ok(()),
        }
    }

    /// Stage `file` under `name` (a file already in the directory under that name stays).
    pub async fn put(&self, name: &str, file: &Path) -> Result<(), StageError> {
        match self {
            Stage::Dir(dir) => {
                let staged = dir.join(name);
                if staged == file {
                    return Ok(());
                }
                let _ = tokio::fs::remove_file(&staged).await;
                if tokio::fs::hard_link(file, &staged).await.is_err() {
                    tokio::fs::copy(file, &staged).await.map_err(|source| StageError::Copy { name: name.to_string(), dir: dir.clone(), source })?;
                }
                Ok(())
            }
            Stage::Store { operator, root } => {
                let key = format!("{root}{name}");
                crate::storage::upload_to(operator, file, &key, "application/octet-stream")
                    .await
                    .map_err(|source| StageError::Upload { name: name.to_string(), source })
            }
        }
    }

    /// A local path to the staged file `name`: the staged file itself in a directory, a
    /// download to `scratch/<name>` from a store.
    pub async fn get(&self, name: &str, scratch: &Path) -> Result<PathBuf, StageError> {
        match self {
            Stage::Dir(dir) => Ok(dir.join(name)),
            Stage::Store { operator, root } => {
                let key = format!("{root}{name}");
                let local = scratch.join(name);
                crate::storage::work_area::download(operator, &key, &local).await.map_err(|source| {
                    let _ = std::fs::remove_file(&local);
                    StageError::Download { name: name.to_string(), source }
                })?;
                Ok(local)
            }
        }
    }

    /// The size of the staged file `name`, if it is there.
    pub async fn size(&self, name: &str) -> Option<u64> {
        match self {
            Stage::Dir(dir) => tokio::fs::metadata(dir.join(name)).await.ok().filter(|m| m.is_file()).map(|m| m.len()),
            Stage::Store { operator, root } => operator.stat(&format!("{root}{name}")).await.ok().map(|m| m.content_length()),
        }
    }

    /// Stage the `count` chunk files of [`chunk_files`] (a few at once); returns their
    /// total size. The local copies stay (in the coordinator's work directory, removed
    /// with it) for the chunks this node encodes: see [`Self::get_chunk`].
    pub async fn put_chunks(&self, work: &Path, count: usize) -> Result<u64, StageError> {
        let (mut bytes, mut uploads) = (0u64, tokio::task::JoinSet::<Result<u64, StageError>>::new());
        let joined = |done: Result<Result<u64, StageError>, tokio::task::JoinError>| done.map_err(StageError::from).and_then(|r| r);
        for (idx, path) in chunk_files(work, count).into_iter().enumerate() {
            if uploads.len() >= UPLOADS_AT_ONCE
                && let Some(done) = uploads.join_next().await
            {
                bytes += joined(done)?;
            }
            let stage = self.clone();
            uploads.spawn(async move {
                let size = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
                stage.put(&chunk_name(idx as i32), &path).await?;
                Ok(size)
            });
        }
        while let Some(done) = uploads.join_next().await {
            bytes += joined(done)?;
        }
        Ok(bytes)
    }

    /// A local path to the input of chunk `idx`: its file in a store (the copy the
    /// coordinator cut, when it is this node and `work` is its work directory; else a
    /// download to `scratch`), or the whole input in a directory.
    pub async fn get_chunk(&self, idx: i32, work: &Path, scratch: &Path) -> Result<PathBuf, StageError> {
        if !self.cuts_chunks() {
            return self.get("input", scratch).await;
        }
        let (own, name) = (work.join(chunk_name(idx)), chunk_name(idx));
        // The tasks exist only once every chunk file is cut and staged, so a file here is
        // whole; one an earlier attempt left (another input, other cuts) differs in size.
        if let (Ok(local), Stage::Store { operator, root }) = (tokio::fs::metadata(&own).await, self)
            && local.is_file()
            && operator.stat(&format!("{root}{name}")).await.is_ok_and(|m| m.content_length() == local.len())
        {
            tracing::debug!(chunk = idx, "chunk read from the coordinator's own copy");
            return Ok(own);
        }
        self.get(&name, scratch).await
    }

    /// Local paths to the staged pieces `names`, in order (from a store, downloaded to
    /// `scratch` with their side files).
    pub async fn get_pieces(&self, names: &[String], scratch: &Path) -> Result<Vec<PathBuf>, StageError> {
        let mut pieces = Vec::with_capacity(names.len());
        for name in names {
            self.get(&times_name(name), scratch).await?;
            pieces.push(self.get(name, scratch).await?);
        }
        Ok(pieces)
    }

    /// Remove the local copies [`Self::get_pieces`] downloaded (staged files in a
    /// directory stay until [`Self::remove`]).
    pub async fn discard_fetched(&self, pieces: &[PathBuf]) {
        if !self.cuts_chunks() {
            return;
        }
        for piece in pieces {
            let _ = tokio::fs::remove_file(piece).await;
            let mut times = piece.as_os_str().to_owned();
            times.push(".times");
            let _ = tokio::fs::remove_file(PathBuf::from(times)).await;
        }
    }

    /// Remove the job's whole area.
    pub async fn remove(&self) -> Result<(), StageError> {
        match self {
            Stage::Dir(dir) => match tokio::fs::remove_dir_all(dir).await {
                Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(StageError::RemoveDir { dir: dir.clone(), source }),
                _ => Ok(()),
            },
            Stage::Store { operator, root } => {
                operator.remove_all(root).await.map_err(|source| StageError::RemoveStore { root: root.clone(), source })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_stage_links_gets_in_place_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let stage = Stage::of(tmp.path(), None, "job-1").unwrap();
        stage.create().await.unwrap();
        let source = tmp.path().join("input.mp4");
        std::fs::write(&source, b"bytes").unwrap();
        stage.put("input", &source).await.unwrap();
        let got = stage.get("input", tmp.path()).await.unwrap();
        assert_eq!((stage.size("input").await, stage.size("missing").await), (Some(5), None));
        assert_eq!(got, tmp.path().join("job-1").join("input"));
        assert_eq!(std::fs::read(&got).unwrap(), b"bytes");
        assert!(!stage.cuts_chunks());
        stage.remove().await.unwrap();
        assert!(!tmp.path().join("job-1").exists());
        stage.remove().await.unwrap();
    }

    #[tokio::test]
    async fn a_store_stage_puts_gets_and_removes_under_its_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("bucket");
        std::fs::create_dir(&root).unwrap();
        let operator = Operator::via_iter(opendal::Scheme::Fs, [("root".to_string(), root.display().to_string())]).unwrap();
        let area = WorkArea { operator, prefix: "work/uf".into() };
        assert!(Stage::of(tmp.path(), Some(&area), "../x").is_err());
        let stage = Stage::of(tmp.path(), Some(&area), "job-2").unwrap();
        assert!(stage.cuts_chunks());
        let source = tmp.path().join("piece");
        std::fs::write(&source, b"piece bytes").unwrap();
        stage.put("c1-o0.nut", &source).await.unwrap();
        assert!(root.join("work/uf/job-2/c1-o0.nut").exists());
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let got = stage.get("c1-o0.nut", &scratch).await.unwrap();
        assert_eq!(got, scratch.join("c1-o0.nut"));
        assert_eq!(std::fs::read(&got).unwrap(), b"piece bytes");
        let missing = stage.get("chunk-9.nut", &scratch).await.unwrap_err().to_string();
        assert!(missing.contains("downloading chunk-9.nut"), "{missing}");
        assert!(!scratch.join("chunk-9.nut").exists());
        // A piece comes with its side file; the local copies go once joined.
        std::fs::write(tmp.path().join("piece.times"), b"0 0 1").unwrap();
        stage.put(&times_name("c1-o0.nut"), &tmp.path().join("piece.times")).await.unwrap();
        std::fs::remove_file(&got).unwrap();
        let pieces = stage.get_pieces(&[piece_name(1, 0, None)], &scratch).await.unwrap();
        assert_eq!(std::fs::read(scratch.join("c1-o0.nut.times")).unwrap(), b"0 0 1");
        assert_eq!(stage.size("c1-o0.nut").await, Some(11));
        assert_eq!(stage.size("c9-o0.nut").await, None);
        stage.discard_fetched(&pieces).await;
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
        // A chunk: the coordinator's own copy when it is the staged one, else downloaded.
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).unwrap();
        std::fs::write(work.join("chunk-0.nut"), b"chunk zero").unwrap();
        stage.put("chunk-0.nut", &work.join("chunk-0.nut")).await.unwrap();
        assert_eq!(stage.get_chunk(0, &work, &scratch).await.unwrap(), work.join("chunk-0.nut"));
        std::fs::write(work.join("chunk-0.nut"), b"stale, other cuts").unwrap();
        assert_eq!(stage.get_chunk(0, &work, &scratch).await.unwrap(), scratch.join("chunk-0.nut"));
        assert_eq!(std::fs::read(scratch.join("chunk-0.nut")).unwrap(), b"chunk zero");
        stage.remove().await.unwrap();
        assert!(!root.join("work/uf/job-2/c1-o0.nut").exists());
        assert!(!root.join("work/uf/job-2/c1-o0.nut.times").exists());
        assert!(!root.join("work/uf/job-2/chunk-0.nut").exists());
    }
}
