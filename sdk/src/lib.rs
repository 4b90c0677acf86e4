//! `copra-sdk`: what a Copra plugin author needs.
//!
//! A plugin is a WASI component (`wasm32-wasip2`) for one of four kinds. Enable the
//! feature of your kind (`storage`, `format`, `condition` or `notifier`; add `http` for
//! outgoing requests), implement the small trait of that kind, and export your type:
//!
//! ```ignore
//! use copra_sdk::{Error, Json, condition::Condition};
//!
//! struct AlwaysTrue;
//!
//! impl Condition for AlwaysTrue {
//!     const NAME: &'static str = "always-true";
//!     const VERSION: &'static str = "0.1.0";
//!     fn check(_expression: &str) -> Result<(), Error> { Ok(()) }
//!     fn evaluate(_expression: &str, _input: &copra_sdk::condition::MediaInfo) -> Result<bool, Error> { Ok(true) }
//! }
//!
//! copra_sdk::condition_plugin!(AlwaysTrue);
//! ```
//!
//! Build each plugin with its own `cargo build --target wasm32-wasip2` invocation: a
//! component embeds the world of every binding linked into it, so the kind features of
//! two plugins must not be unified into one build. `sdk/README.md` walks through it.

#![warn(missing_docs)]

pub use serde_json;
/// JSON values as plugins receive them (storage and notification blocks, events).
pub use serde_json::Value as Json;

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub use url;

pub mod config;
mod secret;
pub use secret::Secret;
/// S3-compatible services: a typed storage block and the host's opendal target.
#[cfg(feature = "storage")]
pub mod s3;

/// Error codes the host understands; they become the API's `error_code`. They are the
/// strings of [`ErrorCode`], the one list of the API's codes; the host keeps a plugin's
/// code only if it is one of these (any other becomes the code of what was asked).
pub mod codes {
    use copra_codes::ErrorCode;

    /// A format string no plugin plans, or one its plugin refuses.
    pub const FORMAT_NOT_VALID: &str = ErrorCode::FormatNotValid.as_str();
    /// An output parameter (`number`, `offset`, ...) that is not valid.
    pub const OUTPUT_PARAM_NOT_VALID: &str = ErrorCode::OutputParamNotValid.as_str();
    /// An `if` expression that does not parse.
    pub const CONDITION_NOT_VALID: &str = ErrorCode::ConditionNotValid.as_str();
    /// A storage block that is not valid (a field other than its credentials).
    pub const STORAGE_NOT_VALID: &str = ErrorCode::StorageNotValid.as_str();
    /// Missing or malformed storage credentials.
    pub const STORAGE_CREDENTIALS_NOT_VALID: &str = ErrorCode::StorageCredentialsNotValid.as_str();
    /// An object path that would leave the storage root.
    pub const STORAGE_PATH_NOT_VALID: &str = ErrorCode::StoragePathNotValid.as_str();
    /// A notification block that is not valid.
    pub const NOTIFICATION_NOT_VALID: &str = ErrorCode::NotificationNotValid.as_str();
    /// A delivery that failed (the host retries it).
    pub const NOTIFICATION_FAILED: &str = ErrorCode::NotificationFailed.as_str();
}

pub use copra_codes::ErrorCode;

/// A plugin's answer when it cannot do what was asked: an API error code and a message
/// the user can act on. The host returns it in the API's error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// One of [`codes`]: the API's `error_code`.
    pub code: String,
    /// A sentence for the user: what is wrong and how to fix it.
    pub message: String,
}

impl Error {
    /// An error with any code.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Error { code: code.into(), message: message.into() }
    }

    /// `storage_not_valid`.
    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(codes::STORAGE_NOT_VALID, message)
    }

    /// `storage_credentials_not_valid`.
    pub fn credentials(message: impl Into<String>) -> Self {
        Self::new(codes::STORAGE_CREDENTIALS_NOT_VALID, message)
    }

    /// `storage_path_not_valid`.
    pub fn path(message: impl Into<String>) -> Self {
        Self::new(codes::STORAGE_PATH_NOT_VALID, message)
    }

    /// `format_not_valid`.
    pub fn format(message: impl Into<String>) -> Self {
        Self::new(codes::FORMAT_NOT_VALID, message)
    }

    /// An output parameter (`number`, `offset`, `hls`, ...) that is not valid.
    pub fn param(message: impl Into<String>) -> Self {
        Self::new(codes::OUTPUT_PARAM_NOT_VALID, message)
    }

    /// `condition_not_valid`.
    pub fn condition(message: impl Into<String>) -> Self {
        Self::new(codes::CONDITION_NOT_VALID, message)
    }

    /// `notification_not_valid`.
    pub fn notification(message: impl Into<String>) -> Self {
        Self::new(codes::NOTIFICATION_NOT_VALID, message)
    }

    /// `notification_failed`.
    pub fn delivery(message: impl Into<String>) -> Self {
        Self::new(codes::NOTIFICATION_FAILED, message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Typed access to the JSON blocks plugins receive.
pub mod json {
    use super::{Error, Json};

    /// Parse a JSON argument from the host; `code` names what is wrong if it does not parse.
    pub fn parse(text: &str, code: &str) -> Result<Json, Error> {
        serde_json::from_str(text).map_err(|e| Error::new(code, format!("not valid JSON: {e}")))
    }

    /// A string field, if present and a string.
    pub fn str<'a>(value: &'a Json, field: &str) -> Option<&'a str> {
        value.get(field).and_then(Json::as_str).filter(|s| !s.is_empty())
    }

    /// A required string field; its absence is `code` with a message naming it.
    pub fn require<'a>(value: &'a Json, field: &str, code: &str) -> Result<&'a str, Error> {
        str(value, field).ok_or_else(|| Error::new(code, format!("'{field}' is required.")))
    }

    /// A boolean field, `false` when absent.
    pub fn flag(value: &Json, field: &str) -> bool {
        value.get(field).and_then(Json::as_bool).unwrap_or(false)
    }
}

/// Object keys for storage plugins: join a prefix and a path, with no way out of the root.
pub mod paths {
    use super::Error;

    /// `join("/videos/", "/720p//a.mp4")` is `videos/720p/a.mp4`. `..`, backslashes and NUL
    /// are refused, so a job cannot write outside its storage root.
    pub fn join(prefix: &str, path: &str) -> Result<String, Error> {
        let mut segments = Vec::new();
        for part in [prefix, path] {
            if part.contains('\0') || part.contains('\\') {
                return Err(Error::path(format!("The path '{part}' contains a forbidden character.")));
            }
            for segment in part.split('/') {
                match segment {
                    "" | "." => {}
                    ".." => return Err(Error::path(format!("The path '{part}' must not contain '..'."))),
                    s => segments.push(s),
                }
            }
        }
        if segments.is_empty() {
            return Err(Error::path("The output path is empty."));
        }
        Ok(segments.join("/"))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn joins_and_normalises() {
            assert_eq!(join("/pre/", "/720p//video.mp4").unwrap(), "pre/720p/video.mp4");
            assert_eq!(join("", "./a.mp4").unwrap(), "a.mp4");
        }

        #[test]
        fn refuses_escapes() {
            for bad in ["a/../../etc", "..", "a\\b", "a\0b"] {
                assert!(join("p", bad).is_err(), "{bad:?}");
            }
            assert!(join("", "/").is_err());
        }
    }
}

macro_rules! world {
    ($feature:literal, $module:ident, $world:literal, $export:literal, $bindings:literal) => {
        #[cfg(feature = $feature)]
        #[allow(missing_docs, unused_macros, unused_imports, clippy::all)]
        pub mod $module {
            // Public export macros only for a wasm build of one kind: see build.rs.
            #[cfg(copra_public_exports)]
            wit_bindgen::generate!({
                world: $world,
                path: "../wit",
                pub_export_macro: true,
                export_macro_name: $export,
                default_bindings_module: $bindings,
            });
            #[cfg(not(copra_public_exports))]
            wit_bindgen::generate!({
                world: $world,
                path: "../wit",
                pub_export_macro: false,
                export_macro_name: $export,
                default_bindings_module: $bindings,
            });

            pub use crate::kinds::$module::*;
            pub use copra::plugin::host::LogLevel;
            pub use copra::plugin::types::{MediaInfo, PluginError, PluginInfo, PluginKind};

            /// Log through the host's `tracing`, tagged with this plugin's name.
            pub fn log(level: LogLevel, message: &str) {
                copra::plugin::host::log(level, message)
            }

            impl From<crate::Error> for PluginError {
                fn from(e: crate::Error) -> Self {
                    PluginError { code: e.code, message: e.message }
                }
            }
        }
    };
}

/// The host's services for notifiers beyond logging.
#[cfg(feature = "notifier")]
pub mod host {
    /// The three Standard Webhooks headers of one delivery: send `id` as `webhook-id`,
    /// `timestamp` as `webhook-timestamp` and `signature` as `webhook-signature`.
    pub use crate::notifier::copra::plugin::host::WebhookHeaders;

    /// Sign `body` (the exact bytes you will send) for the delivery under way, as
    /// Standard Webhooks (https://www.standardwebhooks.com) do: the host answers with the
    /// event's stable `webhook-id`, this attempt's timestamp and
    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under the tenant's secret,
    /// which never enters the plugin. Only `notify` calls made by the host's delivery
    /// loop can sign; elsewhere this is an error.
    pub fn sign_webhook(body: &[u8]) -> Result<WebhookHeaders, String> {
        crate::notifier::copra::plugin::host::sign_webhook(body)
    }

    impl WebhookHeaders {
        /// The headers as `(name, value)` pairs, ready to send.
        pub fn pairs(&self) -> [(&'static str, &str); 3] {
            [("webhook-id", &self.id), ("webhook-timestamp", &self.timestamp), ("webhook-signature", &self.signature)]
        }
    }
}

world!("storage", storage, "storage-plugin", "export_storage", "copra_sdk::storage");
world!("format", format, "format-plugin", "export_format", "copra_sdk::format");
world!("condition", condition, "condition-plugin", "export_condition", "copra_sdk::condition");
world!("notifier", notifier, "notifier-plugin", "export_notifier", "copra_sdk::notifier");

#[cfg(all(feature = "storage", copra_public_exports))]
pub use storage::export_storage;
#[cfg(all(feature = "format", copra_public_exports))]
pub use format::export_format;
#[cfg(all(feature = "condition", copra_public_exports))]
pub use condition::export_condition;
#[cfg(all(feature = "notifier", copra_public_exports))]
pub use notifier::export_notifier;

// A component targets exactly one world. Cargo unifies features across the packages of
// one invocation, so `cargo build --target wasm32-wasip2 -p a -p b` (or `--workspace`)
// would link two kinds into every plugin: say so instead of a wall of macro errors.
#[cfg(all(
    target_arch = "wasm32",
    any(
        all(feature = "storage", any(feature = "format", feature = "condition", feature = "notifier")),
        all(feature = "format", any(feature = "condition", feature = "notifier")),
        all(feature = "condition", feature = "notifier"),
    )
))]
compile_error!(
    "copra-sdk: more than one plugin kind feature is enabled for a wasm build. Build each plugin with its own \
     `cargo build --target wasm32-wasip2 -p <crate>` invocation so features do not unify (scripts/build-plugins.sh does)."
);

mod kinds;
