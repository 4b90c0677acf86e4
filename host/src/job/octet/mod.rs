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

use copra_codes::ErrorCode;
use std::fmt;

use serde::Deserialize;

mod translate;
mod view;

pub use translate::to_job;
pub use view::job_view;

use super::JobError;

/// The `api` value of a notification block that makes `notifier-http` send Octet's
/// callback body (`{"api_version": "v0", "job_id", "status"}`) for the final event only.
pub const NOTIFICATION_API: &str = "octet_v0";

/// A `POST /v0/jobs/create` body. Unknown fields are refused (as Coconut jobs' are), so
/// a misspelt option is an error instead of an encode without it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OctetCreateJobRequest)]
pub struct Request {
    pub input: Input,
    pub destination: Destination,
    pub outputs: Vec<Output>,
    #[serde(default)]
    pub callback: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OctetInput)]
pub struct Input {
    /// An http(s) URL of the source file.
    pub url: String,
}

/// Where the outputs go. Octet only knows S3 in us-east-1; Copra takes any region and,
/// as its Coconut storage does, an `endpoint` for S3-compatible stores.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OctetDestination)]
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

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = OctetProvider)]
pub enum Provider {
    S3,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OctetCreds)]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OctetOutputRequest)]
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
    /// `auto`, `4`, `4.0`, `4.1`, `4.2`, `5`, `5.0` or `5.1` (a string or a number).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
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
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
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
    JobError::invalid(ErrorCode::RequestNotValid, message)
}

#[cfg(test)]
mod tests;
