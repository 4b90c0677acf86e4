//! Wasabi, an S3-compatible service, as a Copra storage plugin: the whole provider.
//! `{"service": "wasabi", "region": "eu-central-1", "bucket": "...", "credentials":
//! {"access_key_id": "...", "secret_access_key": "..."}}`, plus Coconut's S3 options
//! (`acl`, `storage_class`, `cache_control`, `expires`, `secure`) and `endpoint`.
//! Grant it its scheme: `[plugins.wasabi-storage] schemes = ["s3"]`.

use copra_sdk::s3::{S3Config, Service};
use copra_sdk::storage::{Storage, Target};
use copra_sdk::{Error, Json, config};

/// Where Wasabi lives; `{region}` and `{bucket}` come from the storage block.
const WASABI: Service = Service {
    endpoint: "https://s3.{region}.wasabisys.com",
    url: "https://s3.{region}.wasabisys.com/{bucket}",
    default_region: Some("us-east-1"),
    signing_region: None,
};

/// The plugin: one service, answered with a target the host streams to.
pub struct WasabiStorage;

impl Storage for WasabiStorage {
    const NAME: &'static str = "wasabi-storage";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn services() -> Vec<String> {
        vec!["wasabi".into()]
    }

    /// Field-level errors come from `config::parse`; the target from the SDK.
    fn resolve(spec: &Json) -> Result<Target, Error> {
        let block: S3Config = config::parse(spec)?;
        Ok(Target::Opendal(block.target(&WASABI)?))
    }
}

copra_sdk::storage_plugin!(WasabiStorage);
