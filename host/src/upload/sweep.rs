//! The expiry of uploads (`limits.upload_expiry_secs`): an upload that has not changed
//! for that long is deleted, unless a job that takes it as input has not ended; then it
//! is deleted once every such job has. Files left by a crash (bytes without an `.info`,
//! a temporary `.info`) go too. A sweep is idempotent: every process that shares the data
//! directory may run one, and a file already gone is skipped.

use std::path::Path;
use std::time::{Duration, SystemTime};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use super::Uploads;
use crate::db::{job, status::JobStatus};

/// Sweep every `interval` (a quarter of the expiry, from 1 s to 5 min) until the process ends.
pub async fn run(uploads: Uploads, db: DatabaseConnection) {
    let interval = (uploads.expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(300));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep(&uploads, &db).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired uploads deleted"),
            Err(err) => tracing::warn!(%err, "the upload sweep failed; it runs again"),
        }
    }
}

/// One sweep; returns how many uploads it deleted.
pub async fn sweep(uploads: &Uploads, db: &DatabaseConnection) -> Result<u64, super::UploadError> {
    let mut removed = 0;
    let Ok(mut tenants) = tokio::fs::read_dir(uploads.root()).await else { return Ok(0) };
    let now = crate::db::now_ms();
    while let Some(tenant) = tenants.next_entry().await? {
        if !tenant.file_type().await.is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = tenant.path();
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".info") {
                let Some(upload) = super::store::read(&dir, id).await? else {
                    // An `.info` whose bytes are gone (deleted while a chunk was written).
                    if stale(&entry, uploads.expiry).await {
                        super::store::remove(&dir, id).await?;
                    }
                    continue;
                };
                if upload.expires_ms >= now || held(db, &upload.held_by).await? {
                    continue;
                }
                super::store::remove(&dir, id).await?;
                uploads.unshare(&tenant.file_name().to_string_lossy(), id).await;
                tracing::info!(upload = id, offset = upload.offset, length = upload.length, "upload expired");
                removed += 1;
            } else if stale(&entry, uploads.expiry).await && leftover(&dir, &name) {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
    Ok(removed)
}

/// Whether any of `jobs` has not ended.
async fn held(db: &DatabaseConnection, jobs: &[String]) -> Result<bool, super::UploadError> {
    if jobs.is_empty() {
        return Ok(false);
    }
    let running: Option<String> = job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(job::Column::Id.is_in(jobs.iter().cloned()))
        .filter(job::Column::Status.eq(JobStatus::Starting))
        .into_tuple()
        .one(db)
        .await
        .map_err(|e| super::UploadError::Io(std::io::Error::other(e)))?;
    Ok(running.is_some())
}

/// A file of no upload: bytes without their `.info`, or a temporary `.info` a crash left.
fn leftover(dir: &Path, name: &str) -> bool {
    name.contains(".info.") || (Uploads::data_path(dir, name).is_some() && !dir.join(format!("{name}.info")).exists())
}

async fn stale(entry: &tokio::fs::DirEntry, expiry: Duration) -> bool {
    let cutoff = SystemTime::now().checked_sub(expiry).unwrap_or(SystemTime::UNIX_EPOCH);
    entry.metadata().await.ok().and_then(|m| m.modified().ok()).is_some_and(|modified| modified < cutoff)
}
