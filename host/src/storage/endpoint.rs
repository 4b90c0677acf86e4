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

use crate::net::{Failure, HttpClient, Policy, UrlRefused};

/// Option keys that hold a URL the operator's requests go to.
const ENDPOINT_KEYS: &[&str] = &["endpoint", "auth_url"];

/// Check an opendal target's options before an operator is built and return them
/// hardened. An endpoint must be an http(s) URL whose literal host the policy allows
/// (names are checked when resolved); credentials come only from the target (see
/// [`super::harden`]). The error is a sentence for the user.
pub fn check_target(policy: &Policy, scheme: &str, options: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    // The per-object options the host applies itself (`copra.`, s3 only) are checked here too.
    super::object_options::split(scheme, options)?;
    if scheme == "sftp" {
        // Not HTTP: the host's own client (see `storage::sftp`), host checked here.
        return super::sftp::SftpTarget::parse(policy, options).map(|_| options.to_vec());
    }
    for (key, value) in options {
        if ENDPOINT_KEYS.contains(&key.as_str()) {
            match policy.check_url(value) {
                Ok(()) => {}
                Err(UrlRefused::NotHttp) => return Err(format!("The storage {key} '{value}' is not an http(s) URL with a host.")),
                Err(UrlRefused::Refused(refused)) => return Err(format!("The storage {key} '{value}' cannot be used: {refused}.")),
            }
        }
    }
    super::harden::harden(scheme, options)
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
struct PolicyFetch(HttpClient, http::HeaderMap);

impl HttpFetch for PolicyFetch {
    async fn fetch(&self, mut req: http::Request<opendal::Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        let url = req.uri().to_string();
        if let Err(refused) = self.0.check_url(&url) {
            return Err(opendal::Error::new(opendal::ErrorKind::PermissionDenied, refused.to_string()));
        }
        if !self.1.is_empty() && super::object_options::creates_object(req.method(), req.uri(), req.headers()) {
            for (name, value) in &self.1 {
                req.headers_mut().insert(name, value.clone());
            }
        }
        match self.0.inner().fetch(req).await {
            Ok(response) => Ok(response),
            Err(err) => Err(refusal_in(&err).map(|m| opendal::Error::new(opendal::ErrorKind::PermissionDenied, m)).unwrap_or(err)),
        }
    }
}

/// The policy's refusal sentence, if the error happened because of one.
fn refusal_in(err: &opendal::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(reqwest) = cause.downcast_ref::<reqwest::Error>() {
            return match Failure::of(reqwest) {
                Failure::Refused(message) => Some(message),
                _ => None,
            };
        }
        source = cause.source();
    }
    None
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
        assert!(err.contains("http://127.0.0.1:9000") && err.contains("COPRA_OUTBOUND_ALLOW=127.0.0.1/32"), "{err}");
        assert!(check_target(&policy("127.0.0.1/32"), "s3", &target).is_ok());
        let err = check_target(&policy(""), "s3", &options(&[("endpoint", "http://[::ffff:169.254.169.254]/")])).unwrap_err();
        assert!(err.contains("link-local"), "{err}");
        assert!(check_target(&policy(""), "s3", &options(&[("endpoint", "file:///etc")])).is_err());
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
