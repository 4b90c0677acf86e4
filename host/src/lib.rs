//! Copra: a self-hosted video transcoding server that speaks the Coconut v2 job API,
//! encodes with the FFmpeg libraries, and takes its storage providers, formats,
//! conditions and notifiers from WebAssembly plugins.
//!
//! One module per room: `api` does HTTP, `media` does FFmpeg, `plugins` does wasmtime,
//! `db`/`queue` persistence, `worker` runs jobs, `storage` moves bytes, `notify` delivers
//! events, `confined` runs the media room in a confined process of its own. Types that
//! cross rooms live in `types`.

pub mod api;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod confined;
pub mod db;
pub mod languages;
pub mod intake;
pub mod job;
pub mod media;
pub mod metrics;
pub mod net;
pub mod object_key;
pub mod notify;
pub mod plugins;
pub mod queue;
pub mod secret;
pub mod subtitles;
pub mod storage;
pub mod tenant;
pub mod types;
pub mod upload;
pub mod worker;

/// A random identifier of `len` ASCII letters and digits (62 of them; a job id's random
/// half is one, see `job::id`).
pub fn random_id(len: usize) -> String {
    use rand::Rng;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).map(char::from).collect()
}
