use super::*;
use copra_sdk::codes;
use copra_sdk::storage::OpendalTarget;

fn resolve(spec: &str) -> Result<Target, Error> {
    StorageS3::resolve(&serde_json::from_str(spec).unwrap())
}

fn opendal(spec: &str) -> OpendalTarget {
    match resolve(spec) {
        Ok(Target::Opendal(t)) => t,
        Ok(_) => panic!("expected an opendal target for {spec}"),
        Err(e) => panic!("{spec}: {e}"),
    }
}

fn object_key(spec: &str, path: &str) -> Result<String, Error> {
    StorageS3::object_key(&serde_json::from_str(spec).unwrap(), path)
}

fn option<'a>(t: &'a OpendalTarget, key: &str) -> Option<&'a str> {
    t.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

const CREDS: &str = r#""credentials":{"access_key_id":"k","secret_access_key":"s"}"#;
const S3: &str = r#"{"service":"s3","bucket":"b","path":"/pre/","endpoint":"http://127.0.0.1:9000","credentials":{"access_key_id":"k","secret_access_key":"s"}}"#;

fn block(service: &str, extra: &str) -> String {
    format!(r#"{{"service":"{service}","bucket":"media",{extra}{CREDS}}}"#)
}

#[test]
fn s3_with_endpoint_is_path_style() {
    let t = opendal(S3);
    assert_eq!(t.scheme, "s3");
    assert_eq!(t.url_base, "http://127.0.0.1:9000/b");
    assert_eq!(option(&t, "endpoint"), Some("http://127.0.0.1:9000"));
}

#[test]
fn aws_urls_are_virtual_hosted() {
    let t = opendal(r#"{"service":"s3","bucket":"b","region":"eu-west-1","credentials":{"access_key_id":"k","secret_access_key":"s"}}"#);
    assert_eq!(t.url_base, "https://b.s3.eu-west-1.amazonaws.com");
    assert_eq!(option(&t, "endpoint"), Some("https://s3.eu-west-1.amazonaws.com"));
}

#[test]
fn each_service_maps_its_region_to_its_endpoint_and_urls() {
    let cases = [
        ("dospaces", r#""region":"fra1","#, "https://fra1.digitaloceanspaces.com", "https://media.fra1.digitaloceanspaces.com", "fra1"),
        ("dospaces", "", "https://nyc3.digitaloceanspaces.com", "https://media.nyc3.digitaloceanspaces.com", "nyc3"),
        ("backblaze", r#""region":"us-west-004","#, "https://s3.us-west-004.backblazeb2.com", "https://media.s3.us-west-004.backblazeb2.com", "us-west-004"),
        ("impossiblecloud", r#""region":"eu-west-1","#, "https://eu-west-1.storage.impossibleapi.net", "https://eu-west-1.storage.impossibleapi.net/media", "eu-west-1"),
        ("impossiblecloud", "", "https://eu-central-2.storage.impossibleapi.net", "https://eu-central-2.storage.impossibleapi.net/media", "eu-central-2"),
        ("contabo", r#""region":"usc1","#, "https://usc1.contabostorage.com", "https://usc1.contabostorage.com/media", "us-east-1"),
        ("cdn77", r#""region":"eu-1","#, "https://eu-1.cdn77-storage.com", "https://eu-1.cdn77-storage.com/media", "us-east-1"),
    ];
    for (service, extra, endpoint, url, signing) in cases {
        let t = opendal(&block(service, extra));
        assert_eq!((t.scheme.as_str(), t.url_base.as_str()), ("s3", url), "{service}");
        assert_eq!(option(&t, "endpoint"), Some(endpoint), "{service}");
        assert_eq!(option(&t, "region"), Some(signing), "{service}");
        assert_eq!(option(&t, "enable_virtual_host_style"), Some("false"), "{service}");
        assert_eq!(option(&t, "disable_config_load"), Some("true"), "{service}");
    }
}

#[test]
fn an_overridden_endpoint_serves_every_service() {
    for (service, _) in services::ALL {
        let t = opendal(&block(service, r#""region":"r1","endpoint":"http://127.0.0.1:5000","#));
        assert_eq!(t.url_base, "http://127.0.0.1:5000/media", "{service}");
        assert_eq!(option(&t, "endpoint"), Some("http://127.0.0.1:5000"), "{service}");
    }
}

#[test]
fn services_without_a_default_region_require_one() {
    for service in ["backblaze", "cdn77"] {
        let err = resolve(&block(service, "")).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_NOT_VALID, "{service}");
        assert!(err.message.contains("region"), "{}", err.message);
    }
}

#[test]
fn backblaze_ignores_object_acls_and_others_carry_them() {
    let t = opendal(&block("backblaze", r#""region":"us-west-004","acl":"public-read","cache_control":"max-age=5","#));
    assert_eq!(option(&t, "copra.acl"), None);
    assert_eq!(option(&t, "copra.cache_control"), Some("max-age=5"));
    let t = opendal(&block("dospaces", r#""acl":"public-read","#));
    assert_eq!(option(&t, "copra.acl"), Some("public-read"));
}

#[test]
fn secure_false_gives_http_urls() {
    let t = opendal(&block("dospaces", r#""secure":false,"#));
    assert_eq!(t.url_base, "http://media.nyc3.digitaloceanspaces.com");
    assert_eq!(option(&t, "endpoint"), Some("https://nyc3.digitaloceanspaces.com"), "requests stay on TLS");
}

#[test]
fn missing_credentials_are_named() {
    let err = resolve(r#"{"service":"s3","bucket":"b"}"#).unwrap_err();
    assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
    assert!(err.message.contains("access_key_id"));
    let err = resolve(r#"{"service":"backblaze","region":"us-west-004","bucket":"b","credentials":{"access_key_id":"k"}}"#).unwrap_err();
    assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
    assert!(err.message.contains("credentials.secret_access_key"), "{}", err.message);
}

#[test]
fn s3_options_are_opendal_config_keys() {
    let t = opendal(S3);
    assert_eq!(option(&t, "bucket"), Some("b"));
    assert_eq!(option(&t, "region"), Some("us-east-1"), "region defaults to us-east-1");
    assert_eq!(option(&t, "access_key_id"), Some("k"));
    assert_eq!(option(&t, "secret_access_key"), Some("s"));
    assert_eq!(option(&t, "root"), Some("/"));
    assert_eq!(option(&t, "disable_config_load"), Some("true"));
    assert_eq!(option(&t, "enable_virtual_host_style"), Some("false"));
    let t = opendal(r#"{"service":"s3","bucket":"b","endpoint":"https://s3.example.com/","force_path_style":false,"credentials":{"access_key_id":"k","secret_access_key":"s"}}"#);
    assert_eq!(option(&t, "enable_virtual_host_style"), Some("true"));
    assert_eq!(t.url_base, "https://b.s3.example.com");
}

#[test]
fn local_coconut_and_unknown_services() {
    assert!(matches!(resolve(r#"{"service":"local"}"#), Ok(Target::Local)));
    assert!(matches!(resolve(r#"{"service":"coconut"}"#), Ok(Target::Local)));
    assert_eq!(resolve(r#"{"service":"gcs","bucket":"b"}"#).unwrap_err().code, codes::STORAGE_NOT_VALID);
    assert_eq!(resolve(r#"{"bucket":"b"}"#).unwrap_err().code, codes::STORAGE_NOT_VALID);
    let services = StorageS3::services();
    for name in ["s3", "dospaces", "backblaze", "impossiblecloud", "contabo", "cdn77", "local", "coconut"] {
        assert!(services.iter().any(|s| s == name), "{name}");
    }
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
