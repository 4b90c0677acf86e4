//! What a lane of the engine runs: a [`Sink`] takes decoded frames and makes one
//! output (a file, pictures, a package, a chunk); what an output is asked to make
//! ([`OutputTarget`]) and what it made ([`Produced`]).

use std::path::PathBuf;

use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use crate::types::OutputPlan;

/// One output to produce.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OutputTarget {
    pub plan: OutputPlan,
    /// The file to write, or for pictures the directory to write them in.
    pub path: PathBuf,
}

/// What an output produced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Produced {
    /// One file, at the target's path.
    File,
    /// Pictures (or sprite sheets) in order, and for sprites where each picture sits.
    Images { files: Vec<PathBuf>, tiles: Vec<SpriteTile> },
    /// An HLS and/or DASH package in the target's directory.
    Package(Package),
}

impl Produced {
    /// The file whose description stands for the output in its metadata: the file
    /// itself, the first picture, or a package's master playlist (else its manifest).
    pub fn described_by(&self, target: &std::path::Path) -> Option<PathBuf> {
        match self {
            Produced::File => Some(target.to_path_buf()),
            Produced::Images { files, .. } => files.first().cloned(),
            Produced::Package(package) => package.hls_master.as_ref().or(package.dash_manifest.as_ref()).map(|m| target.join(m)),
        }
    }
}

/// Whether a lane wants more frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Everything the output needs has been seen (the end of a trailer's range).
    Done,
}

/// What a lane runs: an output (or part of one) that takes decoded frames.
pub trait Sink: Send {
    /// What the sink gives back when it is done.
    type Done;
    fn wants_video(&self) -> bool;
    fn wants_audio(&self) -> bool;
    fn video(&mut self, frame: &frame::Video) -> Result<Flow, MediaError>;
    fn audio(&mut self, frame: &frame::Audio) -> Result<Flow, MediaError>;
    /// The input's other audio tracks it takes, by stream index (alternate languages).
    fn tracks(&self) -> Vec<usize> {
        Vec::new()
    }
    /// A frame of one of those tracks.
    fn track(&mut self, _stream: usize, _frame: &frame::Audio) -> Result<Flow, MediaError> {
        Ok(Flow::Continue)
    }
    /// The input has ended: flush and close.
    fn finish(&mut self) -> Result<Self::Done, MediaError>;
}

/// Where one picture landed in a sprite sheet, and the input times it stands for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpriteTile {
    pub start: f64,
    pub end: f64,
    /// Index into the produced files.
    pub sheet: usize,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// What a finished package is made of, relative to the output's directory.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Package {
    /// Every file, segments first and playlists/manifests last, so that a player never
    /// finds a playlist whose segments are not there yet.
    pub files: Vec<PathBuf>,
    /// `hls/master.m3u8`, when HLS was asked for.
    pub hls_master: Option<PathBuf>,
    /// `dash/master.mpd`, when DASH was asked for.
    pub dash_manifest: Option<PathBuf>,
}
