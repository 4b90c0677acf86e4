//! Why a plugin call gave no answer, and how a call's raw result becomes one: the
//! plugin's own error kept (and cut to size), a trap explained (time, deadline, memory,
//! panic message), or the host's refusal of what the plugin answered.

use std::time::Duration;

use copra_codes::ErrorCode;
use wasmtime::Store;

use super::bindings::types as wit;
use super::registry::LoadedPlugin;
use super::state::PluginState;

/// Why a plugin call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin answered with an error of its own: an API error code and message.
    #[error("{message}")]
    Rejected {
        /// The API error code the plugin chose (cut to 64 bytes).
        code: String,
        /// Its message (cut to 2 KiB).
        message: String,
    },
    /// The plugin answered, and the host refused the answer: a storage scheme, an
    /// object key or a host that the plugin was not granted.
    #[error("{message}")]
    Refused {
        /// The API error code (`storage_not_valid`, `storage_path_not_valid`, ...).
        code: ErrorCode,
        /// What was refused, naming the plugin and the grant key to change.
        message: String,
    },
    /// No loaded plugin provides what was asked for.
    #[error("no {kind} plugin provides '{name}'")]
    Missing {
        /// The plugin kind looked for.
        kind: &'static str,
        /// The service, format or notification type asked for.
        name: String,
    },
    /// The job was planned with a version of a plugin that this node does not have
    /// loaded (see `pins`): it is never run with another version.
    #[error("the job was planned with version sha256:{sha256} of plugin '{plugin}', which is not loaded on this node")]
    Unavailable {
        /// The plugin's name.
        plugin: String,
        /// The version's content hash.
        sha256: String,
    },
    /// The call used up its CPU budget (`time_ms`).
    #[error("plugin '{plugin}' ran past its time budget of {budget_ms} ms")]
    Timeout {
        /// The plugin's name.
        plugin: String,
        /// The budget it was given.
        budget_ms: u128,
    },
    /// The call did not finish within its wall-clock deadline (`deadline_ms`, or the
    /// caller's, e.g. the webhook timeout), host I/O included.
    #[error("plugin '{plugin}' did not finish within its deadline of {deadline_ms} ms (wall clock, waiting on the network included)")]
    Deadline {
        /// The plugin's name.
        plugin: String,
        /// The deadline it was given.
        deadline_ms: u128,
    },
    /// The plugin tried to grow its memory past its cap (`memory_mib`).
    #[error("plugin '{plugin}' exceeded its memory limit")]
    MemoryExceeded {
        /// The plugin's name.
        plugin: String,
    },
    /// The plugin trapped (a panic, an unreachable, a failed host call).
    #[error("plugin '{plugin}' failed: {message}")]
    Trapped {
        /// The plugin's name.
        plugin: String,
        /// The panic message, or the trap.
        message: String,
    },
}

impl PluginError {
    /// The error code for this failure as the plugin or the host named it (a
    /// plugin's own code is kept as it said it, for the log and the job's message).
    pub fn code(&self) -> &str {
        match self {
            PluginError::Rejected { code, .. } => code,
            other => other.api_code(ErrorCode::PluginFailed).as_str(),
        }
    }

    /// The API's code for this failure when `asked` is the code of what the plugin was
    /// asked about (`format_not_valid` for a format check): a plugin's own code is kept
    /// only if it is one a plugin may answer, so a plugin never answers as the host.
    pub fn api_code(&self, asked: ErrorCode) -> ErrorCode {
        match self {
            PluginError::Rejected { code, .. } => ErrorCode::from_plugin(code, asked),
            PluginError::Refused { code, .. } => *code,
            PluginError::Missing { .. } => ErrorCode::PluginNotFound,
            PluginError::Unavailable { .. } => ErrorCode::PluginVersionUnavailable,
            PluginError::Timeout { .. } | PluginError::Deadline { .. } => ErrorCode::PluginTimeout,
            PluginError::MemoryExceeded { .. } => ErrorCode::PluginMemoryExceeded,
            PluginError::Trapped { .. } => ErrorCode::PluginFailed,
        }
    }

    /// `code: message`, for status messages that users read.
    pub fn describe(&self) -> String {
        format!("{}: {self}", self.code())
    }
}

/// Longest code and message kept from a plugin: they end up in API responses and logs.
const MAX_CODE: usize = 64;
const MAX_MESSAGE: usize = 2048;

/// Cut `text` to at most `max` bytes on a character boundary.
pub fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Something a plugin answered, quoted for a message: escaped (`\0`, `\n`) and short.
pub fn quoted(text: &str) -> String {
    const MAX_QUOTED: usize = 120;
    let mut end = text.len().min(MAX_QUOTED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut quoted = format!("{:?}", &text[..end]);
    if end < text.len() {
        quoted.push_str(&format!(" (… {} bytes in all)", text.len()));
    }
    quoted
}

impl From<wit::PluginError> for PluginError {
    fn from(e: wit::PluginError) -> Self {
        PluginError::Rejected { code: truncated(e.code, MAX_CODE), message: truncated(e.message, MAX_MESSAGE) }
    }
}

/// The marker error of a call cut off by its wall-clock deadline.
#[derive(Debug, thiserror::Error)]
#[error("the call ran past its wall-clock deadline of {0:?}")]
struct DeadlinePassed(Duration);

/// Run one step of a call (instantiate, a typed call) within `deadline`. When the
/// deadline passes, the step's future is dropped, which cancels the guest wherever it
/// is (running, or waiting on host I/O); the store must not be used again.
pub async fn within<T>(deadline: Duration, step: impl Future<Output = wasmtime::Result<T>>) -> wasmtime::Result<T> {
    match tokio::time::timeout(deadline, step).await {
        Ok(result) => result,
        Err(_) => Err(wasmtime::Error::new(DeadlinePassed(deadline))),
    }
}

/// The result of one plugin call as the host reports it. Counts the call.
pub fn outcome<R>(
    plugin: &LoadedPlugin,
    store: &Store<PluginState>,
    result: wasmtime::Result<Result<R, wit::PluginError>>,
) -> Result<R, PluginError> {
    plugin.record_call(result.as_ref().map(|r| r.is_ok()).unwrap_or(false));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(rejected)) => Err(rejected.into()),
        Err(trap) => {
            let stderr = store.data().stderr.contents();
            let mut error = if store.data().limits.exceeded && trap.downcast_ref::<DeadlinePassed>().is_none() {
                PluginError::MemoryExceeded { plugin: plugin.name.to_string() }
            } else {
                classify(plugin, trap)
            };
            if let PluginError::Trapped { message, .. } = &mut error {
                // A panicking Rust plugin says why on stderr before it traps.
                if let Some(said) = panic_message(&stderr) {
                    *message = said;
                }
            }
            let stderr = String::from_utf8_lossy(&stderr);
            tracing::warn!(plugin = %plugin.name, code = error.code(), %error, stderr = %stderr.trim(), "plugin call failed");
            Err(error)
        }
    }
}

/// Turn a wasmtime error into the reason a user can act on.
pub fn classify(plugin: &LoadedPlugin, err: wasmtime::Error) -> PluginError {
    let name = plugin.name.to_string();
    if let Some(DeadlinePassed(deadline)) = err.downcast_ref::<DeadlinePassed>() {
        return PluginError::Deadline { plugin: name, deadline_ms: deadline.as_millis() };
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PluginError::Timeout { plugin: name, budget_ms: plugin.sandbox.budget.as_millis() },
        Some(wasmtime::Trap::AllocationTooLarge) => PluginError::MemoryExceeded { plugin: name },
        _ => PluginError::Trapped { plugin: name, message: format!("{err:#}") },
    }
}

/// The message of a Rust panic as the guest printed it (`panicked at src/lib.rs:1:2:\nmsg`).
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let after = text.split_once("panicked at ")?.1;
    let message = after.split_once('\n').map(|(_, rest)| rest).unwrap_or(after);
    let message = message.lines().next().unwrap_or("").trim();
    (!message.is_empty()).then(|| format!("panicked: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_is_cut_to_size() {
        assert_eq!(truncated("héllo".into(), 2), "h…");
        assert_eq!(truncated("short".into(), 64), "short");
        assert_eq!(quoted("a\0b"), "\"a\\0b\"");
        let long = quoted(&"x".repeat(100_000));
        assert!(long.len() < 200 && long.contains("100000 bytes"), "{long}");
    }

    #[test]
    fn panic_messages_are_read_from_stderr() {
        let stderr = b"thread '<unnamed>' panicked at src/lib.rs:3:5:\nthe reason\nnote: ...";
        assert_eq!(panic_message(stderr).as_deref(), Some("panicked: the reason"));
        assert_eq!(panic_message(b"nothing"), None);
    }
}
