//! One chunk of an upload, from the request's body to disk. The body is read on the
//! request's task and handed, a piece at a time through a short channel (so memory stays
//! flat), to a blocking thread that writes it, asks the kernel every few MiB to start
//! writing back what it has (so the final sync has little left to do and the disk works
//! while the network does), and syncs at the end: when this returns, the bytes are on
//! disk.

use std::io::Write as _;
use std::os::fd::AsRawFd;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::UploadError;

/// Bytes gathered before one write.
const WRITE_BUFFER: usize = 1 << 20;
/// Bytes written between two requests to start writeback.
const WRITEBACK_EVERY: u64 = 8 << 20;
/// Body pieces in flight between the request's task and the writer.
const IN_FLIGHT: usize = 16;

/// What a chunk wrote.
pub struct Written {
    /// The file, still locked, for the caller to truncate if the chunk is refused.
    pub file: std::fs::File,
    pub bytes: u64,
    /// The digest of the bytes, when a checksum was asked for.
    pub digest: Option<ring::digest::Digest>,
    /// The body broke off before its end (what arrived was written).
    pub broken: bool,
}

/// Append `body` to `file` (opened for appending, at `start`), at most `room` bytes.
pub async fn write<S, E>(
    file: std::fs::File,
    start: u64,
    room: u64,
    body: S,
    algorithm: Option<&'static ring::digest::Algorithm>,
    length: u64,
) -> Result<Written, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (pieces, mut received) = tokio::sync::mpsc::channel::<Bytes>(IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || -> Result<Written, UploadError> {
        let mut digest = algorithm.map(ring::digest::Context::new);
        let mut bytes = 0u64;
        let mut started_back = 0u64;
        {
            let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, &file);
            while let Some(piece) = received.blocking_recv() {
                if bytes + piece.len() as u64 > room {
                    drop(out);
                    file.set_len(start)?;
                    return Err(UploadError::PastLength { length });
                }
                if let Some(digest) = &mut digest {
                    digest.update(&piece);
                }
                out.write_all(&piece)?;
                bytes += piece.len() as u64;
                if bytes - started_back >= WRITEBACK_EVERY {
                    out.flush()?;
                    start_writeback(&file, start + started_back, bytes - started_back);
                    started_back = bytes;
                }
            }
            out.flush()?;
        }
        file.sync_data()?;
        Ok(Written { file, bytes, digest: digest.map(|d| d.finish()), broken: false })
    });
    let mut body = body;
    let mut broken = false;
    while let Some(piece) = body.next().await {
        match piece {
            Ok(piece) => {
                if pieces.send(piece).await.is_err() {
                    // The writer stopped (too many bytes, or a disk error): its answer says why.
                    break;
                }
            }
            Err(err) => {
                tracing::info!(err = %err, "an upload's body broke off; keeping what arrived");
                broken = true;
                break;
            }
        }
    }
    drop(pieces);
    let mut written = writer.await.map_err(|e| UploadError::Io(std::io::Error::other(e)))??;
    written.broken = broken;
    Ok(written)
}

/// Ask the kernel to start writing `len` bytes at `offset` of `file` back to disk, without
/// waiting for them. Only a hint: a failure changes nothing (the final sync writes all).
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    // SAFETY: `sync_file_range` reads no memory of ours; it takes a descriptor that is
    // open for as long as `file` is borrowed, and a range. The standard library has no
    // wrapper for it (its `sync_data` waits for everything, which is what this avoids).
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset as libc::off64_t, len as libc::off64_t, libc::SYNC_FILE_RANGE_WRITE);
    }
}
