//! Example notifier: posts a Slack incoming-webhook message when a job ends.
//!
//! ```json
//! "notification": {"type": "slack", "url": "https://hooks.slack.com/services/...", "channel": "#video"}
//! ```
//!
//! The operator grants it Slack's host: `[plugins.slack-notifier] allowed_hosts = ["hooks.slack.com:443"]`.

use copra_sdk::notifier::{Notifier, host_port};
use copra_sdk::{Error, Json, codes, json};
use serde_json::json;

pub struct SlackNotifier;

/// The message for an event, or `None` for events Slack users do not need.
pub fn message(config: &Json, event: &Json) -> Option<Json> {
    let name = json::str(event, "event")?;
    if name != "job.completed" && name != "job.failed" {
        return None;
    }
    let job_id = json::str(event, "job_id").unwrap_or("?");
    let outputs = event.pointer("/job/outputs").and_then(Json::as_array).cloned().unwrap_or_default();
    let lines: Vec<String> = outputs
        .iter()
        .map(|o| {
            let key = json::str(o, "key").unwrap_or("?");
            let status = json::str(o, "status").unwrap_or("?");
            match json::str(o, "url") {
                Some(url) => format!("• {key}: {status} <{url}>"),
                None => format!("• {key}: {status}"),
            }
        })
        .collect();
    let verdict = if name == "job.completed" { ":white_check_mark: completed" } else { ":x: failed" };
    let mut body = json!({"text": format!("Copra job {job_id} {verdict}\n{}", lines.join("\n"))});
    if let Some(channel) = json::str(config, "channel") {
        body["channel"] = json!(channel);
    }
    Some(body)
}

impl Notifier for SlackNotifier {
    const NAME: &'static str = "slack-notifier";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn types() -> Vec<String> {
        vec!["slack".into()]
    }

    fn check(config: &Json) -> Result<(), Error> {
        Self::hosts(config).map(drop)
    }

    fn hosts(config: &Json) -> Result<Vec<String>, Error> {
        Ok(vec![host_port(json::require(config, "url", codes::NOTIFICATION_NOT_VALID)?)?])
    }

    fn notify(config: &Json, event: &Json) -> Result<(), Error> {
        let Some(body) = message(config, event) else { return Ok(()) };
        send(json::require(config, "url", codes::NOTIFICATION_NOT_VALID)?, &body)
    }
}

fn send(url: &str, body: &Json) -> Result<(), Error> {
    let url: copra_sdk::url::Url = url.parse().map_err(|_| Error::notification(format!("'{url}' is not a URL")))?;
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let length = bytes.len().to_string();
    let status = copra_sdk::http::post(&url, &[("content-type", "application/json"), ("content-length", &length)], &bytes)
        .map_err(Error::delivery)?;
    if (200..300).contains(&status) { Ok(()) } else { Err(Error::delivery(format!("Slack answered HTTP {status}"))) }
}

copra_sdk::notifier_plugin!(SlackNotifier);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_jobs_list_their_outputs() {
        let event = json!({"event": "job.completed", "job_id": "J1", "job": {"outputs": [
            {"key": "mp4:720p", "status": "video.encoded", "url": "http://cdn/x.mp4"},
            {"key": "mp4:1080p", "status": "video.skipped"}
        ]}});
        let body = message(&json!({"url": "http://h/x", "channel": "#video"}), &event).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("J1") && text.contains("completed"));
        assert!(text.contains("mp4:720p: video.encoded <http://cdn/x.mp4>"));
        assert_eq!(body["channel"], "#video");
        assert!(message(&json!({}), &json!({"event": "output.completed"})).is_none());
    }
}
