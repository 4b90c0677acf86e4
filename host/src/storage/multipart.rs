//! Multipart uploads an interrupted attempt left open on S3. opendal aborts the uploads
//! it started when they fail or are dropped, but one whose process was killed stays open
//! (and billed) until something aborts it; opendal has no way to list them. So a retried
//! job, before it writes a key again, lists the open uploads of exactly that key
//! (`ListMultipartUploads` with the key as prefix) and aborts each
//! (`AbortMultipartUpload`), signed with the target's own credentials and sent through
//! the outbound policy's client to the target's checked endpoint. The same signed
//! client sets an object's canned ACL (`PutObjectAcl`, see `object_options`).

use reqsign::{AwsCredential, AwsV4Signer};
use serde::Deserialize;

use crate::net::{BodyError, BodyLimits, ERROR_BODY_CAP, Failure, HttpClient, UrlRefused, XML_ANSWER_CAP};

/// The longest an answer to one of these small requests may take to arrive in all.
const ANSWER_TIME: std::time::Duration = std::time::Duration::from_secs(120);

/// Why one of the host's own signed S3 requests (listing and aborting open uploads,
/// setting an ACL) failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The policy refuses the bucket's URL.
    #[error(transparent)]
    Url(#[from] UrlRefused),
    #[error("the S3 request could not be made: {0}")]
    Build(#[source] reqwest::Error),
    #[error("signing the request failed: {0}")]
    Sign(anyhow::Error),
    /// The request got no answer (refused by the policy, no connection, timeout).
    #[error("{0}")]
    Network(Failure),
    /// An error answer, with the first bytes of its body.
    #[error("{method} answered {status}: {answer}")]
    Status { method: reqwest::Method, status: reqwest::StatusCode, answer: String },
    /// The answer could not be read within its bounds (size, idle and total time).
    #[error(transparent)]
    Answer(#[from] BodyError),
    #[error("the S3 answer is not UTF-8 text")]
    NotUtf8,
    #[error("the list of open multipart uploads could not be read: {0}")]
    Listing(#[source] quick_xml::DeError),
    #[error("setting the acl '{acl}' failed: {source}")]
    Acl { acl: String, source: Box<S3Error> },
}

/// An S3 bucket as an opendal target names it.
pub struct S3Bucket {
    /// `https://host/bucket` (path style) or `https://bucket.host` (virtual host).
    base: String,
    /// The target's `root`, without slashes at either end ("" for the bucket's root).
    root: String,
    signer: AwsV4Signer,
    credential: AwsCredential,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default)]
    upload: Vec<Upload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
}

impl S3Bucket {
    /// The bucket of an opendal `s3` target's (checked) options; `None` when they name
    /// none or carry no static credentials.
    pub fn of_options(options: &[(String, String)]) -> Option<S3Bucket> {
        let get = |k: &str| options.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let bucket = get("bucket")?;
        let region = get("region").unwrap_or("us-east-1");
        let virtual_host = get("enable_virtual_host_style") == Some("true");
        let endpoint = get("endpoint").map(|e| e.trim_end_matches('/').to_string()).unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let base = if virtual_host {
            let (scheme, host) = endpoint.split_once("://")?;
            format!("{scheme}://{bucket}.{host}")
        } else {
            format!("{endpoint}/{bucket}")
        };
        let credential = AwsCredential {
            access_key_id: get("access_key_id")?.to_string(),
            secret_access_key: get("secret_access_key")?.to_string(),
            session_token: get("session_token").map(str::to_string),
            expires_in: None,
        };
        let root = get("root").unwrap_or("/").trim_matches('/').to_string();
        Some(S3Bucket { base, root, signer: AwsV4Signer::new("s3", region), credential })
    }

    /// The object key opendal writes `key` to.
    fn object(&self, key: &str) -> String {
        let key = key.trim_start_matches('/');
        if self.root.is_empty() { key.to_string() } else { format!("{}/{key}", self.root) }
    }

    /// Abort every open multipart upload of exactly `key`; returns how many there were.
    pub async fn abort_open_uploads(&self, http: &HttpClient, key: &str) -> Result<usize, S3Error> {
        let object = self.object(key);
        let list_url = format!("{}?uploads&prefix={}", self.base, encode(&object, false));
        let body = self.send(http, reqwest::Method::GET, &list_url).await?;
        let listed: ListMultipartUploadsResult = quick_xml::de::from_str(&body).map_err(S3Error::Listing)?;
        let mut aborted = 0;
        for upload in listed.upload.iter().filter(|u| u.key == object) {
            let url = format!("{}/{}?uploadId={}", self.base, encode(&object, true), encode(&upload.upload_id, false));
            self.send(http, reqwest::Method::DELETE, &url).await?;
            aborted += 1;
        }
        Ok(aborted)
    }

    /// Give the object written at `key` the canned `acl` (`PutObjectAcl`, signed with
    /// the `x-amz-acl` header).
    pub async fn put_acl(&self, http: &HttpClient, key: &str, acl: &str) -> Result<(), S3Error> {
        let url = format!("{}/{}?acl", self.base, encode(&self.object(key), true));
        let sent = self.send_with(http, reqwest::Method::PUT, &url, &[("x-amz-acl", acl)]).await;
        sent.map(drop).map_err(|source| S3Error::Acl { acl: acl.to_string(), source: Box::new(source) })
    }

    async fn send(&self, http: &HttpClient, method: reqwest::Method, url: &str) -> Result<String, S3Error> {
        self.send_with(http, method, url, &[]).await
    }

    async fn send_with(&self, http: &HttpClient, method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> Result<String, S3Error> {
        let mut builder = http.request(method.clone(), url)?;
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.build().map_err(S3Error::Build)?;
        self.signer.sign(&mut request, &self.credential).map_err(S3Error::Sign)?;
        let response = http.inner().execute(request).await.map_err(|e| S3Error::Network(Failure::of(&e)))?;
        let status = response.status();
        let timeouts = http.timeouts();
        let limits = |cap| BodyLimits::new(cap, timeouts.idle, timeouts.total.unwrap_or(ANSWER_TIME).min(ANSWER_TIME));
        if !status.is_success() {
            let prefix = crate::net::response_prefix(response, limits(ERROR_BODY_CAP)).await;
            return Err(S3Error::Status { method, status, answer: crate::net::shown(&prefix, 300) });
        }
        let body = crate::net::read_response(response, "the S3 answer", limits(XML_ANSWER_CAP)).await?;
        String::from_utf8(body.to_vec()).map_err(|_| S3Error::NotUtf8)
    }
}

/// Percent-encode everything but the unreserved characters (and `/` in a path).
pub(super) fn encode(value: &str, path: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            b'/' if path => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    use crate::net::endless_server as endless;

    #[tokio::test]
    async fn endless_listings_and_acl_answers_are_cut_at_their_caps() {
        let timeouts = crate::net::Timeouts { connect: std::time::Duration::from_secs(2), idle: std::time::Duration::from_secs(2), total: None };
        let http = crate::net::Outbound::new(crate::net::Policy::parse("127.0.0.1/32").unwrap()).client(timeouts).unwrap();
        let bucket = |endpoint: &str| {
            S3Bucket::of_options(&options(&[("bucket", "b"), ("endpoint", endpoint), ("access_key_id", "k"), ("secret_access_key", "s")])).unwrap()
        };
        let listing = endless("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n<ListMultipartUploadsResult>").await;
        let err = bucket(&listing).abort_open_uploads(&http, "out/a.mp4").await.unwrap_err();
        assert!(matches!(err, S3Error::Answer(BodyError::TooLarge { .. })), "{err}");
        assert!(err.to_string().contains("1048576 bytes"), "{err}");
        let refused = endless("HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n<Error><Code>AccessDenied</Code>").await;
        let err = bucket(&refused).put_acl(&http, "out/a.mp4", "public-read").await.unwrap_err();
        assert!(matches!(&err, S3Error::Acl { source, .. } if matches!(**source, S3Error::Status { .. })), "{err}");
        let err = err.to_string();
        assert!(err.starts_with("setting the acl 'public-read' failed: PUT answered 403 Forbidden: "), "{err}");
        assert!(err.contains("AccessDenied") && err.len() < 1000, "{err}");
    }

    #[test]
    fn the_bucket_url_follows_the_target() {
        let creds = [("access_key_id", "k"), ("secret_access_key", "s"), ("bucket", "b"), ("root", "/")];
        let mut path_style = options(&creds);
        path_style.extend(options(&[("endpoint", "http://127.0.0.1:9000/"), ("enable_virtual_host_style", "false")]));
        let bucket = S3Bucket::of_options(&path_style).unwrap();
        assert_eq!(bucket.base, "http://127.0.0.1:9000/b");
        assert_eq!(bucket.object("/out/a b.mp4"), "out/a b.mp4");
        let mut virtual_host = options(&creds);
        virtual_host.extend(options(&[("endpoint", "https://s3.example.com"), ("enable_virtual_host_style", "true")]));
        assert_eq!(S3Bucket::of_options(&virtual_host).unwrap().base, "https://b.s3.example.com");
        let mut aws = options(&creds);
        aws.extend(options(&[("region", "eu-west-1"), ("root", "/pre/")]));
        let bucket = S3Bucket::of_options(&aws).unwrap();
        assert_eq!(bucket.base, "https://s3.eu-west-1.amazonaws.com/b");
        assert_eq!(bucket.object("x.mp4"), "pre/x.mp4");
        assert!(S3Bucket::of_options(&options(&[("bucket", "b")])).is_none(), "no credentials");
    }

    #[test]
    fn keys_are_encoded_for_the_url() {
        assert_eq!(encode("out/a b+c.mp4", true), "out/a%20b%2Bc.mp4");
        assert_eq!(encode("out/a b.mp4", false), "out%2Fa%20b.mp4");
    }

    #[test]
    fn the_listing_is_read() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><KeyMarker></KeyMarker>
<Upload><Key>out/a&amp;b.mp4</Key><UploadId>id1</UploadId><Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload>
<Upload><Key>out/a&amp;b.mp4.x</Key><UploadId>id2</UploadId></Upload><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"#;
        let listed: ListMultipartUploadsResult = quick_xml::de::from_str(xml).unwrap();
        let keys: Vec<_> = listed.upload.iter().map(|u| (u.key.as_str(), u.upload_id.as_str())).collect();
        assert_eq!(keys, [("out/a&b.mp4", "id1"), ("out/a&b.mp4.x", "id2")]);
        let empty: ListMultipartUploadsResult = quick_xml::de::from_str("<ListMultipartUploadsResult><Bucket>b</Bucket></ListMultipartUploadsResult>").unwrap();
        assert!(empty.upload.is_empty());
    }
}
