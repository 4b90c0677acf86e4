//! Storage plugin for Amazon S3 and any S3-compatible store (`endpoint`, path-style),
//! plus `local`, the embedded default that writes below the server's data directory.
//!
//! It only validates and describes: the host streams bytes through opendal natively.

use copra_sdk::storage::{OpendalTarget, Storage, Target};
use copra_sdk::{Error, Json};
use serde::Deserialize;

/// The job's `storage` block (or an `input` block with a `service`).
#[derive(Debug, Deserialize)]
struct Spec {
    service: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    bucket: Option<String>,
    /// An S3-compatible endpoint (MinIO, Ceph, R2, ...): path-style addressing.
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    force_path_style: Option<bool>,
    #[serde(default, deserialize_with = "loose_credentials")]
    credentials: Option<Credentials>,
}

/// `credentials` of the wrong shape (a string, an array) count as missing credentials.
fn loose_credentials<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Credentials>, D::Error> {
    let value = Option::<Json>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// Kept loose (any JSON) so that a wrong shape, e.g. a number for a key, is reported as
/// `storage_credentials_not_valid` rather than as a generic parse error.
#[derive(Debug, Deserialize)]
struct Credentials {
    #[serde(default)]
    access_key_id: Option<Json>,
    #[serde(default)]
    secret_access_key: Option<Json>,
}

fn spec(value: &Json) -> Result<Spec, Error> {
    serde_json::from_value(value.clone()).map_err(|e| Error::storage(format!("The storage is not valid: {e}.")))
}

fn s3_target(spec: &Spec) -> Result<OpendalTarget, Error> {
    let bucket = spec.bucket.as_deref().filter(|b| !b.is_empty()).ok_or_else(|| Error::storage("The storage must define a 'bucket'."))?;
    let credentials = spec.credentials.as_ref();
    let key = credentials.and_then(|c| c.access_key_id.as_ref()).and_then(Json::as_str).filter(|k| !k.is_empty());
    let secret = credentials.and_then(|c| c.secret_access_key.as_ref()).and_then(Json::as_str).filter(|k| !k.is_empty());
    let (Some(key), Some(secret)) = (key, secret) else {
        return Err(Error::credentials(
            "The storage credentials are not correct, you must define your 'access_key_id' and 'secret_access_key'.",
        ));
    };
    let region = spec.region.as_deref().filter(|r| !r.is_empty()).unwrap_or("us-east-1");
    let mut options = vec![
        ("bucket".to_string(), bucket.to_string()),
        ("region".to_string(), region.to_string()),
        ("access_key_id".to_string(), key.to_string()),
        ("secret_access_key".to_string(), secret.to_string()),
        ("root".to_string(), "/".to_string()),
        // Never pick up the server's own AWS configuration or instance credentials.
        ("disable_config_load".to_string(), "true".to_string()),
        ("disable_ec2_metadata".to_string(), "true".to_string()),
    ];
    let url_base = match spec.endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => {
            let parsed = url::Url::parse(endpoint)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| Error::storage(format!("The storage endpoint '{endpoint}' is not an http(s) URL.")))?;
            let endpoint = parsed.as_str().trim_end_matches('/').to_string();
            options.push(("endpoint".to_string(), endpoint.clone()));
            // Custom endpoints default to path style: MinIO and most self-hosted stores
            // do not resolve `bucket.host` names.
            if spec.force_path_style.unwrap_or(true) {
                options.push(("enable_virtual_host_style".to_string(), "false".to_string()));
                format!("{endpoint}/{bucket}")
            } else {
                options.push(("enable_virtual_host_style".to_string(), "true".to_string()));
                format!("{}://{bucket}.{}", parsed.scheme(), endpoint.split_once("://").map(|(_, h)| h).unwrap_or(&endpoint))
            }
        }
        None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
    };
    Ok(OpendalTarget { scheme: "s3".into(), options, url_base })
}

pub struct StorageS3;

impl Storage for StorageS3 {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn services() -> Vec<String> {
        vec!["s3".into(), "local".into()]
    }

    fn resolve(value: &Json) -> Result<Target, Error> {
        let spec = spec(value)?;
        match spec.service.as_str() {
            "local" => Ok(Target::Local),
            "s3" => s3_target(&spec).map(Target::Opendal),
            other => Err(Error::storage(format!("The storage service '{other}' is not supported by storage-s3."))),
        }
    }
}

copra_sdk::storage_plugin!(StorageS3);

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;

    fn resolve(spec: &str) -> Result<Target, Error> {
        StorageS3::resolve(&serde_json::from_str(spec).unwrap())
    }

    fn object_key(spec: &str, path: &str) -> Result<String, Error> {
        StorageS3::object_key(&serde_json::from_str(spec).unwrap(), path)
    }

    const S3: &str = r#"{"service":"s3","bucket":"b","path":"/pre/","endpoint":"http://127.0.0.1:9000","credentials":{"access_key_id":"k","secret_access_key":"s"}}"#;

    #[test]
    fn s3_with_endpoint_is_path_style() {
        let Ok(Target::Opendal(t)) = resolve(S3) else { panic!("expected opendal") };
        assert_eq!(t.scheme, "s3");
        assert_eq!(t.url_base, "http://127.0.0.1:9000/b");
        assert!(t.options.contains(&("endpoint".into(), "http://127.0.0.1:9000".into())));
    }

    #[test]
    fn aws_urls_are_virtual_hosted() {
        let spec = r#"{"service":"s3","bucket":"b","region":"eu-west-1","credentials":{"access_key_id":"k","secret_access_key":"s"}}"#;
        let Ok(Target::Opendal(t)) = resolve(spec) else { panic!("expected opendal") };
        assert_eq!(t.url_base, "https://b.s3.eu-west-1.amazonaws.com");
    }

    #[test]
    fn missing_credentials_are_named() {
        let err = resolve(r#"{"service":"s3","bucket":"b"}"#).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
        assert!(err.message.contains("access_key_id"));
    }

    fn option<'a>(t: &'a OpendalTarget, key: &str) -> Option<&'a str> {
        t.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn s3_options_are_opendal_config_keys() {
        let Ok(Target::Opendal(t)) = resolve(S3) else { panic!("expected opendal") };
        assert_eq!(option(&t, "bucket"), Some("b"));
        assert_eq!(option(&t, "region"), Some("us-east-1"), "region defaults to us-east-1");
        assert_eq!(option(&t, "access_key_id"), Some("k"));
        assert_eq!(option(&t, "secret_access_key"), Some("s"));
        assert_eq!(option(&t, "root"), Some("/"));
        assert_eq!(option(&t, "disable_config_load"), Some("true"));
        assert_eq!(option(&t, "enable_virtual_host_style"), Some("false"));
        let spec = r#"{"service":"s3","bucket":"b","endpoint":"https://s3.example.com/","force_path_style":false,"credentials":{"access_key_id":"k","secret_access_key":"s"}}"#;
        let Ok(Target::Opendal(t)) = resolve(spec) else { panic!("expected opendal") };
        assert_eq!(option(&t, "enable_virtual_host_style"), Some("true"));
        assert_eq!(t.url_base, "https://b.s3.example.com");
    }

    #[test]
    fn local_and_unknown_services() {
        assert!(matches!(resolve(r#"{"service":"local"}"#), Ok(Target::Local)));
        assert_eq!(resolve(r#"{"service":"gcs","bucket":"b"}"#).unwrap_err().code, codes::STORAGE_NOT_VALID);
        assert_eq!(resolve(r#"{"bucket":"b"}"#).unwrap_err().code, codes::STORAGE_NOT_VALID);
    }

    #[test]
    fn bucket_and_credentials_are_required() {
        let no_bucket = r#"{"service":"s3","credentials":{"access_key_id":"k","secret_access_key":"s"}}"#;
        assert_eq!(resolve(no_bucket).unwrap_err().code, codes::STORAGE_NOT_VALID);
        for creds in [r#"{"access_key_id":"k"}"#, r#"{"access_key_id":"","secret_access_key":"s"}"#, r#"{"access_key_id":1,"secret_access_key":"s"}"#, r#""k:s""#] {
            let spec = format!(r#"{{"service":"s3","bucket":"b","credentials":{creds}}}"#);
            assert_eq!(resolve(&spec).unwrap_err().code, codes::STORAGE_CREDENTIALS_NOT_VALID, "{creds}");
        }
        let bad_endpoint = r#"{"service":"s3","bucket":"b","endpoint":"ftp://x","credentials":{"access_key_id":"k","secret_access_key":"s"}}"#;
        assert_eq!(resolve(bad_endpoint).unwrap_err().code, codes::STORAGE_NOT_VALID);
    }

    #[test]
    fn keys_join_the_prefix_and_refuse_escapes() {
        assert_eq!(object_key(S3, "/720p//video.mp4").unwrap(), "pre/720p/video.mp4");
        assert_eq!(object_key(S3, "a/../../etc").unwrap_err().code, codes::STORAGE_PATH_NOT_VALID);
        assert_eq!(object_key(S3, "a\\b").unwrap_err().code, codes::STORAGE_PATH_NOT_VALID);
        assert_eq!(object_key(S3, "a\0b").unwrap_err().code, codes::STORAGE_PATH_NOT_VALID);
        assert_eq!(object_key(S3, "/../x").unwrap_err().code, codes::STORAGE_PATH_NOT_VALID);
        assert_eq!(object_key(r#"{"service":"s3","path":"../up"}"#, "x").unwrap_err().code, codes::STORAGE_PATH_NOT_VALID);
        assert_eq!(object_key(r#"{"service":"local"}"#, "x.mp4").unwrap(), "x.mp4");
    }
}
