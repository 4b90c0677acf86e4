//! Webhook settings: the root secret every API key's signing secret is derived from,
//! explicit per-key secrets, how long a rotated secret still signs, the retry schedule
//! of deliveries and the redelivery rate.
//!
//! ```toml
//! webhook_secret = "whsec_..."        # the root; or COPRA_WEBHOOK_SECRET; generated when unset
//! webhook_secret_overlap_secs = 86400 # or COPRA_WEBHOOK_SECRET_OVERLAP_SECS
//!
//! [webhooks]
//! retry_schedule_secs = [5, 300, 1800, 7200, 18000, 36000, 36000]
//! redeliveries_per_minute = 30
//!
//! [webhooks.secrets]                   # per API key, an explicit override of its derived secret
//! "the-api-key-of-tenant-a" = "whsec_..."
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::secret::{Secret, WebhookRoot, WebhookSecret};

/// Standard Webhooks' own schedule after the first attempt: 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h, 10 h (eight attempts over about 27 hours).
pub const DEFAULT_RETRY_SCHEDULE_SECS: &[u64] = &[5, 300, 1800, 7200, 18000, 36000, 36000];
/// How long a rotated-out secret still signs, beside the new one (24 hours).
pub const DEFAULT_SECRET_OVERLAP_SECS: u64 = 24 * 3600;
/// Redeliveries one API key may ask for per minute, by default.
pub const DEFAULT_REDELIVERIES_PER_MINUTE: u32 = 30;
/// The longest overlap the operator may set (30 days).
const MAX_OVERLAP_SECS: u64 = 30 * 24 * 3600;
/// The longest wait one entry of the schedule may ask for (a week).
const MAX_RETRY_SECS: u64 = 7 * 24 * 3600;
/// Most entries a schedule may have.
const MAX_RETRIES: usize = 100;

/// How webhooks are signed and retried.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The root secret (`COPRA_WEBHOOK_SECRET`, `webhook_secret`, or generated into
    /// `<data_dir>/webhook-secret`). It signs nothing itself: each API key's signing
    /// secret is derived from it, its namespace and its generation.
    pub root: WebhookRoot,
    /// Explicit secrets that replace the derived one for one tenant, by the tenant's
    /// owner id (the hash of its API key), from `[webhooks.secrets]`. Such a key's
    /// secret is rotated by changing the config file, not through the API.
    pub tenant_secrets: HashMap<String, (Secret<String>, WebhookSecret)>,
    /// How long, after a key's secret is rotated, its deliveries still carry a signature
    /// made with the previous secret too (`webhook_secret_overlap_secs`,
    /// `COPRA_WEBHOOK_SECRET_OVERLAP_SECS`; default 24 hours; 0: none).
    pub secret_overlap: Duration,
    /// The waits before each retry of a failed delivery; after the last one fails, the
    /// event is marked failed. Each wait is varied by ±20 % when used.
    pub retry_schedule: Vec<Duration>,
    /// Redeliveries (`POST .../redeliver`) one API key may ask for per minute on one API
    /// node (`[webhooks] redeliveries_per_minute`,
    /// `COPRA_WEBHOOKS_REDELIVERIES_PER_MINUTE`; default 30); beyond it, a 429.
    pub redeliveries_per_minute: u32,
    /// Whether the root secret was generated on this start (the operator is told where
    /// it is kept).
    pub generated: bool,
}

/// `[webhooks]` as written in the config file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWebhooks {
    /// Seconds to wait before each retry.
    retry_schedule_secs: Option<Vec<u64>>,
    /// API key → `whsec_...` secret.
    #[serde(default)]
    secrets: HashMap<String, String>,
    /// Redeliveries one key may ask for per minute.
    redeliveries_per_minute: Option<u32>,
}

/// Build the webhook settings from the file, the environment (`env`) and the data
/// directory. `api_keys` are the keys the server accepts: a per-key secret must name one.
pub(super) fn load(
    file: FileWebhooks,
    file_secret: Option<String>,
    file_overlap_secs: Option<u64>,
    api_keys: &[String],
    data_dir: &Path,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<WebhookConfig, ConfigError> {
    let invalid = |name: &'static str, message: String| ConfigError::Invalid { name, message };
    let (root, generated) = match env("COPRA_WEBHOOK_SECRET").or(file_secret) {
        Some(text) => (WebhookRoot::parse(&text).map_err(|e| invalid("COPRA_WEBHOOK_SECRET", e.to_string()))?, false),
        None => {
            let path = data_dir.join("webhook-secret");
            let existed = path.exists();
            let text = super::persistent_secret(&path, WebhookSecret::generate)?;
            let root = WebhookRoot::parse(&text)
                .map_err(|e| invalid("webhook-secret file", format!("{}: {e} (delete it to have a new one generated)", path.display())))?;
            (root, !existed)
        }
    };

    let mut tenant_secrets = HashMap::new();
    for (key, text) in file.secrets {
        // Neither the key nor the secret is repeated in a message.
        if !api_keys.contains(&key) {
            return Err(invalid(
                "[webhooks.secrets]",
                "an entry names a key that is not one of the server's API keys (COPRA_API_KEYS or api_keys)".into(),
            ));
        }
        let secret = WebhookSecret::parse(&text).map_err(|e| invalid("[webhooks.secrets]", format!("an entry's secret is not valid: {e}")))?;
        tenant_secrets.insert(crate::tenant::owner_of(&key), (Secret::new(text.trim().to_string()), secret));
    }

    let overlap = match env("COPRA_WEBHOOK_SECRET_OVERLAP_SECS") {
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| invalid("COPRA_WEBHOOK_SECRET_OVERLAP_SECS", format!("'{text}' is not a whole number of seconds")))?,
        None => file_overlap_secs.unwrap_or(DEFAULT_SECRET_OVERLAP_SECS),
    };
    if overlap > MAX_OVERLAP_SECS {
        return Err(invalid("webhook_secret_overlap_secs", format!("{overlap} s is more than the {MAX_OVERLAP_SECS} s (30 days) allowed")));
    }
    let redeliveries_per_minute = match env("COPRA_WEBHOOKS_REDELIVERIES_PER_MINUTE") {
        Some(text) => text
            .trim()
            .parse::<u32>()
            .map_err(|_| invalid("COPRA_WEBHOOKS_REDELIVERIES_PER_MINUTE", format!("'{text}' is not a whole number")))?,
        None => file.redeliveries_per_minute.unwrap_or(DEFAULT_REDELIVERIES_PER_MINUTE),
    };
    if redeliveries_per_minute == 0 {
        return Err(invalid("webhooks.redeliveries_per_minute", "must be above zero".into()));
    }

    let seconds = match env("COPRA_WEBHOOKS_RETRY_SCHEDULE_SECS") {
        Some(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().map_err(|_| invalid("COPRA_WEBHOOKS_RETRY_SCHEDULE_SECS", format!("'{s}' is not a whole number of seconds"))))
            .collect::<Result<Vec<_>, _>>()?,
        None => file.retry_schedule_secs.unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE_SECS.to_vec()),
    };
    let retry_schedule = schedule(&seconds).map_err(|e| invalid("webhooks.retry_schedule_secs", e.to_string()))?;
    Ok(WebhookConfig {
        root,
        tenant_secrets,
        secret_overlap: Duration::from_secs(overlap),
        retry_schedule,
        redeliveries_per_minute,
        generated,
    })
}

/// Why a retry schedule (`[webhooks] retry_schedule_secs`,
/// `COPRA_WEBHOOKS_RETRY_SCHEDULE_SECS`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// More waits than [`MAX_RETRIES`].
    #[error("{0} retries are more than the {MAX_RETRIES} allowed")]
    TooMany(usize),
    /// A wait of 0 s or of more than a week ([`MAX_RETRY_SECS`]).
    #[error("each wait must be 1 to {MAX_RETRY_SECS} seconds; {0} is not")]
    Wait(u64),
}

/// Check a schedule: each wait 1 s to a week, at most [`MAX_RETRIES`] of them. An empty
/// schedule means one attempt and no retry.
fn schedule(seconds: &[u64]) -> Result<Vec<Duration>, ScheduleError> {
    if seconds.len() > MAX_RETRIES {
        return Err(ScheduleError::TooMany(seconds.len()));
    }
    seconds
        .iter()
        .map(|&s| if (1..=MAX_RETRY_SECS).contains(&s) { Ok(Duration::from_secs(s)) } else { Err(ScheduleError::Wait(s)) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_secret_is_generated_once_and_shown_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(FileWebhooks::default(), None, None, &[], dir.path(), &no_env).unwrap();
        assert!(first.generated, "told on the start that made it");
        let second = load(FileWebhooks::default(), None, None, &[], dir.path(), &no_env).unwrap();
        assert!(!second.generated);
        let stored = std::fs::read_to_string(dir.path().join("webhook-secret")).unwrap();
        assert!(stored.starts_with("whsec_"));
        let derived = |c: &WebhookConfig| c.root.derive("tA", 0).text.expose().clone();
        assert_eq!(derived(&first), derived(&second), "the same root on every start");
        assert_eq!(first.secret_overlap, Duration::from_secs(DEFAULT_SECRET_OVERLAP_SECS));
        assert_eq!(first.redeliveries_per_minute, DEFAULT_REDELIVERIES_PER_MINUTE);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(dir.path().join("webhook-secret")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(first.retry_schedule.len(), DEFAULT_RETRY_SCHEDULE_SECS.len());
    }

    #[test]
    fn per_key_secrets_are_kept_for_their_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = WebhookSecret::generate();
        let file: FileWebhooks =
            toml::from_str(&format!("retry_schedule_secs = [1, 2]\nredeliveries_per_minute = 5\n[secrets]\nkey-a = \"{tenant}\"\n")).unwrap();
        let server = WebhookSecret::generate();
        let config = load(file, Some(server.clone()), Some(60), &["key-a".into(), "key-b".into()], dir.path(), &no_env).unwrap();
        let owner_a = crate::tenant::owner_of("key-a");
        assert_eq!(config.tenant_secrets[&owner_a].0.expose(), &tenant);
        assert!(!config.tenant_secrets.contains_key(&crate::tenant::owner_of("key-b")));
        assert_eq!(config.retry_schedule, [Duration::from_secs(1), Duration::from_secs(2)]);
        assert_eq!((config.secret_overlap, config.redeliveries_per_minute), (Duration::from_secs(60), 5));
        assert!(!config.generated && !dir.path().join("webhook-secret").exists());
        let shown = format!("{config:?}");
        assert!(!shown.contains(&tenant[6..]) && !shown.contains(&server[6..]), "{shown}");
    }

    #[test]
    fn mistakes_are_named_without_the_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file: FileWebhooks = toml::from_str("[secrets]\nunknown-key = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n").unwrap();
        let err = load(file, None, None, &["key-a".into()], dir.path(), &no_env).unwrap_err().to_string();
        assert!(err.contains("[webhooks.secrets]") && !err.contains("unknown-key") && !err.contains("MfKQ"), "{err}");
        let err = load(FileWebhooks::default(), Some("plain-text".into()), None, &[], dir.path(), &no_env).unwrap_err().to_string();
        assert!(err.contains("COPRA_WEBHOOK_SECRET") && err.contains("whsec_"), "{err}");
        let env = |name: &str| (name == "COPRA_WEBHOOKS_RETRY_SCHEDULE_SECS").then(|| "1, 2,x".to_string());
        let err = load(FileWebhooks::default(), None, None, &[], dir.path(), &env).unwrap_err().to_string();
        assert!(err.contains("'x'"), "{err}");
        assert!(schedule(&[0]).is_err() && schedule(&[]).unwrap().is_empty());
        let env = |name: &str| (name == "COPRA_WEBHOOKS_RETRY_SCHEDULE_SECS").then(|| "1,1,2".to_string());
        assert_eq!(load(FileWebhooks::default(), None, None, &[], dir.path(), &env).unwrap().retry_schedule.len(), 3);
        let env = |name: &str| (name == "COPRA_WEBHOOK_SECRET_OVERLAP_SECS").then(|| "99999999".to_string());
        let err = load(FileWebhooks::default(), None, None, &[], dir.path(), &env).unwrap_err().to_string();
        assert!(err.contains("webhook_secret_overlap_secs"), "{err}");
        let env = |name: &str| (name == "COPRA_WEBHOOK_SECRET_OVERLAP_SECS").then(|| "0".to_string());
        assert_eq!(load(FileWebhooks::default(), None, None, &[], dir.path(), &env).unwrap().secret_overlap, Duration::ZERO);
    }

    #[test]
    fn schedule_mistakes_are_told() {
        assert_eq!(schedule(&[0]).unwrap_err().to_string(), "each wait must be 1 to 604800 seconds; 0 is not");
        assert_eq!(schedule(&[5, 604801]).unwrap_err(), ScheduleError::Wait(604801));
        assert_eq!(schedule(&[1; 101]).unwrap_err().to_string(), "101 retries are more than the 100 allowed");
        assert_eq!(schedule(&[1, 604800]).unwrap(), [Duration::from_secs(1), Duration::from_secs(604800)]);
    }
}
