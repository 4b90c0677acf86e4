//! Per-scheme hardening of an opendal target's options: credentials come only from
//! the target, never from the server's environment, profile files, well-known
//! credential files or a cloud metadata service, and options that would make opendal
//! fetch credentials from elsewhere (with a client outside the outbound policy, or
//! from the server's files) are refused. Each error is a sentence for the user.

use base64::Engine;

type Options = Vec<(String, String)>;

/// Why a target's options are refused.
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    #[error("The storage option '{key}' is not supported: {instead}")]
    Unsupported { key: String, instead: &'static str },
    #[error("The storage region '{0}' is not a region name (letters, digits and dashes).")]
    NotARegion(String),
    #[error("The azblob storage target has no endpoint.")]
    AzureNoEndpoint,
    #[error("The azure storage credentials must give an account name and key, or a SAS token.")]
    AzureCredentials,
    #[error("The gcs storage credentials must give a service account key.")]
    GcsCredentials,
    #[error("The gcs storage credential is not a service account's JSON key.")]
    NotAServiceAccountKey,
    #[error("The gcs storage credential must be a key of type 'service_account'.")]
    NotServiceAccountType,
    #[error("The swift storage target needs an endpoint and a token.")]
    SwiftToken,
    /// A sign-in the host would make is refused (`swift_auth::check`).
    #[error(transparent)]
    SwiftSignIn(#[from] super::swift_auth::SwiftAuthError),
}

/// `options` hardened for `scheme` (canonical opendal name). Schemes without a rule
/// here pass unchanged (the sandbox grants schemes; only known ones are granted by default).
pub fn harden(scheme: &str, options: &[(String, String)]) -> Result<Options, HardenError> {
    match scheme {
        "s3" => s3(options),
        "azblob" => azblob(options),
        "gcs" => gcs(options),
        "swift" => swift(options),
        _ => Ok(options.to_vec()),
    }
}

fn get<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
    options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// `options` without `forced` keys, then the forced values.
fn with_forced(options: &[(String, String)], forced: &[(&str, &str)]) -> Options {
    let mut out: Options = options.iter().filter(|(k, _)| !forced.iter().any(|(f, _)| f == k)).cloned().collect();
    out.extend(forced.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

fn refuse_keys(options: &[(String, String)], keys: &[&str], instead: &'static str) -> Result<(), HardenError> {
    match options.iter().find(|(k, _)| keys.contains(&k.as_str())) {
        Some((key, _)) => Err(HardenError::Unsupported { key: key.clone(), instead }),
        None => Ok(()),
    }
}

/// S3: no profile files, environment or instance credentials, no role to assume.
fn s3(options: &[(String, String)]) -> Result<Options, HardenError> {
    refuse_keys(
        options,
        &["role_arn", "external_id", "role_session_name"],
        "give the target's own access key and secret instead of a role to assume.",
    )?;
    if let Some(region) = options.iter().find(|(k, _)| k == "region").map(|(_, v)| v)
        && !is_region(region)
    {
        return Err(HardenError::NotARegion(region.clone()));
    }
    Ok(with_forced(options, &[("disable_config_load", "true"), ("disable_ec2_metadata", "true")]))
}

/// A region goes into host names (`s3.{region}.amazonaws.com`): letters, digits, dashes.
fn is_region(value: &str) -> bool {
    !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Azure Blob: opendal reads `AZBLOB_ACCOUNT_KEY`, `AZURE_CLIENT_SECRET` and friends from
/// the server's environment and falls back to workload identity and the instance
/// metadata service when the target has no credentials of its own. A target must
/// therefore carry a SAS token, or an account name with its key: opendal uses those
/// first and never looks further.
fn azblob(options: &[(String, String)]) -> Result<Options, HardenError> {
    if get(options, "endpoint").is_none() {
        return Err(HardenError::AzureNoEndpoint);
    }
    let sas = get(options, "sas_token").is_some();
    let shared_key = get(options, "account_name").is_some() && get(options, "account_key").is_some();
    if !sas && !shared_key {
        return Err(HardenError::AzureCredentials);
    }
    Ok(options.to_vec())
}

/// GCS: only a service account key given in the target (or an OAuth2 token). No
/// `GOOGLE_APPLICATION_CREDENTIALS`, well-known files or VM metadata; no credential file
/// path; no external-account or impersonation credentials (they name URLs and files
/// that opendal would reach outside the policy).
fn gcs(options: &[(String, String)]) -> Result<Options, HardenError> {
    refuse_keys(
        options,
        &["credential_path", "google_application_credentials", "service_account", "google_service_account", "google_service_account_path", "service_account_path"],
        "give the service account's JSON key in the storage credentials.",
    )?;
    let aliases = ["credential", "google_service_account_key", "service_account_key"];
    let credential = aliases.iter().find_map(|k| get(options, k));
    if let Some(content) = credential {
        check_service_account(content)?;
    } else if get(options, "token").is_none() {
        return Err(HardenError::GcsCredentials);
    }
    Ok(with_forced(options, &[("disable_config_load", "true"), ("disable_vm_metadata", "true"), ("allow_anonymous", "false")]))
}

/// A `credential` option is base64 of a service account's JSON key.
fn check_service_account(content: &str) -> Result<(), HardenError> {
    let bad = || HardenError::NotAServiceAccountKey;
    let json = base64::engine::general_purpose::STANDARD.decode(content.trim()).map_err(|_| bad())?;
    let key: serde_json::Value = serde_json::from_slice(&json).map_err(|_| bad())?;
    if key.get("type").and_then(|t| t.as_str()) != Some("service_account") {
        return Err(HardenError::NotServiceAccountType);
    }
    Ok(())
}

/// Swift: a token and an endpoint given in the target (opendal reads nothing else), or
/// a sign-in the host makes (see [`super::swift_auth`]).
fn swift(options: &[(String, String)]) -> Result<Options, HardenError> {
    if super::swift_auth::signs_in(options) {
        super::swift_auth::check(options)?;
    } else if get(options, "endpoint").is_none() || get(options, "token").is_none() {
        return Err(HardenError::SwiftToken);
    }
    Ok(options.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Options {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn values<'a>(options: &'a Options, key: &str) -> Vec<&'a str> {
        options.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    #[test]
    fn s3_credentials_come_from_the_target_only() {
        let target = options(&[("bucket", "b"), ("region", "eu-west-1"), ("disable_ec2_metadata", "false")]);
        let hardened = harden("s3", &target).unwrap();
        assert_eq!(values(&hardened, "disable_ec2_metadata"), ["true"]);
        assert_eq!(values(&hardened, "disable_config_load"), ["true"]);
        assert_eq!(values(&hardened, "region"), ["eu-west-1"]);
        assert!(harden("s3", &options(&[("role_arn", "arn:aws:iam::1:role/x")])).is_err());
        assert!(harden("s3", &options(&[("region", "x@127.0.0.1/")])).is_err());
    }

    #[test]
    fn azblob_needs_its_own_credentials() {
        let base = [("container", "c"), ("endpoint", "https://a.blob.core.windows.net")];
        let mut key = options(&base);
        key.extend(options(&[("account_name", "a"), ("account_key", "a2V5")]));
        assert!(harden("azblob", &key).is_ok());
        let mut sas = options(&base);
        sas.push(("sas_token".into(), "sv=1&sig=x".into()));
        assert!(harden("azblob", &sas).is_ok());
        let mut name_only = options(&base);
        name_only.push(("account_name".into(), "a".into()));
        assert!(harden("azblob", &name_only).unwrap_err().to_string().contains("account name and key"));
        assert!(harden("azblob", &options(&[("container", "c"), ("sas_token", "x")])).is_err(), "no endpoint");
    }

    #[test]
    fn gcs_never_loads_the_servers_credentials() {
        let sa = base64::engine::general_purpose::STANDARD.encode(r#"{"type":"service_account","client_email":"a@b"}"#);
        let target = options(&[("bucket", "b"), ("credential", &sa), ("disable_vm_metadata", "false")]);
        let hardened = harden("gcs", &target).unwrap();
        assert_eq!(values(&hardened, "disable_vm_metadata"), ["true"]);
        assert_eq!(values(&hardened, "disable_config_load"), ["true"]);
        assert_eq!(values(&hardened, "allow_anonymous"), ["false"]);
        assert!(harden("gcs", &options(&[("bucket", "b")])).is_err(), "no credentials");
        assert!(harden("gcs", &options(&[("bucket", "b"), ("token", "t")])).is_ok());
        assert!(harden("gcs", &options(&[("bucket", "b"), ("token", "t"), ("credential_path", "/etc/x.json")])).is_err());
        let external = base64::engine::general_purpose::STANDARD.encode(r#"{"type":"external_account","credential_source":{"file":"/etc/shadow"}}"#);
        assert!(harden("gcs", &options(&[("bucket", "b"), ("credential", &external)])).unwrap_err().to_string().contains("service_account"));
        assert!(harden("gcs", &options(&[("bucket", "b"), ("credential", "not base64!")])).is_err());
    }

    #[test]
    fn swift_needs_endpoint_and_token() {
        assert!(harden("swift", &options(&[("endpoint", "https://s/v1/AUTH_a"), ("container", "c"), ("token", "t")])).is_ok());
        assert!(harden("swift", &options(&[("endpoint", "https://s/v1/AUTH_a"), ("container", "c")])).is_err());
        let sign_in = options(&[("auth_url", "https://id/v2.0"), ("container", "c"), ("username", "u")]);
        assert!(harden("swift", &sign_in).is_err());
        let mut with_key = sign_in.clone();
        with_key.push(("api_key".into(), "k".into()));
        assert!(harden("swift", &with_key).is_ok());
    }
}
