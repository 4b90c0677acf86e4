//! Bounded reads of bodies that come from a remote party.
//!
//! A far server chooses how long its answer is and how slowly it comes. Every body the
//! host reads into memory (a sign-in answer, an S3 XML answer, an error body, a webhook
//! receiver's answer) is read here, with a byte cap and two timers: the longest silence
//! (`idle`) and the longest read in all (`total`). An answer past its cap fails naming
//! the cap; [`read_prefix`] keeps the first bytes instead, for answers that are only
//! shown (error bodies, the delivery log).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

/// What an S3-style XML answer may weigh: listings, upload ids, ACL answers.
pub const XML_ANSWER_CAP: u64 = 1 << 20;
/// What a sign-in answer (a Keystone token with its service catalog) may weigh.
pub const SIGN_IN_CAP: u64 = 1 << 20;
/// How much of an error body is read: enough for a service's error document (S3's,
/// Azure's, GCS's are well under a KiB), little enough to be kept in a job's error.
pub const ERROR_BODY_CAP: u64 = 4 << 10;

/// The limits of reading one body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Bytes read at most.
    pub cap: u64,
    /// The longest silence between two pieces.
    pub idle: Duration,
    /// The longest the whole read may take.
    pub total: Duration,
}

impl BodyLimits {
    /// `cap` bytes within the transfer timers (`limits.transfer_idle`, `limits.transfer_total`).
    pub fn new(cap: u64, idle: Duration, total: Duration) -> Self {
        BodyLimits { cap, idle, total }
    }

    /// The same limits with a total time no longer than `most`.
    pub fn within(self, most: Duration) -> Self {
        BodyLimits { total: self.total.min(most), ..self }
    }
}

/// Why a body was not read. Each names the limit it hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More than the cap arrived (or was announced).
    #[error("{what} is larger than the {cap} bytes this server reads of it")]
    TooLarge { what: &'static str, cap: u64 },
    /// Nothing arrived for the idle time.
    #[error("{what} stopped: nothing arrived for {} s (transfer_idle_secs)", .idle.as_secs_f64())]
    Stalled { what: &'static str, idle: Duration },
    /// The read took longer than its total time.
    #[error("{what} took longer than the {} s this server waits for it", .total.as_secs_f64())]
    TooSlow { what: &'static str, total: Duration },
    /// The connection failed while the body was read.
    #[error("{what} could not be read: {message}")]
    Broken { what: &'static str, message: String },
}

/// Read a whole body of at most `limits.cap` bytes. `what` names it in errors ("the
/// swift identity service's answer").
pub async fn read_stream<S, E>(stream: S, what: &'static str, limits: BodyLimits) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error,
{
    match collect(stream, what, limits, false).await {
        (bytes, None) => Ok(bytes),
        (_, Some(err)) => Err(err),
    }
}

/// Read a whole answer's body (see [`read_stream`]); an answer whose `Content-Length`
/// announces more than the cap is refused before a byte is read.
pub async fn read_response(response: reqwest::Response, what: &'static str, limits: BodyLimits) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|length| length > limits.cap) {
        return Err(BodyError::TooLarge { what, cap: limits.cap });
    }
    read_stream(response.bytes_stream(), what, limits).await
}

/// The first bytes of a body, never more than `limits.cap`, read until the body ends,
/// the cap is reached, or a timer runs out: for answers that are only shown (an error
/// body, a webhook receiver's answer). Whatever arrived is kept.
pub async fn read_prefix<S, E>(stream: S, limits: BodyLimits) -> Bytes
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error,
{
    collect(stream, "the answer", limits, true).await.0
}

/// [`read_prefix`] of an answer's body.
pub async fn response_prefix(response: reqwest::Response, limits: BodyLimits) -> Bytes {
    read_prefix(response.bytes_stream(), limits).await
}

/// Text for a log line or a message from the first bytes of a body: at most `chars`
/// characters, control characters escaped (a body cannot forge a log line).
pub fn shown(bytes: &[u8], chars: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in text.chars().take(chars) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(chars).is_some() {
        out.push('…');
    }
    out
}

/// Read until the end, the cap, an error or a timer. With `keep`, reaching the cap or a
/// timer ends the read without an error (the bytes so far are the answer).
async fn collect<S, E>(stream: S, what: &'static str, limits: BodyLimits, keep: bool) -> (Bytes, Option<BodyError>)
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error,
{
    let mut stream = std::pin::pin!(stream);
    let mut out = BytesMut::new();
    let deadline = tokio::time::Instant::now() + limits.total;
    loop {
        let next = tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + limits.idle), stream.next()).await;
        let chunk = match next {
            Err(_) if keep => return (out.freeze(), None),
            Err(_) if tokio::time::Instant::now() >= deadline => return (out.freeze(), Some(BodyError::TooSlow { what, total: limits.total })),
            Err(_) => return (out.freeze(), Some(BodyError::Stalled { what, idle: limits.idle })),
            Ok(None) => return (out.freeze(), None),
            Ok(Some(Err(err))) if keep => {
                let _ = err;
                return (out.freeze(), None);
            }
            Ok(Some(Err(err))) => return (out.freeze(), Some(BodyError::Broken { what, message: super::causes(&err) })),
            Ok(Some(Ok(chunk))) => chunk,
        };
        let room = (limits.cap as usize).saturating_sub(out.len());
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            let err = (!keep).then_some(BodyError::TooLarge { what, cap: limits.cap });
            return (out.freeze(), err);
        }
        out.extend_from_slice(&chunk);
    }
}

/// What a [`Limited`] stream does at its cap or a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtLimit {
    /// Yield an error naming the limit: the body was needed whole.
    Fail,
    /// End the stream quietly: the first bytes are all that is wanted (an error body).
    Truncate,
}

/// A body stream held to a byte cap, an idle time and a total time: for bodies handed on
/// rather than read here (opendal's answers). See [`capped`].
pub struct Limited<S> {
    inner: Pin<Box<S>>,
    what: &'static str,
    limits: BodyLimits,
    at_limit: AtLimit,
    seen: u64,
    idle: Pin<Box<tokio::time::Sleep>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

/// `stream` held to `limits`; past one of them it fails or ends, as `at_limit` says.
pub fn capped<S>(stream: S, what: &'static str, limits: BodyLimits, at_limit: AtLimit) -> Limited<S> {
    Limited {
        inner: Box::pin(stream),
        what,
        limits,
        at_limit,
        seen: 0,
        idle: Box::pin(tokio::time::sleep(limits.idle)),
        deadline: Box::pin(tokio::time::sleep(limits.total)),
        done: false,
    }
}

impl<S, E> Stream for Limited<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let (what, limits) = (this.what, this.limits);
        let stop = |this: &mut Self, err: BodyError| {
            this.done = true;
            Poll::Ready(match this.at_limit {
                AtLimit::Fail => Some(Err(err)),
                AtLimit::Truncate => None,
            })
        };
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(err))) => stop(this, BodyError::Broken { what, message: super::causes(&err) }),
            Poll::Ready(Some(Ok(mut chunk))) => {
                let room = limits.cap.saturating_sub(this.seen);
                if chunk.len() as u64 > room {
                    if this.at_limit == AtLimit::Fail {
                        return stop(this, BodyError::TooLarge { what, cap: limits.cap });
                    }
                    // The last bytes below the cap, then the end.
                    chunk.truncate(room as usize);
                    this.done = true;
                    return Poll::Ready((!chunk.is_empty()).then_some(Ok(chunk)));
                }
                this.seen += chunk.len() as u64;
                this.idle.as_mut().reset(tokio::time::Instant::now() + limits.idle);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return stop(this, BodyError::TooSlow { what, total: limits.total });
                }
                if this.idle.as_mut().poll(cx).is_ready() {
                    return stop(this, BodyError::Stalled { what, idle: limits.idle });
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Chunk = Result<Bytes, std::io::Error>;

    fn endless() -> impl Stream<Item = Chunk> {
        futures::stream::repeat_with(|| Ok(Bytes::from_static(&[b'x'; 4096])))
    }

    fn limits(cap: u64) -> BodyLimits {
        BodyLimits::new(cap, Duration::from_millis(300), Duration::from_secs(2))
    }

    #[tokio::test]
    async fn an_endless_body_stops_at_the_cap() {
        let err = read_stream(endless(), "the answer", limits(100_000)).await.unwrap_err();
        assert_eq!(err, BodyError::TooLarge { what: "the answer", cap: 100_000 });
        assert!(err.to_string().contains("100000 bytes"), "{err}");
        let prefix = read_prefix(endless(), limits(1000)).await;
        assert_eq!(prefix.len(), 1000);
        let whole = read_stream(futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"ok"))]), "x", limits(2)).await;
        assert_eq!(whole.unwrap(), Bytes::from_static(b"ok"));
    }

    #[tokio::test]
    async fn silence_and_slowness_end_a_read() {
        let silent = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"a")) }).chain(futures::stream::pending());
        let started = std::time::Instant::now();
        let err = read_stream(silent, "x", limits(100)).await.unwrap_err();
        assert!(matches!(err, BodyError::Stalled { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));

        // A byte every 100 ms never trips the idle timer, but the total one.
        let trickle = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"a")), ()))
        });
        let err = read_stream(trickle, "x", limits(1 << 20).within(Duration::from_millis(700))).await.unwrap_err();
        assert!(matches!(err, BodyError::TooSlow { .. }), "{err}");
        let silent = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"abc")) }).chain(futures::stream::pending());
        assert_eq!(read_prefix(silent, limits(100)).await, Bytes::from_static(b"abc"), "a prefix keeps what arrived");
    }

    #[tokio::test]
    async fn a_capped_stream_fails_or_ends_past_its_cap() {
        let items: Vec<_> = capped(endless(), "x", limits(10_000), AtLimit::Fail).collect().await;
        assert_eq!(items.len(), 3, "two chunks, then the error, then the end");
        assert!(matches!(items[2], Err(BodyError::TooLarge { cap: 10_000, .. })));
        let items: Vec<_> = capped(endless(), "x", limits(10_000), AtLimit::Truncate).collect().await;
        let total: usize = items.iter().map(|i| i.as_ref().unwrap().len()).sum();
        assert_eq!(total, 10_000, "the first bytes, then the end");
        let silent = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"a")) }).chain(futures::stream::pending());
        let items: Vec<_> = capped(silent, "x", limits(100), AtLimit::Fail).collect().await;
        assert!(matches!(items[1], Err(BodyError::Stalled { .. })), "{items:?}");
    }

    #[test]
    fn shown_text_cannot_forge_a_line() {
        assert_eq!(shown(b"ok\nFAKE 2026 INFO admin logged in", 8), "ok\\nFAKE …");
        assert_eq!(shown(b"{\"a\": \"\x1b[31m\"}", 80), "{\"a\": \"\\u{1b}[31m\"}");
        assert_eq!(shown(b"short", 80), "short");
    }
}
