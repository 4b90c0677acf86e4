//! SFTP targets, streamed by the host's own SSH client (russh). opendal's `sftp` runs
//! the system `ssh` binary, which takes no password and no pinned host key; here the
//! server's host key must match the fingerprint the storage block gives, and the host
//! name's every address is checked against the outbound policy before connecting (SSH
//! is not HTTP: the policy's HTTP client does not cover it).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, decode_secret_key};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::OpenFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::Policy;
use crate::secret::Secret;

/// Bytes per SFTP write or read.
const CHUNK: usize = 64 << 10;

/// One SFTP target, from a storage plugin's `sftp` options.
pub struct SftpTarget {
    host: String,
    port: u16,
    user: String,
    auth: Auth,
    /// `SHA256:...` as `ssh-keygen -lf` prints it.
    fingerprint: String,
    /// The directory keys are below (`/` when not given).
    root: String,
}

enum Auth {
    Password(Secret<String>),
    Key { pem: Secret<String>, passphrase: Option<Secret<String>> },
}

fn get<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
    options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

impl SftpTarget {
    /// The target's options, checked: a host, a user, a password or private key, and
    /// the host key's fingerprint. The host is checked against `policy` (a literal now,
    /// a name's addresses again when it is resolved).
    pub fn parse(policy: &Policy, options: &[(String, String)]) -> Result<Self, String> {
        let host = get(options, "host").ok_or("The sftp storage target has no host.")?.to_string();
        let parsed = url::Host::parse(&host).map_err(|_| format!("The sftp host '{host}' is not a host name or address."))?;
        let checked = match &parsed {
            url::Host::Domain(d) => policy.check_host(&url::Host::Domain(d.as_str())),
            url::Host::Ipv4(ip) => policy.check_host(&url::Host::Ipv4(*ip)),
            url::Host::Ipv6(ip) => policy.check_host(&url::Host::Ipv6(*ip)),
        };
        checked.map_err(|refused| format!("The sftp host '{host}' cannot be used: {refused}."))?;
        let port = match get(options, "port") {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("The sftp port '{p}' is not a port."))?,
            None => 22,
        };
        let user = get(options, "username").ok_or("The sftp storage target has no username.")?.to_string();
        let auth = match (get(options, "private_key"), get(options, "password")) {
            (Some(pem), _) => {
                Auth::Key { pem: Secret::new(pem.to_string()), passphrase: get(options, "passphrase").map(|p| Secret::new(p.to_string())) }
            }
            (None, Some(password)) => Auth::Password(Secret::new(password.to_string())),
            (None, None) => return Err("The sftp storage target needs a password or a private key.".into()),
        };
        let fingerprint = get(options, "fingerprint").ok_or("The sftp storage target needs the server's host key fingerprint.")?;
        let fingerprint = normalise_fingerprint(fingerprint)?;
        let root = get(options, "root").unwrap_or("/").trim_end_matches('/').to_string();
        Ok(SftpTarget { host, port, user, auth, fingerprint, root })
    }

    fn path(&self, key: &str) -> String {
        format!("{}/{}", self.root, key.trim_start_matches('/'))
    }

    /// Connect, pin the host key, sign in and open the SFTP subsystem.
    async fn open(&self, policy: &Policy, connect_timeout: Duration) -> Result<(client::Handle<Pinned>, SftpSession), String> {
        let addr = self.address(policy).await?;
        let config = Arc::new(client::Config { inactivity_timeout: Some(Duration::from_secs(60)), ..Default::default() });
        let pinned = Pinned { fingerprint: self.fingerprint.clone(), seen: None };
        let connect = client::connect(config, addr, pinned);
        let mut session = match tokio::time::timeout(connect_timeout, connect).await {
            Err(_) => return Err(format!("the sftp server {addr} did not answer within {} s", connect_timeout.as_secs())),
            Ok(Err(PinError::Mismatch(seen))) => {
                return Err(format!("the sftp server's host key ({seen}) is not the fingerprint the storage gives ({})", self.fingerprint));
            }
            Ok(Err(PinError::Ssh(e))) => return Err(format!("the sftp connection to {addr} failed: {e}")),
            Ok(Ok(session)) => session,
        };
        let ssh = |e: russh::Error| format!("the sftp sign-in failed: {e}");
        let signed_in = match &self.auth {
            Auth::Password(password) => session.authenticate_password(&self.user, password.expose()).await.map_err(ssh)?,
            Auth::Key { pem, passphrase } => {
                let key = decode_secret_key(pem.expose(), passphrase.as_ref().map(|p| p.expose().as_str()))
                    .map_err(|_| "the sftp private key could not be read (is the passphrase right?)".to_string())?;
                let hash = session.best_supported_rsa_hash().await.map_err(ssh)?.flatten();
                session.authenticate_publickey(&self.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash)).await.map_err(ssh)?
            }
        };
        if !signed_in.success() {
            return Err(format!("the sftp server refused the credentials of '{}'", self.user));
        }
        let channel = session.channel_open_session().await.map_err(ssh)?;
        channel.request_subsystem(true, "sftp").await.map_err(ssh)?;
        let sftp = SftpSession::new(channel.into_stream()).await.map_err(|e| format!("the sftp subsystem did not start: {e}"))?;
        Ok((session, sftp))
    }

    /// The first of the host's addresses, every one of which the policy allows.
    async fn address(&self, policy: &Policy) -> Result<SocketAddr, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.trim_matches(['[', ']']), self.port))
            .await
            .map_err(|e| format!("the sftp host '{}' could not be resolved: {e}", self.host))?
            .collect();
        for addr in &addrs {
            policy.check_addr(&self.host, addr.ip()).map_err(|refused| format!("the sftp host cannot be used: {refused}"))?;
        }
        addrs.first().copied().ok_or_else(|| format!("the sftp host '{}' has no address", self.host))
    }

    /// Stream `file` to `key`, creating its directories.
    pub async fn upload(&self, policy: &Policy, connect_timeout: Duration, file: &Path, key: &str) -> Result<(), String> {
        let (session, sftp) = self.open(policy, connect_timeout).await?;
        let path = self.path(key);
        let mut dir = String::new();
        for segment in path.trim_start_matches('/').split('/').collect::<Vec<_>>().iter().rev().skip(1).rev() {
            dir = format!("{dir}/{segment}");
            if !sftp.try_exists(dir.as_str()).await.unwrap_or(false) {
                sftp.create_dir(dir.as_str()).await.map_err(|e| format!("the sftp directory '{dir}' could not be made: {e}"))?;
            }
        }
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        let mut remote = sftp.open_with_flags(path.as_str(), flags).await.map_err(|e| format!("'{path}' could not be opened: {e}"))?;
        let mut local = tokio::fs::File::open(file).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = local.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            remote.write_all(&buf[..n]).await.map_err(|e| format!("writing '{path}' failed: {e}"))?;
        }
        remote.shutdown().await.map_err(|e| format!("closing '{path}' failed: {e}"))?;
        close(session, sftp).await;
        Ok(())
    }

    /// Stream `key` to `dest`; more than `max_bytes` is refused (the caller removes
    /// the partial copy). Returns the bytes read.
    pub async fn download(&self, policy: &Policy, connect_timeout: Duration, key: &str, dest: &Path, max_bytes: u64) -> Result<u64, String> {
        let (session, sftp) = self.open(policy, connect_timeout).await?;
        let path = self.path(key);
        let mut remote = sftp.open(path.as_str()).await.map_err(|e| format!("'{path}' could not be opened: {e}"))?;
        let mut out = tokio::fs::File::create(dest).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = remote.read(&mut buf).await.map_err(|e| format!("reading '{path}' failed: {e}"))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > max_bytes {
                return Err(format!("more than {max_bytes} bytes arrived"));
            }
            out.write_all(&buf[..n]).await.map_err(|e| e.to_string())?;
        }
        out.flush().await.map_err(|e| e.to_string())?;
        close(session, sftp).await;
        Ok(total)
    }
}

async fn close(session: client::Handle<Pinned>, sftp: SftpSession) {
    let _ = sftp.close().await;
    let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
}

/// `SHA256:base64` (the prefix optional, trailing `=` ignored).
fn normalise_fingerprint(text: &str) -> Result<String, String> {
    let body = text.trim().strip_prefix("SHA256:").unwrap_or(text.trim()).trim_end_matches('=');
    let ok = !body.is_empty() && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    if !ok || body.len() != 43 {
        return Err(format!("The sftp fingerprint '{text}' is not a SHA256 host key fingerprint (as `ssh-keygen -lf` prints it)."));
    }
    Ok(format!("SHA256:{body}"))
}

/// Accepts only the server key whose SHA256 fingerprint was given.
struct Pinned {
    fingerprint: String,
    seen: Option<String>,
}

#[derive(Debug)]
enum PinError {
    Mismatch(String),
    Ssh(russh::Error),
}

impl From<russh::Error> for PinError {
    fn from(e: russh::Error) -> Self {
        PinError::Ssh(e)
    }
}

impl client::Handler for Pinned {
    type Error = PinError;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        let seen = key.fingerprint(HashAlg::Sha256).to_string();
        let seen = seen.trim_end_matches('=').to_string();
        if seen == self.fingerprint {
            self.seen = Some(seen);
            Ok(true)
        } else {
            Err(PinError::Mismatch(seen))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const FP: &str = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";

    #[test]
    fn the_host_is_checked_and_the_fingerprint_required() {
        let ok = options(&[("host", "127.0.0.1"), ("port", "2222"), ("username", "u"), ("password", "p"), ("fingerprint", FP)]);
        let err = SftpTarget::parse(&Policy::parse("").unwrap(), &ok).err().unwrap();
        assert!(err.contains("127.0.0.1") && err.contains("COPRA_OUTBOUND_ALLOW"), "{err}");
        let target = SftpTarget::parse(&Policy::parse("127.0.0.1/32").unwrap(), &ok).unwrap();
        assert_eq!((target.port, target.path("a/b.mp4").as_str()), (2222, "/a/b.mp4"));
        let policy = Policy::parse("127.0.0.1/32").unwrap();
        let no_fp = options(&[("host", "127.0.0.1"), ("username", "u"), ("password", "p")]);
        assert!(SftpTarget::parse(&policy, &no_fp).err().unwrap().contains("fingerprint"));
        let bad_fp = options(&[("host", "127.0.0.1"), ("username", "u"), ("password", "p"), ("fingerprint", "MD5:aa:bb")]);
        assert!(SftpTarget::parse(&policy, &bad_fp).is_err());
        let no_auth = options(&[("host", "127.0.0.1"), ("username", "u"), ("fingerprint", FP)]);
        assert!(SftpTarget::parse(&policy, &no_auth).is_err());
        assert!(SftpTarget::parse(&policy, &options(&[("host", "a b"), ("username", "u"), ("password", "p"), ("fingerprint", FP)])).is_err());
        let metadata = options(&[("host", "169.254.169.254"), ("username", "u"), ("password", "p"), ("fingerprint", FP)]);
        assert!(SftpTarget::parse(&policy, &metadata).is_err());
    }
}
