//! The wasm32 side of [`crate::http`]: requests through `wasi:http/outgoing-handler`.

use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, FutureIncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::OutputStream;

/// `wasi:io` streams accept at most 4096 bytes per blocking write.
const WRITE_CHUNK: usize = 4096;

pub fn post(url: &url::Url, headers: &[(&str, &str)], body: &[u8]) -> Result<u16, String> {
    request(Method::Post, url, headers, body)
}

pub fn put(url: &url::Url, headers: &[(&str, &str)], body: &[u8]) -> Result<u16, String> {
    request(Method::Put, url, headers, body)
}

fn request(method: Method, url: &url::Url, headers: &[(&str, &str)], body: &[u8]) -> Result<u16, String> {
    let mut streaming = Streaming::start(method, url, headers)?;
    streaming.write(body)?;
    streaming.finish()
}

/// A request whose body is written piece by piece after it has been sent: for uploads
/// larger than a plugin should hold in memory. Give a `content-length` header.
pub struct Streaming {
    // Field order is drop order: the stream goes before its body.
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
    response: FutureIncomingResponse,
}

impl Streaming {
    pub fn put(url: &url::Url, headers: &[(&str, &str)]) -> Result<Self, String> {
        Self::start(Method::Put, url, headers)
    }

    fn start(method: Method, url: &url::Url, headers: &[(&str, &str)]) -> Result<Self, String> {
        let fields = Fields::new();
        for (name, value) in headers {
            fields.append(name, value.as_bytes()).map_err(|e| format!("header {name}: {e:?}"))?;
        }
        let request = OutgoingRequest::new(fields);
        request.set_method(&method).map_err(|_| "method refused")?;
        let scheme = if url.scheme() == "https" { Scheme::Https } else { Scheme::Http };
        request.set_scheme(Some(&scheme)).map_err(|_| "scheme refused")?;
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        request.set_authority(Some(&authority)).map_err(|_| "authority refused")?;
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        request.set_path_with_query(Some(&path)).map_err(|_| "path refused")?;
        let body = request.body().map_err(|_| "request body unavailable")?;
        let stream = body.write().map_err(|_| "request body stream unavailable")?;
        let response = outgoing_handler::handle(request, None).map_err(|e| format!("the request was refused: {e:?}"))?;
        Ok(Streaming { stream: Some(stream), body: Some(body), response })
    }

    /// Send more of the body.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stream = self.stream.as_ref().ok_or("the body is already finished")?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                // A refused or failed request closes the body: say why, not just that.
                return Err(self.failure().unwrap_or_else(|| format!("writing the body: {e:?}")));
            }
        }
        Ok(())
    }

    /// Why the request failed, once its body has been closed under us. Waits for the
    /// response future, which settles as soon as the request ended.
    fn failure(&self) -> Option<String> {
        self.response.subscribe().block();
        match self.response.get() {
            Some(Ok(Err(code))) => Some(format!("the request failed: {code:?}")),
            _ => None,
        }
    }

    /// End the body and wait for the response; returns its status.
    pub fn finish(&mut self) -> Result<u16, String> {
        drop(self.stream.take());
        let body = self.body.take().ok_or("the body is already finished")?;
        OutgoingBody::finish(body, None).map_err(|e| format!("finishing the body: {e:?}"))?;
        self.response.subscribe().block();
        let incoming = self
            .response
            .get()
            .ok_or("no response")?
            .map_err(|_| "response already taken")?
            .map_err(|e| format!("the request failed: {e:?}"))?;
        Ok(incoming.status())
    }
}
