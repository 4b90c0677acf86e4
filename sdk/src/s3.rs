//! The common shape of S3-compatible services: a Coconut storage block (`bucket`,
//! `region`, `credentials`, Coconut's S3 options) plus a [`Service`] that says where the
//! provider's endpoint and public URLs are, turned into the host's opendal `s3` target.
//!
//! ```ignore
//! const SPACES: Service = Service {
//!     endpoint: "https://{region}.digitaloceanspaces.com",
//!     url: "https://{bucket}.{region}.digitaloceanspaces.com",
//!     default_region: Some("nyc3"),
//!     signing_region: None,
//! };
//! let config: S3Config = copra_sdk::config::parse(spec)?;   // field-level errors
//! Ok(Target::Opendal(config.target(&SPACES)?))
//! ```

use serde::Deserialize;

use crate::Secret;
use crate::storage::OpendalTarget;
use crate::{Error, codes};

/// Target options the host applies to each object it writes rather than passing them
/// to opendal (opendal's `s3` service cannot carry them); the host checks their values.
pub mod object_options {
    /// A canned ACL, applied with `PutObjectAcl` once the object is written.
    pub const ACL: &str = "copra.acl";
    /// The object's `Cache-Control` header.
    pub const CACHE_CONTROL: &str = "copra.cache_control";
    /// The object's `Expires` header (an HTTP date).
    pub const EXPIRES: &str = "copra.expires";
}

/// Where one S3-compatible provider lives. `{region}` and `{bucket}` in the templates
/// are replaced by the storage block's (checked) values.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The S3 API endpoint, e.g. `https://{region}.digitaloceanspaces.com`.
    pub endpoint: &'static str,
    /// The public URL of the bucket's root that output URLs start with, e.g.
    /// `https://{bucket}.{region}.digitaloceanspaces.com`.
    pub url: &'static str,
    /// The region when the block names none; `None` makes `region` required.
    pub default_region: Option<&'static str>,
    /// The region requests are signed for when the provider ignores the block's
    /// (e.g. `us-east-1` for Ceph-based stores); `None` signs for the block's region.
    pub signing_region: Option<&'static str>,
}

/// Canned ACLs Coconut documents for S3 (`acl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Acl {
    /// Owner only.
    Private,
    /// Anyone may read.
    PublicRead,
    /// Anyone may read and write.
    PublicReadWrite,
    /// Any authenticated AWS user may read.
    AuthenticatedRead,
    /// EC2 may read AMI bundles.
    AwsExecRead,
    /// The bucket owner may read.
    BucketOwnerRead,
    /// The bucket owner has full control.
    BucketOwnerFullControl,
}

impl Acl {
    /// The `x-amz-acl` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Acl::Private => "private",
            Acl::PublicRead => "public-read",
            Acl::PublicReadWrite => "public-read-write",
            Acl::AuthenticatedRead => "authenticated-read",
            Acl::AwsExecRead => "aws-exec-read",
            Acl::BucketOwnerRead => "bucket-owner-read",
            Acl::BucketOwnerFullControl => "bucket-owner-full-control",
        }
    }
}

/// Storage classes Coconut documents for S3 (`storage_class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    /// The default class.
    Standard,
    /// Reduced redundancy.
    ReducedRedundancy,
    /// Infrequent access.
    StandardIa,
    /// Infrequent access, one zone.
    OnezoneIa,
    /// Tiered automatically.
    IntelligentTiering,
    /// Archive.
    Glacier,
    /// Deep archive.
    DeepArchive,
}

impl StorageClass {
    /// The `x-amz-storage-class` value.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
        }
    }
}

/// The access key pair of an S3-compatible service.
#[derive(Debug, Clone, Deserialize)]
pub struct S3Credentials {
    /// The access key id (Backblaze: the application key id).
    pub access_key_id: String,
    /// The secret access key (Backblaze: the application key).
    pub secret_access_key: Secret,
}

/// A Coconut storage block for an S3-compatible service.
#[derive(Debug, Clone, Deserialize)]
pub struct S3Config {
    /// The bucket files go to; it must exist.
    pub bucket: String,
    /// The provider's region (`nyc3`, `us-west-004`, `eu2`, ...).
    #[serde(default)]
    pub region: Option<String>,
    /// The key pair (required; optional here so that a block missing both its bucket
    /// and its credentials is told about the bucket first).
    #[serde(default)]
    pub credentials: Option<S3Credentials>,
    /// Overrides the provider's endpoint (a test server, a private endpoint); output
    /// URLs are then `{endpoint}/{bucket}/{key}`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// With `endpoint`: address the bucket in the path (default) or as a host name.
    #[serde(default)]
    pub force_path_style: Option<bool>,
    /// Output URLs are `https` unless this is `false` (Coconut's `secure`).
    #[serde(default)]
    pub secure: Option<bool>,
    /// A canned ACL for each object; none leaves the bucket's default.
    #[serde(default)]
    pub acl: Option<Acl>,
    /// The storage class of each object.
    #[serde(default)]
    pub storage_class: Option<StorageClass>,
    /// The `Expires` header of each object (an HTTP date).
    #[serde(default)]
    pub expires: Option<String>,
    /// The `Cache-Control` header of each object.
    #[serde(default)]
    pub cache_control: Option<String>,
}

impl S3Config {
    /// The region: the block's, else the service's default; it must be a host-name label.
    pub fn region(&self, service: &Service) -> Result<String, Error> {
        let region = self.region.as_deref().filter(|r| !r.is_empty()).or(service.default_region);
        let region = region.ok_or_else(|| Error::storage("The storage field region is missing."))?;
        if region.len() > 63 || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::storage("The storage field region is not valid: expected letters, digits and dashes."));
        }
        Ok(region.to_string())
    }

    /// The opendal `s3` target of this block at `service`.
    pub fn target(&self, service: &Service) -> Result<OpendalTarget, Error> {
        let bucket = self.bucket.as_str();
        if bucket.is_empty() || !bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return Err(Error::storage("The storage field bucket is not valid: expected letters, digits, dots and dashes."));
        }
        let credentials = self.credentials.as_ref().ok_or_else(|| {
            Error::credentials("The storage field credentials is missing: it needs an access_key_id and a secret_access_key.")
        })?;
        if credentials.access_key_id.is_empty() {
            return Err(Error::credentials("The storage field credentials.access_key_id is empty."));
        }
        let region = self.region(service)?;
        let fill = |template: &str| template.replace("{region}", &region).replace("{bucket}", bucket);
        let (endpoint, path_style, url) = match self.endpoint.as_deref().filter(|e| !e.is_empty()) {
            Some(endpoint) => {
                let endpoint = checked_endpoint(endpoint)?;
                let path_style = self.force_path_style.unwrap_or(true);
                let url = if path_style { format!("{endpoint}/{bucket}") } else { virtual_host(&endpoint, bucket) };
                (endpoint, path_style, url)
            }
            None => (fill(service.endpoint), !service.endpoint.contains("{bucket}"), fill(service.url)),
        };
        let url_base = match (self.secure, url.strip_prefix("https://")) {
            (Some(false), Some(rest)) => format!("http://{rest}"),
            _ => url,
        };
        let mut options = vec![
            ("bucket", bucket.to_string()),
            ("region", service.signing_region.map(str::to_string).unwrap_or(region)),
            ("endpoint", endpoint),
            ("enable_virtual_host_style", (!path_style).to_string()),
            ("access_key_id", credentials.access_key_id.clone()),
            ("secret_access_key", credentials.secret_access_key.expose().to_string()),
            ("root", "/".to_string()),
            // Never the server's own AWS configuration or instance credentials.
            ("disable_config_load", "true".to_string()),
            ("disable_ec2_metadata", "true".to_string()),
        ];
        if let Some(class) = self.storage_class {
            options.push(("default_storage_class", class.as_str().to_string()));
        }
        if let Some(acl) = self.acl {
            options.push((object_options::ACL, acl.as_str().to_string()));
        }
        for (key, value, field) in [(object_options::CACHE_CONTROL, &self.cache_control, "cache_control"), (object_options::EXPIRES, &self.expires, "expires")] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                if value.len() > 1024 || !value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
                    return Err(Error::new(codes::STORAGE_NOT_VALID, format!("The storage field {field} is not valid: expected a header value.")));
                }
                options.push((key, value.to_string()));
            }
        }
        let options = options.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Ok(OpendalTarget { scheme: "s3".into(), options, url_base })
    }
}

/// An `endpoint` override: an http(s) URL with a host, without a trailing slash.
fn checked_endpoint(endpoint: &str) -> Result<String, Error> {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("", ""));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('@') || rest.contains(['?', '#', ' ']) {
        return Err(Error::storage(format!("The storage field endpoint is not valid: '{endpoint}' is not an http(s) URL.")));
    }
    Ok(endpoint.trim_end_matches('/').to_string())
}

/// `https://host` with `bucket` as a host-name prefix: `https://bucket.host`.
fn virtual_host(endpoint: &str, bucket: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, host)) => format!("{scheme}://{bucket}.{host}"),
        None => endpoint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACES: Service = Service {
        endpoint: "https://{region}.digitaloceanspaces.com",
        url: "https://{bucket}.{region}.digitaloceanspaces.com",
        default_region: Some("nyc3"),
        signing_region: None,
    };

    fn target(spec: &str, service: &Service) -> Result<OpendalTarget, Error> {
        let config: S3Config = crate::config::parse(&serde_json::from_str(spec).unwrap())?;
        config.target(service)
    }

    fn option<'a>(t: &'a OpendalTarget, key: &str) -> Option<&'a str> {
        t.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    const CREDS: &str = r#""credentials":{"access_key_id":"AKID","secret_access_key":"very-secret"}"#;

    #[test]
    fn the_service_templates_make_endpoint_and_urls() {
        let t = target(&format!(r#"{{"bucket":"b","region":"ams3",{CREDS}}}"#), &SPACES).unwrap();
        assert_eq!(t.url_base, "https://b.ams3.digitaloceanspaces.com");
        assert_eq!(option(&t, "endpoint"), Some("https://ams3.digitaloceanspaces.com"));
        assert_eq!(option(&t, "region"), Some("ams3"));
        assert_eq!(option(&t, "enable_virtual_host_style"), Some("false"));
        assert_eq!(option(&t, "secret_access_key"), Some("very-secret"));
        let t = target(&format!(r#"{{"bucket":"b",{CREDS}}}"#), &SPACES).unwrap();
        assert_eq!(t.url_base, "https://b.nyc3.digitaloceanspaces.com", "default region");
        let signed = Service { signing_region: Some("us-east-1"), ..SPACES };
        assert_eq!(option(&target(&format!(r#"{{"bucket":"b",{CREDS}}}"#), &signed).unwrap(), "region"), Some("us-east-1"));
    }

    #[test]
    fn an_endpoint_override_is_path_style_and_secure_false_is_http() {
        let t = target(&format!(r#"{{"bucket":"b","endpoint":"http://127.0.0.1:9000/",{CREDS}}}"#), &SPACES).unwrap();
        assert_eq!(t.url_base, "http://127.0.0.1:9000/b");
        assert_eq!(option(&t, "endpoint"), Some("http://127.0.0.1:9000"));
        let t = target(&format!(r#"{{"bucket":"b","secure":false,{CREDS}}}"#), &SPACES).unwrap();
        assert_eq!(t.url_base, "http://b.nyc3.digitaloceanspaces.com");
        for bad in ["ftp://x", "http://", "http://u:p@x", "nonsense"] {
            let err = target(&format!(r#"{{"bucket":"b","endpoint":"{bad}",{CREDS}}}"#), &SPACES).unwrap_err();
            assert_eq!(err.code, codes::STORAGE_NOT_VALID, "{bad}");
        }
    }

    #[test]
    fn coconut_s3_options_become_target_options() {
        let spec = format!(
            r#"{{"bucket":"b","acl":"public-read","storage_class":"STANDARD_IA","cache_control":"max-age=60","expires":"Thu, 01 Dec 2030 16:00:00 GMT",{CREDS}}}"#
        );
        let t = target(&spec, &SPACES).unwrap();
        assert_eq!(option(&t, "default_storage_class"), Some("STANDARD_IA"));
        assert_eq!(option(&t, object_options::ACL), Some("public-read"));
        assert_eq!(option(&t, object_options::CACHE_CONTROL), Some("max-age=60"));
        assert_eq!(option(&t, object_options::EXPIRES), Some("Thu, 01 Dec 2030 16:00:00 GMT"));
        let err = target(&format!(r#"{{"bucket":"b","acl":"everyone",{CREDS}}}"#), &SPACES).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_NOT_VALID);
        assert!(err.message.contains("acl"), "{}", err.message);
        let err = target(&format!(r#"{{"bucket":"b","cache_control":"a\nb",{CREDS}}}"#), &SPACES).unwrap_err();
        assert!(err.message.contains("cache_control"), "{}", err.message);
    }

    #[test]
    fn credentials_and_region_errors_name_the_field() {
        let err = target(r#"{"bucket":"b"}"#, &SPACES).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
        assert!(err.message.contains("access_key_id"), "{}", err.message);
        let err = target(r#"{"bucket":"b","credentials":{"access_key_id":"k"}}"#, &SPACES).unwrap_err();
        assert_eq!(err.message, "The storage field credentials.secret_access_key is missing.");
        let err = target(r#"{"credentials":{"access_key_id":"k"}}"#, &SPACES).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID, "nested errors come first");
        let no_default = Service { default_region: None, ..SPACES };
        let err = target(&format!(r#"{{"bucket":"b",{CREDS}}}"#), &no_default).unwrap_err();
        assert_eq!((err.code.as_str(), err.message.as_str()), (codes::STORAGE_NOT_VALID, "The storage field region is missing."));
        let err = target(&format!(r#"{{"bucket":"b","region":"x.evil.com/",{CREDS}}}"#), &SPACES).unwrap_err();
        assert!(err.message.contains("region"), "{}", err.message);
        let debug = format!("{:?}", crate::config::parse::<S3Config>(&serde_json::from_str(&format!(r#"{{"bucket":"b",{CREDS}}}"#)).unwrap()).unwrap());
        assert!(!debug.contains("very-secret"), "{debug}");
    }
}
