//! `sftp`: an SFTP server, streamed by the host's own SSH client. The block names the
//! `host`, `port` (22), the server's host key `fingerprint` (`SHA256:...`, as
//! `ssh-keygen -lf` prints it; the connection is refused unless the key matches), and
//! `credentials` with a `username` and a `password` or a `private_key` (OpenSSH or PEM,
//! with an optional `passphrase`). `path` is absolute on the server. Objects are at
//! `sftp://{host}:{port}/{path}/{key}`.

use copra_sdk::storage::OpendalTarget;
use copra_sdk::{Error, Json};

use crate::fields::{self, option};

pub fn target(block: &Json) -> Result<OpendalTarget, Error> {
    let host = fields::required(block, &["host", "server"], "sftp")?;
    if host.is_empty() || host.len() > 253 || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')) {
        return Err(Error::storage(format!("The sftp host '{host}' is not a host name or address.")));
    }
    let port = match block.get("port") {
        None | Some(Json::Null) => 22,
        Some(Json::Number(n)) => n.as_u64().filter(|p| (1..=65535).contains(p)).ok_or_else(|| Error::storage("The sftp 'port' is not a port."))?,
        Some(Json::String(s)) => s.parse::<u64>().ok().filter(|p| (1..=65535).contains(p)).ok_or_else(|| Error::storage("The sftp 'port' is not a port."))?,
        Some(_) => return Err(Error::storage("The sftp 'port' is not a port.")),
    };
    let fingerprint = fields::required(block, &["fingerprint", "host_key_fingerprint"], "sftp")?;
    let body = fingerprint.strip_prefix("SHA256:").unwrap_or(fingerprint).trim_end_matches('=');
    if body.len() != 43 || !body.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/') {
        return Err(Error::storage(format!(
            "The sftp 'fingerprint' '{fingerprint}' is not a SHA256 host key fingerprint (as `ssh-keygen -lf` prints it)."
        )));
    }
    let creds = fields::credentials(block, "sftp", "'username' and 'password' (or 'private_key')")?;
    let user = fields::require_credential(creds, &["username", "user"], "sftp")?;
    let mut options = vec![
        option("host", host),
        option("port", &port.to_string()),
        option("username", user),
        option("fingerprint", &format!("SHA256:{body}")),
        option("root", "/"),
    ];
    match (fields::credential(creds, &["private_key", "key"], "sftp")?, fields::credential(creds, &["password"], "sftp")?) {
        (Some(key), _) => {
            if !key.contains("-----BEGIN") && !key.starts_with("PuTTY-User-Key-File-") {
                return Err(Error::credentials("The storage credentials are not correct: the sftp 'private_key' is not a private key (OpenSSH or PEM)."));
            }
            options.push(option("private_key", key));
            if let Some(passphrase) = fields::credential(creds, &["passphrase"], "sftp")? {
                options.push(option("passphrase", passphrase));
            }
        }
        (None, Some(password)) => options.push(option("password", password)),
        (None, None) => {
            return Err(Error::credentials("The storage credentials are not correct: the sftp storage needs 'password' (or 'private_key')."));
        }
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
            (json!({"host":"h","fingerprint":FP}), codes::STORAGE_CREDENTIALS_NOT_VALID, "'credentials'"),
            (json!({"host":"h","fingerprint":FP,"credentials":{"password":"p"}}), codes::STORAGE_CREDENTIALS_NOT_VALID, "'username'"),
            (json!({"host":"h","fingerprint":FP,"credentials":{"username":"u"}}), codes::STORAGE_CREDENTIALS_NOT_VALID, "'password'"),
            (json!({"host":"h","fingerprint":FP,"credentials":{"username":"u","private_key":"xyz"}}), codes::STORAGE_CREDENTIALS_NOT_VALID, "'private_key'"),
            (json!({"host":"h","credentials":{"username":"u","password":"p"}}), codes::STORAGE_NOT_VALID, "'fingerprint'"),
            (json!({"host":"h","fingerprint":"MD5:aa","credentials":{"username":"u","password":"p"}}), codes::STORAGE_NOT_VALID, "'fingerprint'"),
            (json!({"fingerprint":FP,"credentials":{"username":"u","password":"p"}}), codes::STORAGE_NOT_VALID, "'host'"),
            (json!({"host":"h","port":70000,"fingerprint":FP,"credentials":{"username":"u","password":"p"}}), codes::STORAGE_NOT_VALID, "'port'"),
        ];
        for (spec, code, named) in cases {
            let err = target(&spec).unwrap_err();
            assert_eq!(err.code, code, "{spec}");
            assert!(err.message.contains(named), "{spec}: {}", err.message);
        }
    }
}
