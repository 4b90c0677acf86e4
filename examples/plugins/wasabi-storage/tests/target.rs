use copra_sdk::codes;
use copra_sdk::storage::{Storage, Target};
use wasabi_storage::WasabiStorage;

fn resolve(spec: &str) -> Result<Target, copra_sdk::Error> {
    WasabiStorage::resolve(&serde_json::from_str(spec).unwrap())
}

#[test]
fn a_region_becomes_wasabis_endpoint_and_url() {
    let spec = r#"{"service":"wasabi","region":"eu-central-1","bucket":"media","credentials":{"access_key_id":"k","secret_access_key":"s"}}"#;
    let Ok(Target::Opendal(target)) = resolve(spec) else { panic!("expected an opendal target") };
    assert_eq!(target.url_base, "https://s3.eu-central-1.wasabisys.com/media");
    assert!(target.options.contains(&("endpoint".into(), "https://s3.eu-central-1.wasabisys.com".into())));
}

#[test]
fn a_missing_secret_is_named() {
    let err = resolve(r#"{"service":"wasabi","bucket":"media","credentials":{"access_key_id":"k"}}"#).unwrap_err();
    assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID);
    assert_eq!(err.message, "The storage field credentials.secret_access_key is missing.");
}
