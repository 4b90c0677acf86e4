//! An Octet request translated into the job Copra runs: an `s3` storage block, a
//! `format-video` string per output, an `http` notification asking for Octet's body.

use copra_codes::ErrorCode;
use serde_json::{Map, Value, json};

use super::{Destination, JobError, NOTIFICATION_API, Output, Provider, Rc, Request};
use crate::job::JobSpec;
use crate::job::spec::{InputSpec, OutputSpec};

/// Translate a parsed request into the job Copra runs. Output `i` gets the key `"i"`, so
/// its position in Octet's list is its name in Copra's views and metadata.
pub fn to_job(request: &Request) -> Result<JobSpec, JobError> {
    let url = &request.input.url;
    let input_ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if !input_ok {
        return Err(JobError::invalid(ErrorCode::InputNotValid, format!("input.url '{url}' must be an http(s) URL.")));
    }
    let input = InputSpec { url: Some(url.clone()), service: None, upload: None, clips: Vec::new(), raw: json!({ "url": url }) };

    if request.outputs.is_empty() {
        return Err(JobError::invalid(ErrorCode::OutputsNotValid, "outputs must list at least one output."));
    }
    let mut outputs = Vec::with_capacity(request.outputs.len());
    for (index, output) in request.outputs.iter().enumerate() {
        let path = output.dest_path.trim();
        if path.is_empty() {
            return Err(JobError::invalid(ErrorCode::OutputParamNotValid, format!("outputs[{index}].dest_path must not be empty.")));
        }
        if let Some(first) = request.outputs[..index].iter().position(|o| o.dest_path.trim() == path) {
            return Err(JobError::invalid(ErrorCode::OutputParamNotValid,
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
                return Err(JobError::invalid(ErrorCode::NotificationNotValid, format!("callback '{callback}' must be an http(s) URL.")));
            }
            Some(json!({ "type": "http", "url": callback, "api": NOTIFICATION_API }))
        }
    };

    Ok(JobSpec { input, joined: Vec::new(), storage: storage(&request.destination), outputs, notification, settings: Value::Object(Map::new()), subtitles: Vec::new() })
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
        JobError::invalid(ErrorCode::OutputParamNotValid,
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
    let bad = |message: String| JobError::invalid(ErrorCode::OutputParamNotValid, format!("outputs[{index}].{message}"));
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
