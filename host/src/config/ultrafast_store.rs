//! The object-store work area of ultrafast jobs (`[worker] ultrafast_store`), for worker
//! machines that share no file system: the coordinator uploads each chunk of the input
//! there, chunk workers download their chunk and upload their pieces. An S3-compatible
//! bucket the operator runs; each key has the environment variable
//! `COPRA_WORKER_ULTRAFAST_STORE_<KEY>` (the URL itself `COPRA_WORKER_ULTRAFAST_STORE`).

use super::ConfigError;
use crate::secret::Secret;

/// Where ultrafast chunks and pieces are staged when workers share no file system.
#[derive(Debug, Clone, PartialEq)]
pub struct UltrafastStore {
    /// The bucket (`s3://<bucket>/...`).
    pub bucket: String,
    /// The key prefix every job's work area is below, without slashes at either end
    /// (`s3://bucket/<prefix>`; may be empty). A job's files are `<prefix>/<job id>/...`.
    pub prefix: String,
    /// The S3 endpoint URL (`ultrafast_store_endpoint`; AWS's for the region when unset).
    pub endpoint: Option<String>,
    /// The bucket's region (`ultrafast_store_region`, default `us-east-1`).
    pub region: String,
    /// The access key id (`ultrafast_store_access_key_id`); with the secret, or neither
    /// (then opendal's default chain: the `AWS_*` environment, profile, instance role).
    pub access_key_id: Option<String>,
    /// The secret access key (`ultrafast_store_secret_access_key`).
    pub secret_access_key: Option<Secret<String>>,
    /// Address the bucket as `<endpoint>/<bucket>` rather than `<bucket>.<endpoint>`
    /// (`ultrafast_store_path_style`, default true: MinIO, Ceph and most self-hosted stores).
    pub path_style: bool,
}

/// The `ultrafast_store*` keys of the `[worker]` table (no `Debug`: it holds the secret).
#[derive(Default)]
pub(super) struct FileStore {
    pub ultrafast_store: Option<String>,
    pub ultrafast_store_endpoint: Option<String>,
    pub ultrafast_store_region: Option<String>,
    pub ultrafast_store_access_key_id: Option<String>,
    pub ultrafast_store_secret_access_key: Option<String>,
    pub ultrafast_store_path_style: Option<bool>,
}

const URL_VAR: &str = "COPRA_WORKER_ULTRAFAST_STORE";

/// The work area from the environment over the file; `None` when no URL is set.
pub(super) fn load(file: FileStore, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<UltrafastStore>, ConfigError> {
    let Some(url) = env(URL_VAR).or(file.ultrafast_store) else { return Ok(None) };
    let invalid = |name: &'static str, message: String| ConfigError::Invalid { name, message };
    let rest = url.strip_prefix("s3://").ok_or_else(|| invalid(URL_VAR, format!("'{url}' is not an s3://bucket/prefix URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len()) && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !bucket_ok {
        return Err(invalid(URL_VAR, format!("'{bucket}' is not an S3 bucket name")));
    }
    let prefix = prefix.trim_matches('/').to_string();
    if !prefix.is_empty() && crate::object_key::object_key(&prefix).is_err() {
        return Err(invalid(URL_VAR, format!("the prefix '{prefix}' is not a plain object key")));
    }
    let endpoint = env("COPRA_WORKER_ULTRAFAST_STORE_ENDPOINT").or(file.ultrafast_store_endpoint);
    if let Some(endpoint) = &endpoint {
        let parsed = url::Url::parse(endpoint).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if parsed.is_none() {
            return Err(invalid("COPRA_WORKER_ULTRAFAST_STORE_ENDPOINT", format!("'{endpoint}' is not an http(s) URL")));
        }
    }
    let region = env("COPRA_WORKER_ULTRAFAST_STORE_REGION").or(file.ultrafast_store_region).unwrap_or_else(|| "us-east-1".into());
    if region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(invalid("COPRA_WORKER_ULTRAFAST_STORE_REGION", format!("'{region}' is not a region name")));
    }
    let access_key_id = env("COPRA_WORKER_ULTRAFAST_STORE_ACCESS_KEY_ID").or(file.ultrafast_store_access_key_id);
    let secret_access_key = env("COPRA_WORKER_ULTRAFAST_STORE_SECRET_ACCESS_KEY").or(file.ultrafast_store_secret_access_key).map(Secret::new);
    if access_key_id.is_some() != secret_access_key.is_some() {
        return Err(invalid("COPRA_WORKER_ULTRAFAST_STORE_ACCESS_KEY_ID", "give the access key id and the secret access key together".into()));
    }
    let path_style = match env("COPRA_WORKER_ULTRAFAST_STORE_PATH_STYLE") {
        Some(text) => match text.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            other => return Err(invalid("COPRA_WORKER_ULTRAFAST_STORE_PATH_STYLE", format!("'{other}' is not true or false"))),
        },
        None => file.ultrafast_store_path_style.unwrap_or(true),
    };
    Ok(Some(UltrafastStore { bucket: bucket.to_string(), prefix, endpoint, region, access_key_id, secret_access_key, path_style }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn url_and_keys_from_the_environment_and_the_secret_never_shown() {
        let env = env_of(&[
            ("COPRA_WORKER_ULTRAFAST_STORE", "s3://work-area/copra/uf/"),
            ("COPRA_WORKER_ULTRAFAST_STORE_ENDPOINT", "http://10.0.0.5:9000"),
            ("COPRA_WORKER_ULTRAFAST_STORE_ACCESS_KEY_ID", "AKID"),
            ("COPRA_WORKER_ULTRAFAST_STORE_SECRET_ACCESS_KEY", "very-secret-value"),
        ]);
        let store = load(FileStore::default(), &env).unwrap().unwrap();
        assert_eq!((store.bucket.as_str(), store.prefix.as_str(), store.region.as_str()), ("work-area", "copra/uf", "us-east-1"));
        assert!(store.path_style);
        assert!(!format!("{store:?}").contains("very-secret-value"));
        assert_eq!(load(FileStore::default(), &env_of(&[])).unwrap(), None);
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        for (name, value) in [
            ("COPRA_WORKER_ULTRAFAST_STORE", "/mnt/shared"),
            ("COPRA_WORKER_ULTRAFAST_STORE", "s3://Bad_Bucket/x"),
            ("COPRA_WORKER_ULTRAFAST_STORE", "s3://bucket/../up"),
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([(name, value)]));
            assert!(load(FileStore::default(), &env_of(pairs)).is_err(), "{value}");
        }
        let half = env_of(&[("COPRA_WORKER_ULTRAFAST_STORE", "s3://bucket"), ("COPRA_WORKER_ULTRAFAST_STORE_ACCESS_KEY_ID", "AKID")]);
        assert!(load(FileStore::default(), &half).unwrap_err().to_string().contains("together"));
        let file = FileStore { ultrafast_store: Some("s3://bucket".into()), ultrafast_store_endpoint: Some("ftp://x".into()), ..FileStore::default() };
        assert!(load(file, &env_of(&[])).is_err());
    }
}
