//! HTTP transfers a job names: input downloads and output PUTs, through the outbound
//! policy's client, bounded in size, in silence and in total time.

use std::path::Path;

use futures::TryStreamExt;
use tokio::io::AsyncWriteExt;

use super::StorageError;
use crate::net::{Activity, Failure, HttpClient, until_idle};

/// Stream an HTTP(S) input to a local file through the policy's client. Non-2xx
/// answers are errors naming the status; an input announced or arriving larger than
/// `max_bytes` is refused (the partial file removed); a server silent for the client's
/// idle time fails the download.
pub async fn fetch_http(client: &HttpClient, url: &str, dest: &Path, max_bytes: u64) -> Result<u64, StorageError> {
    let err = |message: String| StorageError::Download { what: crate::secret::redact_url(url), message };
    let refused = |source: InputTooLarge| StorageError::TooLarge { what: crate::secret::redact_url(url), source };
    let request = client.get(url).map_err(|e| err(e.to_string()))?;
    let (activity, idle) = (Activity::new(), client.timeouts().idle);
    let stalled = |_| err(stalled_message(idle));
    let response = until_idle(request.send(), &activity, idle).await.map_err(stalled)?.map_err(|e| err(failure(&e, client)))?;
    if !response.status().is_success() {
        return Err(err(format!("the server answered {}", response.status())));
    }
    if let Some(length) = response.content_length().filter(|l| *l > max_bytes) {
        return Err(refused(InputTooLarge::Announced { size: length, max_bytes }));
    }
    let mut out = tokio::fs::File::create(dest).await?;
    let mut stream = response.bytes_stream();
    let mut total = 0u64;
    let copied: Result<(), StorageError> = async {
        while let Some(chunk) = until_idle(stream.try_next(), &activity, idle).await.map_err(stalled)?.map_err(|e| err(failure(&e, client)))? {
            activity.touch();
            total += chunk.len() as u64;
            if total > max_bytes {
                return Err(refused(InputTooLarge::Arrived { max_bytes }));
            }
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(())
    }
    .await;
    if let Err(error) = copied {
        drop(out);
        let _ = tokio::fs::remove_file(dest).await;
        return Err(error);
    }
    Ok(total)
}

/// Upload a file with HTTP PUT to a URL the user gave (e.g. a presigned URL), through
/// the policy's client: a peer that stops taking bytes (or answering) for the idle
/// time fails the upload, and so does one that takes longer than the total time.
pub async fn put_http(client: &HttpClient, url: &str, file: &Path, content_type: &str) -> Result<(), StorageError> {
    use futures::StreamExt;
    let err = |message: String| StorageError::UploadFailed { key: crate::secret::redact_url(url), message };
    let request = client.put(url).map_err(|e| err(e.to_string()))?;
    let source = tokio::fs::File::open(file).await?;
    let length = source.metadata().await?.len();
    let (activity, idle) = (Activity::new(), client.timeouts().idle);
    let moved = activity.clone();
    let chunks = tokio_util::io::ReaderStream::with_capacity(source, 1 << 20).inspect(move |_| moved.touch());
    let request = request
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(reqwest::header::CONTENT_LENGTH, length)
        .body(reqwest::Body::wrap_stream(chunks));
    let response = until_idle(request.send(), &activity, idle)
        .await
        .map_err(|_| err(stalled_message(idle)))?
        .map_err(|e| err(failure(&e, client)))?;
    if !response.status().is_success() {
        return Err(err(format!("upload answered {}", response.status())));
    }
    Ok(())
}

/// A transfer's network failure in words, naming the limit that was hit, if one was.
fn failure(e: &reqwest::Error, client: &HttpClient) -> String {
    let timeouts = client.timeouts();
    match Failure::of(e) {
        Failure::Refused(message) | Failure::Lookup(message) | Failure::Connect(message) | Failure::Other(message) => message,
        Failure::ConnectTimeout => format!("no connection could be made within {} s", timeouts.connect.as_secs_f64()),
        Failure::Timeout => format!(
            "it took longer than the {} s a transfer may take in all (transfer_total_secs, COPRA_LIMITS_TRANSFER_TOTAL_SECS)",
            timeouts.total.unwrap_or_default().as_secs_f64()
        ),
    }
}

fn stalled_message(idle: std::time::Duration) -> String {
    format!(
        "the server sent or took nothing for {} s, the transfer idle timeout (transfer_idle_secs, COPRA_LIMITS_TRANSFER_IDLE_SECS)",
        idle.as_secs_f64()
    )
}

/// An input past `max_input_bytes`, refused before or while it arrived (any partial
/// copy removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InputTooLarge {
    /// Its size, announced before its bytes (a length, a range's total, an object's
    /// size), is past the cap.
    #[error("the input is too large: it is {size} bytes, and an input may have at most {max_bytes} bytes (max_input_bytes, COPRA_LIMITS_MAX_INPUT_BYTES)")]
    Announced { size: u64, max_bytes: u64 },
    /// More bytes arrived than the cap.
    #[error(
        "the input is too large: more than {max_bytes} bytes arrived, and an input may have at most {max_bytes} bytes (max_input_bytes, COPRA_LIMITS_MAX_INPUT_BYTES)"
    )]
    Arrived { max_bytes: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_too_large_names_its_size_and_the_limit_to_raise() {
        let announced = InputTooLarge::Announced { size: 2_000, max_bytes: 1_000 }.to_string();
        assert_eq!(
            announced,
            "the input is too large: it is 2000 bytes, and an input may have at most 1000 bytes (max_input_bytes, COPRA_LIMITS_MAX_INPUT_BYTES)"
        );
        let arrived = StorageError::TooLarge { what: "in.mp4".into(), source: InputTooLarge::Arrived { max_bytes: 1_000 } }.to_string();
        assert_eq!(
            arrived,
            "download of 'in.mp4' failed: the input is too large: more than 1000 bytes arrived, and an input may have at most 1000 bytes (max_input_bytes, COPRA_LIMITS_MAX_INPUT_BYTES)"
        );
    }
}
