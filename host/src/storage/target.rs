//! What a storage block resolves to, as the storage layer takes it: where files go, and,
//! for a service that uploads each file itself, the one thing storage asks of it. The
//! storage plugins answer these (`crate::plugins`); nothing here knows of them.

use std::path::Path;

use futures::future::BoxFuture;

use super::StorageError;

/// Where a storage block's files go.
#[derive(Clone)]
pub enum StorageTarget {
    /// Streamed natively through opendal, with a scheme the service was granted.
    Opendal {
        /// The scheme's canonical opendal name (`s3`).
        scheme: String,
        /// The service's configuration (credentials among them).
        options: Vec<(String, String)>,
        /// What an object's URL starts with.
        url_base: String,
    },
    /// The host's own storage below its data directory.
    Local,
    /// The service uploads each file itself, through a [`SelfUpload`].
    Custom,
}

impl std::fmt::Debug for StorageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Option values hold credentials: show their names only.
            StorageTarget::Opendal { scheme, options, url_base } => f
                .debug_struct("Opendal")
                .field("scheme", scheme)
                .field("options", &options.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
                .field("url_base", url_base)
                .finish(),
            StorageTarget::Local => f.write_str("Local"),
            StorageTarget::Custom => f.write_str("Custom"),
        }
    }
}

/// A storage service that uploads each file itself (a [`StorageTarget::Custom`]).
pub trait SelfUpload: Send + Sync {
    /// The service's name, for messages.
    fn service(&self) -> &str;

    /// Upload `file` to `key` (already checked); returns the file's URL. A failure is
    /// a [`StorageError::UploadFailed`] whose message the user can act on.
    fn upload<'a>(&'a self, key: &'a str, content_type: &'a str, file: &'a Path) -> BoxFuture<'a, Result<String, StorageError>>;
}
