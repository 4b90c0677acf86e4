//! Part of an input, for a probe: the first and the last half of a window of bytes,
//! written at their places in a sparse file of the input's full size. A container
//! whose index is at the end (an MP4 with its `moov` last) still probes, and a dry run
//! of a 20 GiB input reads a few MiB instead of 20 GiB. A server that ignores ranges
//! gives the first bytes only; an input no larger than the window is read whole.

use std::path::Path;

use futures::TryStreamExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::http::InputTooLarge;
use super::{CHUNK, Destination, Place, StorageError};
use crate::net::{Activity, Failure, HttpClient, Stalled, UrlRefused, until_idle};

/// Why a ranged read of an HTTP(S) input failed (see [`fetch_http_window`]).
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// The policy refuses the input's URL.
    #[error(transparent)]
    Url(#[from] UrlRefused),
    /// The request got no answer, or its body broke off (refused by the policy, no
    /// connection, timeout).
    #[error("{0}")]
    Network(Failure),
    /// Nothing arrived for the client's idle time.
    #[error(transparent)]
    Stalled(#[from] Stalled),
    #[error("the local copy could not be written: {0}")]
    Write(#[source] std::io::Error),
}

/// What a windowed read fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Bytes that came over the network.
    pub read: u64,
    /// The input's full size, when the server told it.
    pub size: Option<u64>,
    /// How the bytes cover the input.
    pub coverage: Coverage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// The whole input.
    Whole,
    /// Its first and last bytes, the middle left as a hole.
    HeadAndTail,
    /// Its first bytes only: the server ignored the range asked for.
    Head,
}

/// Fetch an HTTP(S) input's window (`window` bytes at most) to `dest`.
pub async fn fetch_http_window(client: &HttpClient, url: &str, dest: &Path, max_bytes: u64, window: u64) -> Result<Window, StorageError> {
    let err = |message: String| StorageError::Download { what: crate::secret::redact_url(url), message };
    let failed = |source: WindowError| StorageError::Window { what: crate::secret::redact_url(url), source };
    let refused = |source: InputTooLarge| StorageError::TooLarge { what: crate::secret::redact_url(url), source };
    let half = (window / 2).max(1);
    let mut out = tokio::fs::File::create(dest).await?;
    let head = ranged(client, url, 0, half - 1).await.map_err(failed)?;
    let status = head.status();
    let result = if status == reqwest::StatusCode::PARTIAL_CONTENT {
        let total = head
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit_once('/'))
            .and_then(|(_, total)| total.trim().parse::<u64>().ok());
        if let Some(total) = total.filter(|t| *t > max_bytes) {
            return Err(refused(InputTooLarge::Announced { size: total, max_bytes }));
        }
        let mut read = copy(client, head, &mut out, half).await.map_err(failed)?;
        match total {
            Some(total) if total > read => {
                out.set_len(total).await?;
                let start = total.saturating_sub(half).max(read);
                let tail = ranged(client, url, start, total - 1).await.map_err(failed)?;
                if tail.status() == reqwest::StatusCode::PARTIAL_CONTENT {
                    out.seek(std::io::SeekFrom::Start(start)).await?;
                    read += copy(client, tail, &mut out, total - start).await.map_err(failed)?;
                }
                Ok(Window { read, size: Some(total), coverage: Coverage::HeadAndTail })
            }
            _ => Ok(Window { read, size: Some(read), coverage: Coverage::Whole }),
        }
    } else if status.is_success() {
        // The range was ignored: the first `window` bytes, and the rest left unread.
        if let Some(length) = head.content_length().filter(|l| *l > max_bytes) {
            return Err(refused(InputTooLarge::Announced { size: length, max_bytes }));
        }
        let length = head.content_length();
        let read = copy(client, head, &mut out, window).await.map_err(failed)?;
        let whole = length == Some(read) || read < window;
        Ok(Window { read, size: length, coverage: if whole { Coverage::Whole } else { Coverage::Head } })
    } else {
        Err(err(format!("the server answered {status}")))
    };
    out.flush().await?;
    if result.is_err() {
        drop(out);
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}

/// GET `first..=last` of `url`.
async fn ranged(client: &HttpClient, url: &str, first: u64, last: u64) -> Result<reqwest::Response, WindowError> {
    let request = client.get(url)?.header(reqwest::header::RANGE, format!("bytes={first}-{last}"));
    let (activity, idle) = (Activity::new(), client.timeouts().idle);
    until_idle(request.send(), &activity, idle).await?.map_err(|e| WindowError::Network(Failure::of(&e)))
}

/// Write at most `most` bytes of an answer's body at the file's position; the rest of
/// the body is not read (the connection is dropped).
async fn copy(client: &HttpClient, response: reqwest::Response, out: &mut tokio::fs::File, most: u64) -> Result<u64, WindowError> {
    let (activity, idle) = (Activity::new(), client.timeouts().idle);
    let mut stream = response.bytes_stream();
    let mut written = 0u64;
    while written < most {
        let next = until_idle(stream.try_next(), &activity, idle).await?;
        let Some(chunk) = next.map_err(|e| WindowError::Network(Failure::of(&e)))? else { break };
        activity.touch();
        let take = chunk.len().min((most - written) as usize);
        out.write_all(&chunk[..take]).await.map_err(WindowError::Write)?;
        written += take as u64;
    }
    Ok(written)
}

impl Destination {
    /// Fetch an object's window (see [`fetch_http_window`]) with ranged reads; inputs
    /// of places that cannot read ranges (SFTP) are downloaded whole, within `max_bytes`.
    pub async fn download_window(&self, key: &str, dest: &Path, max_bytes: u64, window: u64) -> Result<Window, StorageError> {
        let operator = match &self.place {
            Place::Opendal { operator, .. } | Place::Local { operator, .. } => operator,
            _ => {
                let read = self.download(key, dest, max_bytes).await?;
                return Ok(Window { read, size: Some(read), coverage: Coverage::Whole });
            }
        };
        let key = &super::checked(key)?;
        let err = |e: opendal::Error| StorageError::Download { what: key.to_string(), message: e.to_string() };
        let size = operator.stat(key).await.map_err(err)?.content_length();
        if size > max_bytes {
            return Err(StorageError::TooLarge { what: key.to_string(), source: InputTooLarge::Announced { size, max_bytes } });
        }
        if size <= window {
            let read = self.download(key, dest, max_bytes).await?;
            return Ok(Window { read, size: Some(read), coverage: Coverage::Whole });
        }
        let half = (window / 2).max(1);
        let mut out = tokio::fs::File::create(dest).await?;
        out.set_len(size).await?;
        let mut read = 0;
        for (start, end) in [(0, half), (size - half, size)] {
            out.seek(std::io::SeekFrom::Start(start)).await?;
            let reader = operator.reader_with(key).chunk(CHUNK).await.map_err(err)?;
            let mut stream = reader.into_bytes_stream(start..end).await.map_err(err)?;
            while let Some(chunk) = stream.try_next().await? {
                read += chunk.len() as u64;
                out.write_all(&chunk).await?;
            }
        }
        out.flush().await?;
        Ok(Window { read, size: Some(size), coverage: Coverage::HeadAndTail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(root: &Path) -> Destination {
        let operator = opendal::Operator::via_iter(opendal::Scheme::Fs, [("root".to_string(), root.to_string_lossy().to_string())]).unwrap();
        Destination { place: Place::Local { root: root.to_path_buf(), operator, url_base: String::new(), quota: None }, retry: false }
    }

    #[tokio::test]
    async fn an_object_is_read_at_its_head_and_tail_into_a_sparse_file() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8 + 1).collect();
        std::fs::write(dir.path().join("in.bin"), &data).unwrap();
        let source = local(dir.path());
        let dest = dir.path().join("probe");

        let window = source.download_window("in.bin", &dest, 10 << 20, 1 << 20).await.unwrap();
        assert_eq!(window, Window { read: 1 << 20, size: Some(3 << 20), coverage: Coverage::HeadAndTail });
        let copy = std::fs::read(&dest).unwrap();
        let half = 512 << 10;
        assert_eq!(copy.len(), data.len(), "the full size, sparse");
        assert_eq!(copy[..half], data[..half]);
        assert_eq!(copy[data.len() - half..], data[data.len() - half..]);
        assert!(copy[half..data.len() - half].iter().all(|b| *b == 0), "the middle was not read");

        let whole = source.download_window("in.bin", &dest, 10 << 20, 4 << 20).await.unwrap();
        assert_eq!(whole.coverage, Coverage::Whole);
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        let err = source.download_window("in.bin", &dest, 1 << 20, 1 << 20).await.unwrap_err().to_string();
        assert!(err.contains("max_input_bytes"), "{err}");
    }

    #[tokio::test]
    async fn a_refused_input_url_is_a_typed_download_error() {
        let timeouts = crate::net::Timeouts { connect: std::time::Duration::from_secs(2), idle: std::time::Duration::from_secs(2), total: None };
        let client = crate::net::Outbound::new(crate::net::Policy::parse("").unwrap()).client(timeouts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = fetch_http_window(&client, "http://127.0.0.1:9/in.mp4", &dir.path().join("probe"), 1 << 20, 1 << 10).await.unwrap_err();
        assert!(matches!(err, StorageError::Window { source: WindowError::Url(_), .. }), "{err}");
        let err = err.to_string();
        assert!(err.starts_with("download of 'http://127.0.0.1:9/in.mp4' failed: "), "{err}");
        assert!(err.contains("COPRA_OUTBOUND_ALLOW"), "{err}");
    }
}
