//! Each tenant's webhook signing secret: derived from the server's root secret, the
//! tenant's namespace and its generation (`db::webhook_secret`), or set for its key in
//! the config file (`[webhooks.secrets]`, an explicit override that the API cannot
//! rotate). After a rotation, deliveries are signed with the new secret and, for
//! `webhook_secret_overlap_secs`, with the previous one too (`v1,<new> v1,<old>`, as
//! Standard Webhooks allows), so receivers can switch without losing a webhook.

use sea_orm::{ConnectionTrait, DbErr};

use crate::config::WebhookConfig;
use crate::db::webhook_secret::{self, Generation};
use crate::secret::{Secret, WebhookSecret};
use crate::tenant::Tenant;

/// A tenant's secrets as they stand now.
#[derive(Debug, Clone)]
pub struct TenantSecrets {
    /// The secret that signs, as the tenant is told it (`whsec_...`).
    pub text: Secret<String>,
    /// The same secret, as the host signs with it.
    pub current: WebhookSecret,
    /// The previous generation's secret, while it still signs beside the current one,
    /// and until when (Unix ms).
    pub previous: Option<(WebhookSecret, i64)>,
    /// When the secret was last rotated (Unix ms), if ever.
    pub rotated_at: Option<i64>,
    /// Set in the config file: the API does not rotate it.
    pub configured: bool,
}

impl TenantSecrets {
    /// The secrets a delivery is signed with, the current one first.
    pub fn signing(&self) -> Vec<WebhookSecret> {
        let mut secrets = vec![self.current.clone()];
        secrets.extend(self.previous.as_ref().map(|(secret, _)| secret.clone()));
        secrets
    }
}

/// Why a rotation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("this API key's webhook secret is set in the server's config file ([webhooks.secrets]); the operator rotates it there")]
    Configured,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The secrets of the tenant `owner` at `now` (Unix ms).
pub async fn of(db: &impl ConnectionTrait, config: &WebhookConfig, owner: &str, now: i64) -> Result<TenantSecrets, DbErr> {
    if let Some((text, secret)) = config.tenant_secrets.get(owner) {
        return Ok(TenantSecrets { text: text.clone(), current: secret.clone(), previous: None, rotated_at: None, configured: true });
    }
    let tenant = Tenant::of_owner(owner);
    let generation = webhook_secret::current(db, tenant.namespace()).await?;
    Ok(derive(config, &tenant, generation, now))
}

/// Rotate the tenant `owner`'s secret at `now` (Unix ms); its new secrets.
pub async fn rotate(db: &impl ConnectionTrait, config: &WebhookConfig, owner: &str, now: i64) -> Result<TenantSecrets, RotateError> {
    if config.tenant_secrets.contains_key(owner) {
        return Err(RotateError::Configured);
    }
    let tenant = Tenant::of_owner(owner);
    let generation = webhook_secret::rotate(db, tenant.namespace(), now).await?;
    tracing::info!(namespace = tenant.namespace(), generation = generation.generation, "webhook secret rotated");
    Ok(derive(config, &tenant, generation, now))
}

fn derive(config: &WebhookConfig, tenant: &Tenant, at: Generation, now: i64) -> TenantSecrets {
    let current = config.root.derive(tenant.namespace(), at.generation);
    let overlap = i64::try_from(config.secret_overlap.as_millis()).unwrap_or(i64::MAX);
    let previous = match at.rotated_at {
        Some(rotated) if at.generation > 0 && now < rotated.saturating_add(overlap) => {
            Some((config.root.derive(tenant.namespace(), at.generation - 1).secret, rotated.saturating_add(overlap)))
        }
        _ => None,
    };
    TenantSecrets { text: current.text, current: current.secret, previous, rotated_at: at.rotated_at, configured: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::WebhookRoot;
    use std::time::Duration;

    fn settings(overlap_secs: u64) -> WebhookConfig {
        WebhookConfig {
            root: WebhookRoot::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            tenant_secrets: [(
                crate::tenant::owner_of("key-c"),
                (Secret::new("whsec_c2VjcmV0LW9mLWtleS1jLXNldC1ieS1oYW5k".to_string()), WebhookSecret::parse("whsec_c2VjcmV0LW9mLWtleS1jLXNldC1ieS1oYW5k").unwrap()),
            )]
            .into(),
            secret_overlap: Duration::from_secs(overlap_secs),
            retry_schedule: vec![],
            redeliveries_per_minute: 30,
            generated: false,
        }
    }

    fn sign(secrets: &[WebhookSecret]) -> Vec<String> {
        secrets.iter().map(|s| s.sign("msg_1", "1", b"{}")).collect()
    }

    #[tokio::test]
    async fn a_rotation_signs_with_both_secrets_for_the_overlap_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display())).await.unwrap();
        let config = settings(60);
        let (a, b) = (crate::tenant::owner_of("key-a"), crate::tenant::owner_of("key-b"));
        let before = of(&db, &config, &a, 1_000).await.unwrap();
        assert_ne!(before.text.expose(), of(&db, &config, &b, 1_000).await.unwrap().text.expose(), "each key its own");
        assert!(before.previous.is_none() && before.rotated_at.is_none() && !before.configured);
        assert_eq!(before.signing().len(), 1);

        let after = rotate(&db, &config, &a, 10_000).await.unwrap();
        assert_ne!(after.text.expose(), before.text.expose());
        assert_eq!(after.previous.as_ref().unwrap().1, 70_000);
        assert_eq!(sign(&after.signing()), [sign(std::slice::from_ref(&after.current)), sign(std::slice::from_ref(&before.current))].concat());
        // Another node, reading the database, signs the same way; after the overlap only the new one signs.
        assert_eq!(sign(&of(&db, &config, &a, 69_999).await.unwrap().signing()), sign(&after.signing()));
        let later = of(&db, &config, &a, 70_000).await.unwrap();
        assert_eq!(sign(&later.signing()), sign(std::slice::from_ref(&after.current)));
        assert_eq!(later.text.expose(), after.text.expose());
        // With no overlap, the old secret stops at once.
        let none = of(&db, &settings(0), &a, 10_000).await.unwrap();
        assert!(none.previous.is_none());
    }

    #[tokio::test]
    async fn a_configured_secret_is_used_as_it_is_and_not_rotated_by_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display())).await.unwrap();
        let config = settings(60);
        let c = crate::tenant::owner_of("key-c");
        let secrets = of(&db, &config, &c, 0).await.unwrap();
        assert!(secrets.configured && secrets.text.expose() == "whsec_c2VjcmV0LW9mLWtleS1jLXNldC1ieS1oYW5k");
        assert!(matches!(rotate(&db, &config, &c, 0).await, Err(RotateError::Configured)));
    }
}
