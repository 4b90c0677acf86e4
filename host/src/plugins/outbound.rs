//! Plugins' `wasi:http` requests, sent through the outbound policy.
//!
//! The grant (`allowed_hosts`) decides which hosts a call may name; this module decides
//! where the connection may go: the request is translated to a reqwest request on a
//! client of the policy (address literals refused before a socket opens, names
//! resolved once and their addresses checked), sent without following redirects (the
//! guest sees raw HTTP), and its answer translated back with the guest's timeouts.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::net::{Activity, Failure, HttpClient, Outbound, Redirects, Timeouts, UrlRefused, until_idle};

/// Connecting, when the guest does not say; also the most it may ask for.
const CONNECT: Duration = Duration::from_secs(10);
/// Waiting for the answer's head, when the guest does not say.
const FIRST_BYTE: Duration = Duration::from_secs(30);
/// Silence between two pieces of the answer's body, when the guest does not say.
const BETWEEN_BYTES: Duration = Duration::from_secs(30);
/// The most a guest may ask for as a first-byte or between-bytes timeout.
const MAX_WAIT: Duration = Duration::from_secs(120);

/// The policy's clients for plugins, one per whole second of connect timeout (a
/// reqwest client's connect timeout is fixed when it is built), built when first used.
#[derive(Clone, Default)]
pub struct PluginNet {
    outbound: Outbound,
    clients: Arc<Mutex<HashMap<u64, HttpClient>>>,
}

impl PluginNet {
    /// Clients under `outbound`, built as they are needed.
    pub fn new(outbound: Outbound) -> Self {
        PluginNet { outbound, clients: Arc::default() }
    }

    fn client(&self, connect: Duration) -> Result<HttpClient, HttpError> {
        let seconds = connect.as_secs_f64().ceil().clamp(1.0, CONNECT.as_secs_f64()) as u64;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&seconds) {
            return Ok(client.clone());
        }
        let timeouts = Timeouts { connect: Duration::from_secs(seconds), idle: BETWEEN_BYTES, total: None };
        let client = self
            .outbound
            .client_with(timeouts, Redirects::Return)
            .map_err(|e| HttpError::InternalError(Some(format!("the HTTP client could not be built: {e}"))))?;
        clients.insert(seconds, client.clone());
        Ok(client)
    }

    /// Send a guest's request under the policy and the guest's timeouts (`options`):
    /// connect, first byte of the answer (counted from the last piece of the request's
    /// body sent), and silence between pieces of the answer's body.
    pub async fn send(&self, request: http::Request<WasiBody>, options: Option<RequestOptions>) -> Result<http::Response<WasiBody>, HttpError> {
        let options = options.unwrap_or_default();
        let connect = options.connect_timeout.unwrap_or(CONNECT).min(CONNECT);
        let first_byte = options.first_byte_timeout.unwrap_or(FIRST_BYTE).min(MAX_WAIT);
        let between_bytes = options.between_bytes_timeout.unwrap_or(BETWEEN_BYTES).min(MAX_WAIT);
        let client = self.client(connect)?;

        let (mut parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let builder = client.request(parts.method, &url).map_err(|refused| match refused {
            UrlRefused::Refused(refused) => {
                tracing::warn!(url = %crate::secret::redact_url(&url), %refused, "plugin HTTP request refused by the outbound policy");
                HttpError::HttpRequestDenied
            }
            UrlRefused::NotHttp => HttpError::HttpRequestUriInvalid,
        })?;
        // reqwest writes `host` from the URL it connects to.
        parts.headers.remove(http::header::HOST);
        let mut builder = builder.headers(parts.headers);
        // The first-byte wait counts from the last piece of the request body taken, so
        // a long streaming upload (a storage plugin's PUT) is not cut while it moves.
        let activity = Activity::new();
        if !body.is_end_stream() {
            builder = builder.body(reqwest::Body::wrap(SyncBody { body: Mutex::new(body), activity: activity.clone() }));
        }

        let response = match until_idle(builder.send(), &activity, first_byte).await {
            Err(_) => return Err(HttpError::ConnectionReadTimeout),
            Ok(Err(err)) => return Err(error_code(&url, &err)),
            Ok(Ok(response)) => response,
        };
        let response: http::Response<reqwest::Body> = response.into();
        Ok(response.map(|body| BetweenBytes { body, wait: between_bytes, timer: Box::pin(tokio::time::sleep(between_bytes)) }.boxed_unsync()))
    }
}

/// How much of a webhook receiver's answer the delivery log keeps.
pub const ANSWER_PREFIX: usize = 512;
/// How long the host waits for those first bytes (the delivery's deadline still holds).
const PREFIX_WAIT: Duration = Duration::from_secs(2);
/// The most of a webhook receiver's answer a notifier may read; past it the body fails.
pub const ANSWER_CAP: u64 = 64 << 10;

/// A webhook receiver's answer, capped at [`ANSWER_CAP`] bytes for the notifier. A
/// failure's (not 2xx) first [`ANSWER_PREFIX`] bytes are read now (within
/// [`PREFIX_WAIT`]) and kept in `keep` for the delivery log, escaped; the notifier gets
/// the same bytes. A notifier that never reads the answer (the `http` one) lets the rest
/// go unread: an endless answer costs nothing, and a success is not delayed.
pub async fn keep_prefix(response: http::Response<WasiBody>, keep: &super::last_status::LastStatus) -> http::Response<WasiBody> {
    use futures::StreamExt;
    let read_now = !response.status().is_success();
    let (parts, body) = response.into_parts();
    let mut frames = http_body_util::BodyStream::new(body);
    let mut prefix = bytes::BytesMut::new();
    let deadline = tokio::time::Instant::now() + PREFIX_WAIT;
    let mut rest_error = None;
    let mut ended = false;
    while read_now && prefix.len() < ANSWER_PREFIX {
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Err(_) => break,
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(Err(err))) => {
                rest_error = Some(err);
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    prefix.extend_from_slice(&data);
                }
            }
        }
    }
    if read_now {
        keep.set_answer(crate::net::shown(&prefix, ANSWER_PREFIX));
    }
    let mut seen = prefix.len() as u64;
    let more = !ended && rest_error.is_none();
    let head = futures::stream::iter((!prefix.is_empty()).then(|| Ok(Frame::data(prefix.freeze()))));
    let rest = frames
        .take_while(move |_| std::future::ready(more))
        .map(move |frame| {
            let frame = frame?;
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > ANSWER_CAP { Err(HttpError::HttpResponseBodySize(Some(ANSWER_CAP))) } else { Ok(frame) }
        });
    let failed = futures::stream::iter(rest_error.map(Err));
    let body = http_body_util::StreamBody::new(head.chain(failed).chain(rest)).boxed_unsync();
    http::Response::from_parts(parts, body)
}

/// The `wasi:http` error code for a failed request.
fn error_code(url: &str, err: &reqwest::Error) -> HttpError {
    match Failure::of(err) {
        Failure::Refused(reason) => {
            tracing::warn!(url = %crate::secret::redact_url(url), reason, "plugin HTTP request refused by the outbound policy");
            HttpError::HttpRequestDenied
        }
        Failure::Lookup(_) => HttpError::DnsError { rcode: None, info_code: None },
        Failure::ConnectTimeout => HttpError::ConnectionTimeout,
        Failure::Timeout => HttpError::ConnectionReadTimeout,
        Failure::Connect(message) if message.contains("certificate") => HttpError::TlsCertificateError,
        Failure::Connect(message) if message.contains("refused") => HttpError::ConnectionRefused,
        Failure::Connect(_) => HttpError::DestinationUnavailable,
        Failure::Other(message) => HttpError::InternalError(Some(message)),
    }
}

/// The guest's outgoing body, made `Sync` for reqwest, marking activity as it moves.
/// The mutex is never locked while polling: `get_mut` goes through `Pin<&mut Self>`.
struct SyncBody {
    body: Mutex<WasiBody>,
    activity: Activity,
}

impl Body for SyncBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        let body = this.body.get_mut().unwrap_or_else(|e| e.into_inner());
        let polled = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            this.activity.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.lock().map(|b| b.is_end_stream()).unwrap_or(false)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.lock().map(|b| b.size_hint()).unwrap_or_default()
    }
}

/// An answer's body that fails when nothing arrives for `wait`.
struct BetweenBytes {
    body: reqwest::Body,
    wait: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer.as_mut().reset(tokio::time::Instant::now() + this.wait);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                Poll::Ready(Some(Err(if err.is_timeout() { HttpError::ConnectionReadTimeout } else { HttpError::HttpResponseIncomplete })))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Policy;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn request(url: &str, body: &'static str) -> http::Request<WasiBody> {
        let body = http_body_util::Full::new(Bytes::from_static(body.as_bytes())).map_err(|never| match never {}).boxed_unsync();
        http::Request::builder().method("POST").uri(url).header("host", "ignored").body(body).unwrap()
    }

    /// A server that reads one request, answers with a head and `body`, then stays open.
    async fn server(head: &'static str, body: &'static str, hold: Duration) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !String::from_utf8_lossy(&seen).contains("hello") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                    tokio::time::sleep(hold).await;
                });
            }
        });
        (addr, hits)
    }

    #[tokio::test]
    async fn a_refused_address_is_denied_without_a_connection() {
        let (addr, hits) = server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", "ok", Duration::ZERO).await;
        let net = PluginNet::new(Outbound::default());
        let err = net.send(request(&format!("http://{addr}/hook"), "hello"), None).await.unwrap_err();
        assert!(matches!(err, HttpError::HttpRequestDenied), "{err:?}");
        let err = net.send(request(&format!("http://localhost:{}/hook", addr.port()), "hello"), None).await.unwrap_err();
        assert!(matches!(err, HttpError::HttpRequestDenied), "{err:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_allowed_request_round_trips_and_redirects_come_back_raw() {
        let (addr, hits) = server("HTTP/1.1 302 Found\r\nlocation: http://10.0.0.1/\r\ncontent-length: 2\r\n\r\n", "ok", Duration::ZERO).await;
        let net = PluginNet::new(Outbound::new(Policy::parse("127.0.0.1/32").unwrap()));
        let response = net.send(request(&format!("http://{addr}/hook"), "hello"), None).await.unwrap();
        assert_eq!(response.status(), 302);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_slow_streaming_upload_is_not_cut_by_the_first_byte_wait() {
        let (addr, _) = server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", "ok", Duration::ZERO).await;
        let net = PluginNet::new(Outbound::new(Policy::parse("127.0.0.1/32").unwrap()));
        let pieces = futures::stream::unfold(0usize, |i| async move {
            if i == 5 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            Some((Ok::<_, HttpError>(Frame::data(Bytes::copy_from_slice(&b"hello"[i..=i]))), i + 1))
        });
        let body = http_body_util::StreamBody::new(pieces).boxed_unsync();
        let request = http::Request::builder().method("PUT").uri(format!("http://{addr}/upload")).header("content-length", "5").body(body).unwrap();
        let options = RequestOptions { first_byte_timeout: Some(Duration::from_millis(400)), ..Default::default() };
        let response = net.send(request, Some(options)).await.expect("750 ms of upload, never 400 ms silent");
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn a_delivery_keeps_the_first_words_of_an_endless_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(b"HTTP/1.1 500 Oops\r\nconnection: close\r\n\r\n{\"error\":\"down\"}\nFORGED line\n").await;
                    while socket.write_all(&[b'z'; 65536]).await.is_ok() {}
                });
            }
        });
        let net = PluginNet::new(Outbound::new(Policy::parse("127.0.0.1/32").unwrap()));
        let response = net.send(request(&format!("http://{addr}/hook"), "hello"), None).await.unwrap();
        let keep = super::super::last_status::LastStatus::default();
        let started = std::time::Instant::now();
        let response = keep_prefix(response, &keep).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        let answer = keep.answer();
        assert!(answer.starts_with("{\"error\":\"down\"}\\nFORGED line\\nzzz"), "{answer}");
        assert!(answer.chars().count() <= ANSWER_PREFIX + 40, "{}", answer.len());
        // A notifier that reads the answer gets its first bytes, then an error at the cap.
        let err = response.into_body().collect().await.unwrap_err();
        assert!(matches!(err, HttpError::HttpResponseBodySize(Some(ANSWER_CAP))), "{err:?}");

        // A success is handed on at once, even when its body never comes.
        let (mute, _) = server("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", "abc", Duration::from_secs(30)).await;
        let response = net.send(request(&format!("http://{mute}/hook"), "hello"), None).await.unwrap();
        let keep = super::super::last_status::LastStatus::default();
        let started = std::time::Instant::now();
        let response = keep_prefix(response, &keep).await;
        assert!(started.elapsed() < Duration::from_millis(500) && keep.answer().is_empty());
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn the_guests_between_bytes_timeout_holds() {
        let (addr, _) = server("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", "abc", Duration::from_secs(30)).await;
        let net = PluginNet::new(Outbound::new(Policy::parse("127.0.0.1/32").unwrap()));
        let options = RequestOptions { between_bytes_timeout: Some(Duration::from_millis(300)), ..Default::default() };
        let response = net.send(request(&format!("http://{addr}/slow"), "hello"), Some(options)).await.unwrap();
        let started = std::time::Instant::now();
        let err = response.into_body().collect().await.unwrap_err();
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));

        let options = RequestOptions { first_byte_timeout: Some(Duration::from_millis(300)), ..Default::default() };
        // The server waits for "hello" before answering; this body never says it.
        let err = net.send(request(&format!("http://{addr}/mute"), "bye"), Some(options)).await.unwrap_err();
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
    }
}
