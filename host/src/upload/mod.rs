//! Direct uploads: a tenant sends a file to the server itself, resumably (tus 1.0), and
//! uses it as a job's input. This room keeps the bytes and what is known of them; the
//! HTTP protocol is `api/uploads.rs`, a job's use of an upload is `job/input_upload.rs`.
//!
//! Where the bytes live: `<data_dir>/uploads/<tenant namespace>/<id>` and, beside it,
//! `<id>.info` (its length, metadata, expiry and the jobs that hold it). In a cluster the
//! data directory is the one every node shares, so any worker reads an upload any API
//! node took. An upload's offset is the length of its file: bytes are synced before an
//! offset is acknowledged, so an acknowledged offset survives a crash of the node.

mod chunk_writer;
pub mod store;
pub mod sweep;

pub use store::{Checksum, Upload, UploadError, Uploads};
