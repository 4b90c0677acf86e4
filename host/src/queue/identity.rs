//! Who a worker process is in job leases. The configured (or generated) worker id is a
//! node's stable name; the process that holds the lock file `worker.lock` in the data
//! directory owns it, and only that process may take back the name's leases at start
//! (they can only be left over from a process that died). Another process on the same
//! data directory gets the stable id plus an instance id of its own, so two processes
//! never free each other's live leases.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A worker process's identity, valid while it is alive.
pub struct Identity {
    /// The name its leases carry.
    pub id: String,
    /// Whether this process holds the stable id (and so may release its old leases).
    pub owns_stable_id: bool,
    /// Held for the life of the process; the kernel lets go of the lock when it dies.
    _lock: Option<File>,
}

impl Identity {
    pub fn acquire(data_dir: &Path, worker_id: &str) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(data_dir.join("worker.lock"))?;
        // SAFETY: flock on a descriptor this function owns; LOCK_NB never blocks. The
        // std File lock API is not stable on this toolchain's MSRV target for all
        // platforms we build on, and flock's "released when the process dies" is the
        // property wanted.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked {
            Ok(Identity { id: worker_id.to_string(), owns_stable_id: true, _lock: Some(file) })
        } else {
            let id = format!("{worker_id}/{}", crate::random_id(8));
            tracing::warn!(worker_id, instance = %id, "another process on this data directory holds the worker id; running as an instance of it");
            Ok(Identity { id, owns_stable_id: false, _lock: None })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_process_on_the_same_data_dir_gets_an_instance_id() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::acquire(dir.path(), "w1").unwrap();
        assert_eq!((first.id.as_str(), first.owns_stable_id), ("w1", true));
        // flock locks belong to open file descriptions: a second open of the file in
        // this process stands for a second process.
        let second = Identity::acquire(dir.path(), "w1").unwrap();
        assert!(second.id.starts_with("w1/") && !second.owns_stable_id, "{}", second.id);
        drop(first);
        let third = Identity::acquire(dir.path(), "w1").unwrap();
        assert!(third.owns_stable_id, "the lock is free once its holder is gone");
    }
}
