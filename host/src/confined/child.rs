//! The engine's process: `copra __media-engine <label>`, started by the worker with an
//! empty environment and three pipes. It reads its request, confines itself (see
//! [`super::confine`]), runs the one call and reports on its standard output. Nothing of
//! the server (database, keys, plugins, network) exists in it.

use std::io::{BufRead, Read, Write};
use std::sync::atomic::AtomicBool;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::error::{FailureKind, MediaFailure};
use super::protocol::{Call, Outcome, Report, Request};
use crate::media::{self, DecodeLimits, TranscodeEvent};

/// Largest request the child reads: paths and plans, never media.
const MAX_REQUEST_BYTES: u64 = 16 << 20;

/// The hidden subcommand that runs the engine's process.
pub const SUBCOMMAND: &str = "__media-engine";

/// Run the engine's process to its end. Never returns.
pub fn main() -> ! {
    // Descriptors the server left open by mistake must not reach FFmpeg's code.
    super::confine::close_inherited();
    let code = match serve() {
        Ok(()) => 0,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "ERROR engine: {message}");
            2
        }
    };
    std::process::exit(code)
}

/// Why the engine's process could not take its call (said on its standard error; the
/// parent sees a process that ended without an answer).
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("reading the request: {0}")]
    Read(#[source] std::io::Error),
    #[error("the request is not valid: {0}")]
    Request(#[source] serde_json::Error),
    #[error("confining the engine failed: {0}")]
    Confine(#[source] super::confine::ConfineError),
}

fn serve() -> Result<(), StartError> {
    let mut line = String::new();
    std::io::stdin().lock().take(MAX_REQUEST_BYTES).read_line(&mut line).map_err(StartError::Read)?;
    let request: Request = serde_json::from_str(&line).map_err(StartError::Request)?;
    init_logging(&request.log);
    media::init();
    let landlock = super::confine::apply(&request.confinement).map_err(StartError::Confine)?;
    let out = Out::default();
    out.send(&Report::Confined { landlock: landlock.clone() });
    let result = match request.call {
        Call::SelfCheck { outside, writable } => Ok(Outcome::Checked { landlock, checks: super::self_check::run(&outside, &writable) }),
        call => run(call, &request.decode, &out),
    };
    out.send(&Report::Done { result });
    Ok(())
}

/// The reports' writer, shared by the engine's threads: one line per report.
#[derive(Clone, Default)]
struct Out(Arc<Mutex<()>>);

impl Out {
    fn send(&self, report: &Report) {
        let Ok(mut line) = serde_json::to_vec(report) else { return };
        line.push(b'\n');
        let _guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut stdout = std::io::stdout().lock();
        // A parent that stopped reading has killed us or is about to.
        let _ = stdout.write_all(&line).and_then(|()| stdout.flush());
    }
}

fn run(call: Call, limits: &DecodeLimits, out: &Out) -> Result<Outcome, MediaFailure> {
    let never = AtomicBool::new(false);
    let text = MediaFailure::from;
    match call {
        Call::Probe { input } => media::probe(&input, limits).map(|(info, metadata)| Outcome::Probed { info, metadata }).map_err(text),
        Call::ProbeOutput { file } => media::probe_output(&file).map(|(info, metadata)| Outcome::Probed { info, metadata }).map_err(text),
        Call::Transcode { input, targets } => {
            let events = {
                let (out, paths): (Out, Vec<PathBuf>) = (out.clone(), targets.iter().map(|t| t.path.clone()).collect());
                Arc::new(move |event: TranscodeEvent| {
                    out.send(&match event {
                        TranscodeEvent::Progress(fraction) => Report::Progress { fraction },
                        TranscodeEvent::FileReady { index, path } => Report::FileReady { index, path },
                        TranscodeEvent::OutputFinished { index, result } => {
                            // Read back here, saving the worker an engine of its own for it.
                            let described = result.as_ref().ok().zip(paths.get(index)).and_then(|(produced, path)| produced.described_by(path)).map(|file| {
                                media::probe_output(&file).map(|(_, metadata)| metadata).map_err(MediaFailure::from)
                            });
                            Report::OutputFinished { index, result: result.map_err(MediaFailure::from), described }
                        }
                    })
                })
            };
            media::transcode(&input, &targets, events, &never, limits);
            Ok(Outcome::Finished)
        }
        Call::ChunkRanges { input, chunk_secs, grids } => {
            media::chunk_ranges_aligned(&input, chunk_secs, &grids, limits).map(|ranges| Outcome::Ranges { ranges }).map_err(text)
        }
        Call::CutChunks { input, ranges, paths } => media::cut_chunks(&input, &ranges, &paths, limits).map(|()| Outcome::Finished).map_err(text),
        Call::EncodeVideoChunk { input, cut, range, plans, pieces } => {
            let progress = {
                let out = out.clone();
                move |fraction: f64| out.send(&Report::Progress { fraction })
            };
            media::encode_video_chunk(&input, cut, range, &plans, &pieces, &progress, &never, limits).map(|frames| Outcome::Frames { frames }).map_err(text)
        }
        Call::EncodeAudio { input, plans, pieces } => media::encode_audio(&input, &plans, &pieces, &never, limits).map(|()| Outcome::Finished).map_err(text),
        Call::Join { video, audio, container, output } => {
            media::join(&video, audio.as_deref(), &container, &output).map(|()| Outcome::Finished).map_err(text)
        }
        Call::PackageEncoded { video, audio, package, dir } => {
            media::package_encoded(&video, &audio, &package, &dir, &never).map(|package| Outcome::Package { package }).map_err(text)
        }
        Call::Measure { input, targets } => {
            let progress = {
                let out = out.clone();
                move |fraction: f64| out.send(&Report::Progress { fraction })
            };
            media::measure(&input, &targets, limits, &progress)
                .map(|results| Outcome::Measured { results: results.into_iter().map(|r| r.map_err(MediaFailure::from)).collect() })
                .map_err(text)
        }
        Call::Loudness { input, requests } => {
            let progress = {
                let out = out.clone();
                move |fraction: f64| out.send(&Report::Progress { fraction })
            };
            media::measure_loudness(&input, &requests, limits, &progress)
                .map(|results| Outcome::Loudness { results: results.into_iter().map(|r| r.map_err(text)).collect() })
                .map_err(text)
        }
        Call::OutputLoudness { file } => Ok(Outcome::Loudness { results: vec![media::measure_output_loudness(&file, limits).map_err(text)] }),
        Call::AddSubtitles { file, container, tracks } => media::add_subtitles(&file, &container, &tracks).map(|()| Outcome::Finished).map_err(text),
        Call::ExtractSubtitles { input } => media::extract_subtitles(&input, limits).map(|tracks| Outcome::Subtitles { tracks }).map_err(text),
        Call::SelfCheck { .. } => Err(MediaFailure { kind: FailureKind::Engine, message: "a self-check is answered before any call".into() }),
    }
}

/// Log lines go to standard error, one a line, `LEVEL target: message fields`; the
/// parent escapes and forwards them.
fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(true)
        .try_init();
}
