//! `azure`: Azure Blob Storage (opendal `azblob`). Objects are at
//! `https://{account}.blob.core.windows.net/{container}/{key}`.

use base64::Engine;
use copra_sdk::config::{invalid, parse};
use copra_sdk::storage::OpendalTarget;
use copra_sdk::{Error, Json, Secret};
use serde::Deserialize;

use crate::common::{endpoint, option};

/// An `azure` storage block.
#[derive(Debug, Deserialize)]
struct AzureConfig {
    /// The blob container files go to (`bucket` is read too): 3 to 63 lowercase
    /// letters, digits and single dashes.
    #[serde(alias = "bucket")]
    container: String,
    /// Replaces `https://{account}.blob.core.windows.net` (Azurite, sovereign clouds).
    #[serde(default)]
    endpoint: Option<String>,
    /// The account, and its key or a SAS token.
    credentials: AzureCredentials,
}

/// How to sign in: the account and its key, or the account and a SAS token.
#[derive(Debug, Deserialize)]
struct AzureCredentials {
    /// The storage account (`account` is read too): 3 to 24 lowercase letters and digits.
    #[serde(alias = "account")]
    account_name: String,
    /// The account's key, base64 (`access_key` is read too).
    #[serde(default, alias = "access_key")]
    account_key: Option<Secret>,
    /// A shared access signature, with or without its leading `?` (`sas` is read too);
    /// it wins over a key.
    #[serde(default, alias = "sas")]
    sas_token: Option<Secret>,
}

pub fn target(block: &Json) -> Result<OpendalTarget, Error> {
    let config: AzureConfig = parse(block)?;
    let container = config.container.as_str();
    if !is_container_name(container) {
        return Err(invalid("container", "is not valid: expected 3 to 63 lowercase letters, digits and single dashes"));
    }
    let account = config.credentials.account_name.as_str();
    if !is_account_name(account) {
        return Err(invalid("credentials.account_name", "is not valid: expected 3 to 24 lowercase letters and digits"));
    }
    let mut options = vec![option("container", container), option("account_name", account), option("root", "/")];
    match (&config.credentials.sas_token, &config.credentials.account_key) {
        (Some(sas), _) => options.push(option("sas_token", sas.expose().trim_start_matches('?'))),
        (None, Some(key)) => {
            if base64::engine::general_purpose::STANDARD.decode(key.expose()).is_err() {
                return Err(invalid("credentials.account_key", "is not valid: expected base64"));
            }
            options.push(option("account_key", key.expose()));
        }
        (None, None) => return Err(invalid("credentials.account_key", "is missing (or give credentials.sas_token)")),
    }
    let endpoint = endpoint(config.endpoint.as_deref())?.unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
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
            (json!({"container":"videos"}), "credentials is missing"),
            (json!({"container":"videos","credentials":{"account_key":"a2V5"}}), "credentials.account_name is missing"),
            (json!({"container":"videos","credentials":{"account_name":"acme"}}), "credentials.account_key is missing"),
            (json!({"container":"videos","credentials":{"account_name":"acme","account_key":"not base64!"}}), "expected base64"),
            (json!({"container":"videos","credentials":{"account_name":"ACME.evil","account_key":"a2V5"}}), "credentials.account_name is not valid"),
            (json!({"container":"videos","credentials":{"account_name":"acme","account_key":7}}), "credentials.account_key is not valid: expected a string"),
        ];
        for (spec, named) in cases {
            let err = target(&spec).unwrap_err();
            assert_eq!(err.code, codes::STORAGE_CREDENTIALS_NOT_VALID, "{spec}");
            assert!(err.message.contains(named), "{spec}: {}", err.message);
            assert!(!err.message.contains("a2V5"), "{}", err.message);
        }
        let err = target(&json!({"credentials":{"account_name":"acme","account_key":"a2V5"}})).unwrap_err();
        assert_eq!(err.code, codes::STORAGE_NOT_VALID);
        assert!(err.message.contains("container"));
        assert!(target(&json!({"container":"Bad_Name","credentials":{"account_name":"acme","account_key":"a2V5"}})).is_err());
    }

    #[test]
    fn the_config_prints_no_secret() {
        let config: AzureConfig = parse(&json!({"container":"videos","credentials":{"account_name":"acme","account_key":"a2V5"}})).unwrap();
        assert!(!format!("{config:?}").contains("a2V5"));
    }
}
