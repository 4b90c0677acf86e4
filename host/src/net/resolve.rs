//! Name resolution under the policy: a name is resolved once, each address it resolves
//! to is checked, and reqwest connects only to the addresses that passed.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::Policy;

pub(super) struct PolicyResolver {
    policy: Arc<Policy>,
}

impl PolicyResolver {
    pub fn new(policy: Arc<Policy>) -> Self {
        PolicyResolver { policy }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refusals) = checked(&policy, &host, found);
            if allowed.is_empty() {
                let message = match refusals.into_iter().next() {
                    Some(refused) => refused.to_string(),
                    None => format!("'{host}' resolves to no address"),
                };
                return Err(message.into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Split resolved addresses into those the policy allows and the refusals. A name the
/// operator allowed by name keeps every address it resolves to.
fn checked(policy: &Policy, host: &str, found: Vec<SocketAddr>) -> (Vec<SocketAddr>, Vec<super::Refused>) {
    if policy.allows_name(host) {
        return (found, Vec::new());
    }
    let mut allowed = Vec::new();
    let mut refusals = Vec::new();
    for addr in found {
        match policy.check_addr(host, addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(refused) => refusals.push(refused),
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
