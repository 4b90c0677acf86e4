//! Storage plugin for cloud object stores the host streams to natively through
//! opendal: `azure` (Azure Blob Storage), `gcs` (Google Cloud Storage), and `rackspace`
//! / `swift` (Rackspace Cloud Files, OpenStack Swift; the host signs in); and `sftp`,
//! which the host streams with its own SSH client (the host key pinned).
//!
//! It only validates a storage block and describes its target; the host checks that
//! target (granted scheme, endpoint under the outbound policy, credentials only from
//! the block) before any I/O. Each provider reads its block into a typed config (a doc
//! comment on every field, credentials as `Secret`s that `Debug` hides) with the SDK's
//! `config::parse`, whose errors name the field.

mod azure;
mod common;
mod gcs;
mod sftp;
mod swift;

use copra_sdk::storage::{Storage, Target};
use copra_sdk::{Error, Json};

pub struct StorageCloud;

impl Storage for StorageCloud {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn services() -> Vec<String> {
        vec!["azure".into(), "gcs".into(), "sftp".into(), "rackspace".into(), "swift".into()]
    }

    fn resolve(block: &Json) -> Result<Target, Error> {
        if !block.is_object() {
            return Err(Error::storage("The storage must be an object."));
        }
        match block.get("service").and_then(Json::as_str).unwrap_or("") {
            "azure" => azure::target(block).map(Target::Opendal),
            "gcs" => gcs::target(block).map(Target::Opendal),
            "sftp" => sftp::target(block).map(Target::Opendal),
            service @ ("rackspace" | "swift") => swift::target(block, service).map(Target::Opendal),
            other => Err(Error::storage(format!("The storage service '{other}' is not supported by storage-cloud."))),
        }
    }
}

copra_sdk::storage_plugin!(StorageCloud);

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;

    #[test]
    fn services_dispatch_and_keys_join_the_prefix() {
        let spec = serde_json::json!({"service":"azure","container":"videos","path":"/out/","credentials":{"account":"acme","access_key":"a2V5"}});
        assert!(matches!(StorageCloud::resolve(&spec), Ok(Target::Opendal(_))));
        assert_eq!(StorageCloud::object_key(&spec, "/720p//a.mp4").unwrap(), "out/720p/a.mp4");
        assert_eq!(StorageCloud::object_key(&spec, "../x").unwrap_err().code, codes::STORAGE_PATH_NOT_VALID);
        assert_eq!(StorageCloud::resolve(&serde_json::json!({"service":"s3"})).unwrap_err().code, codes::STORAGE_NOT_VALID);
        assert_eq!(StorageCloud::resolve(&serde_json::json!([1])).unwrap_err().code, codes::STORAGE_NOT_VALID);
    }
}
