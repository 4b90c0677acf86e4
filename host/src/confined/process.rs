//! Starting the engine's process and watching it: the request in, reports and log lines
//! out, its resident memory and the bytes it has written held to the job's limits, and
//! its end told apart (an answer, a crash, a limit, a cancel).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{FramedRead, LinesCodec};

use super::child::SUBCOMMAND;
use super::error::{EngineError, MediaFailure, ProtocolError, signal_name};
use super::protocol::{Call, Confinement, Outcome, Report, Request};
use crate::config::Limits;

/// How often the process's memory is looked at (and a cancel noticed).
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// How often the bytes it has written are counted.
const COUNT_EVERY: Duration = Duration::from_secs(1);
/// Longest report line: a package's list of files, never media.
const MAX_REPORT_LINE: usize = 8 << 20;
/// Longest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 4096;
/// Log lines kept to explain an end without an answer.
const KEPT_LOG_LINES: usize = 16;
/// Descriptors the engine may hold: its input, a package's open segments and playlists.
const OPEN_FILES: u64 = 1024;

/// What one call may read and write.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub reads: Vec<PathBuf>,
    pub writes: Vec<PathBuf>,
}

/// Runs calls of the media room in confined processes of their own.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The program to start: this very binary, which has the hidden subcommand.
    program: PathBuf,
    memory: u64,
    cpu_secs: u64,
    output_bytes: u64,
    decode: crate::media::DecodeLimits,
}

impl Engine {
    /// The same engine, decoding only `clips` of the input (a job's; see
    /// [`crate::media::DecodeLimits::clips`]).
    pub fn for_clips(&self, clips: &[crate::types::TimeRange]) -> Engine {
        let mut engine = self.clone();
        engine.decode.clips = clips.to_vec();
        engine
    }

    /// The same engine, reading `joined` after the input as one timeline (a job's
    /// `inputs` past the first; see [`crate::media::DecodeLimits::joined`]). Each call
    /// may read those files too.
    pub fn joining(&self, joined: Vec<crate::media::JoinedFile>) -> Engine {
        let mut engine = self.clone();
        engine.decode.joined = joined;
        engine
    }

    pub fn new(limits: &Limits) -> Engine {
        Engine {
            program: PathBuf::from("/proc/self/exe"),
            memory: limits.max_job_memory,
            cpu_secs: limits.max_job_cpu.as_secs().max(1),
            output_bytes: limits.max_output_bytes,
            decode: crate::media::DecodeLimits::from(limits),
        }
    }

    fn memory_mib(&self) -> u64 {
        self.memory >> 20
    }

    /// Run `call` in a new process, confined to `access`, and give each report but the
    /// last to `on_report` (which refuses what it cannot accept; the process is then
    /// stopped). Returns the call's answer; a failed call is counted by its kind.
    pub(super) async fn run(
        &self,
        label: &str,
        call: Call,
        access: Access,
        cancel: Option<&AtomicBool>,
        on_report: &mut (dyn FnMut(Report) -> Result<(), ProtocolError> + Send),
    ) -> Result<Outcome, EngineError> {
        let answer = self.run_call(label, call, access, cancel, on_report).await;
        if let Some(kind) = answer.as_ref().err().and_then(EngineError::metric_kind) {
            crate::metrics::media_failure(kind);
        }
        answer
    }

    async fn run_call(
        &self,
        label: &str,
        call: Call,
        access: Access,
        cancel: Option<&AtomicBool>,
        on_report: &mut (dyn FnMut(Report) -> Result<(), ProtocolError> + Send),
    ) -> Result<Outcome, EngineError> {
        // The files joined after the input are read wherever it is (and are not output).
        let joined = self.decode.joined.iter().map(|j| j.path.clone());
        let access = Access { reads: access.reads.into_iter().chain(joined).collect(), ..access };
        let request = Request {
            call,
            confinement: Confinement {
                reads: access.reads.clone(),
                writes: access.writes.clone(),
                // Private writable memory includes threads' stacks and the allocator's
                // reserves that are never touched: the resident-memory watch below is the
                // precise limit, this the backstop against a burst between two looks.
                data_bytes: self.memory.saturating_mul(2).max(self.memory.saturating_add(1 << 30)),
                cpu_secs: self.cpu_secs,
                file_bytes: self.output_bytes,
                open_files: OPEN_FILES,
            },
            log: child_log_filter().into(),
            decode: self.decode.clone(),
        };
        let mut line = serde_json::to_vec(&request).map_err(|e| EngineError::Spawn(e.to_string()))?;
        line.push(b'\n');

        let mut child = tokio::process::Command::new(&self.program)
            .arg(SUBCOMMAND)
            .arg(label)
            .env_clear()
            // SVT-AV1 prints its configuration on every encode unless told not to.
            .env("SVT_LOG", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| EngineError::Spawn(e.to_string()))?;
        let pid = child.id().unwrap_or_default();
        let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take()) else {
            return Err(EngineError::Spawn("no pipes".into()));
        };
        // A child that died at once shows in its status below.
        let _ = stdin.write_all(&line).await;
        drop(stdin);

        let mut reports = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_REPORT_LINE));
        let mut logs = FramedRead::new(stderr, LinesCodec::new_with_max_length(MAX_LOG_LINE));
        let mut watch = Watch::new(pid, self, &access);
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut answer: Option<Result<Outcome, MediaFailure>> = None;
        let mut stopped: Option<EngineError> = None;
        let (mut reports_open, mut logs_open) = (true, true);
        let status = loop {
            tokio::select! {
                report = reports.next(), if reports_open => match report {
                    None => reports_open = false,
                    Some(Ok(text)) => match serde_json::from_str::<Report>(&text) {
                        Ok(Report::Done { result }) => answer = Some(result),
                        Ok(Report::Confined { landlock }) => tracing::debug!(engine = label, pid, landlock, "media engine confined"),
                        Ok(report) if stopped.is_none() => {
                            if let Err(why) = on_report(report) {
                                stopped = Some(EngineError::Protocol(why));
                                let _ = child.start_kill();
                            }
                        }
                        Ok(_) => {}
                        Err(err) => {
                            stopped.get_or_insert(ProtocolError::NotAReport(err.to_string()).into());
                            let _ = child.start_kill();
                        }
                    },
                    Some(Err(err)) => {
                        stopped.get_or_insert(ProtocolError::NotAReport(err.to_string()).into());
                        let _ = child.start_kill();
                    }
                },
                log = logs.next(), if logs_open => match log {
                    None => logs_open = false,
                    Some(Ok(text)) => watch.log(label, text),
                    Some(Err(_)) => watch.log(label, "(a log line too long, cut)".into()),
                },
                status = child.wait() => break status,
                _ = tick.tick() => {
                    if stopped.is_some() {
                        continue;
                    }
                    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                        stopped = Some(EngineError::Cancelled);
                    } else if let Some(over) = watch.over().await {
                        stopped = Some(over);
                    }
                    if stopped.is_some() {
                        let _ = child.start_kill();
                    }
                }
            }
        };
        // What it said before it ended.
        while let Some(Ok(text)) = tokio::time::timeout(Duration::from_secs(1), reports.next()).await.ok().flatten() {
            match serde_json::from_str::<Report>(&text) {
                Ok(Report::Done { result }) => answer = Some(result),
                Ok(report) if stopped.is_none() => {
                    if let Err(why) = on_report(report) {
                        stopped = Some(EngineError::Protocol(why));
                    }
                }
                _ => {}
            }
        }
        while let Some(Ok(text)) = tokio::time::timeout(Duration::from_secs(1), logs.next()).await.ok().flatten() {
            watch.log(label, text);
        }
        let status = status.map_err(|e| EngineError::Spawn(e.to_string()))?;
        if let Some(why) = stopped {
            return Err(why);
        }
        if let Some(signal) = status.signal() {
            return Err(match signal {
                libc::SIGXCPU => EngineError::Cpu(self.cpu_secs),
                libc::SIGXFSZ => EngineError::OutputBytes(self.output_bytes),
                // Rust's allocator aborts when the memory limit refuses it more.
                libc::SIGABRT if watch.said("memory allocation of") => EngineError::Memory(self.memory_mib()),
                _ => {
                    tracing::warn!(engine = label, pid, signal, last_lines = ?watch.kept, "the media engine died");
                    EngineError::Signal { signal, name: signal_name(signal) }
                }
            });
        }
        match answer {
            Some(Ok(outcome)) => Ok(outcome),
            Some(Err(failure)) if failure.message.contains("Cannot allocate memory") => {
                let message = format!("{} (the engine's memory is bounded by max_job_memory_mib, {})", failure.message, self.memory_mib());
                Err(EngineError::Media(MediaFailure { message, ..failure }))
            }
            Some(Err(failure)) => Err(EngineError::Media(failure)),
            None => {
                tracing::warn!(engine = label, pid, code = status.code(), last_lines = ?watch.kept, "the media engine ended without an answer");
                Err(EngineError::Exit(status.code().unwrap_or(-1)))
            }
        }
    }
}

/// Which of the engine's log lines are worth sending: what this process would show.
fn child_log_filter() -> &'static str {
    if tracing::enabled!(target: "ffmpeg", tracing::Level::DEBUG) {
        "debug"
    } else if tracing::enabled!(target: "copra::media", tracing::Level::INFO) {
        "info,ffmpeg=warn"
    } else {
        "warn"
    }
}

/// The watch over one process: its memory, its files, its last words.
struct Watch {
    pid: u32,
    memory: u64,
    memory_mib: u64,
    output_bytes: u64,
    access: Access,
    /// Every file seen in its writable directories, with its largest size seen: files
    /// it wrote and someone removed since (segments sent) still count.
    seen: HashMap<PathBuf, u64>,
    last_count: tokio::time::Instant,
    kept: std::collections::VecDeque<String>,
}

impl Watch {
    fn new(pid: u32, engine: &Engine, access: &Access) -> Watch {
        Watch {
            pid,
            memory: engine.memory,
            memory_mib: engine.memory_mib(),
            output_bytes: engine.output_bytes,
            access: access.clone(),
            seen: HashMap::new(),
            last_count: tokio::time::Instant::now(),
            kept: Default::default(),
        }
    }

    /// A limit the process has gone past, if any.
    async fn over(&mut self) -> Option<EngineError> {
        if resident_bytes(self.pid).is_some_and(|bytes| bytes > self.memory) {
            return Some(EngineError::Memory(self.memory_mib));
        }
        if self.access.writes.is_empty() || self.last_count.elapsed() < COUNT_EVERY {
            return None;
        }
        self.last_count = tokio::time::Instant::now();
        let (access, mut seen) = (self.access.clone(), std::mem::take(&mut self.seen));
        let counted = tokio::task::spawn_blocking(move || {
            for dir in &access.writes {
                count_files(dir, &access.reads, &mut seen);
            }
            seen
        })
        .await;
        self.seen = counted.unwrap_or_default();
        let written: u64 = self.seen.values().sum();
        (written > self.output_bytes).then_some(EngineError::OutputBytes(self.output_bytes))
    }

    /// Forward one log line of the engine, escaped (it may quote a file's contents).
    fn log(&mut self, label: &str, line: String) {
        let trimmed = line.trim_start();
        let (level, rest) = trimmed.split_once(' ').unwrap_or(("INFO", trimmed));
        let rest = rest.trim_start();
        match level {
            "ERROR" | "WARN" => tracing::warn!(engine = label, line = ?rest, "media engine"),
            "INFO" => tracing::info!(engine = label, line = ?rest, "media engine"),
            _ => tracing::debug!(engine = label, line = ?rest, "media engine"),
        }
        if self.kept.len() == KEPT_LOG_LINES {
            self.kept.pop_front();
        }
        self.kept.push_back(line);
    }

    fn said(&self, needle: &str) -> bool {
        self.kept.iter().any(|line| line.contains(needle))
    }
}

/// The memory process `pid` holds of its own: resident pages not backed by a file
/// (`resident - shared` of `/proc/<pid>/statm`), so the program's and libraries' code,
/// shared with every other process, is not counted against the job.
fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let mut fields = statm.split_whitespace().skip(1).map(|f| f.parse::<u64>().ok());
    let (resident, shared) = (fields.next()??, fields.next()??);
    let pages = resident.saturating_sub(shared);
    // SAFETY: sysconf only reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some(pages * page)
}

/// Every regular file under `dir` (not following links) but `skip`, with its size.
fn count_files(dir: &Path, skip: &[PathBuf], seen: &mut HashMap<PathBuf, u64>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            count_files(&path, skip, seen);
        } else if meta.is_file() && !skip.contains(&path) {
            let size = seen.entry(path).or_default();
            *size = (*size).max(meta.len());
        }
    }
}
