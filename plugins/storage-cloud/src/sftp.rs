//! `sftp`: an SFTP server, streamed by the host's own SSH client, which refuses the
//! connection unless the server's host key matches the block's fingerprint. `path` is
//! absolute on the server. Objects are at `sftp://{host}:{port}/{path}/{key}`.

use copra_sdk::config::{invalid, parse};
use copra_sdk::storage::OpendalTarget;
use copra_sdk::{Error, Json, Secret};
use serde::{Deserialize, Deserializer};

use crate::common::option;

/// An `sftp` storage block.
#[derive(Debug, Deserialize)]
struct SftpConfig {
    /// The server's host name or address (`server` is read too).
    #[serde(alias = "server")]
    host: String,
    /// Its port, a number or a string of one (default 22).
    #[serde(default)]
    port: Option<Port>,
    /// The server's host key fingerprint as `ssh-keygen -lf` prints it
    /// (`SHA256:...`; `host_key_fingerprint` is read too).
    #[serde(alias = "host_key_fingerprint")]
    fingerprint: String,
    /// The user, and a password or a private key.
    credentials: SftpCredentials,
}

/// How to sign in: a user and a password, or a user and a private key.
#[derive(Debug, Deserialize)]
struct SftpCredentials {
    /// The user (`user` is read too).
    #[serde(alias = "user")]
    username: String,
    /// The user's password, when there is no key.
    #[serde(default)]
    password: Option<Secret>,
    /// A private key, OpenSSH or PEM (`key` is read too); it wins over a password.
    #[serde(default, alias = "key")]
    private_key: Option<Secret>,
    /// The private key's passphrase, if it has one.
    #[serde(default)]
    passphrase: Option<Secret>,
}

/// A TCP port, 1 to 65535, from a number or a string.
#[derive(Debug, Clone, Copy)]
struct Port(u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let port = match Json::deserialize(deserializer)? {
            Json::Number(n) => n.as_u64(),
            Json::String(s) => s.parse::<u64>().ok(),
            _ => None,
        };
        port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0).map(Port).ok_or_else(|| D::Error::custom("is not valid: expected a port, 1 to 65535"))
    }
}

pub fn target(block: &Json) -> Result<OpendalTarget, Error> {
    let config: SftpConfig = parse(block)?;
    let host = config.host.as_str();
    if host.is_empty() || host.len() > 253 || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')) {
        return Err(invalid("host", "is not valid: expected a host name or address"));
    }
    let port = config.port.map_or(22, |Port(p)| p);
    let fingerprint = config.fingerprint.as_str();
    let body = fingerprint.strip_prefix("SHA256:").unwrap_or(fingerprint).trim_end_matches('=');
    if body.len() != 43 || !body.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/') {
        return Err(invalid("fingerprint", "is not valid: expected a SHA256 host key fingerprint, as `ssh-keygen -lf` prints it"));
    }
    let creds = &config.credentials;
    let mut options = vec![
        option("host", host),
        option("port", &port.to_string()),
        option("username", &creds.username),
        option("fingerprint", &format!("SHA256:{body}")),
        option("root", "/"),
    ];
    match (&creds.private_key, &creds.password) {
        (Some(key), _) => {
            let key = key.expose();
            if !key.contains("-----BEGIN") && !key.starts_with("PuTTY-User-Key-File-") {
                return Err(invalid("credentials.private_key", "is not valid: expected an OpenSSH or PEM private key"));
            }
            options.push(option("private_key", key));
            if let Some(passphrase) = &creds.passphrase {
                options.push(option("passphrase", passphrase.expose()));
            }
        }
        (None, Some(password)) => options.push(option("password", password.expose())),
        (None, None) => return Err(invalid("credentials.password", "is missing (or give credentials.private_key)")),
    }
    let authority = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    Ok(OpendalTarget { scheme: "sftp".into(), options, url_base: format!("sftp://{authority}:{port}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;
    use serde_json::json;

    const FP: &str = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";

    #[test]
    fn a_host_a_pinned_key_and_a_password_or_key() {
        let t = target(&json!({"host":"files.example.com","port":"2222","fingerprint":FP,"credentials":{"user":"u","password":"p"}})).unwrap();
        assert_eq!(t.scheme, "sftp");
        assert_eq!(t.url_base, "sftp://files.example.com:2222");
        assert!(t.options.contains(&("password".into(), "p".into())));
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n";
        let t = target(&json!({"host":"::1","fingerprint":FP,"credentials":{"username":"u","private_key":key}})).unwrap();
        assert_eq!(t.url_base, "sftp://[::1]:22");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"host":"h","fingerprint":FP}), codes::STORAGE_CREDENTIALS_NOT_VALID, "credentials is missing"),
            (json!({"host":"h","fingerprint":FP,"credentials":{"password":"p"}}), codes::STORAGE_CREDENTIALS_NOT_VALID, "credentials.username is missing"),
            (json!({"host":"h","fingerprint":FP,"credentials":{"username":"u"}}), codes::STORAGE_CREDENTIALS_NOT_VALID, "credentials.password is missing"),
            (json!({"host":"h","fingerprint":FP,"credentials":{"username":"u","private_key":"xyz"}}), codes::STORAGE_CREDENTIALS_NOT_VALID, "credentials.private_key"),
            (json!({"host":"h","fingerprint":FP,"credentials":{"username":"u","password":1234}}), codes::STORAGE_CREDENTIALS_NOT_VALID, "credentials.password is not valid"),
            (json!({"host":"h","credentials":{"username":"u","password":"p"}}), codes::STORAGE_NOT_VALID, "fingerprint is missing"),
            (json!({"host":"h","fingerprint":"MD5:aa","credentials":{"username":"u","password":"p"}}), codes::STORAGE_NOT_VALID, "fingerprint is not valid"),
            (json!({"fingerprint":FP,"credentials":{"username":"u","password":"p"}}), codes::STORAGE_NOT_VALID, "host is missing"),
            (json!({"host":"h","port":70000,"fingerprint":FP,"credentials":{"username":"u","password":"p"}}), codes::STORAGE_NOT_VALID, "port is not valid"),
        ];
        for (spec, code, named) in cases {
            let err = target(&spec).unwrap_err();
            assert_eq!(err.code, code, "{spec}");
            assert!(err.message.contains(named), "{spec}: {}", err.message);
        }
    }

    #[test]
    fn the_config_prints_no_secret() {
        let config: SftpConfig = parse(&json!({"host":"h","fingerprint":FP,"credentials":{"username":"u","password":"hunter2"}})).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
