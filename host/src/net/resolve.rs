//! Name resolution under the policy: a name is resolved once, each address it resolves
//! to is checked, and reqwest connects only to the addresses that passed.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{Policy, Refused};

pub(super) struct PolicyResolver {
    policy: Arc<Policy>,
}

impl PolicyResolver {
    pub fn new(policy: Arc<Policy>) -> Self {
        PolicyResolver { policy }
    }
}

/// Why a name gave no address to connect to. Typed, so that a caller can tell a
/// refusal from a failed lookup in the chain of a reqwest error ([`super::describe`]).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Every address the name resolved to is one the policy refuses.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The lookup failed or found nothing.
    #[error("the host name '{host}' could not be resolved: {message}")]
    Lookup {
        /// The name looked up.
        host: String,
        /// What the resolver said.
        message: String,
    },
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup = |message: String| ResolveError::Lookup { host: host.clone(), message };
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => found.collect(),
                Err(err) => return Err(Box::new(lookup(err.to_string())) as Box<dyn std::error::Error + Send + Sync>),
            };
            let (allowed, refusals) = checked(&policy, &host, found);
            if allowed.is_empty() {
                let err = match refusals.into_iter().next() {
                    Some(refused) => ResolveError::Refused(refused),
                    None => lookup("it has no address".into()),
                };
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Split resolved addresses into those the policy allows and the refusals. A name the
/// operator allowed by name keeps every address it resolves to.
fn checked(policy: &Policy, host: &str, found: Vec<SocketAddr>) -> (Vec<SocketAddr>, Vec<Refused>) {
    if policy.allows_name(host) {
        return (found, Vec::new());
    }
    let mut allowed = Vec::new();
    let mut refusals = Vec::new();
    for addr in found {
        match policy.check_addr(host, addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(refused) => {
                // The user is told the class only; the operator sees the address.
                tracing::warn!(host = ?host, addr = %addr.ip(), class = refused.class.as_str(), "a resolved address was refused by the outbound policy");
                refusals.push(refused)
            }
        }
    }
    (allowed, refusals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_of_a_name_are_dropped_and_named() {
        let addrs = |list: &[&str]| list.iter().map(|a| SocketAddr::new(a.parse().unwrap(), 0)).collect::<Vec<_>>();
        let (allowed, refused) = checked(&Policy::default(), "rebind.example", addrs(&["93.184.216.34", "127.0.0.1"]));
        assert_eq!(allowed, addrs(&["93.184.216.34"]));
        assert_eq!(refused.len(), 1);
        let (allowed, _) = checked(&Policy::parse("minio.internal").unwrap(), "minio.internal", addrs(&["10.0.0.5"]));
        assert_eq!(allowed.len(), 1, "a name the operator allowed keeps its private address");
    }

    #[tokio::test]
    async fn localhost_is_refused_by_default_and_allowed_when_granted() {
        let resolver = PolicyResolver::new(Arc::new(Policy::default()));
        let err = resolver.resolve("localhost".parse().unwrap()).await.err().expect("refused");
        assert!(err.to_string().contains("loopback"), "{err}");
        let resolver = PolicyResolver::new(Arc::new(Policy::parse("127.0.0.0/8, ::1/128").unwrap()));
        assert!(resolver.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
