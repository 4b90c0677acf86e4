//! Coconut webhooks over `wasi:http`: a JSON POST to the job's notification URL.
//!
//! Body (Coconut's shape):
//! ```json
//! {"job_id": "...", "event": "job.completed", "metadata": true,
//!  "data": { ...job view, or the input/output the event is about... }}
//! ```
//! - `event`, `job_id`: copied from the host's event.
//! - `metadata`: the notification block's `metadata` flag (false when absent).
//! - `data`: for `job.completed`/`job.failed` the job view (the event's `job`, falling
//!   back to its `data`); for the other events the event's `data`.
//! - With `"metadata": true`, the ffprobe-shaped metadata the host attached (when not
//!   null) is added as `data.metadata`.
//!
//! Per-event callbacks (`input.transferred`, `output.completed`, `output.failed`) are
//! sent only when `"events": true`; `job.completed` and `job.failed` always are;
//! `job.progress` (its `data` the job view) only when `"progress_interval"` is set (the
//! host records it only then, at most once an interval). The
//! POST carries `Content-Type: application/json`, `User-Agent: Copra/<version>` and the
//! Standard Webhooks headers `webhook-id` (the same on every retry of one event),
//! `webhook-timestamp` and `webhook-signature`, which the host makes with the tenant's
//! secret (`copra_sdk::host::sign_webhook`); any status outside 2xx is a
//! `notification_failed` error, and the host retries.
//!
//! With `"api": "octet_v0"` (what the host writes for jobs submitted through Octet's v0
//! API) the body is Octet's callback instead, and only for the final event:
//! ```json
//! {"api_version": "v0", "job_id": "...", "status": "complete"}
//! ```
//! where `status` is `complete` for `job.completed` and `error` for `job.failed`.

use copra_sdk::notifier::Notifier;
use copra_sdk::{Error, Json};
use serde::Deserialize;
use serde_json::{Value, json};

/// The job's `notification` block.
#[derive(Debug, Deserialize)]
pub struct Config {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub url: String,
    #[serde(default)]
    pub events: bool,
    #[serde(default)]
    pub metadata: bool,
    /// Seconds between `job.progress` callbacks (checked by the host).
    #[serde(default)]
    pub progress_interval: Option<u64>,
    /// Whose webhook body to send; Coconut's unless the job came through Octet's API.
    #[serde(default)]
    pub api: Api,
}

/// The API whose callback shape the webhook takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Api {
    #[default]
    #[serde(rename = "coconut_v2")]
    CoconutV2,
    #[serde(rename = "octet_v0")]
    OctetV0,
}

/// Parse and check a notification block: `url` must be an absolute http(s) URL with a
/// host; `type`, when given, must be `http`.
pub fn config(value: &Json) -> Result<(Config, url::Url), Error> {
    let config: Config = serde_json::from_value(value.clone())
        .map_err(|e| Error::notification(format!("The notification is not valid: {e} (it needs a 'url').")))?;
    if let Some(kind) = config.kind.as_deref().filter(|k| *k != "http") {
        return Err(Error::notification(format!("The notification type '{kind}' is not supported by notifier-http.")));
    }
    let url = url::Url::parse(&config.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| Error::notification(format!("The notification url '{}' is not a valid http(s) URL.", config.url)))?;
    Ok((config, url))
}

/// The webhook body for an event, or `None` when this configuration does not want it.
/// An event without a name is the host's bug, reported as `notification_failed`.
pub fn body(config: &Config, event: &Json) -> Result<Option<Value>, Error> {
    let name = event
        .get("event")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::delivery("the event has no 'event' name"))?;
    let final_event = name == "job.completed" || name == "job.failed";
    if config.api == Api::OctetV0 {
        return Ok(final_event.then(|| octet_body(name, event)));
    }
    let wanted = if name == "job.progress" { config.progress_interval.is_some() } else { final_event || config.events };
    if !wanted {
        return Ok(None);
    }
    let present = |field: &str| event.get(field).filter(|v| !v.is_null()).cloned();
    let data = if final_event { present("job").or_else(|| present("data")) } else { present("data") };
    let mut data = data.unwrap_or(Value::Null);
    if let (true, Some(metadata), Some(fields)) = (config.metadata, present("metadata"), data.as_object_mut()) {
        fields.insert("metadata".into(), metadata);
    }
    Ok(Some(json!({
        "job_id": event.get("job_id").cloned().unwrap_or(Value::Null),
        "event": name,
        "metadata": config.metadata,
        "data": data,
    })))
}

/// Octet's callback for a final event: Octet tells only that a job is `complete` or
/// ended in `error`, so `events` and `metadata` do not apply.
fn octet_body(name: &str, event: &Json) -> Value {
    json!({
        "api_version": "v0",
        "job_id": event.get("job_id").cloned().unwrap_or(Value::Null),
        "status": if name == "job.completed" { "complete" } else { "error" },
    })
}

pub struct NotifierHttp;

impl Notifier for NotifierHttp {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn types() -> Vec<String> {
        vec!["http".into()]
    }

    fn check(value: &Json) -> Result<(), Error> {
        config(value).map(drop)
    }

    fn hosts(value: &Json) -> Result<Vec<String>, Error> {
        let (config, _) = config(value)?;
        Ok(vec![copra_sdk::notifier::host_port(&config.url)?])
    }

    fn notify(value: &Json, event: &Json) -> Result<(), Error> {
        let (config, url) = config(value)?;
        match body(&config, event)? {
            Some(body) => deliver(&url, &body),
            None => Ok(()),
        }
    }
}

fn deliver(url: &url::Url, body: &Value) -> Result<(), Error> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    // An explicit length, not chunked encoding: many webhook receivers expect it.
    let length = bytes.len().to_string();
    // Signed over exactly the bytes sent, whichever API's body they are.
    let signed = copra_sdk::host::sign_webhook(&bytes).map_err(|e| Error::delivery(format!("the webhook could not be signed: {e}")))?;
    let mut headers = vec![
        ("content-type", "application/json"),
        ("content-length", length.as_str()),
        ("user-agent", concat!("Copra/", env!("CARGO_PKG_VERSION"))),
    ];
    headers.extend(signed.pairs());
    match copra_sdk::http::post(url, &headers, &bytes) {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => Err(Error::delivery(format!("the webhook answered HTTP {status}"))),
        Err(message) => Err(Error::delivery(message)),
    }
}

copra_sdk::notifier_plugin!(NotifierHttp);

#[cfg(test)]
mod tests {
    use super::*;
    use copra_sdk::codes;

    fn json(text: &str) -> Json {
        serde_json::from_str(text).unwrap()
    }

    const EVENT: &str = r#"{"event":"job.completed","job_id":"J1","job":{"id":"J1","status":"job.completed"},"data":{"id":"J1","status":"job.completed"},"metadata":{"source":{"streams":[]}}}"#;

    #[test]
    fn config_needs_an_http_url() {
        assert!(config(&json(r#"{"type":"http","url":"http://127.0.0.1:9/hook"}"#)).is_ok());
        assert_eq!(config(&json(r#"{"type":"http","url":"not a url"}"#)).unwrap_err().code, codes::NOTIFICATION_NOT_VALID);
        assert_eq!(config(&json(r#"{"type":"http"}"#)).unwrap_err().code, codes::NOTIFICATION_NOT_VALID);
        assert!(config(&json(r#"{"type":"pigeon","url":"http://x"}"#)).unwrap_err().message.contains("pigeon"));
    }

    #[test]
    fn hosts_include_the_port() {
        assert_eq!(NotifierHttp::hosts(&json(r#"{"url":"https://hooks.example.com/x"}"#)).unwrap(), ["hooks.example.com:443"]);
        assert_eq!(NotifierHttp::hosts(&json(r#"{"url":"http://127.0.0.1:8123/x"}"#)).unwrap(), ["127.0.0.1:8123"]);
    }

    #[test]
    fn coconut_body_shape() {
        let (c, _) = config(&json(r#"{"url":"http://x/h","metadata":true}"#)).unwrap();
        let b = body(&c, &json(EVENT)).unwrap().unwrap();
        assert_eq!(b["job_id"], "J1");
        assert_eq!(b["event"], "job.completed");
        assert_eq!(b["metadata"], true);
        assert_eq!(b["data"]["status"], "job.completed");
        assert!(b["data"]["metadata"]["source"].is_object());
        let (c, _) = config(&json(r#"{"url":"http://x/h"}"#)).unwrap();
        assert!(body(&c, &json(EVENT)).unwrap().unwrap()["data"].get("metadata").is_none());
    }

    #[test]
    fn per_event_callbacks_only_when_asked() {
        let event = r#"{"event":"output.completed","job_id":"J1","data":{"key":"mp4"}}"#;
        let (quiet, _) = config(&json(r#"{"url":"http://x/h"}"#)).unwrap();
        assert!(body(&quiet, &json(event)).unwrap().is_none());
        let (chatty, _) = config(&json(r#"{"url":"http://x/h","events":true}"#)).unwrap();
        assert_eq!(body(&chatty, &json(event)).unwrap().unwrap()["data"]["key"], "mp4");
        for name in ["input.transferred", "output.failed"] {
            let event = json!({"event": name, "job_id": "J1", "data": {}});
            assert!(body(&quiet, &event).unwrap().is_none(), "{name}");
            assert!(body(&chatty, &event).unwrap().is_some(), "{name}");
        }
    }

    #[test]
    fn progress_callbacks_only_with_an_interval() {
        let event = json!({"event": "job.progress", "job_id": "J1", "data": {"id": "J1", "progress": "42%"}});
        let (chatty, _) = config(&json(r#"{"url":"http://x/h","events":true}"#)).unwrap();
        assert!(body(&chatty, &event).unwrap().is_none(), "events: true alone does not ask for progress");
        let (progress, _) = config(&json(r#"{"url":"http://x/h","progress_interval":5}"#)).unwrap();
        assert_eq!(body(&progress, &event).unwrap().unwrap()["data"]["progress"], "42%");
        let output = json!({"event": "output.completed", "job_id": "J1", "data": {}});
        assert!(body(&progress, &output).unwrap().is_none(), "progress_interval alone does not ask for per-output events");
    }

    #[test]
    fn final_events_always_carry_the_job_view() {
        let (quiet, _) = config(&json(r#"{"url":"http://x/h"}"#)).unwrap();
        let failed = json!({"event": "job.failed", "job_id": "J2", "job": {"id": "J2", "status": "job.failed"}, "data": {"other": 1}, "metadata": null});
        let b = body(&quiet, &failed).unwrap().unwrap();
        assert_eq!(b, json!({"job_id": "J2", "event": "job.failed", "metadata": false, "data": {"id": "J2", "status": "job.failed"}}));
        let (meta, _) = config(&json(r#"{"url":"http://x/h","metadata":true}"#)).unwrap();
        let b = body(&meta, &failed).unwrap().unwrap();
        assert_eq!((b["metadata"].clone(), b["data"].get("metadata")), (json!(true), None), "null metadata is left out");
        let no_job = json!({"event": "job.completed", "job_id": "J3", "data": {"id": "J3"}});
        assert_eq!(body(&quiet, &no_job).unwrap().unwrap()["data"]["id"], "J3");
        assert_eq!(body(&quiet, &json!({"job_id": "J"})).unwrap_err().code, codes::NOTIFICATION_FAILED);
    }

    #[test]
    fn octet_callbacks_are_final_only() {
        let (octet, _) = config(&json(r#"{"type":"http","url":"http://x/h","api":"octet_v0","events":true,"metadata":true}"#)).unwrap();
        assert_eq!(octet.api, Api::OctetV0);
        assert_eq!(body(&octet, &json(EVENT)).unwrap().unwrap(), json!({"api_version": "v0", "job_id": "J1", "status": "complete"}));
        let failed = json!({"event": "job.failed", "job_id": "J2", "job": {"id": "J2"}, "data": {}, "metadata": null});
        assert_eq!(body(&octet, &failed).unwrap().unwrap(), json!({"api_version": "v0", "job_id": "J2", "status": "error"}));
        for name in ["input.transferred", "output.completed", "output.failed"] {
            let event = json!({"event": name, "job_id": "J1", "data": {}});
            assert!(body(&octet, &event).unwrap().is_none(), "{name} is not an Octet callback, even with events: true");
        }
        assert_eq!(body(&octet, &json!({"job_id": "J"})).unwrap_err().code, codes::NOTIFICATION_FAILED);
    }

    #[test]
    fn api_defaults_to_coconut_and_is_checked() {
        let (c, _) = config(&json(r#"{"url":"http://x/h"}"#)).unwrap();
        assert_eq!(c.api, Api::CoconutV2);
        let (c, _) = config(&json(r#"{"url":"http://x/h","api":"coconut_v2"}"#)).unwrap();
        assert_eq!(body(&c, &json(EVENT)).unwrap().unwrap()["event"], "job.completed");
        let err = config(&json(r#"{"url":"http://x/h","api":"octet_v9"}"#)).unwrap_err();
        assert_eq!(err.code, codes::NOTIFICATION_NOT_VALID);
        assert!(err.message.contains("octet_v9"), "{}", err.message);
    }
}
