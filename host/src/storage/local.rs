//! Outputs of the `local` storage service: every file is written under a temporary name
//! in its final directory, flushed to disk, then renamed over the final name. A reader of
//! `/files/...` sees the old file, no file, or the whole new one, never part of one; a
//! crash leaves at most a temporary (`.<name>.<random>.copra-part`), which a retry of
//! the job removes before it writes the same key again. With a quota
//! (`limits.local_quota_bytes`), a write reserves its bytes under the tenant's quota
//! before it starts and while it copies ([`super::local_quota`]).

use std::path::{Path, PathBuf};

use rand::Rng;

use super::StorageError;
use super::local_quota::Reservation;

/// What temporaries end with; `/files/...` never serves a name that does.
pub const PART_SUFFIX: &str = ".copra-part";

/// Where `key` lives below `root` (the key was checked: no `..`, no empty segment).
fn final_path(root: &Path, key: &str) -> PathBuf {
    root.join(key.trim_start_matches('/'))
}

/// The prefix of every temporary of the file named `name`.
fn part_prefix(name: &str) -> String {
    format!(".{name}.")
}

/// A temporary that stays behind if the write is dropped (a cancelled upload) is removed.
struct Part {
    path: Option<PathBuf>,
}

impl Drop for Part {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(move || {
                        let _ = std::fs::remove_file(path);
                    });
                }
                Err(_) => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// Copy `file` to `key` below `root` through a temporary in the same directory and an
/// atomic rename, within the tenant's `quota` of bytes if it has one.
pub async fn write(root: &Path, file: &Path, key: &str, quota: Option<u64>) -> Result<(), StorageError> {
    let target = final_path(root, key);
    let (dir, name) = split(&target)?;
    tokio::fs::create_dir_all(&dir).await?;
    let random: u64 = rand::rng().random();
    let mut part = Part { path: Some(dir.join(format!("{}{random:016x}{PART_SUFFIX}", part_prefix(&name)))) };
    let temporary = part.path.clone().unwrap_or_default();
    let source = file.to_path_buf();
    let moved = temporary.clone();
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
        let reservation = match quota {
            None => {
                std::fs::copy(&source, &moved)?;
                None
            }
            Some(quota) => Some(copy_within_quota(&root, quota, &source, &moved, size_of_file(&target))?),
        };
        std::fs::File::open(&moved)?.sync_all()?;
        let replaced = size_of_file(&target);
        std::fs::rename(&moved, &target)?;
        if let Some((reservation, written)) = reservation {
            reservation.keep(written, replaced);
        }
        // The rename itself survives a power cut once the directory is synced.
        if let Some(dir) = target.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await
    .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
    part.path = None;
    Ok(())
}

/// Copy `source` to `dest` with its bytes reserved under the tenant's quota: its size
/// before the first byte is written, and more, chunk by chunk, if it turns out longer.
/// Blocking. The reservation and the bytes written, for the caller to keep once the file
/// is in place.
fn copy_within_quota(root: &Path, quota: u64, source: &Path, dest: &Path, replacing: u64) -> Result<(Reservation, u64), StorageError> {
    use std::io::{Read, Write};
    let mut input = std::fs::File::open(source)?;
    let size = input.metadata()?.len();
    let mut reservation = super::local_quota::reserve(root, quota, size, replacing)?;
    let mut output = std::fs::File::create(dest)?;
    let mut buffer = vec![0u8; COPY_CHUNK];
    let mut written = 0u64;
    loop {
        let n = input.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        written += n as u64;
        if written > size {
            reservation.grow(n.min((written - size) as usize) as u64)?;
        }
        output.write_all(&buffer[..n])?;
    }
    output.flush()?;
    Ok((reservation, written))
}

/// The size of the regular file at `path`; 0 if there is none.
fn size_of_file(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).ok().filter(|m| m.is_file()).map_or(0, |m| m.len())
}

/// Bytes copied at a time when a quota is counted.
const COPY_CHUNK: usize = 1 << 20;

/// Remove the temporaries an earlier, interrupted attempt left for `key`.
pub async fn clean_stale(root: &Path, key: &str) -> Result<usize, StorageError> {
    let target = final_path(root, key);
    let (dir, name) = split(&target)?;
    let prefix = part_prefix(&name);
    tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else { continue };
            if is_part_of(file_name, &prefix) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    })
    .await
    .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
    .map_err(StorageError::Io)
}

/// `.<name>.<16 hex digits>.copra-part`
fn is_part_of(file_name: &str, prefix: &str) -> bool {
    file_name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(PART_SUFFIX))
        .is_some_and(|random| random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether a path served under `/files/` names a temporary.
pub fn is_temporary(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|name| name.starts_with('.') && name.ends_with(PART_SUFFIX))
}

fn split(target: &Path) -> Result<(PathBuf, String), StorageError> {
    let name = target.file_name().and_then(|n| n.to_str()).map(str::to_string);
    match (target.parent(), name) {
        (Some(dir), Some(name)) => Ok((dir.to_path_buf(), name)),
        _ => Err(StorageError::Config(format!("the object key '{}' names no file", target.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_leaves_only_the_final_file_and_a_retry_removes_stale_parts() {
        let root = tempfile::tempdir().unwrap();
        let source = root.path().join("source.bin");
        std::fs::write(&source, b"whole file").unwrap();
        let files = root.path().join("files");
        write(&files, &source, "/out/a.mp4", None).await.unwrap();
        assert_eq!(std::fs::read(files.join("out/a.mp4")).unwrap(), b"whole file");
        let names: Vec<_> = std::fs::read_dir(files.join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.mp4")]);

        // What a killed attempt leaves behind, and a neighbour that is not a.mp4's.
        std::fs::write(files.join("out/.a.mp4.00112233445566ff.copra-part"), b"half").unwrap();
        std::fs::write(files.join("out/.ab.mp4.00112233445566ff.copra-part"), b"other").unwrap();
        assert_eq!(clean_stale(&files, "/out/a.mp4").await.unwrap(), 1);
        assert!(files.join("out/.ab.mp4.00112233445566ff.copra-part").exists());
        assert_eq!(clean_stale(&files, "/none/a.mp4").await.unwrap(), 0);
    }

    #[test]
    fn temporaries_are_recognised() {
        assert!(is_temporary("ns/out/.a.mp4.00112233445566ff.copra-part"));
        assert!(!is_temporary("ns/out/a.mp4"));
        assert!(is_part_of(".a.mp4.00112233445566ff.copra-part", ".a.mp4."));
        assert!(!is_part_of(".a.mp4.x.copra-part", ".a.mp4."));
    }

    #[tokio::test]
    async fn a_write_past_the_quota_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source.bin");
        std::fs::write(&source, vec![7u8; 600]).unwrap();
        let root = dir.path().join("files");
        write(&root, &source, "/a.bin", Some(1000)).await.unwrap();
        // Replacing a file counts its new size only.
        write(&root, &source, "/a.bin", Some(1000)).await.unwrap();
        let err = write(&root, &source, "/b.bin", Some(1000)).await.unwrap_err().to_string();
        assert!(err.contains("local_quota_bytes"), "{err}");
        let names: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.bin")], "no temporary, no partial file");
        std::fs::write(&source, vec![7u8; 400]).unwrap();
        write(&root, &source, "/b.bin", Some(1000)).await.unwrap();
    }
}
