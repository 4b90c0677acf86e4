//! How a call of the confined engine can end badly, in words a user can act on.

/// Why a call of the engine's process gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The media room's own refusal or failure (a corrupt file, an encoder's error).
    #[error("{0}")]
    Media(String),
    /// The process died of a signal it did not ask for: a crash, or someone killed it.
    #[error("The media engine stopped: signal {signal} ({name})")]
    Signal { signal: i32, name: &'static str },
    /// The process ended without answering.
    #[error("The media engine stopped: exit code {0}")]
    Exit(i32),
    #[error("The media engine exceeded max_job_memory_mib ({0})")]
    Memory(u64),
    #[error("The media engine exceeded max_job_cpu_secs ({0})")]
    Cpu(u64),
    #[error("The job's files exceeded max_output_bytes ({0})")]
    OutputBytes(u64),
    #[error("The media engine could not be started: {0}")]
    Spawn(String),
    /// It said something it may not: a path outside its files, a malformed report.
    #[error("The media engine was stopped: {0}")]
    Protocol(String),
    /// The caller asked it to stop (the job's lease was lost, the server is stopping).
    #[error("cancelled")]
    Cancelled,
}

impl EngineError {
    /// A crash that another attempt may not meet (a limit hit or a media error would be
    /// met again, and is not).
    pub fn is_crash(&self) -> bool {
        matches!(self, EngineError::Signal { .. } | EngineError::Exit(_) | EngineError::Spawn(_))
    }
}

/// The usual name of a signal that ends a process.
pub(super) fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}
