//! Swift outputs, streamed by the host.
//!
//! opendal's swift writer is a one-shot PUT: it holds a whole object in memory until the
//! writer closes, so a 4 GiB rendition would be 4 GiB of the server's memory. The host
//! sends Swift outputs itself instead, through the policy's client: an object up to
//! [`SEGMENT_BYTES`] is one PUT streamed from the file with its `Content-Length`; a
//! larger one is uploaded as a Static Large Object (Swift's segmented upload): each
//! segment streamed from its range of the file to `<object>.segments/<n>`, then the
//! manifest (`?multipart-manifest=put`) that joins them under the object's name.
//! Nothing is read into memory beyond one chunk of the file, and an error answer's
//! body is read through the bounded helper.

use std::path::Path;

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::net::{Activity, BodyLimits, ERROR_BODY_CAP, Failure, HttpClient, Stalled, UrlRefused, until_idle};
use crate::secret::Secret;

/// Why a Swift output was not stored. Each is a sentence for the job's output.
#[derive(Debug, thiserror::Error)]
pub enum SwiftError {
    /// The local output file (its size, or its bytes).
    #[error("the file could not be read: {0}")]
    File(#[source] std::io::Error),
    /// The policy refuses the object's URL.
    #[error(transparent)]
    Url(#[from] UrlRefused),
    /// The request got no answer (refused by the policy, no connection, timeout).
    #[error("{0}")]
    Network(Failure),
    /// Nothing moved for the client's idle time.
    #[error(transparent)]
    Stalled(#[from] Stalled),
    /// An error answer to `what`, with the first bytes of its body.
    #[error("swift answered {what} with HTTP {status}: {answer}")]
    Status { what: &'static str, status: reqwest::StatusCode, answer: String },
}

/// The largest object sent as one PUT, and the size of each segment of a larger one
/// (Swift refuses single objects over 5 GiB by default).
pub const SEGMENT_BYTES: u64 = 1 << 30;
/// Bytes read from the file per piece of a request body.
const PIECE: usize = 1 << 20;

/// A swift target's account URL, container, root and token (opendal's options).
pub struct SwiftTarget {
    endpoint: String,
    container: String,
    root: String,
    token: Secret<String>,
    /// Objects above this are segmented ([`SEGMENT_BYTES`]; smaller in tests).
    segment: u64,
}

impl SwiftTarget {
    /// The target of an opendal `swift` target's (checked, signed-in) options.
    pub fn of_options(options: &[(String, String)]) -> Option<SwiftTarget> {
        let get = |k: &str| options.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        Some(SwiftTarget {
            endpoint: get("endpoint")?.trim_end_matches('/').to_string(),
            container: get("container")?.to_string(),
            root: get("root").unwrap_or("/").trim_matches('/').to_string(),
            token: Secret::new(get("token")?.to_string()),
            segment: SEGMENT_BYTES,
        })
    }

    /// The object name `key` is written to, below the target's root.
    fn object(&self, key: &str) -> String {
        let key = key.trim_start_matches('/');
        if self.root.is_empty() { key.to_string() } else { format!("{}/{key}", self.root) }
    }

    fn url(&self, object: &str) -> String {
        format!("{}/{}/{}", self.endpoint, super::multipart::encode(&self.container, false), super::multipart::encode(object, true))
    }

    /// Stream `file` to `key`. The error is a sentence for the job's output.
    pub async fn upload(&self, http: &HttpClient, file: &Path, key: &str, content_type: &str) -> Result<(), SwiftError> {
        let size = tokio::fs::metadata(file).await.map_err(SwiftError::File)?.len();
        let object = self.object(key);
        if size <= self.segment {
            return self.put_range(http, &self.url(&object), file, 0, size, content_type).await;
        }
        let mut segments = Vec::new();
        let mut offset = 0;
        while offset < size {
            let length = self.segment.min(size - offset);
            let name = format!("{object}.segments/{:08}", segments.len() + 1);
            self.put_range(http, &self.url(&name), file, offset, length, "application/octet-stream").await?;
            segments.push(json!({"path": format!("/{}/{name}", self.container), "etag": null, "size_bytes": length}));
            offset += length;
        }
        let manifest = serde_json::to_vec(&segments).unwrap_or_default();
        let url = format!("{}?multipart-manifest=put", self.url(&object));
        let request = http.put(&url)?.header("X-Auth-Token", self.token.expose()).header(reqwest::header::CONTENT_TYPE, content_type);
        let response = request.body(manifest).send().await.map_err(|e| SwiftError::Network(Failure::of(&e)))?;
        checked(http, response, "the large object's manifest").await
    }

    /// PUT `length` bytes of `file` from `offset` to `url`, streamed.
    async fn put_range(&self, http: &HttpClient, url: &str, file: &Path, offset: u64, length: u64, content_type: &str) -> Result<(), SwiftError> {
        let mut source = tokio::fs::File::open(file).await.map_err(SwiftError::File)?;
        source.seek(std::io::SeekFrom::Start(offset)).await.map_err(SwiftError::File)?;
        let (activity, idle) = (Activity::new(), http.timeouts().idle);
        let moved = activity.clone();
        let pieces = tokio_util::io::ReaderStream::with_capacity(source.take(length), PIECE).inspect(move |_| moved.touch());
        let request = http
            .put(url)?
            .header("X-Auth-Token", self.token.expose())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(pieces));
        let response = until_idle(request.send(), &activity, idle).await?.map_err(|e| SwiftError::Network(Failure::of(&e)))?;
        checked(http, response, "the upload").await
    }
}

/// Ok for a 2xx answer; else the status and the first bytes of the answer.
async fn checked(http: &HttpClient, response: reqwest::Response, what: &'static str) -> Result<(), SwiftError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let limits = BodyLimits::new(ERROR_BODY_CAP, http.timeouts().idle, std::time::Duration::from_secs(30));
    let prefix = crate::net::response_prefix(response, limits).await;
    Err(SwiftError::Status { what, status, answer: crate::net::shown(&prefix, 300) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use axum::extract::{Request, State};

    type Seen = Arc<Mutex<Vec<(String, String, usize)>>>;

    /// A Swift object API on loopback that records each PUT: its path and query, and
    /// the bytes of its body.
    async fn swift() -> (String, Seen) {
        async fn put(State(seen): State<Seen>, request: Request) -> axum::http::StatusCode {
            if request.headers().get("x-auth-token").and_then(|v| v.to_str().ok()) != Some("tok") {
                return axum::http::StatusCode::UNAUTHORIZED;
            }
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            let mut body = request.into_body().into_data_stream();
            let mut total = 0;
            while let Some(Ok(chunk)) = body.next().await {
                total += chunk.len();
            }
            seen.lock().unwrap().push((path, query, total));
            axum::http::StatusCode::CREATED
        }
        let seen: Seen = Arc::default();
        let app = axum::Router::new().route("/{*path}", axum::routing::put(put)).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1/AUTH_a", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (base, seen)
    }

    fn client() -> HttpClient {
        let timeouts = crate::net::Timeouts { connect: std::time::Duration::from_secs(2), idle: std::time::Duration::from_secs(5), total: None };
        crate::net::Outbound::new(crate::net::Policy::parse("127.0.0.1/32").unwrap()).client(timeouts).unwrap()
    }

    fn target(endpoint: &str) -> SwiftTarget {
        let options = [("endpoint", endpoint), ("container", "out"), ("root", "/jobs/"), ("token", "tok")];
        SwiftTarget::of_options(&options.map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[tokio::test]
    async fn a_small_object_is_one_streamed_put_and_a_large_one_is_segmented() {
        let (endpoint, seen) = swift().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.mp4");
        std::fs::write(&file, vec![7u8; 2500]).unwrap();

        let mut swift = target(&endpoint);
        swift.upload(&client(), &file, "/v/a b.mp4", "video/mp4").await.unwrap();
        assert_eq!(seen.lock().unwrap().as_slice(), [("/v1/AUTH_a/out/jobs/v/a%20b.mp4".to_string(), String::new(), 2500)]);

        seen.lock().unwrap().clear();
        swift.segment = 1000;
        swift.upload(&client(), &file, "/v/a.mp4", "video/mp4").await.unwrap();
        let puts = seen.lock().unwrap().clone();
        let sizes: Vec<usize> = puts.iter().map(|(_, _, n)| *n).collect();
        assert_eq!(puts.len(), 4, "{puts:?}");
        assert_eq!(&sizes[..3], [1000, 1000, 500]);
        assert_eq!(puts[0].0, "/v1/AUTH_a/out/jobs/v/a.mp4.segments/00000001");
        assert_eq!((puts[3].0.as_str(), puts[3].1.as_str()), ("/v1/AUTH_a/out/jobs/v/a.mp4", "multipart-manifest=put"));

        swift.token = Secret::new("wrong".into());
        let err = swift.upload(&client(), &file, "/v/a.mp4", "video/mp4").await.unwrap_err();
        assert!(matches!(err, SwiftError::Status { status: reqwest::StatusCode::UNAUTHORIZED, .. }), "{err}");
        let err = err.to_string();
        assert!(err.starts_with("swift answered the upload with HTTP 401 Unauthorized"), "{err}");
        assert!(!err.contains("wrong"), "{err}");

        let err = swift.upload(&client(), &dir.path().join("missing.mp4"), "/v/a.mp4", "video/mp4").await.unwrap_err();
        assert!(matches!(err, SwiftError::File(_)), "{err}");
        assert!(err.to_string().starts_with("the file could not be read: "), "{err}");
    }
}
