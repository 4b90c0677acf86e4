//! opendal targets under the outbound policy.
//!
//! A storage plugin's target names where objects live (an S3 `endpoint`, a region that
//! becomes a host name); the host checks that before building an operator, hardens
//! what would make opendal reach beyond the target (S3 credentials from the server's
//! own environment, profile files or the cloud metadata service), and gives every
//! operator the policy's HTTP client and an idle timeout.

use opendal::Operator;
use opendal::layers::{HttpClientLayer, TimeoutLayer};
use opendal::raw::{HttpBody, HttpFetch};

use futures::TryStreamExt;

use super::harden::HardenError;
use super::object_options::ObjectOptionsError;
use super::sftp::SftpError;
use crate::net::{AtLimit, BodyError, BodyLimits, ERROR_BODY_CAP, Failure, HttpClient, Policy, Refused, UrlRefused, XML_ANSWER_CAP, capped};

/// Option keys that hold a URL the operator's requests go to.
const ENDPOINT_KEYS: &[&str] = &["endpoint", "auth_url"];

/// Why an opendal target is refused before an operator is built. Each is a sentence
/// for the user that names the option at fault.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A `copra.` option (see [`super::object_options`]).
    #[error(transparent)]
    ObjectOptions(#[from] ObjectOptionsError),
    /// An sftp target's host, port or credentials.
    #[error(transparent)]
    Sftp(#[from] SftpError),
    #[error("The storage {key} '{value}' is not an http(s) URL with a host.")]
    NotHttp { key: String, value: String },
    /// The policy refuses the endpoint's address (the sentence names the setting).
    #[error("The storage {key} '{value}' cannot be used: {refused}.")]
    Refused { key: String, value: String, refused: Refused },
    /// Credentials or options that would reach beyond the target (see [`super::harden`]).
    #[error(transparent)]
    Harden(#[from] HardenError),
}

/// Check an opendal target's options before an operator is built and return them
/// hardened. An endpoint must be an http(s) URL whose literal host the policy allows
/// (names are checked when resolved); credentials come only from the target (see
/// [`super::harden`]). The error is a sentence for the user.
pub fn check_target(policy: &Policy, scheme: &str, options: &[(String, String)]) -> Result<Vec<(String, String)>, TargetError> {
    // The per-object options the host applies itself (`copra.`, s3 only) are checked here too.
    super::object_options::split(scheme, options)?;
    if scheme == "sftp" {
        // Not HTTP: the host's own client (see `storage::sftp`), host checked here.
        super::sftp::SftpTarget::parse(policy, options)?;
        return Ok(options.to_vec());
    }
    for (key, value) in options {
        if ENDPOINT_KEYS.contains(&key.as_str()) {
            match policy.check_url(value) {
                Ok(()) => {}
                Err(UrlRefused::NotHttp) => return Err(TargetError::NotHttp { key: key.clone(), value: value.clone() }),
                Err(UrlRefused::Refused(refused)) => return Err(TargetError::Refused { key: key.clone(), value: value.clone(), refused }),
            }
        }
    }
    Ok(super::harden::harden(scheme, options)?)
}

/// Give an operator the policy's client for every request it makes, and fail any of
/// its operations that sees nothing move for the client's idle time.
pub fn under_policy(operator: Operator, client: &HttpClient) -> Operator {
    under_policy_with(operator, client, http::HeaderMap::new())
}

/// [`under_policy`], adding `create_headers` to each S3 request that creates an object
/// (see [`super::object_options`]; headers that are not `x-amz-*` need no signature).
pub fn under_policy_with(operator: Operator, client: &HttpClient, create_headers: http::HeaderMap) -> Operator {
    let idle = client.timeouts().idle;
    operator
        .layer(TimeoutLayer::new().with_timeout(idle).with_io_timeout(idle))
        .layer(HttpClientLayer::new(opendal::raw::HttpClient::with(PolicyFetch(client.clone(), create_headers))))
}

/// opendal's HTTP under the policy: each request's URL is checked for address
/// literals (names are checked by the client's resolver), and a refusal anywhere in
/// a failed request's causes becomes a `PermissionDenied` naming the address.
///
/// The request is sent here rather than by opendal's own reqwest glue so that the
/// answer's body is bounded before opendal reads it: an error body is cut after its
/// first [`ERROR_BODY_CAP`] bytes (opendal reads error bodies whole), the answer to a
/// request that is not a GET (upload ids, completions) fails past [`XML_ANSWER_CAP`],
/// and every body fails after the client's idle time without a byte. Object reads
/// (GET) are bounded by their callers (`max_input_bytes`, a ranged read). No URL with
/// its query reaches an error message: the answer carries no `Uri` for opendal's error
/// context, and failures name the URL through [`crate::secret::redact_url`] (a SAS
/// token is in the query).
struct PolicyFetch(HttpClient, http::HeaderMap);

/// The longest an answer's body other than an object's may take in all.
const ANSWER_TIME: std::time::Duration = std::time::Duration::from_secs(120);

impl HttpFetch for PolicyFetch {
    async fn fetch(&self, mut req: http::Request<opendal::Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        let url = req.uri().to_string();
        let shown = crate::secret::redact_url(&url);
        if let Err(refused) = self.0.check_url(&url) {
            return Err(opendal::Error::new(opendal::ErrorKind::PermissionDenied, refused.to_string()));
        }
        if !self.1.is_empty() && super::object_options::creates_object(req.method(), req.uri(), req.headers()) {
            for (name, value) in &self.1 {
                req.headers_mut().insert(name, value.clone());
            }
        }
        let (parts, body) = req.into_parts();
        let method = parts.method.clone();
        let mut builder = self.0.inner().request(parts.method, &url).headers(parts.headers).version(parts.version);
        if !body.is_empty() {
            builder = builder.body(body.to_bytes());
        }
        let response = builder.send().await.map_err(|err| match refusal_of(&err) {
            Some(message) => opendal::Error::new(opendal::ErrorKind::PermissionDenied, message),
            None => opendal::Error::new(opendal::ErrorKind::Unexpected, "send http request")
                .with_context("url", &shown)
                .with_context("error", Failure::of(&err).to_string())
                .set_temporary(),
        })?;
        let status = response.status();
        let encoded = response.headers().contains_key(http::header::CONTENT_ENCODING);
        let length = if method == http::Method::HEAD || encoded { None } else { response.content_length() };
        let mut answer = http::Response::builder().status(status).version(response.version());
        if let Some(headers) = answer.headers_mut() {
            *headers = response.headers().clone();
        }
        let timeouts = self.0.timeouts();
        let limits = |cap| BodyLimits::new(cap, timeouts.idle, ANSWER_TIME);
        let (cap, at_limit, length) = if !status.is_success() {
            (ERROR_BODY_CAP, AtLimit::Truncate, None)
        } else if method != http::Method::GET {
            (XML_ANSWER_CAP, AtLimit::Fail, length)
        } else {
            (u64::MAX, AtLimit::Fail, length)
        };
        let mut limits = limits(cap);
        if method == http::Method::GET && status.is_success() {
            // An object's bytes: the transfer's own total time holds (the client's).
            limits.total = timeouts.total.unwrap_or(std::time::Duration::from_secs(u32::MAX as u64));
        }
        let body = capped(response.bytes_stream(), "the storage service's answer", limits, at_limit)
            .try_filter(|chunk| std::future::ready(!chunk.is_empty()))
            .map_ok(opendal::Buffer::from)
            .map_err(move |err| {
                let temporary = matches!(err, BodyError::Broken { .. } | BodyError::Stalled { .. });
                let err = opendal::Error::new(opendal::ErrorKind::Unexpected, err.to_string()).with_context("url", &shown);
                if temporary { err.set_temporary() } else { err }
            });
        answer.body(HttpBody::new(body, length)).map_err(|e| opendal::Error::new(opendal::ErrorKind::Unexpected, e.to_string()))
    }
}

/// The policy's refusal sentence in a reqwest error's causes.
fn refusal_of(err: &reqwest::Error) -> Option<String> {
    match Failure::of(err) {
        Failure::Refused(message) => Some(message),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Outbound, Policy, Timeouts};
    use std::time::Duration;

    fn client(allow: &str) -> HttpClient {
        let timeouts = Timeouts { connect: Duration::from_secs(2), idle: Duration::from_secs(2), total: None };
        Outbound::new(Policy::parse(allow).unwrap()).client(timeouts).unwrap()
    }

    fn policy(allow: &str) -> Policy {
        Policy::parse(allow).unwrap()
    }

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn an_endpoint_at_a_refused_address_is_refused_with_the_setting() {
        let target = options(&[("bucket", "b"), ("endpoint", "http://127.0.0.1:9000")]);
        let err = check_target(&policy(""), "s3", &target).unwrap_err();
        assert!(matches!(err, TargetError::Refused { .. }), "{err}");
        let err = err.to_string();
        assert!(err.starts_with("The storage endpoint 'http://127.0.0.1:9000' cannot be used: "), "{err}");
        assert!(err.contains("COPRA_OUTBOUND_ALLOW=127.0.0.1/32"), "{err}");
        assert!(check_target(&policy("127.0.0.1/32"), "s3", &target).is_ok());
        let err = check_target(&policy(""), "s3", &options(&[("endpoint", "http://[::ffff:169.254.169.254]/")])).unwrap_err().to_string();
        assert!(err.contains("link-local"), "{err}");
        let err = check_target(&policy(""), "s3", &options(&[("endpoint", "file:///etc")])).unwrap_err().to_string();
        assert_eq!(err, "The storage endpoint 'file:///etc' is not an http(s) URL with a host.");
    }

    #[test]
    fn each_check_keeps_its_own_sentence() {
        let err = check_target(&policy(""), "azblob", &options(&[("copra.acl", "private")])).unwrap_err();
        assert!(matches!(err, TargetError::ObjectOptions(ObjectOptionsError::OnlyS3(_))), "{err}");
        assert_eq!(err.to_string(), "The storage option 'copra.acl' is only supported for s3 targets.");
        let err = check_target(&policy(""), "s3", &options(&[("role_arn", "arn:aws:iam::1:role/x")])).unwrap_err();
        assert!(matches!(err, TargetError::Harden(_)), "{err}");
        assert!(err.to_string().starts_with("The storage option 'role_arn' is not supported: "), "{err}");
        let err = check_target(&policy(""), "sftp", &options(&[("user", "u")])).unwrap_err();
        assert!(matches!(err, TargetError::Sftp(_)), "{err}");
        assert!(err.to_string().starts_with("The sftp storage target has no "), "{err}");
    }

    use crate::net::endless_server as endless;

    #[tokio::test]
    async fn an_endless_answer_is_cut_and_no_query_reaches_the_error() {
        let failing = endless("HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\n\r\n<Error><Code>InternalError</Code><Message>").await;
        let target = options(&[("bucket", "b"), ("region", "us-east-1"), ("endpoint", &failing), ("access_key_id", "k"), ("secret_access_key", "s")]);
        let operator = under_policy(Operator::via_iter(opendal::Scheme::S3, target).unwrap(), &client("127.0.0.1/32"));
        let started = std::time::Instant::now();
        let err = operator.write("x.mp4", "data").await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        assert!(err.contains("InternalError") && err.len() < 8 << 10, "{} bytes: {}", err.len(), &err[..200.min(err.len())]);

        // A 200 with an endless body to a request that is not a GET fails at the cap.
        let endpoint = endless("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n<InitiateMultipartUploadResult>").await;
        let target = options(&[("bucket", "b"), ("region", "us-east-1"), ("endpoint", &endpoint), ("access_key_id", "k"), ("secret_access_key", "s")]);
        let operator = under_policy(Operator::via_iter(opendal::Scheme::S3, target).unwrap(), &client("127.0.0.1/32"));
        let mut writer = operator.writer_with("big.mp4").chunk(5 << 20).await.unwrap();
        let err = async {
            writer.write(vec![0u8; 6 << 20]).await?;
            writer.close().await
        }
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("1048576 bytes"), "{err}");

        // Azure's SAS token is in every URL's query; it reaches no error.
        let target = options(&[("container", "c"), ("endpoint", &failing), ("sas_token", "sv=1&sig=SECRETSIG")]);
        let operator = under_policy(Operator::via_iter(opendal::Scheme::Azblob, target).unwrap(), &client("127.0.0.1/32"));
        let err = operator.read("x").await.unwrap_err().to_string();
        assert!(err.contains("500") && !err.contains("SECRETSIG"), "{err}");
    }

    #[tokio::test]
    async fn an_operator_does_not_reach_a_refused_endpoint() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let target = options(&[("bucket", "b"), ("region", "us-east-1"), ("endpoint", &endpoint), ("access_key_id", "k"), ("secret_access_key", "s")]);
        // Built without the check (as a bug elsewhere might): the client still refuses.
        let operator = Operator::via_iter(opendal::Scheme::S3, target).unwrap();
        let operator = under_policy(operator, &client(""));
        let err = operator.write("x", "data").await.unwrap_err();
        assert_eq!(err.kind(), opendal::ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        assert!(listener.accept().is_err(), "a connection reached the refused endpoint");
    }
}
