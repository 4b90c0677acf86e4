//! What a plugin's `Store` holds: a WASI context with nothing granted, an HTTP context
//! whose outgoing requests are checked against the call's granted hosts (and whose last
//! answer's status is kept for the caller), limits, and for a webhook delivery the
//! signing context that `sign-webhook` answers from.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::host;
use super::last_status::LastStatus;
use super::outbound::PluginNet;

/// Enough for a panic message and a backtrace line or two.
const STDERR_CAPACITY: usize = 4096;

pub struct PluginState {
    pub plugin: Arc<str>,
    /// What the guest wrote to stderr (a Rust panic message lands here), capped.
    pub stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    pub(super) grant: HttpGrant,
    pub(super) limits: MemoryCap,
    /// The delivery a notifier's `notify` call signs for; `None` in every other call,
    /// where `sign-webhook` answers with an error.
    pub(super) signing: Option<WebhookSigning>,
    /// Epoch ticks the current call has run for (see `Sandbox::store`).
    pub(super) ticks_spent: u64,
}

/// What `sign-webhook` signs with during one delivery: the event's stable id and the
/// tenant's secrets. The secrets stay in the host; the plugin sees only signatures.
#[derive(Debug, Clone)]
pub struct WebhookSigning {
    /// The `webhook-id`, the same on every attempt of one event.
    pub id: String,
    /// The tenant's webhook secrets, the current one first; after a rotation, the
    /// previous one too for the overlap. Each makes one signature of the header.
    pub secrets: Vec<crate::secret::WebhookSecret>,
}

/// Why `sign-webhook` gave no signature. The guest receives the sentence (the WIT
/// function answers `result<webhook-headers, string>`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Any call but a notifier's `notify` made by the host's webhook delivery.
    #[error("sign-webhook is only available to a notifier's notify call made by the host's webhook delivery")]
    NotADelivery,
}

/// `StoreLimits`, plus a record of whether the cap was hit, so that the trap that
/// follows can be reported as `plugin_memory_exceeded` rather than a generic failure.
pub struct MemoryCap {
    limits: StoreLimits,
    pub exceeded: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.exceeded = true;
        }
        allowed
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl PluginState {
    /// A fresh state: no filesystem, no sockets, only the granted environment; outgoing
    /// HTTP only to `allowed_hosts` (grant entries: `host:port`, `host:*`,
    /// `*.domain:port`, `*`); linear memory capped at `memory_bytes`. Granted requests
    /// leave through `net`, under the outbound policy.
    pub fn new(plugin: Arc<str>, allowed_hosts: Vec<String>, env: &[(String, String)], memory_bytes: usize, net: PluginNet) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        PluginState {
            plugin,
            wasi: WasiCtx::builder().envs(env).stderr(stderr.clone()).build(),
            stderr,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            grant: HttpGrant { allowed_hosts, net, last_status: LastStatus::default(), delivering: false },
            limits: MemoryCap {
                limits: StoreLimitsBuilder::new().memory_size(memory_bytes).instances(64).trap_on_grow_failure(true).build(),
                exceeded: false,
            },
            signing: None,
            ticks_spent: 0,
        }
    }

    /// Give this call a delivery to sign for, and share the status of its HTTP answers
    /// with `status`.
    pub fn deliver(&mut self, signing: WebhookSigning, status: LastStatus) {
        self.signing = Some(signing);
        self.grant.last_status = status;
        self.grant.delivering = true;
    }

    /// The Standard Webhooks headers of `body` for this call's delivery, one signature
    /// per secret (separated by spaces).
    fn sign(&self, body: &[u8]) -> Result<host::WebhookHeaders, SignError> {
        let Some(signing) = &self.signing else { return Err(SignError::NotADelivery) };
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = signing.secrets.iter().map(|secret| secret.sign(&signing.id, &timestamp, body)).collect::<Vec<_>>().join(" ");
        Ok(host::WebhookHeaders { id: signing.id.clone(), timestamp, signature })
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.grant }
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let plugin = &*self.plugin;
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin, "{}", message.escape_debug()),
            host::LogLevel::Debug => tracing::debug!(plugin, "{}", message.escape_debug()),
            host::LogLevel::Info => tracing::info!(plugin, "{}", message.escape_debug()),
            host::LogLevel::Warn => tracing::warn!(plugin, "{}", message.escape_debug()),
            host::LogLevel::Error => tracing::error!(plugin, "{}", message.escape_debug()),
        }
    }

    /// The WIT answer is a string: the refusal's sentence.
    fn sign_webhook(&mut self, body: Vec<u8>) -> Result<host::WebhookHeaders, String> {
        self.sign(&body).map_err(|e| e.to_string())
    }
}

/// The hosts one plugin call may reach. Everything else is refused before a socket opens,
/// and what is granted still obeys the outbound policy.
pub struct HttpGrant {
    allowed_hosts: Vec<String>,
    net: PluginNet,
    /// Where the status of each answer goes.
    last_status: LastStatus,
    /// A webhook delivery: the answer's first bytes are read for the delivery log, and
    /// the rest is capped.
    delivering: bool,
}

impl HttpGrant {
    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        self.allowed_hosts.iter().any(|allowed| super::hosts::allows(allowed, host, port))
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpGrant {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        _ = fut;
        if !self.allows(request.uri()) {
            tracing::warn!(uri = %crate::secret::redact_url(&request.uri().to_string()), "plugin HTTP request to a host it was not granted");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let net = self.net.clone();
        let last_status = self.last_status.clone();
        let delivering = self.delivering;
        Box::new(async move {
            let mut response = net.send(request, options).await?;
            last_status.set(response.status().as_u16());
            if delivering {
                response = super::outbound::keep_prefix(response, &last_status).await;
            }
            Ok((response, Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::WebhookSecret;
    use host::Host as _;

    fn state() -> PluginState {
        PluginState::new("n".into(), Vec::new(), &[], 1 << 20, PluginNet::default())
    }

    #[test]
    fn only_a_delivery_can_sign_and_the_secret_stays_in_the_host() {
        let err = state().sign_webhook(b"{}".to_vec()).unwrap_err();
        assert_eq!(err, "sign-webhook is only available to a notifier's notify call made by the host's webhook delivery");

        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let status = LastStatus::default();
        let mut delivering = state();
        delivering.deliver(WebhookSigning { id: "msg_1".into(), secrets: vec![secret.clone()] }, status.clone());
        let headers = delivering.sign_webhook(b"{\"a\":1}".to_vec()).unwrap();
        assert_eq!(headers.id, "msg_1");
        let now = chrono::Utc::now().timestamp();
        assert!((headers.timestamp.parse::<i64>().unwrap() - now).abs() <= 1);
        assert_eq!(headers.signature, secret.sign("msg_1", &headers.timestamp, b"{\"a\":1}"));
        assert!(!headers.signature.contains("MfKQ9r8"));

        // After a rotation: both signatures, the new one first, separated by a space.
        let old = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        let mut rotated = state();
        rotated.deliver(WebhookSigning { id: "msg_2".into(), secrets: vec![secret.clone(), old.clone()] }, LastStatus::default());
        let headers = rotated.sign_webhook(b"{}".to_vec()).unwrap();
        let expected = format!("{} {}", secret.sign("msg_2", &headers.timestamp, b"{}"), old.sign("msg_2", &headers.timestamp, b"{}"));
        assert_eq!(headers.signature, expected);

        assert_eq!(status.get(), None);
        delivering.grant.last_status.set(503);
        assert_eq!(status.get(), Some(503), "the caller sees the status of the call's answers");
    }
}
