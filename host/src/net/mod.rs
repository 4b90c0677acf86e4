//! The outbound network policy: one place that decides every connection leaving the
//! machine. Input downloads, output PUTs, opendal's object-store requests and plugins'
//! `wasi:http` calls all go through an [`HttpClient`] built here, whose names are
//! resolved once through the [`Policy`] and whose connections go to the checked
//! addresses only; address literals and every redirect are checked before a request.

mod policy;
mod resolve;

use std::sync::Arc;
use std::time::Duration;

pub use policy::{AddressClass, Policy, Refused, Rule, classify, embedded_v4};

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
    /// The longest silence while reading a response.
    pub idle: Duration,
    /// The whole request, body included; `None` for no bound beyond the idle one.
    pub total: Option<Duration>,
}

impl Outbound {
    pub fn new(policy: Policy) -> Self {
        Outbound { policy: Arc::new(policy) }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A client whose every connection obeys the policy. No proxy is used: a proxy
    /// would make the policy judge the proxy instead of the destination.
    pub fn client(&self, timeouts: Timeouts) -> reqwest::Result<HttpClient> {
        let policy = self.policy.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            let checked = match attempt.url().host() {
                Some(host) if matches!(attempt.url().scheme(), "http" | "https") => policy.check_host(&host).map_err(|e| e.to_string()),
                _ => Err(format!("a redirect to '{}' is not an http(s) URL", attempt.url())),
            };
            match checked {
                Ok(()) => attempt.follow(),
                Err(message) => attempt.error(format!("redirect refused: {message}")),
            }
        });
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirect)
            .dns_resolver(Arc::new(resolve::PolicyResolver::new(self.policy.clone())))
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.idle)
            .user_agent(concat!("Copra/", env!("CARGO_PKG_VERSION")));
        if let Some(total) = timeouts.total {
            builder = builder.timeout(total);
        }
        Ok(HttpClient { inner: builder.build()?, policy: self.policy.clone() })
    }

    /// Check a URL a job names before accepting the job: it must be http(s) with a
    /// host, and an address literal must be allowed. Names are checked when resolved.
    pub fn check_url(&self, url: &str) -> Result<(), UrlRefused> {
        let parsed = url::Url::parse(url).map_err(|_| UrlRefused::NotHttp)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlRefused::NotHttp);
        }
        let host = parsed.host().ok_or(UrlRefused::NotHttp)?;
        self.policy.check_host(&host).map_err(UrlRefused::Refused)
    }

    /// Check a `host:port` (or bare host) a plugin asks to reach.
    pub fn check_authority(&self, authority: &str) -> Result<(), UrlRefused> {
        self.check_url(&format!("http://{authority}/"))
    }
}

/// Why a URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlRefused {
    #[error("it is not an http(s) URL with a host")]
    NotHttp,
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// A reqwest client under the policy. Requests are made through it so that the URL's
/// address literal is checked first (reqwest resolves no name for a literal).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: Arc<Policy>,
}

impl HttpClient {
    /// Start a request, or refuse it when the URL's host is a refused address literal.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, UrlRefused> {
        Outbound { policy: self.policy.clone() }.check_url(url)?;
        Ok(self.inner.request(method, url))
    }

    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, UrlRefused> {
        self.request(reqwest::Method::GET, url)
    }

    pub fn put(&self, url: &str) -> Result<reqwest::RequestBuilder, UrlRefused> {
        self.request(reqwest::Method::PUT, url)
    }

    /// The client itself, for libraries that take a `reqwest::Client` (opendal). Names
    /// are still resolved through the policy; whoever hands it a URL with an address
    /// literal (an endpoint) checks that literal with [`Outbound::check_url`] first.
    pub fn inner(&self) -> &reqwest::Client {
        &self.inner
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}
