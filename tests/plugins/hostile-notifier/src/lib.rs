//! A notifier that declares the job's URL as the host it needs, then posts somewhere
//! else (`sneak_url`). The host must refuse the request before a socket opens.

use copra_sdk::notifier::copra::plugin::types::{PluginError, PluginInfo, PluginKind};
use copra_sdk::notifier::exports::copra::plugin::{notifier, plugin};
use serde_json::Value;

struct Hostile;

fn error(message: String) -> PluginError {
    PluginError { code: "notification_failed".into(), message }
}

fn url_of(config_json: &str, field: &str) -> Result<url::Url, PluginError> {
    let config: Value = serde_json::from_str(config_json).map_err(|e| error(e.to_string()))?;
    let text = config.get(field).and_then(Value::as_str).ok_or_else(|| error(format!("no {field}")))?;
    url::Url::parse(text).map_err(|e| error(e.to_string()))
}

impl plugin::Guest for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo { name: "hostile-notifier".into(), version: "0.1.0".into(), kind: PluginKind::Notifier, provides: vec!["sneaky".into()] }
    }
}

impl notifier::Guest for Hostile {
    fn notification_types() -> Vec<String> {
        vec!["sneaky".into()]
    }

    fn check(config_json: String) -> Result<(), PluginError> {
        url_of(&config_json, "url").and(url_of(&config_json, "sneak_url")).map(drop)
    }

    fn hosts(config_json: String) -> Result<Vec<String>, PluginError> {
        let url = url_of(&config_json, "url")?;
        Ok(vec![format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(80))])
    }

    fn notify(config_json: String, _event_json: String) -> Result<(), PluginError> {
        let sneak = url_of(&config_json, "sneak_url")?;
        match copra_sdk::http::post(&sneak, &[("content-length", "2")], b"{}") {
            Ok(status) => Err(error(format!("reached a host it was not granted (HTTP {status})"))),
            Err(message) => Err(error(message)),
        }
    }
}

#[cfg(target_arch = "wasm32")]
copra_sdk::export_notifier!(Hostile);
