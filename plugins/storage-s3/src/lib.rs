//! Storage plugin for Amazon S3 and the S3-compatible services Coconut names
//! (`dospaces`, `backblaze`, `impossiblecloud`, `contabo`, `cdn77`), plus `local`, the
//! embedded default that writes below the server's data directory, and `coconut`,
//! Coconut's test storage, which is the same place.
//!
//! It only validates and describes: the host streams bytes through opendal natively.
//! Each service's block is Coconut's (`bucket`, `region`, `credentials`, `path`, and
//! `secure`, `acl`, `storage_class`, `expires`, `cache_control`); an `endpoint` field
//! overrides the service's own (a private endpoint, or a test server).

use copra_sdk::s3::S3Config;
use copra_sdk::storage::{Storage, Target};
use copra_sdk::{Error, Json, config, json};

mod services;

pub struct StorageS3;

impl Storage for StorageS3 {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn services() -> Vec<String> {
        let s3 = services::ALL.iter().map(|(name, _)| name.to_string());
        s3.chain(["local".to_string(), "coconut".to_string()]).collect()
    }

    fn resolve(spec: &Json) -> Result<Target, Error> {
        let service = json::str(spec, "service").ok_or_else(|| Error::storage("The storage field service is missing."))?;
        if matches!(service, "local" | "coconut") {
            return Ok(Target::Local);
        }
        let Some((_, at)) = services::ALL.iter().find(|(name, _)| *name == service) else {
            return Err(Error::storage(format!("The storage service '{service}' is not supported by storage-s3.")));
        };
        let mut block: S3Config = config::parse(spec)?;
        if service == "backblaze" {
            // B2 has no object ACLs (a bucket is public or private, and `PutObjectAcl`
            // fails): an `acl` carried over from another service is ignored.
            block.acl = None;
        }
        Ok(Target::Opendal(block.target(at)?))
    }
}

copra_sdk::storage_plugin!(StorageS3);

#[cfg(test)]
mod tests;
