//! `copra probe FILE|URL`: the metadata Copra would store for an input, as JSON.

use anyhow::Context;
use futures::TryStreamExt;
use tokio::io::AsyncWriteExt;

pub async fn probe(source: &str) -> anyhow::Result<()> {
    // A URL is fetched to a temporary file first: FFmpeg here only opens files.
    let scratch = tempfile::tempdir().context("no temporary directory")?;
    let path = if source.starts_with("http://") || source.starts_with("https://") {
        let path = scratch.path().join("input");
        let response = reqwest::get(source).await.with_context(|| format!("fetching {}", crate::secret::redact_url(source)))?;
        anyhow::ensure!(response.status().is_success(), "fetching {}: the server answered {}", crate::secret::redact_url(source), response.status());
        let mut file = tokio::fs::File::create(&path).await?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.try_next().await? {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        path
    } else {
        std::path::PathBuf::from(source)
    };
    // Probed as a job's input is: in the confined engine (the file may be a stranger's).
    let engine = crate::confined::Engine::new(&crate::config::Limits::default());
    let (_, metadata) = engine.probe("probe", &path).await.map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    println!("{}", serde_json::to_string_pretty(&metadata)?);
    Ok(())
}
