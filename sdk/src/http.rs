//! Blocking HTTP requests through `wasi:http/outgoing-handler`. The host decides which
//! hosts a plugin may reach; a refused host comes back as an error here.
//!
//! The same functions compile for native builds (a plugin's unit tests), where they
//! answer an error instead of sending: plugin code needs no `cfg(target_arch)`.

#[cfg(target_arch = "wasm32")]
#[path = "http_wasi.rs"]
mod imp;

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    const NATIVE: &str = "wasi:http is available only inside a Copra component (this is a native build)";

    pub fn post(_: &url::Url, _: &[(&str, &str)], _: &[u8]) -> Result<u16, String> {
        Err(NATIVE.into())
    }

    pub fn put(_: &url::Url, _: &[(&str, &str)], _: &[u8]) -> Result<u16, String> {
        Err(NATIVE.into())
    }

    pub struct Streaming;

    impl Streaming {
        pub fn put(_: &url::Url, _: &[(&str, &str)]) -> Result<Self, String> {
            Err(NATIVE.into())
        }
        pub fn write(&mut self, _: &[u8]) -> Result<(), String> {
            Err(NATIVE.into())
        }
        pub fn finish(&mut self) -> Result<u16, String> {
            Err(NATIVE.into())
        }
    }
}

/// POST `body` to `url`; returns the response status. Errors are messages for a
/// `plugin-error`.
pub fn post(url: &url::Url, headers: &[(&str, &str)], body: &[u8]) -> Result<u16, String> {
    imp::post(url, headers, body)
}

/// PUT `body` to `url` (uploads, e.g. presigned URLs or WebDAV).
pub fn put(url: &url::Url, headers: &[(&str, &str)], body: &[u8]) -> Result<u16, String> {
    imp::put(url, headers, body)
}

/// A request whose body is written piece by piece after it has been sent: for uploads
/// larger than a plugin should hold in memory. Give a `content-length` header.
pub struct Streaming(imp::Streaming);

impl Streaming {
    /// Start a PUT to `url`; the body follows with [`Streaming::write`].
    pub fn put(url: &url::Url, headers: &[(&str, &str)]) -> Result<Self, String> {
        imp::Streaming::put(url, headers).map(Streaming)
    }

    /// Send more of the body.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.0.write(bytes)
    }

    /// End the body and wait for the response; returns its status.
    pub fn finish(&mut self) -> Result<u16, String> {
        self.0.finish()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn a_native_build_answers_an_error() {
        let url: url::Url = "http://127.0.0.1:9/".parse().unwrap();
        assert!(super::post(&url, &[], b"x").unwrap_err().contains("native build"));
        assert!(super::Streaming::put(&url, &[]).is_err());
    }
}
