//! The operator's work area (`[worker] ultrafast_store`): an S3 bucket every node reaches,
//! for what the nodes of a cluster that share no file system must hand one another (an
//! ultrafast job's chunks and pieces, direct uploads). One operator per process, its
//! requests through a client of the outbound policy that also allows the bucket's
//! endpoint (the operator named it; jobs' own transfers do not get it).

use std::path::Path;

use futures::TryStreamExt;
use opendal::Operator;
use tokio::io::AsyncWriteExt;

use crate::config::{Config, UltrafastStore};
use crate::net::{HttpClient, Outbound, Policy};

/// The operator's work-area bucket, built once per process.
#[derive(Clone)]
pub struct WorkArea {
    pub operator: Operator,
    /// Keys go below it (no trailing `/`).
    pub prefix: String,
}

impl WorkArea {
    /// An opendal S3 operator for the configured bucket. Its requests go through a client
    /// of the outbound policy that also allows the configured endpoint's host (the
    /// operator named it; jobs' own transfers do not get it).
    pub fn new(store: &UltrafastStore, config: &Config) -> anyhow::Result<WorkArea> {
        Self::with(store, &config.outbound, config.limits.transfer_idle, config.limits.transfer_total)
    }

    /// [`Self::new`] with the process's outbound policy and transfer time limits.
    fn with(store: &UltrafastStore, outbound: &Outbound, idle: std::time::Duration, total: std::time::Duration) -> anyhow::Result<WorkArea> {
        let mut options = vec![
            ("bucket".to_string(), store.bucket.clone()),
            ("region".to_string(), store.region.clone()),
            ("enable_virtual_host_style".to_string(), (!store.path_style).to_string()),
        ];
        let mut allow: Vec<String> = outbound.policy().rules().iter().map(rule_text).collect();
        if let Some(endpoint) = &store.endpoint {
            options.push(("endpoint".to_string(), endpoint.clone()));
            if let Some(host) = url::Url::parse(endpoint).ok().and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string())) {
                allow.push(host);
            }
        }
        if let (Some(id), Some(secret)) = (&store.access_key_id, &store.secret_access_key) {
            options.push(("access_key_id".to_string(), id.clone()));
            options.push(("secret_access_key".to_string(), secret.expose().clone()));
            options.push(("disable_config_load".to_string(), "true".to_string()));
            options.push(("disable_ec2_metadata".to_string(), "true".to_string()));
        }
        let policy = Policy::parse(&allow.join(",")).map_err(|e| anyhow::anyhow!("the ultrafast store's endpoint: {e}"))?;
        let timeouts = crate::net::Timeouts { connect: std::time::Duration::from_secs(10), idle, total: Some(total) };
        let client: HttpClient = Outbound::new(policy).client(timeouts)?;
        let operator = Operator::via_iter(opendal::Scheme::S3, options).map_err(|e| anyhow::anyhow!("the ultrafast store: {e}"))?;
        let operator = crate::storage::endpoint::under_policy(operator, &client);
        Ok(WorkArea { operator, prefix: store.prefix.clone() })
    }
}

/// A rule as the allow list spells it.
fn rule_text(rule: &crate::net::Rule) -> String {
    match rule {
        crate::net::Rule::Net { addr, len } => format!("{addr}/{len}"),
        crate::net::Rule::Host { name, subdomains: true } => format!("*.{name}"),
        crate::net::Rule::Host { name, subdomains: false } => name.clone(),
    }
}

impl std::fmt::Debug for WorkArea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkArea").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl WorkArea {
    /// The key of `name` below the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_string() } else { format!("{}/{name}", self.prefix) }
    }
}

/// Download the object `key` to the file `local`.
pub async fn download(operator: &Operator, key: &str, local: &Path) -> anyhow::Result<()> {
    let reader = operator.reader_with(key).chunk(8 << 20).await?;
    let mut stream = reader.into_bytes_stream(..).await?;
    let mut out = tokio::fs::File::create(local).await?;
    while let Some(chunk) = stream.try_next().await? {
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The work area's endpoint is reached even where the process's policy refuses its
    /// address (loopback here): the operator named it.
    #[tokio::test]
    async fn the_store_endpoint_is_allowed_for_the_work_area_only() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let read = socket.read(&mut request).await.unwrap();
            socket.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await.unwrap();
            String::from_utf8_lossy(&request[..read]).to_string()
        });
        let outbound = Outbound::new(Policy::default());
        assert!(outbound.check_url(&format!("http://127.0.0.1:{port}/")).is_err(), "jobs may not reach loopback");
        let store = UltrafastStore {
            bucket: "work-area".into(),
            prefix: "uf".into(),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            region: "us-east-1".into(),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some(crate::secret::Secret::new("secret".into())),
            path_style: true,
        };
        let area = WorkArea::with(&store, &outbound, std::time::Duration::from_secs(10), std::time::Duration::from_secs(10)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let err = download(&area.operator, &area.key("job-3/chunk-0.nut"), &tmp.path().join("chunk")).await.unwrap_err().to_string();
        assert!(!err.contains("does not connect"), "{err}");
        let request = server.await.unwrap();
        // Through the host's client (its user agent), to the key below the prefix.
        assert!(request.contains(" /work-area/uf/job-3/chunk-0.nut HTTP/1.1"), "{request}");
        assert!(request.to_ascii_lowercase().contains("user-agent: copra/"), "{request}");
    }
}
