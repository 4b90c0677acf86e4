//! Tenants: each API key is one. Its jobs are stored under its owner id (a hash of the
//! key); its `local` files live in a directory named by a namespace derived from that
//! owner id, which names neither the key nor the owner id, so URLs reveal nothing.
//! Every path that touches `local` files (uploads, inputs, `/files/...`) asks this module
//! where the tenant's files are; none joins its own.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One API key's slice of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    owner: String,
    namespace: String,
}

impl Tenant {
    /// The tenant of a key.
    pub fn of_key(key: &str) -> Self {
        Self::of_owner(&owner_of(key))
    }

    /// The tenant a job was stored under (`jobs.owner`).
    pub fn of_owner(owner: &str) -> Self {
        let digest = Sha256::new().chain_update(b"copra tenant namespace\0").chain_update(owner.as_bytes()).finalize();
        Tenant { owner: owner.to_string(), namespace: format!("t{}", &hex::encode(digest)[..24]) }
    }

    /// The id jobs are stored under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The directory name of this tenant's `local` files; also the first segment of
    /// their URLs (`/files/<namespace>/...`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where this tenant's `local` files live below the server's `files/` directory.
    pub fn files_root(&self, files_dir: &Path) -> PathBuf {
        files_dir.join(&self.namespace)
    }

    /// The URL prefix of this tenant's `local` files.
    pub fn files_url(&self, public_url: &str) -> String {
        format!("{}/files/{}", public_url.trim_end_matches('/'), self.namespace)
    }
}

/// The owner id of a key: its SHA-256, so the key itself never reaches the database.
pub fn owner_of(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_stable_distinct_and_reveal_nothing() {
        let a = Tenant::of_key("key-a");
        assert_eq!(a, Tenant::of_owner(&owner_of("key-a")));
        assert_ne!(a.namespace(), Tenant::of_key("key-b").namespace());
        assert!(!a.namespace().contains("key-a") && !owner_of("key-a").contains(&a.namespace()[1..]));
        assert_eq!(a.namespace().len(), 25);
        assert!(a.namespace().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a.files_root(Path::new("/d/files")), Path::new("/d/files").join(a.namespace()));
        assert_eq!(a.files_url("http://h:1/"), format!("http://h:1/files/{}", a.namespace()));
    }
}
