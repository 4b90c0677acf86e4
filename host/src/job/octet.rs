//! Octet's v0 job API (`POST /v0/jobs/create`) translated onto Copra's own jobs.
//!
//! An Octet request becomes an ordinary [`JobSpec`]: the destination becomes an `s3`
//! storage block, each output becomes a format string for the `format-video` plugin
//! (`mp4:h264_1280x_2000k:none:preset=fast,profile=high,rc=vbr`), the callback becomes an
//! `http` notification whose `api` asks `notifier-http` for Octet's body. From there on
//! it is validated, queued, run and notified exactly like a Coconut job, so Octet's
//! encoder controls go through the same plan.
//!
//! What is checked here is only what Octet's vocabulary says (its enums and ranges, and
//! the rate-control combinations, so their errors speak of `bitrate_kbps` and `cq`
//! rather than of format-string parts); everything else is left to the plugins.
//!
//! The status view (`GET /v0/jobs/{id}`) is here too: Octet's document has none, so it
//! reports what an Octet user would look for — `pending`, `processing`, `complete` or
//! `error`, per job and per `dest_path`.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::spec::{InputSpec, OutputSpec};
use super::status::{InputStatus, JobStatus, OutputState};
use super::{JobError, JobSpec};
use crate::db::{job, output};

/// The `api` value of a notification block that makes `notifier-http` send Octet's
/// callback body (`{"api_version": "v0", "job_id", "status"}`) for the final event only.
pub const NOTIFICATION_API: &str = "octet_v0";

/// A `POST /v0/jobs/create` body. Unknown fields are refused (as Coconut jobs' are), so
/// a misspelt option is an error instead of an encode without it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub input: Input,
    pub destination: Destination,
    pub outputs: Vec<Output>,
    #[serde(default)]
    pub callback: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// An http(s) URL of the source file.
    pub url: String,
}

/// Where the outputs go. Octet only knows S3 in us-east-1; Copra takes any region and,
/// as its Coconut storage does, an `endpoint` for S3-compatible stores.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub provider: Provider,
    /// Defaults to `us-east-1`, the only region Octet itself serves.
    #[serde(default)]
    pub region: Option<String>,
    pub bucket: String,
    pub creds: Creds,
    /// An S3-compatible endpoint (MinIO, Ceph, R2, ...), addressed path-style.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing for `endpoint` (the default there); `false` for
    /// virtual-host style.
    #[serde(default)]
    pub force_path_style: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    S3,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Creds {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Secrets never reach a log line through `{:?}`.
impl fmt::Debug for Creds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Creds").field("access_key_id", &self.access_key_id).field("secret_access_key", &"<hidden>").finish()
    }
}

/// One rendition. Numbers stay wide (`i64`) so an out-of-range value gets a message that
/// names its range rather than a type error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub codec: Codec,
    /// `1920x1080`, `-1x1080` or `1280x-1` (`-1` keeps the aspect ratio).
    pub resolution: String,
    pub dest_path: String,
    #[serde(default)]
    pub bitrate_kbps: Option<i64>,
    #[serde(default)]
    pub scale_interp_algo: Option<ScaleAlgo>,
    #[serde(default)]
    pub preset: Option<Preset>,
    #[serde(default)]
    pub profile: Option<Profile>,
    #[serde(default)]
    pub level: Option<Level>,
    #[serde(default)]
    pub rc: Option<Rc>,
    #[serde(default)]
    pub coder: Option<Coder>,
    #[serde(default)]
    pub cq: Option<i64>,
    #[serde(default)]
    pub qp: Option<i64>,
}

/// Defines a closed Octet vocabulary: a serde enum whose names are both what Octet
/// accepts and what the format string carries (the plugin knows Octet's names).
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

vocabulary!(
    /// HEVC is not public at Octet yet; Copra encodes it, so it is offered.
    Codec { H264 = "h264", Hevc = "hevc" }
);
vocabulary!(ScaleAlgo { Nn = "nn", Linear = "linear", Cubic = "cubic", Lanczos = "lanczos" });
vocabulary!(
    /// Octet's NVENC presets; the plugin maps `hp`, `hq`, `ll`, `llhq`, `llhp` onto x264's.
    Preset { Slow = "slow", Medium = "medium", Fast = "fast", Hp = "hp", Hq = "hq", Ll = "ll", Llhq = "llhq", Llhp = "llhp" }
);
vocabulary!(Profile { Baseline = "baseline", Main = "main", High = "high" });
vocabulary!(Rc { ConstQp = "constqp", Vbr = "vbr", VbrHq = "vbr_hq", Cbr = "cbr", CbrHq = "cbr_hq" });
vocabulary!(Coder { Cabac = "cabac", Cavlc = "cavlc" });

/// An encoding level: Octet lists `auto, 4, 4.0, 4.1, 4.2, 5, 5.0, 5.1`. Accepted as a
/// string or a JSON number, since clients write `"level": 4.1` as readily as `"4.1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Auto,
    L4,
    L41,
    L42,
    L5,
    L51,
}

const LEVELS: &str = "auto, 4, 4.0, 4.1, 4.2, 5, 5.0, 5.1";

impl Level {
    fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "auto" => Level::Auto,
            "4" | "4.0" => Level::L4,
            "4.1" => Level::L41,
            "4.2" => Level::L42,
            "5" | "5.0" => Level::L5,
            "5.1" => Level::L51,
            _ => return None,
        })
    }

    /// The plugin's spelling: `4.0` is level `4` to x264 and x265.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Auto => "auto",
            Level::L4 => "4",
            Level::L41 => "4.1",
            Level::L42 => "4.2",
            Level::L5 => "5",
            Level::L51 => "5.1",
        }
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Level;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "one of {LEVELS}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Level, E> {
                Level::parse(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Level, E> {
                Level::parse(&v.to_string()).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Level, E> {
                Level::parse(&v.to_string()).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Level, E> {
                // `4.0` as a number prints as `4`, which is the same level.
                Level::parse(&v.to_string()).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Parse a request body. Errors name the field at fault as a path
/// (`outputs[1].preset: unknown variant ...`), which is what Octet's `error` is for.
pub fn parse(body: &[u8]) -> Result<Request, JobError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let request: Request = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return invalid(format!("The request body is not valid JSON: {inner}."));
        }
        let text = inner.to_string();
        let message = without_position(&text);
        // An unknown field's path ends in the field itself, which the message names.
        let segments: Vec<&serde_path_to_error::Segment> = err.path().iter().collect();
        let within = if message.starts_with("unknown field") { &segments[..segments.len().saturating_sub(1)] } else { &segments[..] };
        match path_text(within) {
            path if path.is_empty() => invalid(format!("{message}.")),
            path => invalid(format!("{path}: {message}.")),
        }
    })?;
    deserializer.end().map_err(|e| invalid(format!("The request body is not valid JSON: {e}.")))?;
    Ok(request)
}

/// A field path as a client writes it: `outputs[1].preset`.
fn path_text(segments: &[&serde_path_to_error::Segment]) -> String {
    use serde_path_to_error::Segment;
    let mut text = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => text.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Segment::Unknown => text.push_str(if text.is_empty() { "?" } else { ".?" }),
        }
    }
    text
}

/// serde_json appends ` at line L column C`; the path already says where.
fn without_position(message: &str) -> &str {
    message.rfind(" at line ").map_or(message, |at| &message[..at])
}

fn invalid(message: impl Into<String>) -> JobError {
    JobError::invalid("request_not_valid", message)
}

/// Translate a parsed request into the job Copra runs. Output `i` gets the key `"i"`, so
/// its position in Octet's list is its name in Copra's views and metadata.
pub fn to_job(request: &Request) -> Result<JobSpec, JobError> {
    let url = &request.input.url;
    let input_ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if !input_ok {
        return Err(JobError::invalid("input_not_valid", format!("input.url '{url}' must be an http(s) URL.")));
    }
    let input = InputSpec { url: Some(url.clone()), service: None, raw: json!({ "url": url }) };

    if request.outputs.is_empty() {
        return Err(JobError::invalid("outputs_not_valid", "outputs must list at least one output."));
    }
    let mut outputs = Vec::with_capacity(request.outputs.len());
    for (index, output) in request.outputs.iter().enumerate() {
        let path = output.dest_path.trim();
        if path.is_empty() {
            return Err(JobError::invalid("output_param_not_valid", format!("outputs[{index}].dest_path must not be empty.")));
        }
        if let Some(first) = request.outputs[..index].iter().position(|o| o.dest_path.trim() == path) {
            return Err(JobError::invalid(
                "output_param_not_valid",
                format!("outputs[{index}].dest_path '{path}' is also the dest_path of outputs[{first}]."),
            ));
        }
        let key = index.to_string();
        let mut params = Map::new();
        params.insert("key".into(), json!(key));
        params.insert("path".into(), json!(path));
        outputs.push(OutputSpec {
            key,
            format: format_string(index, output)?,
            path: Some(path.to_string()),
            url: None,
            condition: None,
            params,
        });
    }

    let notification = match &request.callback {
        None => None,
        Some(callback) => {
            let ok = url::Url::parse(callback).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if !ok {
                return Err(JobError::invalid("notification_not_valid", format!("callback '{callback}' must be an http(s) URL.")));
            }
            Some(json!({ "type": "http", "url": callback, "api": NOTIFICATION_API }))
        }
    };

    Ok(JobSpec { input, storage: storage(&request.destination), outputs, notification, settings: Value::Object(Map::new()) })
}

/// The Coconut storage block the `s3` storage plugin validates and resolves.
fn storage(destination: &Destination) -> Value {
    let Provider::S3 = destination.provider;
    let mut block = Map::new();
    block.insert("service".into(), json!("s3"));
    let region = destination.region.as_deref().filter(|r| !r.is_empty()).unwrap_or("us-east-1");
    block.insert("region".into(), json!(region));
    block.insert("bucket".into(), json!(destination.bucket));
    if let Some(endpoint) = &destination.endpoint {
        block.insert("endpoint".into(), json!(endpoint));
    }
    if let Some(path_style) = destination.force_path_style {
        block.insert("force_path_style".into(), json!(path_style));
    }
    block.insert(
        "credentials".into(),
        json!({ "access_key_id": destination.creds.access_key_id, "secret_access_key": destination.creds.secret_access_key }),
    );
    Value::Object(block)
}

/// The requested size as a format-string item: `1920x1080`, `x1080` or `1280x`.
#[derive(Debug, PartialEq, Eq)]
enum Size {
    Exact(u32, u32),
    Width(u32),
    Height(u32),
}

/// Octet's `WxH` with `-1` for the side that keeps the aspect ratio. Sides are 2 to 8192
/// pixels, the range the format plugin takes.
fn resolution(index: usize, text: &str) -> Result<Size, JobError> {
    let bad = |why: &str| {
        JobError::invalid(
            "output_param_not_valid",
            format!("outputs[{index}].resolution '{text}' is not valid: {why} (e.g. 1920x1080, -1x1080 or 1280x-1)."),
        )
    };
    let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(|| bad("it must be WIDTHxHEIGHT"))?;
    let side = |s: &str| -> Result<Option<u32>, JobError> {
        match s.trim() {
            "-1" => Ok(None),
            s => s.parse::<u32>().ok().filter(|n| (2..=8192).contains(n)).map(Some).ok_or_else(|| bad("each side is 2 to 8192, or -1")),
        }
    };
    match (side(w)?, side(h)?) {
        (Some(w), Some(h)) => Ok(Size::Exact(w, h)),
        (Some(w), None) => Ok(Size::Width(w)),
        (None, Some(h)) => Ok(Size::Height(h)),
        (None, None) => Err(bad("only one side may be -1")),
    }
}

/// The `format-video` string for one Octet output: `mp4:<codec>_<size>[_<kbps>k]:none:<options>`.
///
/// - Audio is `none`: Octet's outputs carry no audio ("it is usually served as a
///   separate stream").
/// - An exact `WxH` is stretched to that size (`fit=stretch`), as a scale filter given
///   both sides does; Copra's own default would letterbox.
/// - `rc=vbr`/`vbr_hq` with a `cq` and no bitrate is NVENC's target-quality mode, which
///   is the plugin's constant quality at `cq`, so `rc` is left out there.
/// - `qp=-1` is Octet's "automatic" and is left out.
fn format_string(index: usize, o: &Output) -> Result<String, JobError> {
    let bad = |message: String| JobError::invalid("output_param_not_valid", format!("outputs[{index}].{message}"));
    if let Some(kbps) = o.bitrate_kbps.filter(|k| *k < 1) {
        return Err(bad(format!("bitrate_kbps {kbps} must be a positive number of kbit/s.")));
    }
    if let Some(cq) = o.cq.filter(|cq| !(0..=51).contains(cq)) {
        return Err(bad(format!("cq {cq} must be 0 to 51.")));
    }
    if let Some(qp) = o.qp.filter(|qp| !(-1..=51).contains(qp)) {
        return Err(bad(format!("qp {qp} must be -1 to 51.")));
    }
    let qp = o.qp.filter(|qp| *qp >= 0);
    let bitrate = o.bitrate_kbps;

    // Rate control, checked in Octet's terms: the plugin would refuse the same
    // combinations, but in the words of format strings.
    let mut rc = o.rc;
    match o.rc {
        Some(Rc::Cbr | Rc::CbrHq) if bitrate.is_none() => {
            return Err(bad(format!("rc '{}' needs bitrate_kbps.", o.rc.map_or("", Rc::as_str))));
        }
        Some(Rc::Vbr | Rc::VbrHq) if bitrate.is_none() && o.cq.is_none() => {
            return Err(bad(format!("rc '{}' needs bitrate_kbps (or a cq to target).", o.rc.map_or("", Rc::as_str))));
        }
        Some(Rc::Vbr | Rc::VbrHq) if bitrate.is_none() => rc = None,
        _ => {}
    }
    let constqp = o.rc == Some(Rc::ConstQp) || (o.rc.is_none() && qp.is_some());
    if constqp && (bitrate.is_some() || o.cq.is_some()) {
        return Err(bad("rc 'constqp' (a constant qp) takes no bitrate_kbps or cq.".into()));
    }
    if qp.is_some() && !constqp {
        return Err(bad("qp applies to rc 'constqp' only.".into()));
    }
    if o.cq.is_some() && matches!(o.rc, Some(Rc::Cbr | Rc::CbrHq)) {
        return Err(bad("cq is the target quality of vbr rate control; cbr takes none.".into()));
    }

    let size = resolution(index, &o.resolution)?;
    let mut video = vec![o.codec.as_str().to_string()];
    video.push(match size {
        Size::Exact(w, h) => format!("{w}x{h}"),
        Size::Width(w) => format!("{w}x"),
        Size::Height(h) => format!("x{h}"),
    });
    if let Some(kbps) = bitrate {
        video.push(format!("{kbps}k"));
    }

    let mut options: Vec<String> = Vec::new();
    let mut option = |key: &str, value: &str| options.push(format!("{key}={value}"));
    if let Some(p) = o.preset {
        option("preset", p.as_str());
    }
    if let Some(p) = o.profile {
        option("profile", p.as_str());
    }
    if let Some(l) = o.level {
        option("level", l.as_str());
    }
    if let Some(rc) = rc {
        option("rc", rc.as_str());
    }
    if let Some(c) = o.coder {
        option("coder", c.as_str());
    }
    if let Some(cq) = o.cq {
        option("cq", &cq.to_string());
    }
    if let Some(qp) = qp {
        option("qp", &qp.to_string());
    }
    if let Some(s) = o.scale_interp_algo {
        option("scale", s.as_str());
    }
    if let Size::Exact(..) = size {
        option("fit", "stretch");
    }
    Ok(format!("mp4:{}:none:{}", video.join("_"), options.join(",")))
}

/// A job as Octet users read it. `pending` until a worker starts on it, `processing`
/// while it runs, then `complete` or `error`. Each output is named by its `dest_path`
/// (from the stored spec), with its own status, its URL once uploaded, and its error.
pub fn job_view(job: &job::Model, outputs: &[output::Model], sealer: &crate::secret::Sealer) -> Value {
    let spec: Option<JobSpec> = super::stored::open_spec(sealer, &job.spec).ok();
    let dest_path = |key: &str| -> Value {
        let path = spec.as_ref().and_then(|s| s.outputs.iter().find(|o| o.key == key)).and_then(|o| o.path.clone());
        path.map_or(Value::Null, Value::String)
    };
    let job_status = if job.status == JobStatus::Completed {
        "complete"
    } else if job.status == JobStatus::Failed {
        "error"
    } else if job.input_status == InputStatus::Starting && job.lease_owner.is_none() {
        "pending"
    } else {
        "processing"
    };
    let views: Vec<Value> = outputs
        .iter()
        .map(|o| {
            let mut view = Map::new();
            view.insert("dest_path".into(), dest_path(&o.key));
            view.insert("status".into(), json!(output_status(o.state)));
            if let Some(url) = &o.url {
                view.insert("url".into(), json!(url));
            }
            if let Some(error) = &o.error {
                view.insert("error".into(), json!(error));
            }
            Value::Object(view)
        })
        .collect();
    let mut view = Map::new();
    view.insert("job_id".into(), json!(job.id));
    view.insert("status".into(), json!(job_status));
    view.insert("progress".into(), json!(job.progress));
    view.insert("created_at".into(), rfc3339(job.created_at));
    view.insert("completed_at".into(), job.completed_at.map_or(Value::Null, rfc3339));
    if job_status == "error" {
        let error = job.error.clone().or_else(|| outputs.iter().find_map(|o| o.error.clone()));
        if let Some(error) = error {
            view.insert("error".into(), json!(error));
        }
    }
    view.insert("outputs".into(), Value::Array(views));
    Value::Object(view)
}

/// An output's Coconut status (`video.encoding`, ...) in Octet's four words. Skipped
/// outputs (only Coconut jobs have conditions) keep the word `skipped`.
fn output_status(state: OutputState) -> &'static str {
    match state {
        OutputState::Waiting => "pending",
        OutputState::Queued | OutputState::Working | OutputState::Packaging => "processing",
        OutputState::Done => "complete",
        OutputState::Skipped => "skipped",
        OutputState::Failed => "error",
    }
}

fn rfc3339(ms: i64) -> Value {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .map_or(Value::Null, |t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

#[cfg(test)]
mod tests {
    use crate::job::status::OutputType;
    fn test_sealer() -> crate::secret::Sealer {
        crate::secret::Sealer::new(&[7; 32])
    }

    use super::*;

    fn request(outputs: Value) -> Value {
        json!({
            "input": {"url": "https://example.com/in.mp4"},
            "destination": {
                "provider": "s3", "region": "us-east-1", "bucket": "b",
                "creds": {"access_key_id": "AK", "secret_access_key": "SK"}
            },
            "outputs": outputs,
            "callback": "https://hooks.example.com/octet"
        })
    }

    fn job(body: &Value) -> Result<JobSpec, JobError> {
        to_job(&parse(body.to_string().as_bytes())?)
    }

    fn format_of(output: Value) -> Result<String, JobError> {
        let mut base = json!({"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4"});
        for (k, v) in output.as_object().unwrap() {
            base[k] = v.clone();
        }
        job(&request(json!([base]))).map(|spec| spec.outputs[0].format.clone())
    }

    #[test]
    fn every_control_lands_in_the_format_string() {
        let format = format_of(json!({
            "resolution": "1280x-1", "bitrate_kbps": 2000, "preset": "fast", "profile": "high", "level": "4.1",
            "rc": "vbr", "coder": "cabac", "cq": 23, "scale_interp_algo": "lanczos"
        }))
        .unwrap();
        assert_eq!(format, "mp4:h264_1280x_2000k:none:preset=fast,profile=high,level=4.1,rc=vbr,coder=cabac,cq=23,scale=lanczos");
        let format = format_of(json!({"codec": "hevc", "resolution": "-1x360", "rc": "constqp", "qp": 30})).unwrap();
        assert_eq!(format, "mp4:hevc_x360:none:rc=constqp,qp=30");
    }

    #[test]
    fn resolutions() {
        assert_eq!(format_of(json!({"resolution": "1920x1080"})).unwrap(), "mp4:h264_1920x1080:none:fit=stretch");
        assert_eq!(format_of(json!({"resolution": "-1x1080"})).unwrap(), "mp4:h264_x1080:none:");
        assert_eq!(format_of(json!({"resolution": "1280x-1"})).unwrap(), "mp4:h264_1280x:none:");
        for bad in ["-1x-1", "1280", "1280x", "x720", "0x720", "1x720", "9000x720", "axb", "1280x720x3", "-2x720", ""] {
            let err = format_of(json!({"resolution": bad})).unwrap_err();
            assert_eq!(err.code(), "output_param_not_valid", "{bad}");
            assert!(err.to_string().starts_with("outputs[0].resolution"), "{bad}: {err}");
        }
    }

    #[test]
    fn levels_as_strings_or_numbers() {
        for (level, expected) in [
            (json!("auto"), "level=auto"),
            (json!("4.0"), "level=4"),
            (json!(4), "level=4"),
            (json!(4.0), "level=4"),
            (json!(4.2), "level=4.2"),
            (json!("5.0"), "level=5"),
            (json!(5.1), "level=5.1"),
        ] {
            let format = format_of(json!({"level": level})).unwrap();
            assert!(format.ends_with(&format!(":{expected},fit=stretch")), "{level}: {format}");
        }
        for bad in [json!("3.1"), json!(6), json!(4.3), json!(true)] {
            let err = format_of(json!({"level": bad})).unwrap_err();
            assert!(err.to_string().starts_with("outputs[0].level: "), "{bad}: {err}");
        }
    }

    #[test]
    fn rate_control_combinations() {
        let ok = |o: Value| format_of(o).unwrap();
        // vbr with a target quality and no bitrate is constant quality at that cq.
        assert!(ok(json!({"rc": "vbr_hq", "cq": 20})).ends_with(":cq=20,fit=stretch"));
        assert!(ok(json!({"rc": "cbr_hq", "bitrate_kbps": 3000})).contains("_3000k:none:rc=cbr_hq"));
        // qp alone is constqp; qp -1 is Octet's automatic and is left out.
        assert!(ok(json!({"qp": 28})).ends_with(":qp=28,fit=stretch"));
        assert!(ok(json!({"rc": "vbr", "bitrate_kbps": 1000, "qp": -1})).ends_with(":rc=vbr,fit=stretch"));
        for (bad, needle) in [
            (json!({"rc": "cbr"}), "rc 'cbr' needs bitrate_kbps"),
            (json!({"rc": "vbr"}), "rc 'vbr' needs bitrate_kbps"),
            (json!({"rc": "constqp", "bitrate_kbps": 1000}), "takes no bitrate_kbps or cq"),
            (json!({"qp": 20, "cq": 20}), "takes no bitrate_kbps or cq"),
            (json!({"rc": "vbr", "bitrate_kbps": 1000, "qp": 20}), "qp applies to rc 'constqp'"),
            (json!({"rc": "cbr", "bitrate_kbps": 1000, "cq": 20}), "cbr takes none"),
            (json!({"cq": 52}), "cq 52 must be 0 to 51"),
            (json!({"qp": -2}), "qp -2 must be -1 to 51"),
            (json!({"bitrate_kbps": 0}), "bitrate_kbps 0"),
        ] {
            let err = format_of(bad.clone()).unwrap_err();
            assert!(err.to_string().contains(needle), "{bad}: {err}");
            assert!(err.to_string().starts_with("outputs[0]."), "{bad}: {err}");
        }
    }

    #[test]
    fn closed_vocabularies_name_the_field() {
        for (field, value) in [
            ("codec", "vp9"),
            ("preset", "placebo"),
            ("profile", "high10"),
            ("rc", "crf"),
            ("coder", "ac"),
            ("scale_interp_algo", "spline"),
        ] {
            let err = format_of(json!({ field: value })).unwrap_err();
            assert_eq!(err.code(), "request_not_valid");
            let message = err.to_string();
            assert!(message.starts_with(&format!("outputs[0].{field}: unknown variant `{value}`")), "{message}");
            assert!(!message.contains(" at line "), "no JSON positions: {message}");
        }
        for preset in ["slow", "medium", "fast", "hp", "hq", "ll", "llhq", "llhp"] {
            assert!(format_of(json!({"preset": preset})).unwrap().contains(&format!("preset={preset}")));
        }
    }

    #[test]
    fn structure_errors() {
        let mut body = request(json!([{"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4"}]));
        assert!(job(&body).is_ok());
        body.as_object_mut().unwrap().remove("input");
        assert_eq!(job(&body).unwrap_err().to_string(), "missing field `input`.");
        let body = json!({"input": {}, "destination": {}, "outputs": []});
        assert_eq!(job(&body).unwrap_err().to_string(), "input: missing field `url`.");
        let mut body = request(json!([]));
        assert_eq!(job(&body).unwrap_err().code(), "outputs_not_valid");
        body["extra"] = json!(1);
        assert!(job(&body).unwrap_err().to_string().starts_with("unknown field `extra`"));
        let body = request(json!([{"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4", "audio": true}]));
        assert!(job(&body).unwrap_err().to_string().starts_with("outputs[0]: unknown field `audio`"));
        let mut body = request(json!([{"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4"}]));
        body["destination"]["provider"] = json!("gcs");
        assert!(job(&body).unwrap_err().to_string().starts_with("destination.provider: unknown variant `gcs`"));
        assert!(parse(b"{not json").unwrap_err().to_string().starts_with("The request body is not valid JSON"));
        assert!(parse(b"{} {}").is_err(), "trailing data");
    }

    #[test]
    fn input_callback_and_paths_are_checked() {
        let one = json!([{"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4"}]);
        let mut body = request(one.clone());
        body["input"]["url"] = json!("ftp://example.com/in.mp4");
        assert_eq!(job(&body).unwrap_err().code(), "input_not_valid");
        let mut body = request(one);
        body["callback"] = json!("not a url");
        assert_eq!(job(&body).unwrap_err().code(), "notification_not_valid");
        let two = json!([
            {"codec": "h264", "resolution": "1280x720", "dest_path": "same.mp4"},
            {"codec": "h264", "resolution": "640x360", "dest_path": "same.mp4"}
        ]);
        assert!(job(&request(two)).unwrap_err().to_string().contains("outputs[1].dest_path 'same.mp4' is also the dest_path of outputs[0]"));
        let empty = json!([{"codec": "h264", "resolution": "1280x720", "dest_path": " "}]);
        assert!(job(&request(empty)).unwrap_err().to_string().contains("dest_path must not be empty"));
    }

    #[test]
    fn the_job_copra_runs() {
        let mut body = request(json!([
            {"codec": "h264", "resolution": "1280x-1", "dest_path": "full/path/vid_720.mp4", "bitrate_kbps": 2000},
            {"codec": "h264", "resolution": "-1x360", "dest_path": "/full/path/vid_360.mp4"}
        ]));
        body["destination"]["region"] = json!("eu-west-1");
        body["destination"]["endpoint"] = json!("http://127.0.0.1:9000");
        let spec = job(&body).unwrap();
        assert_eq!(spec.input.url.as_deref(), Some("https://example.com/in.mp4"));
        assert_eq!(
            spec.storage,
            json!({"service": "s3", "region": "eu-west-1", "bucket": "b", "endpoint": "http://127.0.0.1:9000",
                   "credentials": {"access_key_id": "AK", "secret_access_key": "SK"}})
        );
        let keys: Vec<_> = spec.outputs.iter().map(|o| (o.key.as_str(), o.path.as_deref())).collect();
        assert_eq!(keys, [("0", Some("full/path/vid_720.mp4")), ("1", Some("/full/path/vid_360.mp4"))]);
        assert_eq!(spec.outputs[0].plugin_params(), "{}", "the format plugin gets no stray params");
        assert_eq!(spec.notification, Some(json!({"type": "http", "url": "https://hooks.example.com/octet", "api": "octet_v0"})));
        // No region: Octet's only one.
        body["destination"].as_object_mut().unwrap().remove("region");
        assert_eq!(job(&body).unwrap().storage["region"], "us-east-1");
        body.as_object_mut().unwrap().remove("callback");
        assert!(job(&body).unwrap().notification.is_none());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let creds = Creds { access_key_id: "AK".into(), secret_access_key: "very-secret".into() };
        assert!(!format!("{creds:?}").contains("very-secret"));
    }

    fn rows(status: JobStatus, input_status: InputStatus, lease: Option<&str>) -> (job::Model, Vec<output::Model>) {
        let spec = job(&request(json!([
            {"codec": "h264", "resolution": "1280x-1", "dest_path": "a/720.mp4"},
            {"codec": "h264", "resolution": "-1x360", "dest_path": "a/360.mp4"}
        ])))
        .unwrap();
        let job = job::Model {
            id: "J1".into(),
            owner: "o".into(),
            status,
            input_status,
            progress: 40,
            spec: crate::job::stored::seal_spec(&test_sealer(), &spec).unwrap(),
            input_metadata: None,
            error: None,
            created_at: 1_700_000_000_000,
            completed_at: None,
            lease_owner: lease.map(str::to_string),
            lease_expires_at: None,
            attempts: 0,
        };
        let output = |position: i32, state: OutputState| output::Model {
            id: i64::from(position),
            job_id: "J1".into(),
            position,
            key: position.to_string(),
            format: spec.outputs[position as usize].format.clone(),
            output_type: OutputType::Video,
            state,
            url: None,
            urls: None,
            metadata: None,
            error: None,
        };
        (job, vec![output(0, OutputState::Working), output(1, OutputState::Waiting)])
    }

    #[test]
    fn status_view() {
        let (job, outputs) = rows(JobStatus::Starting, InputStatus::Starting, None);
        let view = job_view(&job, &outputs, &test_sealer());
        assert_eq!(view["job_id"], "J1");
        assert_eq!(view["status"], "pending");
        assert_eq!(view["created_at"], "2023-11-14T22:13:20Z");
        assert_eq!(view["completed_at"], Value::Null);
        assert_eq!(view["outputs"][0], json!({"dest_path": "a/720.mp4", "status": "processing"}));
        assert_eq!(view["outputs"][1], json!({"dest_path": "a/360.mp4", "status": "pending"}));
        let (job, _) = rows(JobStatus::Starting, InputStatus::Starting, Some("worker-1"));
        assert_eq!(job_view(&job, &outputs, &test_sealer())["status"], "processing");
        let (job, _) = rows(JobStatus::Starting, InputStatus::Transferred, None);
        assert_eq!(job_view(&job, &outputs, &test_sealer())["status"], "processing");
        let (job, _) = rows(JobStatus::Completed, InputStatus::Transferred, None);
        assert_eq!(job_view(&job, &outputs, &test_sealer())["status"], "complete");
        assert!(job_view(&job, &outputs, &test_sealer()).get("error").is_none());
        let (mut job, mut outputs) = rows(JobStatus::Failed, InputStatus::Failed, None);
        outputs[1].state = OutputState::Failed;
        outputs[1].error = Some("Encoding failed: boom".into());
        let view = job_view(&job, &outputs, &test_sealer());
        assert_eq!((view["status"].as_str(), view["error"].as_str()), (Some("error"), Some("Encoding failed: boom")));
        assert_eq!(view["outputs"][1]["status"], "error");
        job.error = Some("The input could not be fetched".into());
        assert_eq!(job_view(&job, &outputs, &test_sealer())["error"], "The input could not be fetched");
    }

    #[test]
    fn output_statuses() {
        for (state, octet) in [
            (OutputState::Waiting, "pending"),
            (OutputState::Queued, "processing"),
            (OutputState::Working, "processing"),
            (OutputState::Packaging, "processing"),
            (OutputState::Done, "complete"),
            (OutputState::Failed, "error"),
            (OutputState::Skipped, "skipped"),
        ] {
            assert_eq!(output_status(state), octet, "{state:?}");
        }
    }
}
