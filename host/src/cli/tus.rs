//! The command line's tus client: uploads a file to `/v2/uploads` in chunks with a
//! progress bar, and remembers the upload's URL (in the user's cache directory) so that
//! the same command run again after an interruption resumes it instead of starting over.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::jobs::Api;

/// Bytes per PATCH: what an interruption may cost to send again.
const CHUNK: usize = 8 << 20;
/// Waits before the tries that follow a failed chunk (as tus-js-client's `retryDelays`).
const RETRY_DELAYS_MS: [u64; 8] = [250, 500, 1000, 1000, 2000, 3000, 5000, 5000];

/// Upload `path` (or resume its upload); returns the upload's URL once it is finished.
pub async fn upload(api: &Api, path: &Path) -> anyhow::Result<String> {
    let meta = tokio::fs::metadata(path).await.with_context(|| format!("reading {}", path.display()))?;
    let length = meta.len();
    let memo = memo_path(api, path, &meta);
    let mut resumed = None;
    if let Some(url) = memo.as_ref().and_then(|m| std::fs::read_to_string(m).ok()) {
        let url = url.trim().to_string();
        if let Some(offset) = offset_of(api, &url, length).await? {
            resumed = Some((url, offset));
        }
    }
    let (url, mut offset) = match resumed {
        Some((url, offset)) => {
            eprintln!("resuming the upload of {} at {} of {} bytes", path.display(), offset, length);
            (url, offset)
        }
        None => {
            let url = create(api, path, length).await?;
            if let Some(memo) = &memo {
                if let Some(dir) = memo.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = std::fs::write(memo, &url);
            }
            (url, 0)
        }
    };
    let bar = ProgressBar::new(length).with_style(
        ProgressStyle::with_template("upload {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(offset);
    let mut file = tokio::fs::File::open(path).await.with_context(|| format!("opening {}", path.display()))?;
    let mut buffer = vec![0u8; CHUNK];
    let mut retries = 0;
    while offset < length {
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        let want = CHUNK.min((length - offset) as usize);
        file.read_exact(&mut buffer[..want]).await.with_context(|| format!("reading {}", path.display()))?;
        let sent = api
            .http
            .patch(&url)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset)
            .header("content-type", "application/offset+octet-stream")
            .basic_auth(&api.key, Some(""))
            .body(buffer[..want].to_vec())
            .send()
            .await;
        // A broken connection, a request of an earlier run still being written (423) or
        // an offset that moved on (409): wait, ask the server where it is, go on from there.
        let again = match &sent {
            Err(_) => true,
            Ok(response) => matches!(response.status().as_u16(), 409 | 423 | 502 | 503 | 504),
        };
        if again && retries < RETRY_DELAYS_MS.len() {
            tokio::time::sleep(std::time::Duration::from_millis(RETRY_DELAYS_MS[retries])).await;
            retries += 1;
            offset = offset_of(api, &url, length).await?.context("the upload is gone from the server; run the command again to start over")?;
            bar.set_position(offset);
            continue;
        }
        let response = sent.with_context(|| format!("sending to {url}"))?;
        if response.status() != reqwest::StatusCode::NO_CONTENT {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            bail!("{status}: {}", body.get("message").and_then(|m| m.as_str()).unwrap_or("the upload was refused"));
        }
        retries = 0;
        offset = header_number(&response, "upload-offset").context("the server answered without Upload-Offset")?;
        bar.set_position(offset);
    }
    bar.finish_and_clear();
    if let Some(memo) = &memo {
        let _ = std::fs::remove_file(memo);
    }
    eprintln!("uploaded {} ({} bytes): {url}", path.display(), length);
    Ok(url)
}

/// A new upload of `length` bytes; its URL.
async fn create(api: &Api, path: &Path, length: u64) -> anyhow::Result<String> {
    use base64::Engine as _;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let metadata = format!("filename {}", base64::engine::general_purpose::STANDARD.encode(name));
    let response = api
        .http
        .post(api.url("/v2/uploads"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length)
        .header("upload-metadata", metadata)
        .basic_auth(&api.key, Some(""))
        .send()
        .await
        .with_context(|| format!("reaching the server at {}", api.base))?;
    if response.status() != reqwest::StatusCode::CREATED {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        bail!("{status}: {}", body.get("message").and_then(|m| m.as_str()).unwrap_or("the upload was refused"));
    }
    response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string).context("the server answered without Location")
}

/// The offset of an earlier upload, if it still exists with this length.
async fn offset_of(api: &Api, url: &str, length: u64) -> anyhow::Result<Option<u64>> {
    let response = api
        .http
        .head(url)
        .header("tus-resumable", "1.0.0")
        .basic_auth(&api.key, Some(""))
        .send()
        .await
        .with_context(|| format!("reaching the server at {}", api.base))?;
    if !response.status().is_success() || header_number(&response, "upload-length") != Some(length) {
        return Ok(None);
    }
    Ok(header_number(&response, "upload-offset"))
}

fn header_number(response: &reqwest::Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Where the URL of this file's upload to this server with this key is remembered: one
/// file per (server, key, path, size, modification time), so a changed file starts over.
fn memo_path(api: &Api, path: &Path, meta: &std::fs::Metadata) -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let absolute = std::fs::canonicalize(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    let digest = Sha256::new()
        .chain_update(api.base.as_bytes())
        .chain_update(b"\0")
        .chain_update(Sha256::digest(api.key.as_bytes()))
        .chain_update(absolute.as_os_str().as_encoded_bytes())
        .chain_update(format!("\0{}\0{modified}", meta.len()).as_bytes())
        .finalize();
    Some(cache.join("copra").join("uploads").join(hex::encode(&digest[..16])))
}
