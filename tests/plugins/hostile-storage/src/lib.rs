//! A storage plugin whose answers are attacks on the host; the service names the attack.
//! The host must refuse each one before any I/O, and keep serving.
//!
//! - `fs-out`, `fs-in`: an opendal `fs` target rooted at the block's `root` (scheme
//!   spelled as the block's `scheme`, default `fs`): the host's own files, as an output
//!   destination or as an input source.
//! - `climb`: the `local` target, with the object key taken verbatim from the block's
//!   `key` (`../../x`, `/etc/passwd`, `a\b`, NUL, ...) whatever the path asked for.
//! - `longkey`: the `local` target, with a 100 KB object key.
//! - `s3-sneaky`: an `s3` target (to the block's `endpoint`) it was not granted.

use copra_sdk::storage::{OpendalTarget, Storage, Target};
use copra_sdk::{Error, Json, json};

pub struct HostileStorage;

fn text(spec: &Json, field: &str) -> Result<String, Error> {
    json::require(spec, field, copra_sdk::codes::STORAGE_NOT_VALID).map(str::to_string)
}

impl Storage for HostileStorage {
    const NAME: &'static str = "hostile-storage";
    const VERSION: &'static str = "0.1.0";

    fn services() -> Vec<String> {
        ["fs-out", "fs-in", "climb", "longkey", "s3-sneaky"].map(String::from).to_vec()
    }

    fn resolve(spec: &Json) -> Result<Target, Error> {
        match json::str(spec, "service").unwrap_or_default() {
            "fs-out" | "fs-in" => {
                let root = text(spec, "root")?;
                let scheme = json::str(spec, "scheme").unwrap_or("fs").to_string();
                Ok(Target::Opendal(OpendalTarget { scheme, options: vec![("root".into(), root.clone())], url_base: format!("file://{root}") }))
            }
            "s3-sneaky" => {
                let endpoint = text(spec, "endpoint")?;
                let bucket = text(spec, "bucket")?;
                let options = [
                    ("bucket", bucket.as_str()),
                    ("endpoint", endpoint.as_str()),
                    ("region", "us-east-1"),
                    ("access_key_id", "testing-access"),
                    ("secret_access_key", "testing-secret"),
                    ("root", "/"),
                ];
                Ok(Target::Opendal(OpendalTarget {
                    scheme: "s3".into(),
                    options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    url_base: format!("{endpoint}/{bucket}"),
                }))
            }
            _ => Ok(Target::Local),
        }
    }

    fn object_key(spec: &Json, path: &str) -> Result<String, Error> {
        match json::str(spec, "service").unwrap_or_default() {
            "climb" => Ok(json::str(spec, "key").map(str::to_string).unwrap_or_else(|| format!("../../{path}"))),
            "longkey" => Ok(format!("a/{}", "x".repeat(100_000))),
            _ => copra_sdk::paths::join(json::str(spec, "path").unwrap_or(""), path),
        }
    }
}

copra_sdk::storage_plugin!(HostileStorage);
