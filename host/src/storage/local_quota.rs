//! The per-tenant quota of `local` files (`limits.local_quota_bytes`). This process knows
//! how many bytes each tenant's directory holds: it measures a directory the first time
//! it writes there, then counts what it writes, replaces and sweeps. A write reserves its
//! size before it starts (the size of a finished file is known) and reserves more if the
//! file turns out longer while it is copied; a write that would take a tenant past its
//! quota fails, naming the key, and leaves nothing behind. Another tenant's quota is its
//! own: one tenant's full directory never stops another's writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// A write that does not fit.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "this API key's local files would take {wanted} bytes, more than local_quota_bytes ({quota} bytes) allows \
     (limits.local_quota_bytes; {used} bytes are used): delete some, or ask the operator for more"
)]
pub struct QuotaExceeded {
    pub quota: u64,
    pub used: u64,
    pub wanted: u64,
}

/// Bytes held under each tenant's directory, as this process counts them.
#[derive(Debug, Default)]
struct Usage {
    roots: Mutex<HashMap<PathBuf, u64>>,
}

fn usage() -> &'static Usage {
    static USAGE: OnceLock<Usage> = OnceLock::new();
    USAGE.get_or_init(Usage::default)
}

/// Bytes of the regular files below `dir` (0 if it does not exist). Blocking.
pub fn measure(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => measure(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Bytes reserved under one tenant's quota for one write. Dropped without [`keep`],
/// the reservation is given back (the write failed).
///
/// [`keep`]: Reservation::keep
#[derive(Debug)]
pub struct Reservation {
    root: PathBuf,
    quota: u64,
    bytes: u64,
    /// Bytes of the file this write replaces: they count until the new file is in place,
    /// but not against the write's fit.
    credit: u64,
    kept: bool,
}

/// Reserve `bytes` under the quota of the tenant whose files are in `root`, for a write
/// that replaces a file of `replacing` bytes (0 for a new file). Blocking (the first
/// write of a tenant measures its directory).
pub fn reserve(root: &Path, quota: u64, bytes: u64, replacing: u64) -> Result<Reservation, QuotaExceeded> {
    let known = usage().roots.lock().unwrap_or_else(|p| p.into_inner()).contains_key(root);
    // Measured outside the lock: a large directory must not stall other tenants' writes.
    let measured = if known { 0 } else { measure(root) };
    let mut roots = usage().roots.lock().unwrap_or_else(|p| p.into_inner());
    let used = roots.entry(root.to_path_buf()).or_insert(measured);
    let wanted = used.saturating_add(bytes).saturating_sub(replacing);
    if wanted > quota {
        return Err(QuotaExceeded { quota, used: *used, wanted });
    }
    *used = used.saturating_add(bytes);
    Ok(Reservation { root: root.to_path_buf(), quota, bytes, credit: replacing, kept: false })
}

impl Reservation {
    /// Reserve `more` bytes for the same write (the file was longer than its size said).
    pub fn grow(&mut self, more: u64) -> Result<(), QuotaExceeded> {
        let mut roots = usage().roots.lock().unwrap_or_else(|p| p.into_inner());
        let used = roots.entry(self.root.clone()).or_default();
        let wanted = used.saturating_add(more).saturating_sub(self.credit);
        if wanted > self.quota {
            return Err(QuotaExceeded { quota: self.quota, used: *used, wanted });
        }
        *used = used.saturating_add(more);
        self.bytes += more;
        Ok(())
    }

    /// The write is done: what it reserved stays used, less `replaced` bytes (the
    /// file it replaced), and less what it reserved but did not write.
    pub fn keep(mut self, written: u64, replaced: u64) {
        self.kept = true;
        let unused = self.bytes.saturating_sub(written);
        freed(&self.root, unused.saturating_add(replaced));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.kept {
            freed(&self.root, self.bytes);
        }
    }
}

/// `bytes` under `root` were deleted (a sweep, a replaced file).
pub fn freed(root: &Path, bytes: u64) {
    if bytes == 0 {
        return;
    }
    let mut roots = usage().roots.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(used) = roots.get_mut(root) {
        *used = used.saturating_sub(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_against_their_tenant_only() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(a.join("x")).unwrap();
        std::fs::write(a.join("x/old.bin"), vec![0u8; 600]).unwrap();
        assert_eq!(measure(&a), 600);
        assert_eq!(measure(&dir.path().join("none")), 0);

        // 600 already there: 400 more fit in 1000, 401 do not.
        let err = reserve(&a, 1000, 401, 0).unwrap_err();
        assert_eq!((err.quota, err.used, err.wanted), (1000, 600, 1001));
        assert!(err.to_string().contains("local_quota_bytes"), "{err}");
        assert!(reserve(&a, 1000, 600, 200).is_ok(), "a file replacing one of 200 bytes needs 400 more");
        let mut first = reserve(&a, 1000, 300, 0).unwrap();
        assert!(first.grow(101).is_err(), "growing past the quota fails");
        first.grow(100).unwrap();
        assert!(reserve(&a, 1000, 1, 0).is_err(), "full");
        assert!(reserve(&b, 1000, 1000, 0).is_ok(), "b has its own quota");
        // Written 350 of the 400 reserved, replacing a file of 200: 600 + 350 - 200.
        first.keep(350, 200);
        assert!(reserve(&a, 1000, 251, 0).is_err());
        let dropped = reserve(&a, 1000, 250, 0).unwrap();
        drop(dropped);
        assert!(reserve(&a, 1000, 250, 0).is_ok(), "a failed write gives its reservation back");
        freed(&a, 750);
        assert!(reserve(&a, 1000, 1000, 0).is_ok());
    }
}
