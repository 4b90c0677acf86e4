//! One small trait per plugin kind, and a macro that exports a type implementing it.
//! The macros implement the generated WIT `Guest` traits by delegating to yours, parse
//! the JSON arguments, and turn [`crate::Error`] into the WIT `plugin-error`.

/// Storage providers.
#[cfg(feature = "storage")]
pub mod storage {
    pub use crate::storage::exports::copra::plugin::storage::{GuestUpload, OpendalTarget, Target};
    use crate::{Error, Json};

    /// A storage plugin: validates storage blocks and says where files go.
    pub trait Storage {
        /// The plugin's name, as the host lists it.
        const NAME: &'static str;
        /// The plugin's version.
        const VERSION: &'static str;

        /// Service names this plugin answers for (the job's `storage.service`).
        fn services() -> Vec<String>;

        /// Validate a storage block and say where files go. Called at submit time.
        fn resolve(spec: &Json) -> Result<Target, Error>;

        /// The object key of an output path: by default the block's `path` prefix joined
        /// with it, refusing escapes.
        fn object_key(spec: &Json, path: &str) -> Result<String, Error> {
            crate::paths::join(crate::json::str(spec, "path").unwrap_or(""), path)
        }
    }

    /// One file uploaded by the plugin itself, for services whose `resolve` returns
    /// `Target::Custom`: opened, written in consecutive chunks, finished once.
    pub trait Upload: Sized + 'static {
        /// Start the upload of `key` (`size` bytes of `content_type`).
        fn open(spec: &Json, key: &str, content_type: &str, size: u64) -> Result<Self, Error>;
        /// The next chunk of the file.
        fn write(&mut self, chunk: &[u8]) -> Result<(), Error>;
        /// Returns the URL the file is reachable at.
        fn finish(&mut self) -> Result<String, Error>;
    }

    /// For plugins whose targets are all streamed by the host (opendal or local).
    pub struct NoUpload;

    impl Upload for NoUpload {
        fn open(_: &Json, _: &str, _: &str, _: u64) -> Result<Self, Error> {
            Err(Error::storage("this storage service does not upload by itself"))
        }
        fn write(&mut self, _: &[u8]) -> Result<(), Error> {
            Ok(())
        }
        fn finish(&mut self) -> Result<String, Error> {
            Err(Error::storage("this storage service does not upload by itself"))
        }
    }

    /// Adapts an [`Upload`] to the WIT resource (whose methods take `&self`).
    pub struct UploadResource<U: Upload>(pub std::cell::RefCell<U>);

    impl<U: Upload> GuestUpload for UploadResource<U> {
        fn write(&self, chunk: Vec<u8>) -> Result<(), crate::storage::PluginError> {
            Ok(self.0.borrow_mut().write(&chunk)?)
        }
        fn finish(&self) -> Result<String, crate::storage::PluginError> {
            Ok(self.0.borrow_mut().finish()?)
        }
    }

    /// Export a type implementing [`Storage`] as the component's storage plugin; with a
    /// second type implementing [`Upload`], it also uploads for `Target::Custom`.
    #[macro_export]
    macro_rules! storage_plugin {
        ($ty:ty) => {
            $crate::storage_plugin!($ty, $crate::storage::NoUpload);
        };
        ($ty:ty, $upload:ty) => {
            const _: () = {
                #[allow(dead_code)]
                struct CopraExport;
                impl $crate::storage::exports::copra::plugin::plugin::Guest for CopraExport {
                    fn describe() -> $crate::storage::PluginInfo {
                        $crate::storage::PluginInfo {
                            name: <$ty as $crate::storage::Storage>::NAME.into(),
                            version: <$ty as $crate::storage::Storage>::VERSION.into(),
                            kind: $crate::storage::PluginKind::Storage,
                            provides: <$ty as $crate::storage::Storage>::services(),
                        }
                    }
                }
                impl $crate::storage::exports::copra::plugin::storage::Guest for CopraExport {
                    type Upload = $crate::storage::UploadResource<$upload>;
                    fn services() -> Vec<String> {
                        <$ty as $crate::storage::Storage>::services()
                    }
                    fn resolve(spec_json: String) -> Result<$crate::storage::Target, $crate::storage::PluginError> {
                        let spec = $crate::json::parse(&spec_json, $crate::codes::STORAGE_NOT_VALID)?;
                        Ok(<$ty as $crate::storage::Storage>::resolve(&spec)?)
                    }
                    fn object_key(spec_json: String, output_path: String) -> Result<String, $crate::storage::PluginError> {
                        let spec = $crate::json::parse(&spec_json, $crate::codes::STORAGE_NOT_VALID)?;
                        Ok(<$ty as $crate::storage::Storage>::object_key(&spec, &output_path)?)
                    }
                    fn open_upload(
                        spec_json: String,
                        key: String,
                        content_type: String,
                        size: u64,
                    ) -> Result<$crate::storage::exports::copra::plugin::storage::Upload, $crate::storage::PluginError> {
                        let spec = $crate::json::parse(&spec_json, $crate::codes::STORAGE_NOT_VALID)?;
                        let upload = <$upload as $crate::storage::Upload>::open(&spec, &key, &content_type, size)?;
                        Ok($crate::storage::exports::copra::plugin::storage::Upload::new($crate::storage::UploadResource(
                            ::std::cell::RefCell::new(upload),
                        )))
                    }
                }
                #[cfg(target_arch = "wasm32")]
                $crate::storage::export_storage!(CopraExport with_types_in $crate::storage);
            };
        };
    }
}

/// Output formats.
#[cfg(feature = "format")]
pub mod format {
    pub use crate::format::exports::copra::plugin::format::{
        AudioPlan, AudioSelection, Fit, HlsPlan, ImagePlan, LadderProbe, LoudnessPlan, LadderStep, OutputPlan, OutputType, OverlayAnchor, OverlayPlan, QualityProbe, QualityStep,
        SpritePlan, StreamPlan, TimeRange, VariantPlan, VideoPlan,
    };
    use crate::format::MediaInfo;
    use crate::{Error, Json};

    /// A format plugin: checks format strings and plans outputs.
    pub trait Format {
        /// The plugin's name, as the host lists it.
        const NAME: &'static str;
        /// The plugin's version.
        const VERSION: &'static str;

        /// Containers this plugin plans (the part of a format string before `:`).
        fn formats() -> Vec<String>;

        /// Validate a format string and the output's parameters (a JSON object without
        /// the host's own `key`, `path`, `url` and `if`) before the input is known.
        fn check(format: &str, params: &Json) -> Result<OutputType, Error>;

        /// Plan one output for a probed input.
        fn plan(format: &str, params: &Json, input: &MediaInfo) -> Result<OutputPlan, Error>;

        /// For an output whose plan has `target_vmaf`: the next step of the search for
        /// its setting, given what the host measured so far (oldest first; none on the
        /// first call). Ask for at most 4 settings a round and settle within 4 rounds:
        /// the host refuses more. Plugins that never set `target_vmaf` keep this default.
        fn search_quality(format: &str, params: &Json, input: &MediaInfo, probes: &[QualityProbe]) -> Result<QualityStep, Error> {
            let _ = (params, input, probes);
            Err(Error::format(format!("The format '{format}' does not search for a target quality.")))
        }

        /// For a package whose plan has `target_vmaf`: the next step of planning its
        /// ladder from the content, given what the host measured so far (oldest first;
        /// none on the first call). Ask for at most 12 probes a round and settle within
        /// 3 rounds: the host refuses more. Plugins that never plan ladders keep this
        /// default.
        fn plan_ladder(format: &str, params: &Json, input: &MediaInfo, probes: &[LadderProbe]) -> Result<LadderStep, Error> {
            let _ = (params, input, probes);
            Err(Error::format(format!("The format '{format}' does not plan ladders from the content.")))
        }
    }

    /// Export a type implementing [`Format`] as the component's format plugin.
    #[macro_export]
    macro_rules! format_plugin {
        ($ty:ty) => {
            const _: () = {
                #[allow(dead_code)]
                struct CopraExport;
                impl $crate::format::exports::copra::plugin::plugin::Guest for CopraExport {
                    fn describe() -> $crate::format::PluginInfo {
                        $crate::format::PluginInfo {
                            name: <$ty as $crate::format::Format>::NAME.into(),
                            version: <$ty as $crate::format::Format>::VERSION.into(),
                            kind: $crate::format::PluginKind::Format,
                            provides: <$ty as $crate::format::Format>::formats(),
                        }
                    }
                }
                impl $crate::format::exports::copra::plugin::format::Guest for CopraExport {
                    fn formats() -> Vec<String> {
                        <$ty as $crate::format::Format>::formats()
                    }
                    fn check(format: String, params_json: String) -> Result<$crate::format::OutputType, $crate::format::PluginError> {
                        let params = $crate::json::parse(&params_json, $crate::codes::OUTPUT_PARAM_NOT_VALID)?;
                        Ok(<$ty as $crate::format::Format>::check(&format, &params)?)
                    }
                    fn plan(
                        format: String,
                        params_json: String,
                        input: $crate::format::MediaInfo,
                    ) -> Result<$crate::format::OutputPlan, $crate::format::PluginError> {
                        let params = $crate::json::parse(&params_json, $crate::codes::OUTPUT_PARAM_NOT_VALID)?;
                        Ok(<$ty as $crate::format::Format>::plan(&format, &params, &input)?)
                    }
                    fn search_quality(
                        format: String,
                        params_json: String,
                        input: $crate::format::MediaInfo,
                        probes: Vec<$crate::format::QualityProbe>,
                    ) -> Result<$crate::format::QualityStep, $crate::format::PluginError> {
                        let params = $crate::json::parse(&params_json, $crate::codes::OUTPUT_PARAM_NOT_VALID)?;
                        Ok(<$ty as $crate::format::Format>::search_quality(&format, &params, &input, &probes)?)
                    }
                    fn plan_ladder(
                        format: String,
                        params_json: String,
                        input: $crate::format::MediaInfo,
                        probes: Vec<$crate::format::LadderProbe>,
                    ) -> Result<$crate::format::LadderStep, $crate::format::PluginError> {
                        let params = $crate::json::parse(&params_json, $crate::codes::OUTPUT_PARAM_NOT_VALID)?;
                        Ok(<$ty as $crate::format::Format>::plan_ladder(&format, &params, &input, &probes)?)
                    }
                }
                #[cfg(target_arch = "wasm32")]
                $crate::format::export_format!(CopraExport with_types_in $crate::format);
            };
        };
    }
}

/// Conditions (the `if` of outputs).
#[cfg(feature = "condition")]
pub mod condition {
    use crate::Error;
    use crate::condition::MediaInfo;

    /// A condition plugin: the `if` language of outputs.
    pub trait Condition {
        /// The plugin's name, as the host lists it.
        const NAME: &'static str;
        /// The plugin's version.
        const VERSION: &'static str;

        /// Parse only; called at submit time so a syntax error is a 400.
        fn check(expression: &str) -> Result<(), Error>;

        /// Whether the output is wanted for this input.
        fn evaluate(expression: &str, input: &MediaInfo) -> Result<bool, Error>;
    }

    /// Export a type implementing [`Condition`] as the component's condition plugin.
    #[macro_export]
    macro_rules! condition_plugin {
        ($ty:ty) => {
            const _: () = {
                #[allow(dead_code)]
                struct CopraExport;
                impl $crate::condition::exports::copra::plugin::plugin::Guest for CopraExport {
                    fn describe() -> $crate::condition::PluginInfo {
                        $crate::condition::PluginInfo {
                            name: <$ty as $crate::condition::Condition>::NAME.into(),
                            version: <$ty as $crate::condition::Condition>::VERSION.into(),
                            kind: $crate::condition::PluginKind::Condition,
                            provides: Vec::new(),
                        }
                    }
                }
                impl $crate::condition::exports::copra::plugin::condition::Guest for CopraExport {
                    fn check(expression: String) -> Result<(), $crate::condition::PluginError> {
                        Ok(<$ty as $crate::condition::Condition>::check(&expression)?)
                    }
                    fn evaluate(expression: String, input: $crate::condition::MediaInfo) -> Result<bool, $crate::condition::PluginError> {
                        Ok(<$ty as $crate::condition::Condition>::evaluate(&expression, &input)?)
                    }
                }
                #[cfg(target_arch = "wasm32")]
                $crate::condition::export_condition!(CopraExport with_types_in $crate::condition);
            };
        };
    }
}

/// Notifiers.
#[cfg(feature = "notifier")]
pub mod notifier {
    use crate::{Error, Json};

    /// A notifier plugin: the wire format of notifications.
    pub trait Notifier {
        /// The plugin's name, as the host lists it.
        const NAME: &'static str;
        /// The plugin's version.
        const VERSION: &'static str;

        /// Notification types this plugin answers for (the job's `notification.type`).
        fn types() -> Vec<String>;

        /// Validate a notification block at submit time.
        fn check(config: &Json) -> Result<(), Error>;

        /// The `host:port` pairs this configuration sends to. `notify` may reach those
        /// of them that the operator's `allowed_hosts` grant also allows; a host not
        /// granted fails the job's submission.
        fn hosts(config: &Json) -> Result<Vec<String>, Error>;

        /// Deliver one event: `{"event", "job_id", "job", "data", "metadata"}`.
        fn notify(config: &Json, event: &Json) -> Result<(), Error>;
    }

    /// `host:port` of a URL, in the form grants use.
    pub fn host_port(url: &str) -> Result<String, Error> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::notification(format!("'{url}' is not a URL")))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map(|(_, host)| host).unwrap_or(authority);
        if authority.is_empty() {
            return Err(Error::notification(format!("'{url}' has no host")));
        }
        let has_port = authority.rsplit_once(':').is_some_and(|(_, port)| port.chars().all(|c| c.is_ascii_digit()) && !authority.ends_with(']'));
        if has_port {
            return Ok(authority.to_ascii_lowercase());
        }
        let port = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
        Ok(format!("{}:{port}", authority.to_ascii_lowercase()))
    }

    /// Export a type implementing [`Notifier`] as the component's notifier plugin.
    #[macro_export]
    macro_rules! notifier_plugin {
        ($ty:ty) => {
            const _: () = {
                #[allow(dead_code)]
                struct CopraExport;
                impl $crate::notifier::exports::copra::plugin::plugin::Guest for CopraExport {
                    fn describe() -> $crate::notifier::PluginInfo {
                        $crate::notifier::PluginInfo {
                            name: <$ty as $crate::notifier::Notifier>::NAME.into(),
                            version: <$ty as $crate::notifier::Notifier>::VERSION.into(),
                            kind: $crate::notifier::PluginKind::Notifier,
                            provides: <$ty as $crate::notifier::Notifier>::types(),
                        }
                    }
                }
                impl $crate::notifier::exports::copra::plugin::notifier::Guest for CopraExport {
                    fn notification_types() -> Vec<String> {
                        <$ty as $crate::notifier::Notifier>::types()
                    }
                    fn check(config_json: String) -> Result<(), $crate::notifier::PluginError> {
                        let config = $crate::json::parse(&config_json, $crate::codes::NOTIFICATION_NOT_VALID)?;
                        Ok(<$ty as $crate::notifier::Notifier>::check(&config)?)
                    }
                    fn hosts(config_json: String) -> Result<Vec<String>, $crate::notifier::PluginError> {
                        let config = $crate::json::parse(&config_json, $crate::codes::NOTIFICATION_NOT_VALID)?;
                        Ok(<$ty as $crate::notifier::Notifier>::hosts(&config)?)
                    }
                    fn notify(config_json: String, event_json: String) -> Result<(), $crate::notifier::PluginError> {
                        let config = $crate::json::parse(&config_json, $crate::codes::NOTIFICATION_NOT_VALID)?;
                        let event = $crate::json::parse(&event_json, $crate::codes::NOTIFICATION_FAILED)?;
                        Ok(<$ty as $crate::notifier::Notifier>::notify(&config, &event)?)
                    }
                }
                #[cfg(target_arch = "wasm32")]
                $crate::notifier::export_notifier!(CopraExport with_types_in $crate::notifier);
            };
        };
    }

    #[cfg(test)]
    mod tests {
        use super::host_port;

        #[test]
        fn host_port_defaults_by_scheme() {
            assert_eq!(host_port("https://hooks.slack.com/services/x").unwrap(), "hooks.slack.com:443");
            assert_eq!(host_port("http://127.0.0.1:8080/a?b").unwrap(), "127.0.0.1:8080");
            assert_eq!(host_port("http://user:pw@Example.com/").unwrap(), "example.com:80");
            assert!(host_port("nonsense").is_err());
        }
    }
}
