//! `azure`: Azure Blob Storage (opendal `azblob`). The block names a `container` (or
//! `bucket`) and `credentials` with the account name and its key, or a SAS token;
//! `endpoint` overrides `https://{account}.blob.core.windows.net` (Azurite, sovereign
//! clouds). Objects are at `https://{account}.blob.core.windows.net/{container}/{key}`.

use base64::Engine;
use copra_sdk::storage::OpendalTarget;
use copra_sdk::{Error, Json};

use crate::fields::{self, option};

const ACCOUNT: &[&str] = &["account_name", "account"];
const KEY: &[&str] = &["account_key", "access_key"];
const SAS: &[&str] = &["sas_token", "sas"];

pub fn target(block: &Json) -> Result<OpendalTarget, Error> {
    let container = fields::required(block, &["container", "bucket"], "azure")?;
    if !is_container_name(container) {
        return Err(Error::storage(format!(
            "The azure container '{container}' is not a container name (3 to 63 lowercase letters, digits and dashes)."
        )));
    }
    let creds = fields::credentials(block, "azure", "'account_name' and 'account_key', or 'account_name' and 'sas_token'")?;
    let account = fields::require_credential(creds, ACCOUNT, "azure")?;
    if !is_account_name(account) {
        return Err(Error::credentials(format!(
            "The storage credentials are not correct: the azure account name '{account}' must be 3 to 24 lowercase letters and digits."
        )));
    }
    let sas = fields::credential(creds, SAS, "azure")?;
    let key = fields::credential(creds, KEY, "azure")?;
    let mut options = vec![option("container", container), option("account_name", account), option("root", "/")];
    match (sas, key) {
        (Some(sas), _) => options.push(option("sas_token", sas.trim_start_matches('?'))),
        (None, Some(key)) => {
            if base64::engine::general_purpose::STANDARD.decode(key).is_err() {
                return Err(Error::credentials("The storage credentials are not correct: the azure 'account_key' is not base64."));
            }
            options.push(option("account_key", key));
        }
        (None, None) => {
            return Err(Error::credentials(
                "The storage credentials are not correct: the azure storage needs 'account_key' (or 'access_key'), or 'sas_token'.",
            ));
        }
    }
    let endpoint = fields::endpoint(block, "azure")?.unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
    options.push(option("endpoint", &endpoint));
    Ok(OpendalTarget { scheme: "azblob".into(), options, url_base: format!("{endpoint}/{container}") })
}

/// Azure account names go into host names: 3-24 lowercase letters and digits.
fn is_account_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Container names: 3-63 lowercase letters, digits and single dashes, not at the ends.
fn is_container_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;
    use serde_json::json;

    fn option<'a>(t: &'a OpendalTarget, key: &str) -> Option<&'a str> {
        t.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn account_and_key_make_the_real_url() {
        let t = target(&json!({"service":"azure","container":"videos","credentials":{"account":"acme","access_key":"a2V5"}})).unwrap();
        assert_eq!(t.scheme, "azblob");
        assert_eq!(t.url_base, "https://acme.blob.core.windows.net/videos");
        assert_eq!(option(&t, "account_name"), Some("acme"));
        assert_eq!(option(&t, "account_key"), Some("a2V5"));
        assert_eq!(option(&t, "endpoint"), Some("https://acme.blob.core.windows.net"));
    }

    #[test]
    fn sas_and_endpoint_override() {
        let spec = json!({"service":"azure","bucket":"videos","endpoint":"http://127.0.0.1:10000/devstoreaccount1/",
                          "credentials":{"account_name":"devstoreaccount1","sas_token":"?sv=1&sig=x"}});
        let t = target(&spec).unwrap();
        assert_eq!(t.url_base, "http://127.0.0.1:10000/devstoreaccount1/videos");
        assert_eq!(option(&t, "sas_token"), Some("sv=1&sig=x"));
        assert_eq!(option(&t, "account_key"), None);
    }

    #[test]
    fn missing_or_malformed_credentials_name_the_field() {
        let cases = [
            (json!({"container":"videos"}), "'credentials'"),
            (json!({"container":"videos","credentials":{"account_key":"a2V5"}}), "'account_name'"),
            (json!({"container":"videos","credentials":{"account_name":"acme"}}), "'account_key'"),
            (json!({"container":"videos","credentials":{"account_name":"acme","account_key":"not base64!"}}), "not base64"),
            (json!({"container":"videos","credentials":{"account_name":"ACME.evil","account_key":"a2V5"}}), "account name"),
            (json!({"container":"videos","credentials":{"account_name":"acme","account_key":7}}), "'account_key' must be a string"),
        ];
        for (spec, named) in cases {
            let err = target(&spec).unwrap_err();
            assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID, "{spec}");
            assert!(err.message.contains(named), "{spec}: {}", err.message);
        }
        let err = target(&json!({"credentials":{"account_name":"acme","account_key":"a2V5"}})).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_NOT_VALID);
        assert!(err.message.contains("'container'"));
        assert!(target(&json!({"container":"Bad_Name","credentials":{"account_name":"acme","account_key":"a2V5"}})).is_err());
    }
}
