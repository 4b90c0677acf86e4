//! The error codes of Copra's API, one definition for everyone who names one.
//!
//! Every failure a client sees is `{"message", "error_code", "status": "error"}`; the
//! `error_code` is one of [`ErrorCode`]. The host's validation and answers use the enum,
//! and the plugin SDK's `codes` are its strings, so a code exists once. A plugin's error
//! names a code too, as a string (it crosses the WIT boundary); the host keeps it only if
//! it is one a plugin may answer ([`ErrorCode::from_plugin`]), so a plugin can never
//! answer as the host (`authentication_failed`, `job_not_found`).
//!
//! No dependencies (and `no_std`) unless the host asks for its OpenAPI schema, so the
//! SDK's plugins (WebAssembly) build it for nothing.

#![cfg_attr(not(feature = "schema"), no_std)]

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal,)*) => {
        /// An API error code. Its string form is the `error_code` of an answer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "schema", schema(rename_all = "snake_case"))]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order they are defined.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as the API writes it (`input_not_valid`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The code a string names, if it names one.
            pub fn parse(code: &str) -> Option<ErrorCode> {
                match code {
                    $($code => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    // The request as a whole (400).
    /// The body is not a JSON object, or a field of it has the wrong type.
    RequestNotValid = "request_not_valid",
    /// The `input` (or `inputs`) block: a missing or unreachable URL, bad clips, an upload
    /// that cannot be used.
    InputNotValid = "input_not_valid",
    /// The `outputs` block: none, too many, or not an object.
    OutputsNotValid = "outputs_not_valid",
    /// An output parameter (`number`, `offset`, `path`, `hls`, ...) that is not valid.
    OutputParamNotValid = "output_param_not_valid",
    /// A format string no plugin plans, or one its plugin refuses.
    FormatNotValid = "format_not_valid",
    /// An `if` expression that does not parse.
    ConditionNotValid = "condition_not_valid",
    /// A storage block that is not valid (a field other than its credentials).
    StorageNotValid = "storage_not_valid",
    /// Missing or malformed storage credentials.
    StorageCredentialsNotValid = "storage_credentials_not_valid",
    /// An object path that would leave the storage root.
    StoragePathNotValid = "storage_path_not_valid",
    /// A notification block that is not valid.
    NotificationNotValid = "notification_not_valid",
    /// A notification type no plugin delivers.
    NotificationNotFound = "notification_not_found",
    /// The `settings` block (metrics, ultrafast, ...).
    SettingsNotValid = "settings_not_valid",
    /// The job's `subtitles` block.
    SubtitlesNotValid = "subtitles_not_valid",
    /// A plugin an operator tried to add that cannot be loaded.
    PluginNotValid = "plugin_not_valid",
    /// The webhook signing secret is set in the configuration file, not through the API.
    WebhookSecretConfigured = "webhook_secret_configured",

    // Who asks (401, 403).
    /// No API key, or one this server does not know.
    AuthenticationFailed = "authentication_failed",
    /// A browser page of another origin sent a request that changes something.
    OriginNotAllowed = "origin_not_allowed",

    // What is asked for (404).
    /// No such route.
    NotFound = "not_found",
    /// No job with that id for this key.
    JobNotFound = "job_not_found",
    /// No metadata (yet) for that input or output.
    MetadataNotFound = "metadata_not_found",
    /// No webhook event with that id for this key.
    EventNotFound = "event_not_found",
    /// No such file among this server's `local` outputs.
    FileNotFound = "file_not_found",
    /// No loaded plugin of that name.
    PluginNotFound = "plugin_not_found",
    /// No direct upload with that id for this key.
    UploadNotFound = "upload_not_found",

    // How it is asked (413, 415, 429).
    /// The body is larger than the server reads (`limits.max_body_bytes`).
    RequestTooLarge = "request_too_large",
    /// A request that changes something sent a body that is not JSON.
    UnsupportedMediaType = "unsupported_media_type",
    /// Too many dry runs of one key at once.
    TooManyDryRuns = "too_many_dry_runs",
    /// Too many redeliveries of one key in a while.
    TooManyRedeliveries = "too_many_redeliveries",
    /// Too many unfinished direct uploads of one key.
    TooManyUploads = "too_many_uploads",

    // Direct uploads (tus).
    /// The announced length is over the server's `max_upload_bytes`.
    UploadTooLarge = "upload_too_large",
    /// A chunk sent at an offset that is not the upload's.
    UploadOffsetMismatch = "upload_offset_mismatch",
    /// A chunk that would go past the announced length.
    UploadPastLength = "upload_past_length",
    /// A chunk whose checksum does not match its bytes.
    UploadChecksumMismatch = "upload_checksum_mismatch",
    /// Another request is writing to the upload.
    UploadBusy = "upload_busy",
    /// The key's uploads would go over its quota.
    UploadQuotaExceeded = "upload_quota_exceeded",
    /// An upload request the tus protocol does not allow.
    UploadNotValid = "upload_not_valid",
    /// A `Tus-Resumable` version this server does not speak.
    TusVersionNotSupported = "tus_version_not_supported",

    // Plugins that could not answer.
    /// The job was planned with a plugin version this node does not have.
    PluginVersionUnavailable = "plugin_version_unavailable",
    /// A plugin ran past its time budget or deadline.
    PluginTimeout = "plugin_timeout",
    /// A plugin tried to grow its memory past its cap.
    PluginMemoryExceeded = "plugin_memory_exceeded",
    /// A plugin trapped (a panic, an unreachable, a failed host call).
    PluginFailed = "plugin_failed",
    /// A delivery that failed (the host retries it).
    NotificationFailed = "notification_failed",

    // Ours (500).
    /// The server's fault; the details are in its log.
    InternalError = "internal_error",
}

impl ErrorCode {
    /// Whether a plugin may answer with this code: the ones that describe what a user
    /// sent to the plugin (its format string, storage block, condition, notification).
    pub const fn plugin_may_answer(self) -> bool {
        matches!(
            self,
            ErrorCode::InputNotValid
                | ErrorCode::OutputParamNotValid
                | ErrorCode::FormatNotValid
                | ErrorCode::ConditionNotValid
                | ErrorCode::StorageNotValid
                | ErrorCode::StorageCredentialsNotValid
                | ErrorCode::StoragePathNotValid
                | ErrorCode::NotificationNotValid
                | ErrorCode::NotificationFailed
        )
    }

    /// The code a plugin's error names, if it is one a plugin may answer.
    pub fn of_plugin(code: &str) -> Option<ErrorCode> {
        ErrorCode::parse(code).filter(|code| code.plugin_may_answer())
    }

    /// The code of a plugin's error as the host answers it: the plugin's own when it is
    /// one a plugin may answer, else `fallback` (the code of what was asked of it).
    pub fn from_plugin(code: &str, fallback: ErrorCode) -> ErrorCode {
        ErrorCode::of_plugin(code).unwrap_or(fallback)
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::string::String;

    use super::ErrorCode;

    /// The OpenAPI schema names each code by its variant in snake_case (`schema(rename_all)`),
    /// the server writes `as_str`: they must be the same words.
    #[test]
    fn each_variant_is_its_code_in_snake_case() {
        for code in ErrorCode::ALL {
            let mut snake = String::new();
            for (i, c) in format!("{code:?}").chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(snake, code.as_str());
        }
    }

    #[test]
    fn every_code_reads_back_and_is_unique() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!(code.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
            assert!(ErrorCode::ALL[..i].iter().all(|other| other.as_str() != code.as_str()), "{code} twice");
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }

    #[test]
    fn a_plugin_cannot_answer_as_the_host() {
        assert_eq!(ErrorCode::from_plugin("storage_path_not_valid", ErrorCode::StorageNotValid), ErrorCode::StoragePathNotValid);
        assert_eq!(ErrorCode::from_plugin("authentication_failed", ErrorCode::FormatNotValid), ErrorCode::FormatNotValid);
        assert_eq!(ErrorCode::from_plugin("made_up", ErrorCode::ConditionNotValid), ErrorCode::ConditionNotValid);
    }
}
