//! The outbound network policy: one place that decides every connection leaving the
//! machine. Input downloads, output PUTs, opendal's object-store requests and plugins'
//! `wasi:http` calls all go through an [`HttpClient`] built here, whose names are
//! resolved once through the [`Policy`] and whose connections go to the checked
//! addresses only; address literals and every redirect are checked before a request.
//! FFmpeg is kept to the local file the host opened (`media::open`).

mod bounded;
#[cfg(test)]
mod endless;
#[cfg(test)]
pub use endless::endless_server;
mod idle;
mod policy;
mod resolve;

use std::sync::Arc;
use std::time::Duration;

pub use bounded::{AtLimit, BodyError, BodyLimits, ERROR_BODY_CAP, Limited, SIGN_IN_CAP, XML_ANSWER_CAP, capped, read_prefix, read_response, read_stream, response_prefix, shown};
pub use idle::{Activity, Stalled, until_idle};
pub use policy::{AddressClass, Policy, Refused, Rule, RuleError, classify, embedded_v4};
pub use resolve::ResolveError;

/// Redirects followed before a request fails; each one is checked again.
const MAX_REDIRECTS: usize = 5;

/// The policy, shared by every client the process builds.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    policy: Arc<Policy>,
}

/// Time limits of a client's requests.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Establishing the connection (TCP and TLS).
    pub connect: Duration,
    /// The longest silence of a transfer. The client does not enforce it by itself:
    /// callers run transfers under [`until_idle`] (reqwest's read timeout would also
    /// bound an upload's whole body).
    pub idle: Duration,
    /// The whole request, body included; `None` for no bound beyond the idle one.
    pub total: Option<Duration>,
}

/// Whether a client follows redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow up to a few, checking each target against the policy.
    Follow,
    /// Return 3xx answers as they are (plugins' `wasi:http`, which sees raw HTTP).
    Return,
}

impl Outbound {
    /// The process's policy, shared by every client built from it.
    pub fn new(policy: Policy) -> Self {
        Outbound { policy: Arc::new(policy) }
    }

    /// The policy itself.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A client whose every connection obeys the policy, following checked redirects.
    pub fn client(&self, timeouts: Timeouts) -> reqwest::Result<HttpClient> {
        self.client_with(timeouts, Redirects::Follow)
    }

    /// A client whose every connection obeys the policy. No proxy is used: a proxy
    /// would make the policy judge the proxy instead of the destination.
    pub fn client_with(&self, timeouts: Timeouts, redirects: Redirects) -> reqwest::Result<HttpClient> {
        let policy = self.policy.clone();
        let redirect = match redirects {
            Redirects::Return => reqwest::redirect::Policy::none(),
            Redirects::Follow => reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    let error = RedirectRefused { to: crate::secret::redact_url(attempt.url().as_str()), reason: format!("that is more than {MAX_REDIRECTS} redirects") };
                    return attempt.error(error);
                }
                let checked = match attempt.url().host() {
                    Some(host) if matches!(attempt.url().scheme(), "http" | "https") => policy.check_host(&host).map_err(|e| e.to_string()),
                    _ => Err("that is not an http(s) URL".to_string()),
                };
                match checked {
                    Ok(()) => attempt.follow(),
                    Err(reason) => {
                        let error = RedirectRefused { to: crate::secret::redact_url(attempt.url().as_str()), reason };
                        attempt.error(error)
                    }
                }
            }),
        };
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirect)
            .dns_resolver(Arc::new(resolve::PolicyResolver::new(self.policy.clone())))
            .connect_timeout(timeouts.connect)
            .user_agent(concat!("Copra/", env!("CARGO_PKG_VERSION")));
        if let Some(total) = timeouts.total {
            builder = builder.timeout(total);
        }
        Ok(HttpClient { inner: builder.build()?, policy: self.policy.clone(), timeouts })
    }

    /// Check a URL a job names before accepting the job: it must be http(s) with a
    /// host, and an address literal (or `localhost`) must be allowed. Other names are
    /// checked when resolved.
    pub fn check_url(&self, url: &str) -> Result<(), UrlRefused> {
        check_url(&self.policy, url)
    }

    /// Check a `host:port` (or bare host) a plugin asks to reach.
    pub fn check_authority(&self, authority: &str) -> Result<(), UrlRefused> {
        self.check_url(&format!("http://{authority}/"))
    }
}

fn check_url(policy: &Policy, url: &str) -> Result<(), UrlRefused> {
    policy.check_url(url)
}

impl Policy {
    /// Check a URL: it must be http(s) with a host, and an address literal (or
    /// `localhost`) must be allowed. Other names are checked when resolved.
    pub fn check_url(&self, url: &str) -> Result<(), UrlRefused> {
        let parsed = url::Url::parse(url).map_err(|_| UrlRefused::NotHttp)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlRefused::NotHttp);
        }
        let host = parsed.host().ok_or(UrlRefused::NotHttp)?;
        self.check_host(&host).map_err(UrlRefused::Refused)
    }
}

/// Why a URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlRefused {
    /// Not a URL the server fetches from or sends to.
    #[error("it is not an http(s) URL with a host")]
    NotHttp,
    /// Its host is an address (or name) the policy refuses.
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// A redirect the client did not follow. Found in a reqwest error's chain.
#[derive(Debug, thiserror::Error)]
#[error("the server redirected to '{to}', and {reason}")]
pub struct RedirectRefused {
    /// Where the redirect pointed, without its query or user info.
    pub to: String,
    /// Why it was not followed: a [`Refused`] sentence, or a count or scheme problem.
    pub reason: String,
}

/// A reqwest client under the policy. Requests are made through it so that the URL's
/// address literal is checked first (reqwest resolves no name for a literal).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: Arc<Policy>,
    timeouts: Timeouts,
}

impl HttpClient {
    /// Start a request, or refuse it when the URL's host is a refused address literal.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, UrlRefused> {
        self.check_url(url)?;
        Ok(self.inner.request(method, url))
    }

    /// [`HttpClient::request`] with GET.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, UrlRefused> {
        self.request(reqwest::Method::GET, url)
    }

    /// [`HttpClient::request`] with PUT.
    pub fn put(&self, url: &str) -> Result<reqwest::RequestBuilder, UrlRefused> {
        self.request(reqwest::Method::PUT, url)
    }

    /// Check a URL's scheme and literal host, for callers that build requests on
    /// [`HttpClient::inner`] themselves.
    pub fn check_url(&self, url: &str) -> Result<(), UrlRefused> {
        check_url(&self.policy, url)
    }

    /// The client itself, for libraries that take a `reqwest::Client` (opendal). Names
    /// are still resolved through the policy; whoever hands it a URL checks the URL
    /// with [`HttpClient::check_url`] first, for address literals.
    pub fn inner(&self) -> &reqwest::Client {
        &self.inner
    }

    /// The policy the client obeys.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The time limits the client was built with.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }
}

/// What went wrong with a request, as far as the network is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The policy refused the address, a name's every address, or a redirect; the
    /// sentence names the address's class and the setting that allows it (and the
    /// address only when the URL itself wrote it).
    Refused(String),
    /// The name could not be resolved.
    Lookup(String),
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// The request ran past its total time.
    Timeout,
    /// The connection could not be made (refused, unreachable, TLS).
    Connect(String),
    /// Anything else, with its causes.
    Other(String),
}

impl Failure {
    /// Classify a reqwest error by what its chain of causes holds.
    pub fn of(err: &reqwest::Error) -> Failure {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<Refused>() {
                return Failure::Refused(refused.to_string());
            }
            if let Some(redirect) = cause.downcast_ref::<RedirectRefused>() {
                return Failure::Refused(redirect.to_string());
            }
            match cause.downcast_ref::<ResolveError>() {
                Some(ResolveError::Refused(refused)) => return Failure::Refused(refused.to_string()),
                Some(lookup @ ResolveError::Lookup { .. }) => return Failure::Lookup(lookup.to_string()),
                None => {}
            }
            source = cause.source();
        }
        if err.is_timeout() {
            return if err.is_connect() { Failure::ConnectTimeout } else { Failure::Timeout };
        }
        // reqwest names the URL in its message: without its query or user info here.
        let mut message = causes(err);
        if let Some(url) = err.url() {
            message = message.replace(url.as_str(), &crate::secret::redact_url(url.as_str()));
        }
        if err.is_connect() {
            return Failure::Connect(message);
        }
        Failure::Other(message)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(message) | Failure::Lookup(message) | Failure::Connect(message) | Failure::Other(message) => f.write_str(message),
            Failure::ConnectTimeout => f.write_str("no connection could be made within the connect timeout"),
            Failure::Timeout => f.write_str("the request took longer than the time it may take in all"),
        }
    }
}

/// An error and its causes, `: `-separated (reqwest's Display alone hides the cause).
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> Timeouts {
        Timeouts { connect: Duration::from_secs(2), idle: Duration::from_secs(2), total: Some(Duration::from_secs(5)) }
    }

    /// A server on 127.0.0.1 that answers every connection with `answer` and counts them.
    async fn server(answer: String) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        (addr, hits)
    }

    #[tokio::test]
    async fn literals_names_and_redirects_to_refused_addresses_never_connect() {
        let (internal, hits) = server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".into()).await;
        let client = Outbound::new(Policy::default()).client(timeouts()).unwrap();
        let literal = client.get(&format!("http://{internal}/x")).unwrap_err().to_string();
        assert!(literal.contains("127.0.0.1") && literal.contains("COPRA_OUTBOUND_ALLOW"), "{literal}");
        assert!(client.get(&format!("http://localhost:{}/x", internal.port())).is_err());

        // A name resolving to loopback, with the name check bypassed (`inner`): the
        // resolver refuses it.
        let err = client.inner().get(format!("http://localhost:{}/x", internal.port())).send().await.unwrap_err();
        assert!(matches!(Failure::of(&err), Failure::Refused(m) if m.contains("loopback")), "{err:?}");

        // An allowed server (127.0.0.2) that redirects to the internal one.
        let location = format!("HTTP/1.1 302 Found\r\nlocation: http://{internal}/secret\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await;
        let Ok(listener) = listener else { return }; // no 127.0.0.2 alias on this machine
        let allowed = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(location.as_bytes()).await;
            }
        });
        let client = Outbound::new(Policy::parse("127.0.0.2/32").unwrap()).client(timeouts()).unwrap();
        let err = client.get(&format!("http://{allowed}/start")).unwrap().send().await.unwrap_err();
        match Failure::of(&err) {
            Failure::Refused(message) => {
                assert!(message.contains("redirected") && message.contains("COPRA_OUTBOUND_ALLOW=127.0.0.1/32"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let raw = Outbound::new(Policy::parse("127.0.0.2/32").unwrap()).client_with(timeouts(), Redirects::Return).unwrap();
        let answer = raw.get(&format!("http://{allowed}/start")).unwrap().send().await.unwrap();
        assert_eq!(answer.status(), 302, "a raw client hands the redirect back");
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the internal server was reached");
    }

    #[test]
    fn check_url_wants_http_with_a_host() {
        let outbound = Outbound::default();
        assert!(matches!(outbound.check_url("file:///etc/passwd"), Err(UrlRefused::NotHttp)));
        assert!(matches!(outbound.check_url("gopher://example.com/"), Err(UrlRefused::NotHttp)));
        assert!(matches!(outbound.check_url("http://169.254.169.254/latest"), Err(UrlRefused::Refused(_))));
        assert!(outbound.check_url("https://example.com/a.mp4").is_ok());
        assert!(outbound.check_authority("127.0.0.1:9").is_err());
        assert!(outbound.check_authority("hooks.example.com:443").is_ok());
    }
}
