//! The retention of `local` files (`limits.local_retention_days`): every
//! `limits.local_sweep_interval_secs`, each tenant's files last modified longer ago than
//! the retention are deleted, and the directories that leaves empty (never a tenant's
//! own). A sweep is idempotent: every process that has the files directory may run one,
//! at the same time as another, and a file already gone is simply skipped.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub files: u64,
    pub bytes: u64,
}

/// Sweep `files_dir` (one directory per tenant) every `interval`, deleting files older
/// than `retention`. Runs until the process ends.
pub async fn run(files_dir: std::path::PathBuf, retention: Duration, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let dir = files_dir.clone();
        let result = tokio::task::spawn_blocking(move || {
            let cutoff = SystemTime::now().checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
            sweep(&dir, cutoff)
        })
        .await;
        match result {
            Ok(swept) if swept.files > 0 => {
                tracing::info!(files = swept.files, bytes = swept.bytes, retention_days = retention.as_secs() / 86_400, "local files past their retention deleted")
            }
            Ok(_) => tracing::debug!("local retention sweep: nothing to delete"),
            Err(err) => tracing::error!(%err, "the local retention sweep stopped"),
        }
    }
}

/// Delete every tenant's files modified before `cutoff`. Blocking.
pub fn sweep(files_dir: &Path, cutoff: SystemTime) -> Swept {
    let mut total = Swept::default();
    let Ok(tenants) = std::fs::read_dir(files_dir) else { return total };
    for tenant in tenants.flatten() {
        if !tenant.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let root = tenant.path();
        let swept = sweep_dir(&root, cutoff);
        super::local_quota::freed(&root, swept.bytes);
        total.files += swept.files;
        total.bytes += swept.bytes;
    }
    total
}

/// Delete the files below `dir` modified before `cutoff`, and the directories below it
/// left empty. Symbolic links are neither followed nor kept past the cutoff either.
fn sweep_dir(dir: &Path, cutoff: SystemTime) -> Swept {
    let mut swept = Swept::default();
    let Ok(entries) = std::fs::read_dir(dir) else { return swept };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            let inner = sweep_dir(&path, cutoff);
            swept.files += inner.files;
            swept.bytes += inner.bytes;
            // Only an empty directory goes; one a job writes to meanwhile stays.
            if inner.files > 0 {
                let _ = std::fs::remove_dir(&path);
            }
        } else if meta.modified().is_ok_and(|modified| modified < cutoff) {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    swept.files += 1;
                    swept.bytes += if meta.is_file() { meta.len() } else { 0 };
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => tracing::warn!(path = %path.display(), %err, "a local file past its retention could not be deleted"),
            }
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, days: u64) {
        let when = SystemTime::now() - Duration::from_secs(days * 86_400);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
    }

    #[test]
    fn old_files_go_and_new_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path();
        std::fs::create_dir_all(files.join("tA/old/deep")).unwrap();
        std::fs::create_dir_all(files.join("tA/mixed")).unwrap();
        std::fs::create_dir_all(files.join("tB")).unwrap();
        for (path, days) in [("tA/old/deep/a.mp4", 10), ("tA/mixed/b.mp4", 10), ("tA/mixed/c.mp4", 0), ("tB/d.mp4", 10), ("tB/e.mp4", 1)] {
            std::fs::write(files.join(path), b"12345").unwrap();
            age(&files.join(path), days);
        }
        let cutoff = SystemTime::now() - Duration::from_secs(3 * 86_400);
        assert_eq!(sweep(files, cutoff), Swept { files: 3, bytes: 15 });
        assert!(!files.join("tA/old").exists(), "emptied directories go");
        assert!(files.join("tA/mixed/c.mp4").exists() && files.join("tB/e.mp4").exists());
        assert!(files.join("tA").is_dir() && files.join("tB").is_dir(), "a tenant's own directory stays");
        assert_eq!(sweep(files, cutoff), Swept::default(), "a second sweep finds nothing");
        assert_eq!(sweep(&files.join("none"), cutoff), Swept::default());
    }
}
