//! `copra submit video.mp4 -o mp4:720p -o httpstream [--download DIR]`: upload a file
//! (resumably, see [`super::tus`]), build the job from the formats given (or `mp4`),
//! submit it, follow it to its end and print the URLs; with `--download`, fetch them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::jobs::{Api, watch};

/// What `copra submit FILE` was asked for.
pub struct MediaSubmit {
    pub file: PathBuf,
    /// Format strings (`mp4:720p`, `httpstream`, `jpg:320x`); none means `mp4`.
    pub outputs: Vec<String>,
    pub download: Option<PathBuf>,
    pub dry_run: bool,
    pub detach: bool,
}

pub async fn submit_media(api: &Api, ask: MediaSubmit) -> anyhow::Result<()> {
    let url = super::tus::upload(api, &ask.file).await?;
    let upload = url.rsplit('/').next().unwrap_or_default().to_string();
    let job = job_for(&upload, &ask.file, &ask.outputs);
    let jobs = api.url("/v2/jobs");
    if ask.dry_run {
        let plan = api.send(api.http.post(&jobs).query(&[("dry_run", "true")]).json(&job)).await?;
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    let created = api.send(api.http.post(&jobs).json(&job)).await?;
    let id = created.get("id").and_then(Value::as_str).context("the server answered without a job id")?.to_string();
    eprintln!("job {id} submitted");
    if ask.detach {
        println!("{id}");
        return Ok(());
    }
    watch(api, &id).await?;
    if let Some(dir) = &ask.download {
        download(api, &id, dir).await?;
    }
    Ok(())
}

/// The job of an upload: `local` storage below a directory named after the file, one
/// output per format.
fn job_for(upload: &str, file: &Path, formats: &[String]) -> Value {
    let stem: String = file
        .file_stem()
        .map(|s| s.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect())
        .filter(|s: &String| !s.is_empty())
        .unwrap_or_else(|| "upload".to_string());
    let formats = if formats.is_empty() { vec!["mp4".to_string()] } else { formats.to_vec() };
    let mut outputs = Map::new();
    for format in formats {
        let container = format.split(':').next().unwrap_or("mp4").to_string();
        let name: String = format.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let params = if container == "httpstream" {
            json!({"hls": {"path": format!("/{name}/hls")}, "dash": {"path": format!("/{name}/dash")}})
        } else {
            json!({"path": format!("/{name}.{}", extension(&container))})
        };
        outputs.insert(format, params);
    }
    json!({
        "input": {"upload": upload},
        "storage": {"service": "local", "path": format!("/{stem}-{}", &upload[..upload.len().min(8)])},
        "outputs": outputs,
    })
}

fn extension(container: &str) -> &str {
    match container {
        "jpg" | "jpeg" => "jpg",
        "aac" => "m4a",
        other => other,
    }
}

/// Fetch every output URL of the finished job `id` into `dir`; an HLS playlist brings
/// the playlists and segments it names.
async fn download(api: &Api, id: &str, dir: &Path) -> anyhow::Result<()> {
    let job = api.send(api.http.get(api.url(&format!("/v2/jobs/{id}")))).await?;
    tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    let mut queue: Vec<String> = Vec::new();
    for output in job.get("outputs").and_then(Value::as_array).into_iter().flatten() {
        queue.extend(output.get("url").and_then(Value::as_str).map(str::to_string));
        // A package's `urls`: `[{"format": "hls", "url": ...}, ...]`.
        let urls = output.get("urls").and_then(Value::as_array).into_iter().flatten();
        queue.extend(urls.filter_map(|u| u.get("url").and_then(Value::as_str).or_else(|| u.as_str())).map(str::to_string));
    }
    let prefix = common_prefix(&queue);
    let mut seen = std::collections::HashSet::new();
    let mut count = 0;
    while let Some(url) = queue.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let response = api.http.get(&url).basic_auth(&api.key, Some("")).send().await.with_context(|| format!("fetching {url}"))?;
        if !response.status().is_success() {
            bail!("{}: fetching {url}", response.status());
        }
        let bytes = response.bytes().await.with_context(|| format!("fetching {url}"))?;
        let relative = url.strip_prefix(&prefix).unwrap_or(&url).split(['?', '#']).next().unwrap_or_default().trim_start_matches('/');
        if relative.split('/').any(|part| part == ".." || part.is_empty()) {
            continue;
        }
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&path, &bytes).await.with_context(|| format!("writing {}", path.display()))?;
        count += 1;
        if relative.ends_with(".m3u8") {
            queue.extend(playlist_references(&url, &String::from_utf8_lossy(&bytes)));
        }
    }
    eprintln!("downloaded {count} files into {}", dir.display());
    Ok(())
}

/// The URLs an HLS playlist names (its URI lines and `URI="..."` attributes).
fn playlist_references(base: &str, text: &str) -> Vec<String> {
    let Ok(base) = url::Url::parse(base) else { return Vec::new() };
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            found.push(line.to_string());
        } else if let Some((_, rest)) = line.split_once("URI=\"") {
            found.extend(rest.split_once('"').map(|(uri, _)| uri.to_string()));
        }
    }
    found.iter().filter_map(|r| base.join(r).ok()).filter(|u| u.origin() == base.origin()).map(|u| u.to_string()).collect()
}

/// The longest directory prefix the URLs share (so files land below `dir` as they are
/// below the storage path).
fn common_prefix(urls: &[String]) -> String {
    let Some(first) = urls.first() else { return String::new() };
    let mut prefix = first.rsplit_once('/').map(|(p, _)| p.to_string()).unwrap_or_default();
    for url in &urls[1..] {
        while !url.starts_with(&format!("{prefix}/")) {
            match prefix.rsplit_once('/') {
                Some((shorter, _)) => prefix = shorter.to_string(),
                None => return String::new(),
            }
        }
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_per_upload_and_formats() {
        let job = job_for("AbCdEfGh123", Path::new("/x/My Clip.mp4"), &["mp4:720p".into(), "httpstream".into()]);
        assert_eq!(job["input"]["upload"], "AbCdEfGh123");
        assert_eq!(job["storage"]["path"], "/My_Clip-AbCdEfGh");
        assert_eq!(job["outputs"]["mp4:720p"]["path"], "/mp4_720p.mp4");
        assert_eq!(job["outputs"]["httpstream"]["hls"]["path"], "/httpstream/hls");
        assert_eq!(job_for("u", Path::new("a.mov"), &[])["outputs"]["mp4"]["path"], "/mp4.mp4");
    }

    #[test]
    fn playlists_name_their_parts_and_prefixes_are_shared() {
        let refs = playlist_references("http://h/f/ns/a/hls/master.m3u8", "#EXTM3U\n#EXT-X-MEDIA:URI=\"audio.m3u8\"\nv720/index.m3u8\nhttp://evil/x.ts\n");
        assert_eq!(refs, ["http://h/f/ns/a/hls/audio.m3u8", "http://h/f/ns/a/hls/v720/index.m3u8"]);
        assert_eq!(common_prefix(&["http://h/f/a/x.mp4".into(), "http://h/f/a/hls/m.m3u8".into()]), "http://h/f/a");
    }
}
