//! Example storage plugin that uploads by itself: each output is streamed by the host
//! into this plugin, which PUTs it over `wasi:http` to a WebDAV-style server.
//!
//! ```json
//! "storage": {"service": "http-put", "url": "https://dav.example.com/videos", "path": "/2026"}
//! ```
//! The operator grants the server's host: `[plugins.http-put-storage] allowed_hosts = ["dav.example.com:443"]`.

use copra_sdk::storage::{Storage, Target, Upload};
use copra_sdk::{Error, Json, codes, json};

pub struct HttpPutStorage;

/// The base URL of a storage block, without a trailing slash.
pub fn base_url(spec: &Json) -> Result<String, Error> {
    let url = json::require(spec, "url", codes::STORAGE_NOT_VALID)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::storage(format!("The storage url '{url}' must be http(s).")));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl Storage for HttpPutStorage {
    const NAME: &'static str = "http-put-storage";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn services() -> Vec<String> {
        vec!["http-put".into()]
    }

    fn resolve(spec: &Json) -> Result<Target, Error> {
        base_url(spec).map(|_| Target::Custom)
    }
}

/// One PUT in flight; the body is written as the host hands over chunks.
pub struct PutUpload {
    url: String,
    request: copra_sdk::http::Streaming,
}

impl Upload for PutUpload {
    fn open(spec: &Json, key: &str, content_type: &str, size: u64) -> Result<Self, Error> {
        let url = format!("{}/{key}", base_url(spec)?);
        let parsed: copra_sdk::url::Url = url.parse().map_err(|_| Error::storage(format!("'{url}' is not a URL")))?;
        let length = size.to_string();
        let headers = [("content-type", content_type), ("content-length", length.as_str())];
        let request = copra_sdk::http::Streaming::put(&parsed, &headers).map_err(Error::storage)?;
        Ok(PutUpload { url, request })
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.request.write(chunk).map_err(Error::storage)
    }

    fn finish(&mut self) -> Result<String, Error> {
        let status = self.request.finish().map_err(Error::storage)?;
        if !(200..300).contains(&status) {
            return Err(Error::storage(format!("the server answered HTTP {status} to PUT {}", self.url)));
        }
        Ok(self.url.clone())
    }
}

copra_sdk::storage_plugin!(HttpPutStorage, PutUpload);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_an_http_url() {
        let spec = |v: &str| copra_sdk::serde_json::json!({"service": "http-put", "url": v});
        assert!(matches!(HttpPutStorage::resolve(&spec("http://dav/x/")), Ok(Target::Custom)));
        assert_eq!(base_url(&spec("http://dav/x/")).unwrap(), "http://dav/x");
        assert!(HttpPutStorage::resolve(&spec("ftp://dav")).is_err());
        assert_eq!(HttpPutStorage::object_key(&copra_sdk::serde_json::json!({"path": "/a"}), "b/c.mp4").unwrap(), "a/b/c.mp4");
    }
}
