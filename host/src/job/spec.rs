//! The job a client submits (Coconut v2 `POST /v2/jobs`), parsed into typed parts.
//!
//! Parsing here is purely structural; what needs a plugin (format strings, `if`
//! expressions, storage credentials, notification settings) is checked by
//! [`super::validate`].

use copra_codes::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::JobError;

/// A submitted job. `storage` and `notification` stay as JSON: their shape belongs to
/// the plugin that handles their `service`/`type`. Its `Debug` hides credentials and
/// the query of every URL (presigned URLs carry their signature there).
#[derive(Clone, Serialize, Deserialize)]
pub struct JobSpec {
    /// The input; with `"inputs"`, the first of them.
    pub input: InputSpec,
    /// The inputs joined after `input`, in order (`"inputs"` past the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined: Vec<InputSpec>,
    pub storage: Value,
    pub outputs: Vec<OutputSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Value>,
    #[serde(default)]
    pub settings: Value,
    /// Sidecar subtitle files, carried into the job's packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<super::subtitles::SubtitleSpec>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct InputSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Fetch from a storage service instead of a URL (`service`, `bucket`, `credentials`, `path`/`key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// A direct upload of the submitting key (`/v2/uploads`), by its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    /// Ranges of the input joined, in order, into the timeline the outputs are made from
    /// (none: the whole input).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clips: Vec<crate::types::TimeRange>,
    /// The block as sent (less `clips`), for the storage plugin.
    pub raw: Value,
}

/// One output, after arrays have been flattened and keys defaulted.
#[derive(Clone, Serialize, Deserialize)]
pub struct OutputSpec {
    pub key: String,
    /// The format string, e.g. `mp4:720p::quality=4`.
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Every parameter as sent (images, trailers and streaming read more of them).
    pub params: Map<String, Value>,
}

impl JobSpec {
    /// The stand-in for a spec that cannot be opened (so its job can be failed): no
    /// input, no outputs, no notification.
    pub fn unreadable() -> Self {
        JobSpec {
            input: InputSpec { url: None, service: None, upload: None, clips: Vec::new(), raw: Value::Null },
            joined: Vec::new(),
            storage: Value::Null,
            outputs: Vec::new(),
            notification: None,
            settings: Value::Null,
            subtitles: Vec::new(),
        }
    }
}

impl std::fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::secret::redact_json;
        f.debug_struct("JobSpec")
            .field("input", &self.input)
            .field("joined", &self.joined)
            .field("storage", &redact_json(&self.storage))
            .field("outputs", &self.outputs)
            .field("notification", &self.notification.as_ref().map(redact_json))
            .field("settings", &self.settings)
            .finish()
    }
}

impl std::fmt::Debug for InputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSpec")
            .field("url", &self.url.as_deref().map(crate::secret::redact_url))
            .field("service", &self.service)
            .field("upload", &self.upload)
            .field("raw", &crate::secret::redact_json(&self.raw))
            .finish()
    }
}

impl std::fmt::Debug for OutputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSpec")
            .field("key", &self.key)
            .field("format", &self.format)
            .field("path", &self.path)
            .field("url", &self.url.as_deref().map(crate::secret::redact_url))
            .field("condition", &self.condition)
            .field("params", &crate::secret::redact_json(&Value::Object(self.params.clone())))
            .finish()
    }
}

/// Output parameters the host itself reads. Every other parameter (`number`, `offset`,
/// `hls`, ...) belongs to the format plugin, which rejects what it does not know
/// (`output_param_not_valid`), so a typo never silently produces something else.
const HOST_PARAMS: &[&str] = &["key", "path", "url", "if", "metrics", "metrics_per_frame"];

impl JobSpec {
    /// Parse a request body. Errors name the field at fault.
    pub fn parse(body: &Value) -> Result<Self, JobError> {
        let obj = body.as_object().ok_or_else(|| JobError::invalid(ErrorCode::RequestNotValid, "The request body must be a JSON object."))?;
        for field in obj.keys() {
            if !["input", "inputs", "storage", "outputs", "notification", "settings", "subtitles"].contains(&field.as_str()) {
                return Err(JobError::invalid(ErrorCode::RequestNotValid, format!("Unknown job parameter '{field}'.")));
            }
        }

        let (input, joined) = match (obj.get("input"), obj.get("inputs")) {
            (Some(_), Some(_)) => {
                return Err(JobError::invalid(ErrorCode::InputNotValid, "A job has either an 'input' or a list of 'inputs', not both."));
            }
            (None, Some(inputs)) => {
                let mut inputs = parse_inputs(inputs)?;
                let first = inputs.remove(0);
                (first, inputs)
            }
            (input, None) => (parse_input(input)?, Vec::new()),
        };
        let storage = match obj.get("storage") {
            Some(Value::Object(s)) if s.get("service").and_then(Value::as_str).is_some() => Value::Object(s.clone()),
            Some(Value::Object(_)) => return Err(JobError::invalid(ErrorCode::StorageNotValid, "The storage must define a 'service'.")),
            _ => return Err(JobError::invalid(ErrorCode::StorageNotValid, "The storage is missing; it must be an object with a 'service'.")),
        };
        let outputs = parse_outputs(obj.get("outputs"))?;
        let notification = match obj.get("notification") {
            None | Some(Value::Null) => None,
            Some(Value::Object(n)) => {
                check_progress_interval(n.get("progress_interval"))?;
                Some(Value::Object(n.clone()))
            }
            Some(_) => return Err(JobError::invalid(ErrorCode::NotificationNotValid, "The notification must be an object.")),
        };
        let settings = match obj.get("settings") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(Value::Object(s)) => Value::Object(s.clone()),
            Some(_) => return Err(JobError::invalid(ErrorCode::SettingsNotValid, "The settings must be an object.")),
        };
        let subtitles = super::subtitles::parse(obj.get("subtitles"))?;
        let spec = JobSpec { input, joined, storage, outputs, notification, settings, subtitles };
        super::metrics::check(&spec)?;
        Ok(spec)
    }

    /// Every input, the first and those joined after it.
    pub fn inputs(&self) -> impl Iterator<Item = &InputSpec> {
        std::iter::once(&self.input).chain(&self.joined)
    }

    /// The storage service name (validated present by `parse`).
    pub fn storage_service(&self) -> &str {
        self.storage.get("service").and_then(Value::as_str).unwrap_or_default()
    }

    /// How often a running job records `job.progress` for its webhooks, if it asked
    /// (`notification.progress_interval`, whole seconds, checked by `parse`).
    pub fn progress_interval(&self) -> Option<std::time::Duration> {
        let seconds = self.notification.as_ref()?.get("progress_interval")?.as_u64()?;
        Some(std::time::Duration::from_secs(seconds))
    }

    /// The notification type, `http` when not given.
    pub fn notification_type(&self) -> Option<&str> {
        self.notification.as_ref().map(|n| n.get("type").and_then(Value::as_str).unwrap_or("http"))
    }
}

/// `progress_interval`, when given, is a whole number of seconds, at least 1 (a day at most).
fn check_progress_interval(value: Option<&Value>) -> Result<(), JobError> {
    match value {
        None => Ok(()),
        Some(v) if v.as_u64().is_some_and(|n| (1..=86_400).contains(&n)) => Ok(()),
        Some(v) => Err(JobError::invalid(ErrorCode::RequestNotValid,
            format!("The notification's progress_interval must be a whole number of seconds from 1 to 86400, not {v}."),
        )),
    }
}

/// The job's `inputs` (in place of `input`: several inputs joined in order, see
/// [`super::inputs`]), checked: 1 to [`crate::media::MAX_JOINED`] input blocks, each as
/// `input` takes it. Only the first may be a direct upload (held for the job at submit).
fn parse_inputs(value: &Value) -> Result<Vec<InputSpec>, JobError> {
    let items = match value {
        Value::Array(items) if (1..=crate::media::MAX_JOINED).contains(&items.len()) => items,
        _ => return Err(JobError::invalid(ErrorCode::InputNotValid, format!("The 'inputs' must be a list of 1 to {} input objects.", crate::media::MAX_JOINED))),
    };
    let mut inputs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let input = parse_input(Some(item)).map_err(|e| JobError::invalid(e.code(), format!("In 'inputs' item {i}: {e}")))?;
        if i > 0 && input.upload.is_some() {
            return Err(JobError::invalid(ErrorCode::InputNotValid,
                format!("In 'inputs' item {i}: only the first input can be a direct upload; give the others by 'url' or storage 'service'."),
            ));
        }
        inputs.push(input);
    }
    Ok(inputs)
}

fn parse_input(input: Option<&Value>) -> Result<InputSpec, JobError> {
    let Some(Value::Object(obj)) = input else {
        return Err(JobError::invalid(ErrorCode::InputNotValid, "The input is missing; it must be an object with a 'url'."));
    };
    let clips = super::clips::parse(obj.get("clips"))?;
    let mut obj = obj.clone();
    obj.remove("clips");
    let url = obj.get("url").and_then(Value::as_str).map(str::to_string);
    let service = obj.get("service").and_then(Value::as_str).map(str::to_string);
    if let Some(upload) = obj.get("upload") {
        let Some(id) = upload.as_str().filter(|id| !id.is_empty()) else {
            return Err(JobError::invalid(ErrorCode::InputNotValid, "The input's 'upload' must be the id of an upload (/v2/uploads)."));
        };
        if url.is_some() || service.is_some() {
            return Err(JobError::invalid(ErrorCode::InputNotValid, "The input must have one of 'url', 'service' or 'upload'."));
        }
        return Ok(InputSpec { url: None, service: None, upload: Some(id.to_string()), clips, raw: Value::Object(obj) });
    }
    match (&url, &service) {
        (Some(url), None) => {
            let parsed = url::Url::parse(url).map_err(|_| JobError::invalid(ErrorCode::InputNotValid, format!("The input URL '{url}' is not a valid URL.")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(JobError::invalid(ErrorCode::InputNotValid, format!("The input URL '{url}' must use http or https.")));
            }
        }
        (None, Some(_)) => {}
        (Some(_), Some(_)) => {
            return Err(JobError::invalid(ErrorCode::InputNotValid, "The input must have either a 'url' or a 'service', not both."));
        }
        (None, None) => return Err(JobError::invalid(ErrorCode::InputNotValid, "The input must have a 'url'.")),
    }
    Ok(InputSpec { url, service, upload: None, clips, raw: Value::Object(obj) })
}

fn parse_outputs(outputs: Option<&Value>) -> Result<Vec<OutputSpec>, JobError> {
    let Some(Value::Object(map)) = outputs else {
        return Err(JobError::invalid(ErrorCode::OutputsNotValid, "The outputs are missing; they must be an object keyed by format."));
    };
    if map.is_empty() {
        return Err(JobError::invalid(ErrorCode::OutputsNotValid, "At least one output is required."));
    }
    let mut specs = Vec::new();
    for (format, value) in map {
        let definitions: Vec<&Value> = match value {
            Value::Array(items) if !items.is_empty() => items.iter().collect(),
            Value::Object(_) => vec![value],
            _ => {
                return Err(JobError::invalid(ErrorCode::OutputsNotValid,
                    format!("The output '{format}' must be an object or a non-empty array of objects."),
                ));
            }
        };
        for (index, definition) in definitions.into_iter().enumerate() {
            let Value::Object(params) = definition else {
                return Err(JobError::invalid(ErrorCode::OutputsNotValid, format!("The output '{format}' #{index} must be an object.")));
            };
            specs.push(parse_output(format, index, params)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for spec in &specs {
        if !seen.insert(spec.key.as_str()) {
            return Err(JobError::invalid(ErrorCode::OutputsNotValid, format!("Two outputs share the key '{}'.", spec.key)));
        }
    }
    Ok(specs)
}

fn parse_output(format: &str, index: usize, params: &Map<String, Value>) -> Result<OutputSpec, JobError> {
    let string = |name: &str| -> Result<Option<String>, JobError> {
        match params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(JobError::invalid(ErrorCode::OutputParamNotValid, format!("The output parameter '{name}' of '{format}' must be a string."))),
        }
    };
    let key = string("key")?.unwrap_or_else(|| format!("{format}:{index}"));
    let key = if index == 0 && !params.contains_key("key") { format.to_string() } else { key };
    Ok(OutputSpec {
        key,
        format: format.to_string(),
        path: string("path")?,
        url: string("url")?,
        condition: string("if")?,
        params: params.clone(),
    })
}

impl InputSpec {
    /// For an input fetched from a storage service: the object it names (its `key`, or
    /// its `path` alone) and the block to resolve that name against, without `path`, so
    /// the name is not prefixed twice.
    pub fn object(&self) -> Option<(&str, String)> {
        let object = ["key", "path"].iter().find_map(|k| self.raw.get(*k).and_then(Value::as_str))?;
        let mut unprefixed = self.raw.clone();
        if let Some(block) = unprefixed.as_object_mut() {
            block.remove("path");
        }
        Some((object, unprefixed.to_string()))
    }
}

impl OutputSpec {
    /// The parameters for the format plugin: all but the host's own, as a JSON object.
    pub fn plugin_params(&self) -> String {
        let params: Map<String, Value> =
            self.params.iter().filter(|(k, _)| !HOST_PARAMS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        Value::Object(params).to_string()
    }

    /// The storage path of a packaging block (`hls` or `dash`) of an `httpstream` output.
    pub fn package_path(&self, block: &str) -> Option<&str> {
        self.params.get(block).and_then(|b| b.get("path")).and_then(Value::as_str)
    }

    /// A string parameter the host reads for the plugin's output (e.g. `vtt`).
    pub fn string_param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }
}

/// The widest number `numbered_path` writes, whatever a path asks for: a defence for
/// paths that did not pass [`check_numbered_path`] (which refuses wider ones at submit).
const MAX_NUMBER_WIDTH: usize = 64;

/// The `%d`-style placeholder of a path: where it starts, where it ends (after the `d`),
/// and the width it asks for (`%.2d`, `%02d` → 2; `%d` → 0; `None` when the number
/// written is too long to read, which is always too wide).
fn placeholder(path: &str) -> Option<(usize, usize, Option<u64>)> {
    let start = path.find('%')?;
    let rest = &path[start + 1..];
    let d = rest.find('d')?;
    let spec = &rest[..d];
    if !spec.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let digits = spec.trim_start_matches('.').trim_start_matches('0');
    let width = if digits.is_empty() { Some(0) } else { digits.parse::<u64>().ok() };
    Some((start, start + 1 + d + 1, width))
}

/// Expand the numbered forms of an output path for image `n` (1-based):
/// `thumb_%.2d.jpg` → `thumb_01.jpg`, `thumb_%d.jpg` → `thumb_1.jpg`, `#num#` → `1`.
/// The width is capped at [`MAX_NUMBER_WIDTH`], so a path never becomes huge.
pub fn numbered_path(path: &str, n: u32) -> String {
    let path = path.replace("#num#", &n.to_string());
    let Some((start, end, width)) = placeholder(&path) else { return path };
    let width = width.map_or(MAX_NUMBER_WIDTH, |w| usize::try_from(w).unwrap_or(MAX_NUMBER_WIDTH).min(MAX_NUMBER_WIDTH));
    format!("{}{:0width$}{}", &path[..start], n, &path[end..], width = width)
}

/// Refuse, at submit, a path whose number placeholder asks for more than `max_digits`
/// digits (`/t_%.99999d.jpg`): the `[limits] max_path_digits` of the config.
pub fn check_numbered_path(path: &str, max_digits: usize) -> Result<(), JobError> {
    let Some((_, _, width)) = placeholder(path) else { return Ok(()) };
    if width.is_some_and(|w| w <= max_digits as u64) {
        return Ok(());
    }
    let shown: String = path.chars().take(80).collect();
    let asked = width.map_or_else(|| "a number too long to read".to_string(), |w| w.to_string());
    Err(JobError::invalid(ErrorCode::OutputParamNotValid,
        format!(
            "The path '{shown}' asks for numbers {asked} digits wide; at most {max_digits} digits are allowed \
             (the server's [limits] max_path_digits)."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(outputs: Value) -> Value {
        json!({"input": {"url": "http://example.com/a.mp4"}, "storage": {"service": "s3"}, "outputs": outputs})
    }

    #[test]
    fn keys_default_to_format_then_format_index() {
        let spec = JobSpec::parse(&job(json!({
            "mp4:720p": {"path": "/a.mp4"},
            "mp4:::quality=4": [{"key": "mp4:trailer", "path": "t.mp4", "duration": 60}, {"path": "v.mp4"}]
        })))
        .unwrap();
        let keys: Vec<_> = spec.outputs.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["mp4:720p", "mp4:trailer", "mp4:::quality=4:1"]);
    }

    #[test]
    fn plugin_params_leave_out_the_hosts_own() {
        let spec = JobSpec::parse(&job(json!({"jpg:320x": {"key": "t", "path": "/t_%d.jpg", "if": "1 = 1", "number": 3}}))).unwrap();
        let params: Value = serde_json::from_str(&spec.outputs[0].plugin_params()).unwrap();
        assert_eq!(params, json!({"number": 3}));
    }

    #[test]
    fn input_must_be_http() {
        let body = json!({"input": {"url": "ftp://x/y"}, "storage": {"service": "s3"}, "outputs": {"mp4": {}}});
        assert_eq!(JobSpec::parse(&body).unwrap_err().code(), ErrorCode::InputNotValid);
        let body = json!({"storage": {"service": "s3"}, "outputs": {"mp4": {}}});
        assert_eq!(JobSpec::parse(&body).unwrap_err().code(), ErrorCode::InputNotValid);
    }

    #[test]
    fn storage_and_outputs_are_required() {
        let body = json!({"input": {"url": "http://x/y"}, "outputs": {"mp4": {}}});
        assert_eq!(JobSpec::parse(&body).unwrap_err().code(), ErrorCode::StorageNotValid);
        let body = json!({"input": {"url": "http://x/y"}, "storage": {"service": "s3"}, "outputs": {}});
        assert_eq!(JobSpec::parse(&body).unwrap_err().code(), ErrorCode::OutputsNotValid);
    }

    #[test]
    fn debug_output_hides_credentials_and_signatures() {
        let body = json!({
            "input": {"url": "https://in.example/a.mp4?X-Amz-Signature=insig"},
            "storage": {"service": "s3", "bucket": "b", "credentials": {"access_key_id": "AKID", "secret_access_key": "SECRETKEY"}},
            "outputs": {"mp4": {"url": "https://out.example/v.mp4?X-Amz-Signature=outsig"}},
            "notification": {"type": "http", "url": "https://hook.example/h?token=hooksecret"}
        });
        let shown = format!("{:?}", JobSpec::parse(&body).unwrap());
        for secret in ["SECRETKEY", "AKID", "insig", "outsig", "hooksecret"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("in.example") && shown.contains("\"b\""), "{shown}");
    }

    #[test]
    fn progress_interval_is_whole_seconds() {
        let with = |interval: Value| {
            let mut body = job(json!({"mp4": {"path": "a.mp4"}}));
            body["notification"] = json!({"url": "https://hook.example/h", "progress_interval": interval});
            JobSpec::parse(&body)
        };
        assert_eq!(with(json!(5)).unwrap().progress_interval(), Some(std::time::Duration::from_secs(5)));
        for bad in [json!(0), json!(-1), json!(1.5), json!("5"), json!(null), json!(86_401)] {
            assert_eq!(with(bad.clone()).unwrap_err().code(), ErrorCode::RequestNotValid, "{bad}");
        }
        assert_eq!(JobSpec::parse(&job(json!({"mp4": {"path": "a.mp4"}}))).unwrap().progress_interval(), None);
    }

    #[test]
    fn numbered_paths() {
        assert_eq!(numbered_path("thumb_%.2d.jpg", 3), "thumb_03.jpg");
        assert_eq!(numbered_path("thumb_%d.jpg", 12), "thumb_12.jpg");
        assert_eq!(numbered_path("/thumbs/thumb_#num#.jpg", 5), "/thumbs/thumb_5.jpg");
        assert_eq!(numbered_path("plain.jpg", 1), "plain.jpg");
        assert_eq!(numbered_path("thumb_%02d.jpg", 7), "thumb_07.jpg");
        assert_eq!(numbered_path("a%/dir/thumb.jpg", 7), "a%/dir/thumb.jpg");
        assert_eq!(numbered_path("100%_d.jpg", 7), "100%_d.jpg");
    }

    #[test]
    fn numbered_paths_never_grow_huge() {
        // These once panicked (a width beyond what `format!` takes) or built huge strings.
        for path in ["/t_%.99999d.jpg", "/t_%099999d.jpg", "/t_%.99999999999999999999999999d.jpg", "/t_%.4294967296d.jpg"] {
            let out = numbered_path(path, 3);
            assert!(out.len() <= MAX_NUMBER_WIDTH + 10, "{path}: {} bytes", out.len());
            assert!(out.starts_with("/t_0") && out.ends_with("3.jpg"), "{path}: {out}");
        }
    }

    #[test]
    fn placeholder_widths_are_checked_at_submit() {
        for path in ["/t_%d.jpg", "/t_%.2d.jpg", "/t_%010d.jpg", "/t_%.0000000010d.jpg", "/t_#num#.jpg", "plain.jpg", "/50%/x.jpg"] {
            check_numbered_path(path, 10).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        for (path, asked) in [("/t_%.99999d.jpg", "99999"), ("/t_%099999d.jpg", "99999"), ("/t_%11d.jpg", "11"), ("/t_%.99999999999999999999999d.jpg", "too long")] {
            let err = check_numbered_path(path, 10).unwrap_err();
            assert_eq!(err.code(), ErrorCode::OutputParamNotValid);
            let message = err.to_string();
            assert!(message.contains(asked) && message.contains("max_path_digits") && message.contains("at most 10"), "{message}");
        }
    }

    #[test]
    fn inputs_are_a_short_list_of_input_blocks() {
        assert_eq!(parse_inputs(&json!([{"url": "http://a/1.mp4"}, {"url": "http://a/2.mp4", "clips": [{"offset": 1, "duration": 2}]}])).unwrap().len(), 2);
        let err = parse_inputs(&json!([])).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InputNotValid);
        let err = parse_inputs(&json!([{"url": "http://a/1.mp4"}, {"url": "ftp://a/2.mp4"}])).unwrap_err();
        assert!(err.to_string().starts_with("In 'inputs' item 1: "), "{err}");
        let err = parse_inputs(&json!([{"url": "http://a/1.mp4"}, {"upload": "abc"}])).unwrap_err();
        assert!(err.to_string().contains("only the first input"), "{err}");
        let many: Vec<Value> = (0..=crate::media::MAX_JOINED).map(|i| json!({"url": format!("http://a/{i}.mp4")})).collect();
        assert!(parse_inputs(&Value::Array(many)).is_err());
    }
}
