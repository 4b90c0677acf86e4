//! What the nodes sharing a database must agree on, checked as each node starts:
//!
//! - **The secret key** (`COPRA_SECRET_KEY`) seals every job's spec. The first node
//!   records a value sealed with it; a node that cannot open that value refuses to
//!   start, naming the key, instead of claiming jobs it can never read.
//! - **The webhook root** (`COPRA_WEBHOOK_SECRET`) derives every tenant's signing
//!   secret. A node whose root differs from the one recorded says so at start: its
//!   deliveries would carry signatures no tenant can verify.
//! - **The public URL** (`COPRA_PUBLIC_URL`) is where `local` output URLs point. On
//!   PostgreSQL, the first node that is given one records it, and a node given none
//!   takes the recorded one rather than its own listen address (where no API node of
//!   the cluster may listen).

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr};

use crate::config::Config;
use crate::db::cluster;
use crate::secret::Sealer;

/// What a node is told at start, before it takes any job.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "this node's secret key (COPRA_SECRET_KEY) is not the one this database was set up with, so it could open none of \
         its jobs. Set the same COPRA_SECRET_KEY on every node that shares the database (a node given none generated one \
         into its data directory's secret-key file: give that one to the others)"
    )]
    WrongKey,
    #[error("reading the cluster's settings: {0}")]
    Db(#[from] DbErr),
}

/// The value the first node seals; any node with the same key opens it.
const KEY_CHECK: &str = "copra cluster key check v1";

/// Check this node against the cluster's settings, recording them if it is the first;
/// `config.public_url` may become the cluster's.
pub async fn check(db: &DatabaseConnection, config: &mut Config) -> Result<(), ClusterError> {
    let now = crate::db::now_ms();
    check_key(db, &config.sealer, now).await?;

    // A MAC made with a secret derived from the root: it shows whether two roots are
    // the same and nothing of either.
    let derived = config.webhooks.root.derive("\0cluster-check", 0);
    let fingerprint = derived.secret.sign("cluster", "0", KEY_CHECK.as_bytes());
    let recorded = cluster::claim(db, "webhook_root", &fingerprint, now).await?;
    if recorded != fingerprint {
        tracing::error!(
            "this node's webhook root secret (COPRA_WEBHOOK_SECRET) is not the cluster's: its webhooks carry signatures \
             that tenants' verifiers refuse. Set the same COPRA_WEBHOOK_SECRET on every node (if you are changing it on \
             every node, restart them all and this goes away)"
        );
        cluster::replace(db, "webhook_root", &fingerprint, now).await?;
    }

    if db.get_database_backend() == DatabaseBackend::Postgres {
        if config.public_url_given {
            let recorded = cluster::claim(db, "public_url", &config.public_url, now).await?;
            if recorded != config.public_url {
                tracing::info!(cluster = recorded, this_node = config.public_url, "this node's public URL is not the cluster's first one");
            }
        } else if let Some(recorded) = cluster::get(db, "public_url").await? {
            tracing::info!(public_url = recorded, "no COPRA_PUBLIC_URL: local output URLs use the cluster's");
            config.public_url = recorded;
        } else {
            tracing::warn!(
                public_url = config.public_url,
                "no COPRA_PUBLIC_URL on this node or in the cluster: `local` output URLs written here point at this node's \
                 own listen address; set COPRA_PUBLIC_URL to the address clients reach the API nodes at"
            );
        }
    }
    Ok(())
}

/// Record a value sealed with this node's key if none is recorded yet; refuse the node
/// if the recorded one does not open with its key.
async fn check_key(db: &impl ConnectionTrait, sealer: &Sealer, now: i64) -> Result<(), ClusterError> {
    let sealed = cluster::claim(db, "key_check", &sealer.seal(KEY_CHECK), now).await?;
    match sealer.open(&sealed) {
        Ok(opened) if opened == KEY_CHECK => Ok(()),
        _ => Err(ClusterError::WrongKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_first_nodes_key_passes() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display())).await.unwrap();
        let first = Sealer::from_text(&Sealer::generate_key()).unwrap();
        check_key(&db, &first, 1).await.unwrap();
        check_key(&db, &first, 2).await.expect("the same key passes on every later start");
        let other = Sealer::from_text(&Sealer::generate_key()).unwrap();
        let refused = check_key(&db, &other, 3).await.unwrap_err();
        assert!(matches!(refused, ClusterError::WrongKey));
        assert!(refused.to_string().contains("same COPRA_SECRET_KEY on every node"), "{refused}");
        check_key(&db, &first, 4).await.expect("a refused node changes nothing");
    }

    #[tokio::test]
    async fn an_unsealed_or_foreign_record_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display())).await.unwrap();
        // Text that was never sealed opens as itself: it must still not pass.
        cluster::claim(&db, "key_check", "not sealed", 1).await.unwrap();
        let sealer = Sealer::from_text(&Sealer::generate_key()).unwrap();
        assert!(matches!(check_key(&db, &sealer, 2).await, Err(ClusterError::WrongKey)));
    }
}
