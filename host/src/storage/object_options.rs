//! Per-object options an `s3` target asks for that opendal's s3 service cannot carry
//! (Coconut's `acl`, `cache_control`, `expires`). A storage plugin names them as target
//! options under `copra.`; the host takes them out before the operator is built, checks
//! each value, and applies them itself: `Cache-Control` through opendal's writer,
//! `Expires` as a header on the requests that create an object, the ACL with a signed
//! `PutObjectAcl` once the object is written. `storage_class` needs none of this: it is
//! opendal's own `default_storage_class`.

use http::{HeaderMap, HeaderName, HeaderValue};

/// The prefix of the options the host applies itself.
const PREFIX: &str = "copra.";

/// Canned ACLs S3 defines (and Coconut documents).
const ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// Why a target's `copra.` options are refused. Each is a sentence for the user that
/// names the option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObjectOptionsError {
    #[error("The storage option '{0}' is only supported for s3 targets.")]
    OnlyS3(String),
    #[error("The storage option '{0}' is not supported.")]
    Unsupported(String),
    #[error("The storage acl '{0}' is not one of {list}.", list = ACLS.join(", "))]
    NotAnAcl(String),
    #[error("The storage expires '{0}' is not an HTTP date (e.g. 'Wed, 21 Oct 2037 07:28:00 GMT').")]
    NotADate(String),
    /// The option, named without `copra.` (`cache_control`, `expires`).
    #[error("The storage {0} is not valid as a header value (visible ASCII, at most 1024 bytes).")]
    NotAHeaderValue(&'static str),
    /// The ACL is set with a request signed by the target's own key pair.
    #[error("The storage acl needs the target's own access_key_id and secret_access_key.")]
    AclWithoutKeys,
}

/// What the host does to each object it writes to one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectOptions {
    /// A canned ACL (`x-amz-acl`), one of [`ACLS`].
    pub acl: Option<String>,
    /// The object's `Cache-Control`.
    pub cache_control: Option<String>,
    /// Headers added to the requests that create an object (`Expires`).
    pub create_headers: HeaderMap,
}

/// Take the `copra.` options out of a target's options. They are allowed only for `s3`
/// targets and only with checked values; anything else is a sentence for the user.
pub fn split(scheme: &str, options: &[(String, String)]) -> Result<(Vec<(String, String)>, ObjectOptions), ObjectOptionsError> {
    let mut rest = Vec::with_capacity(options.len());
    let mut object = ObjectOptions::default();
    for (key, value) in options {
        let Some(name) = key.strip_prefix(PREFIX) else {
            rest.push((key.clone(), value.clone()));
            continue;
        };
        if scheme != "s3" {
            return Err(ObjectOptionsError::OnlyS3(key.clone()));
        }
        match name {
            "acl" if ACLS.contains(&value.as_str()) => object.acl = Some(value.clone()),
            "acl" => return Err(ObjectOptionsError::NotAnAcl(value.clone())),
            "cache_control" => object.cache_control = Some(header_value("cache_control", value)?.to_str().unwrap_or_default().to_string()),
            "expires" => {
                httpdate::parse_http_date(value).map_err(|_| ObjectOptionsError::NotADate(value.clone()))?;
                object.create_headers.insert(HeaderName::from_static("expires"), header_value("expires", value)?);
            }
            _ => return Err(ObjectOptionsError::Unsupported(key.clone())),
        }
    }
    // The ACL is set with a request signed by the target's own key pair.
    let has = |name: &str| rest.iter().any(|(key, value)| key == name && !value.is_empty());
    if object.acl.is_some() && !(has("access_key_id") && has("secret_access_key")) {
        return Err(ObjectOptionsError::AclWithoutKeys);
    }
    Ok((rest, object))
}

/// A value that can be a header: visible ASCII and spaces, at most 1 KiB.
fn header_value(field: &'static str, value: &str) -> Result<HeaderValue, ObjectOptionsError> {
    let fits = !value.is_empty() && value.len() <= 1024 && value.chars().all(|c| c == ' ' || c.is_ascii_graphic());
    fits.then(|| HeaderValue::from_str(value).ok())
        .flatten()
        .ok_or(ObjectOptionsError::NotAHeaderValue(field))
}

/// Whether an S3 request creates an object: `PutObject` (a PUT that is neither an
/// `UploadPart` nor a copy nor a sub-resource such as `?acl`) or `CreateMultipartUpload`.
pub fn creates_object(method: &http::Method, uri: &http::Uri, headers: &HeaderMap) -> bool {
    let query = uri.query().unwrap_or("");
    let has = |name: &str| query.split('&').any(|pair| pair.split('=').next() == Some(name));
    match *method {
        http::Method::PUT => query.is_empty() && !headers.contains_key("x-amz-copy-source"),
        http::Method::POST => has("uploads"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn copra_options_are_taken_out_and_checked() {
        let given = options(&[
            ("bucket", "b"),
            ("access_key_id", "k"),
            ("secret_access_key", "s"),
            ("copra.acl", "public-read"),
            ("copra.cache_control", "max-age=3600"),
            ("copra.expires", "Mon, 21 Oct 2030 07:28:00 GMT"),
        ]);
        let (rest, object) = split("s3", &given).unwrap();
        assert_eq!(rest, options(&[("bucket", "b"), ("access_key_id", "k"), ("secret_access_key", "s")]));
        assert_eq!(object.acl.as_deref(), Some("public-read"));
        assert_eq!(object.cache_control.as_deref(), Some("max-age=3600"));
        assert_eq!(object.create_headers.get("expires").unwrap(), "Mon, 21 Oct 2030 07:28:00 GMT");
        assert_eq!(split("s3", &options(&[("bucket", "b")])).unwrap().1, ObjectOptions::default());
    }

    #[test]
    fn unknown_or_bad_values_are_refused() {
        for bad in [
            ("copra.acl", "everyone"),
            ("copra.acl", "private"), // no key pair to sign the ACL request with
            ("copra.cache_control", "a\r\nx-amz-acl: public-read"),
            ("copra.expires", "tomorrow"),
            ("copra.root", "/etc"),
        ] {
            assert!(split("s3", &options(&[bad])).is_err(), "{bad:?}");
        }
        assert_eq!(split("azblob", &options(&[("copra.acl", "private")])).unwrap_err(), ObjectOptionsError::OnlyS3("copra.acl".into()));
        let sentence = |bad: (&str, &str)| split("s3", &options(&[bad])).unwrap_err().to_string();
        assert!(sentence(("copra.acl", "everyone")).starts_with("The storage acl 'everyone' is not one of private, public-read,"));
        assert_eq!(
            sentence(("copra.cache_control", "a\nb")),
            "The storage cache_control is not valid as a header value (visible ASCII, at most 1024 bytes)."
        );
        assert!(sentence(("copra.expires", "tomorrow")).starts_with("The storage expires 'tomorrow' is not an HTTP date"));
        let err = split("s3", &options(&[("bucket", "b"), ("copra.acl", "private")])).unwrap_err();
        assert_eq!(err, ObjectOptionsError::AclWithoutKeys);
        assert!(err.to_string().contains("access_key_id"), "{err}");
    }

    #[test]
    fn only_object_creating_requests_get_the_headers() {
        let none = HeaderMap::new();
        let uri = |u: &str| u.parse::<http::Uri>().unwrap();
        assert!(creates_object(&http::Method::PUT, &uri("http://h/b/k.mp4"), &none));
        assert!(creates_object(&http::Method::POST, &uri("http://h/b/k.mp4?uploads"), &none));
        assert!(!creates_object(&http::Method::PUT, &uri("http://h/b/k.mp4?partNumber=1&uploadId=x"), &none));
        assert!(!creates_object(&http::Method::POST, &uri("http://h/b/k.mp4?uploadId=x"), &none));
        assert!(!creates_object(&http::Method::PUT, &uri("http://h/b/k.mp4?acl"), &none));
        assert!(!creates_object(&http::Method::GET, &uri("http://h/b/k.mp4"), &none));
        let mut copy = HeaderMap::new();
        copy.insert("x-amz-copy-source", HeaderValue::from_static("/b/a"));
        assert!(!creates_object(&http::Method::PUT, &uri("http://h/b/k.mp4"), &copy));
    }
}
