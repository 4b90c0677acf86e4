//! What a plugin's call last heard back over HTTP: the status (and, during a webhook
//! delivery, the first words of the answer), shared between the call's store, the
//! outbound path that sees the answer, and the caller that logs it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The status of the last HTTP answer a call received, shared with the caller: 0 until
/// an answer arrives. During a webhook delivery it also keeps the first bytes of the
/// receiver's answer, escaped, for the delivery log (see [`super::outbound::keep_prefix`]).
#[derive(Debug, Clone, Default)]
pub struct LastStatus(Arc<AtomicU32>, Arc<std::sync::Mutex<String>>);

impl LastStatus {
    /// The last status seen, if any answer arrived.
    pub fn get(&self) -> Option<u16> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            status => u16::try_from(status).ok(),
        }
    }

    pub(super) fn set(&self, status: u16) {
        self.0.store(u32::from(status), Ordering::Relaxed);
    }

    /// The first bytes of the last answer's body, escaped ("" if none was kept).
    pub fn answer(&self) -> String {
        self.1.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub(super) fn set_answer(&self, text: String) {
        if let Ok(mut answer) = self.1.lock() {
            *answer = text;
        }
    }

    /// A failed delivery's message with the receiver's first words, for the delivery log.
    pub fn with_answer(&self, message: String) -> String {
        match self.answer() {
            answer if answer.is_empty() => message,
            answer => format!("{message} (the receiver answered: {answer})"),
        }
    }
}
