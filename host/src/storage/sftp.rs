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

/// Why an SFTP target is refused, or a transfer failed: each a sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    #[error("The sftp storage target has no {0}.")]
    Missing(&'static str),
    #[error("The sftp host '{0}' is not a host name or address.")]
    NotAHost(String),
    #[error("The sftp host '{host}' cannot be used: {refused}.")]
    HostRefused { host: String, refused: String },
    #[error("The sftp port '{0}' is not a port.")]
    NotAPort(String),
    #[error("The sftp storage target needs a password or a private key.")]
    NoCredentials,
    #[error("The sftp storage target needs the server's host key fingerprint.")]
    NoFingerprint,
    #[error("The sftp fingerprint '{0}' is not a SHA256 host key fingerprint (as `ssh-keygen -lf` prints it).")]
    NotAFingerprint(String),
    #[error("the sftp host '{host}' could not be resolved: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("the sftp host cannot be used: {0}")]
    AddressRefused(String),
    #[error("the sftp host '{0}' has no address")]
    NoAddress(String),
    #[error("the sftp server {addr} did not answer within {secs} s")]
    ConnectTimeout { addr: SocketAddr, secs: u64 },
    #[error("the sftp server's host key ({seen}) is not the fingerprint the storage gives ({expected})")]
    HostKeyMismatch { seen: String, expected: String },
    #[error("the sftp connection to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: russh::Error },
    #[error("the sftp sign-in failed: {0}")]
    SignIn(#[from] russh::Error),
    #[error("the sftp private key could not be read (is the passphrase right?)")]
    PrivateKey,
    #[error("the sftp server refused the credentials of '{0}'")]
    CredentialsRefused(String),
    #[error("the sftp subsystem did not start: {0}")]
    Subsystem(russh_sftp::client::error::Error),
    #[error("the sftp directory '{dir}' could not be made: {source}")]
    MakeDir { dir: String, source: russh_sftp::client::error::Error },
    #[error("'{path}' could not be opened: {source}")]
    Open { path: String, source: russh_sftp::client::error::Error },
    #[error("{doing} '{path}' failed: {source}")]
    Transfer { doing: &'static str, path: String, source: std::io::Error },
    #[error("{0}")]
    Local(#[from] std::io::Error),
    #[error("more than {0} bytes arrived")]
    TooLarge(u64),
}

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
    pub fn parse(policy: &Policy, options: &[(String, String)]) -> Result<Self, SftpError> {
        let host = get(options, "host").ok_or(SftpError::Missing("host"))?.to_string();
        let parsed = url::Host::parse(&host).map_err(|_| SftpError::NotAHost(host.clone()))?;
        let checked = match &parsed {
            url::Host::Domain(d) => policy.check_host(&url::Host::Domain(d.as_str())),
            url::Host::Ipv4(ip) => policy.check_host(&url::Host::Ipv4(*ip)),
            url::Host::Ipv6(ip) => policy.check_host(&url::Host::Ipv6(*ip)),
        };
        checked.map_err(|refused| SftpError::HostRefused { host: host.clone(), refused: refused.to_string() })?;
        let port = match get(options, "port") {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| SftpError::NotAPort(p.to_string()))?,
            None => 22,
        };
        let user = get(options, "username").ok_or(SftpError::Missing("username"))?.to_string();
        let auth = match (get(options, "private_key"), get(options, "password")) {
            (Some(pem), _) => {
                Auth::Key { pem: Secret::new(pem.to_string()), passphrase: get(options, "passphrase").map(|p| Secret::new(p.to_string())) }
            }
            (None, Some(password)) => Auth::Password(Secret::new(password.to_string())),
            (None, None) => return Err(SftpError::NoCredentials),
        };
        let fingerprint = get(options, "fingerprint").ok_or(SftpError::NoFingerprint)?;
        let fingerprint = normalise_fingerprint(fingerprint)?;
        let root = get(options, "root").unwrap_or("/").trim_end_matches('/').to_string();
        Ok(SftpTarget { host, port, user, auth, fingerprint, root })
    }

    fn path(&self, key: &str) -> String {
        format!("{}/{}", self.root, key.trim_start_matches('/'))
    }

    /// Connect, pin the host key, sign in and open the SFTP subsystem.
    async fn open(&self, policy: &Policy, connect_timeout: Duration) -> Result<(client::Handle<Pinned>, SftpSession), SftpError> {
        let addr = self.address(policy).await?;
        let config = Arc::new(client::Config { inactivity_timeout: Some(Duration::from_secs(60)), ..Default::default() });
        let pinned = Pinned { fingerprint: self.fingerprint.clone(), seen: None };
        let connect = client::connect(config, addr, pinned);
        let mut session = match tokio::time::timeout(connect_timeout, connect).await {
            Err(_) => return Err(SftpError::ConnectTimeout { addr, secs: connect_timeout.as_secs() }),
            Ok(Err(PinError::Mismatch(seen))) => return Err(SftpError::HostKeyMismatch { seen, expected: self.fingerprint.clone() }),
            Ok(Err(PinError::Ssh(source))) => return Err(SftpError::Connect { addr, source }),
            Ok(Ok(session)) => session,
        };
        let signed_in = match &self.auth {
            Auth::Password(password) => session.authenticate_password(&self.user, password.expose()).await?,
            Auth::Key { pem, passphrase } => {
                let key = decode_secret_key(pem.expose(), passphrase.as_ref().map(|p| p.expose().as_str()))
                    .map_err(|_| SftpError::PrivateKey)?;
                let hash = session.best_supported_rsa_hash().await?.flatten();
                session.authenticate_publickey(&self.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash)).await?
            }
        };
        if !signed_in.success() {
            return Err(SftpError::CredentialsRefused(self.user.clone()));
        }
        let channel = session.channel_open_session().await?;
        channel.request_subsystem(true, "sftp").await?;
        let sftp = SftpSession::new(channel.into_stream()).await.map_err(SftpError::Subsystem)?;
        Ok((session, sftp))
    }

    /// The first of the host's addresses, every one of which the policy allows.
    async fn address(&self, policy: &Policy) -> Result<SocketAddr, SftpError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.trim_matches(['[', ']']), self.port))
            .await
            .map_err(|source| SftpError::Resolve { host: self.host.clone(), source })?
            .collect();
        for addr in &addrs {
            policy.check_addr(&self.host, addr.ip()).map_err(|refused| SftpError::AddressRefused(refused.to_string()))?;
        }
        addrs.first().copied().ok_or_else(|| SftpError::NoAddress(self.host.clone()))
    }

    /// Stream `file` to `key`, creating its directories.
    pub async fn upload(&self, policy: &Policy, connect_timeout: Duration, file: &Path, key: &str) -> Result<(), SftpError> {
        let (session, sftp) = self.open(policy, connect_timeout).await?;
        let path = self.path(key);
        let mut dir = String::new();
        for segment in path.trim_start_matches('/').split('/').collect::<Vec<_>>().iter().rev().skip(1).rev() {
            dir = format!("{dir}/{segment}");
            if !sftp.try_exists(dir.as_str()).await.unwrap_or(false)
                && let Err(source) = sftp.create_dir(dir.as_str()).await
                // Another upload of the same job (they run side by side) may have made it
                // between the look and the mkdir: only a directory still missing fails.
                && !sftp.try_exists(dir.as_str()).await.unwrap_or(false)
            {
                return Err(SftpError::MakeDir { dir: dir.clone(), source });
            }
        }
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        let mut remote = sftp.open_with_flags(path.as_str(), flags).await.map_err(|source| SftpError::Open { path: path.clone(), source })?;
        let mut local = tokio::fs::File::open(file).await?;
        let mut buf = vec![0u8; CHUNK];
        let transfer = |doing: &'static str| {
            let path = path.clone();
            move |source| SftpError::Transfer { doing, path, source }
        };
        loop {
            let n = local.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            remote.write_all(&buf[..n]).await.map_err(transfer("writing"))?;
        }
        remote.shutdown().await.map_err(transfer("closing"))?;
        close(session, sftp).await;
        Ok(())
    }

    /// Stream `key` to `dest`; more than `max_bytes` is refused (the caller removes
    /// the partial copy). Returns the bytes read.
    pub async fn download(&self, policy: &Policy, connect_timeout: Duration, key: &str, dest: &Path, max_bytes: u64) -> Result<u64, SftpError> {
        let (session, sftp) = self.open(policy, connect_timeout).await?;
        let path = self.path(key);
        let mut remote = sftp.open(path.as_str()).await.map_err(|source| SftpError::Open { path: path.clone(), source })?;
        let mut out = tokio::fs::File::create(dest).await?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = remote.read(&mut buf).await.map_err(|source| SftpError::Transfer { doing: "reading", path: path.clone(), source })?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > max_bytes {
                return Err(SftpError::TooLarge(max_bytes));
            }
            out.write_all(&buf[..n]).await?;
        }
        out.flush().await?;
        close(session, sftp).await;
        Ok(total)
    }
}

async fn close(session: client::Handle<Pinned>, sftp: SftpSession) {
    let _ = sftp.close().await;
    let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
}

/// `SHA256:base64` (the prefix optional, trailing `=` ignored).
fn normalise_fingerprint(text: &str) -> Result<String, SftpError> {
    let body = text.trim().strip_prefix("SHA256:").unwrap_or(text.trim()).trim_end_matches('=');
    let ok = !body.is_empty() && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    if !ok || body.len() != 43 {
        return Err(SftpError::NotAFingerprint(text.to_string()));
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
        let err = SftpTarget::parse(&Policy::parse("").unwrap(), &ok).err().unwrap().to_string();
        assert!(err.contains("127.0.0.1") && err.contains("COPRA_OUTBOUND_ALLOW"), "{err}");
        let target = SftpTarget::parse(&Policy::parse("127.0.0.1/32").unwrap(), &ok).unwrap();
        assert_eq!((target.port, target.path("a/b.mp4").as_str()), (2222, "/a/b.mp4"));
        let policy = Policy::parse("127.0.0.1/32").unwrap();
        let no_fp = options(&[("host", "127.0.0.1"), ("username", "u"), ("password", "p")]);
        assert!(matches!(SftpTarget::parse(&policy, &no_fp), Err(SftpError::NoFingerprint)));
        let bad_fp = options(&[("host", "127.0.0.1"), ("username", "u"), ("password", "p"), ("fingerprint", "MD5:aa:bb")]);
        assert!(SftpTarget::parse(&policy, &bad_fp).is_err());
        let no_auth = options(&[("host", "127.0.0.1"), ("username", "u"), ("fingerprint", FP)]);
        assert!(SftpTarget::parse(&policy, &no_auth).is_err());
        assert!(SftpTarget::parse(&policy, &options(&[("host", "a b"), ("username", "u"), ("password", "p"), ("fingerprint", FP)])).is_err());
        let metadata = options(&[("host", "169.254.169.254"), ("username", "u"), ("password", "p"), ("fingerprint", FP)]);
        assert!(SftpTarget::parse(&policy, &metadata).is_err());
    }
}
