//! Example notifier: Coconut-shaped webhooks whose body is signed, so the receiver can
//! tell they came from this server.
//!
//! ```json
//! "notification": {"type": "signed-http", "url": "https://example.com/hook"}
//! ```
//! The secret is never in the job: the operator grants the plugin an environment
//! variable, and the hosts it may post to:
//!
//! ```toml
//! [plugins.hmac-notifier]
//! env = { WEBHOOK_SECRET = "..." }
//! allowed_hosts = ["*.example.com:443"]
//! ```
//!
//! The request carries `X-Copra-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use copra_sdk::notifier::{Notifier, host_port};
use copra_sdk::{Error, Json, codes, json};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

pub const SECRET_VAR: &str = "WEBHOOK_SECRET";

pub struct HmacNotifier;

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn secret() -> Result<String, Error> {
    std::env::var(SECRET_VAR)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::delivery(format!("no signing secret: the operator must grant {SECRET_VAR}")))
}

impl Notifier for HmacNotifier {
    const NAME: &'static str = "hmac-notifier";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn types() -> Vec<String> {
        vec!["signed-http".into()]
    }

    fn check(config: &Json) -> Result<(), Error> {
        Self::hosts(config).map(drop)
    }

    fn hosts(config: &Json) -> Result<Vec<String>, Error> {
        Ok(vec![host_port(json::require(config, "url", codes::NOTIFICATION_NOT_VALID)?)?])
    }

    fn notify(config: &Json, event: &Json) -> Result<(), Error> {
        let body = json!({
            "job_id": event.get("job_id"),
            "event": event.get("event"),
            "data": event.get("data"),
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let signed = signature(secret()?.as_bytes(), &bytes);
        send(json::require(config, "url", codes::NOTIFICATION_NOT_VALID)?, &bytes, &signed)
    }
}

fn send(url: &str, body: &[u8], signature: &str) -> Result<(), Error> {
    let url: copra_sdk::url::Url = url.parse().map_err(|_| Error::notification(format!("'{url}' is not a URL")))?;
    let length = body.len().to_string();
    let headers = [("content-type", "application/json"), ("content-length", length.as_str()), ("x-copra-signature", signature)];
    let status = copra_sdk::http::post(&url, &headers, body).map_err(Error::delivery)?;
    if (200..300).contains(&status) { Ok(()) } else { Err(Error::delivery(format!("the webhook answered HTTP {status}"))) }
}

copra_sdk::notifier_plugin!(HmacNotifier);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        let expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(signature(b"Jefe", b"what do ya want for nothing?"), expected);
    }
}
