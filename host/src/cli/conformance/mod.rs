//! `copra plugins test FILE.wasm`: a plugin run through its world's contract without a
//! server. The component is loaded by the same plugin host a server uses (same sandbox,
//! same limits, same checks of every answer), then `describe` and each function of its
//! kind are called with valid and invalid inputs and with fixture media (SD, HD, 4K,
//! rotated, HDR, audio-only). A call passes when it answers, or refuses with an API
//! error code and a message; a trap, a timeout, a memory overrun, an answer the host
//! refuses, or two different answers to the same question fail it. Prints a table and
//! fails (exit 1) when any row failed.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::config::PluginGrant;
use crate::plugins::{PluginError, PluginKind, Plugins};
use crate::types::MediaInfo;

mod kinds;

/// One row of the report.
pub(super) struct Row {
    check: String,
    pass: bool,
    ms: u128,
    detail: String,
}

#[derive(Default)]
pub(super) struct Report(Vec<Row>);

impl Report {
    pub(super) fn row(&mut self, check: impl Into<String>, pass: bool, ms: u128, detail: impl Into<String>) {
        self.0.push(Row { check: check.into(), pass, ms, detail: detail.into() });
    }

    /// A call that must not break the contract: an answer, or the plugin's own refusal
    /// with a code and a message. Returns the answer.
    pub(super) fn call<T>(&mut self, check: impl Into<String>, ms: u128, result: Result<T, PluginError>, shown: impl Fn(&T) -> String) -> Option<T> {
        match result {
            Ok(value) => {
                self.row(check, true, ms, shown(&value));
                Some(value)
            }
            Err(err) => {
                let (pass, detail) = judged(&err);
                self.row(check, pass, ms, detail);
                None
            }
        }
    }

    fn failed(&self) -> usize {
        self.0.iter().filter(|r| !r.pass).count()
    }

    fn print(&self) {
        let width = self.0.iter().map(|r| r.check.chars().count()).max().unwrap_or(5).clamp(5, 60);
        println!("{:<width$}  {:<4}  {:>6}  DETAIL", "CHECK", "", "MS");
        for row in &self.0 {
            let detail: String = row.detail.chars().take(110).collect();
            println!("{:<width$}  {:<4}  {:>6}  {}", row.check, if row.pass { "ok" } else { "FAIL" }, row.ms, detail.replace('\n', " "));
        }
        println!("{} checks, {} failed", self.0.len(), self.failed());
    }
}

/// Whether an error is a contract-keeping refusal, and what to show.
pub(super) fn judged(err: &PluginError) -> (bool, String) {
    match err {
        PluginError::Rejected { code, message } if !code.is_empty() && !message.trim().is_empty() => {
            match copra_codes::ErrorCode::of_plugin(code) {
                Some(_) => (true, format!("refused ({code}): {message}")),
                None => (false, format!("refused with the code '{code}', which the host does not pass on (it answers with the code of what was asked): use one of the SDK's `codes` ({})", plugin_codes())),
            }
        }
        PluginError::Rejected { code, message } => (false, format!("refused without a code or a message (code '{code}', message '{message}')")),
        other => (false, format!("{}: {}", other.code(), other.describe())),
    }
}

/// The codes a plugin may answer with, as a list for a message.
fn plugin_codes() -> String {
    let codes: Vec<&str> = copra_codes::ErrorCode::ALL.iter().filter(|c| c.plugin_may_answer()).map(|c| c.as_str()).collect();
    codes.join(", ")
}

/// Time one call.
pub(super) async fn timed<T>(call: impl std::future::Future<Output = T>) -> (u128, T) {
    let start = Instant::now();
    let value = call.await;
    (start.elapsed().as_millis(), value)
}

/// Ask twice; a plugin must answer the same question the same way.
pub(super) async fn twice<T: Debug, F: std::future::Future<Output = Result<T, PluginError>>>(
    report: &mut Report,
    check: String,
    call: impl Fn() -> F,
) -> Option<T> {
    let (ms, first) = timed(call()).await;
    let second = call().await;
    let same = format!("{:?}", first.as_ref().map_err(|e| e.to_string())) == format!("{:?}", second.as_ref().map_err(|e| e.to_string()));
    let answer = report.call(check.clone(), ms, first, |v| format!("{v:?}"));
    if !same {
        report.row(format!("{check} (again)"), false, 0, "a second identical call answered differently: answers must be deterministic");
    }
    answer
}

/// The inputs a plugin is shown: what the host's probe reports for common media.
pub fn fixtures() -> Vec<(&'static str, MediaInfo)> {
    let video = |width, height, fps: f64, codec: &str| MediaInfo {
        width,
        height,
        duration: 30.0,
        fps,
        bitrate: 4_000_000,
        has_video: true,
        has_audio: true,
        video_codec: codec.into(),
        audio_codec: "aac".into(),
        pix_fmt: "yuv420p".into(),
        sample_rate: 48_000,
        channels: 2,
        size: 15_000_000,
        format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
        color_transfer: "bt709".into(),
        color_primaries: "bt709".into(),
        ..Default::default()
    };
    let rotated = MediaInfo { rotation: 90, ..video(1920, 1080, 30.0, "h264") };
    let hdr = MediaInfo {
        pix_fmt: "yuv420p10le".into(),
        color_transfer: "smpte2084".into(),
        color_primaries: "bt2020".into(),
        ..video(3840, 2160, 24.0, "hevc")
    };
    let audio = MediaInfo {
        duration: 30.0,
        bitrate: 128_000,
        has_audio: true,
        audio_codec: "mp3".into(),
        sample_rate: 44_100,
        channels: 2,
        size: 480_000,
        format_name: "mp3".into(),
        ..Default::default()
    };
    vec![
        ("sd", video(640, 480, 25.0, "h264")),
        ("hd", video(1920, 1080, 30.0, "h264")),
        ("4k", video(3840, 2160, 60.0, "h264")),
        ("rotated", rotated),
        ("hdr", hdr),
        ("audio-only", audio),
    ]
}

/// Conditions tried as valid inputs: the Coconut `if` language and the example plugins'.
const SAMPLE_CONDITIONS: &[&str] = &["{{ input.width }} >= 1280", "input.width >= 1280", "landscape and hd"];

/// The grant of a plugin the config file says nothing about (see [`run`]).
fn kit_grant() -> PluginGrant {
    PluginGrant {
        allowed_hosts: vec!["hooks.example.com:443".into()],
        schemes: Some(crate::plugins::grantable_schemes().into_iter().map(String::from).collect()),
        ..Default::default()
    }
}

/// Run the kit on `file` with the grants of `config` (a TOML file's `[plugins.*]`).
pub async fn run(file: &Path, config: Option<&Path>, samples: &[String]) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(file).await.with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).context("the file has no name")?;
    let mut grants = match config {
        Some(path) => read_grants(path).await?,
        None => HashMap::new(),
    };
    // Without a grant of its own, the plugin gets what its checks need and nothing that
    // matters: the kit's fixture webhook host (nothing is ever delivered) and every scheme
    // an operator could grant (no target is ever connected to). Time and memory stay
    // the defaults.
    grants.entry(name.clone()).or_insert_with(kit_grant);
    let scratch = std::env::temp_dir().join(format!("copra-plugin-test-{}", crate::random_id(10)));
    let result = async {
        let dir = scratch.join("plugins");
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join(format!("{name}.wasm")), &bytes).await?;
        let outbound = crate::net::Outbound::new(crate::net::Policy::parse("").map_err(anyhow::Error::msg)?);
        let (load_ms, plugins) = timed(Plugins::start(&dir, &scratch.join("cache"), grants, outbound)).await;
        let plugins = plugins?;
        let mut report = Report::default();
        exercise(&mut report, &plugins, &name, load_ms, samples).await;
        report.print();
        anyhow::Ok(report.failed())
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    match result? {
        0 => Ok(()),
        n => bail!("{n} check(s) failed"),
    }
}

async fn read_grants(path: &Path) -> anyhow::Result<HashMap<String, PluginGrant>> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        plugins: HashMap<String, PluginGrant>,
    }
    let text = tokio::fs::read_to_string(path).await.with_context(|| format!("reading {}", path.display()))?;
    Ok(toml::from_str::<File>(&text).with_context(|| format!("{} is not a valid config file", path.display()))?.plugins)
}

async fn exercise(report: &mut Report, plugins: &Arc<Plugins>, name: &str, load_ms: u128, samples: &[String]) {
    let errors = plugins.errors();
    let Some(plugin) = plugins.list().into_iter().find(|p| &*p.name == name) else {
        let why = errors.iter().map(|e| e.error.clone()).collect::<Vec<_>>().join("; ");
        report.row("loads", false, load_ms, if why.is_empty() { "not loaded".to_string() } else { why });
        return;
    };
    report.row("loads", true, load_ms, format!("{} world, sha256 {}", plugin.kind.as_str(), &plugin.sha256[..12]));
    let info = &plugin.info;
    let described = !info.name.trim().is_empty() && !info.version.trim().is_empty();
    report.row("describe", described, 0, format!("{} {} provides {:?}", info.name, info.version, info.provides));
    if plugin.kind != PluginKind::Condition && info.provides.is_empty() {
        report.row("describe: provides", false, 0, "a storage, format or notifier plugin must provide at least one name");
    }
    let provides = info.provides.clone();
    match plugin.kind {
        PluginKind::Format => kinds::format(report, plugins, &provides).await,
        PluginKind::Storage => kinds::storage(report, plugins, &provides).await,
        PluginKind::Notifier => kinds::notifier(report, plugins, &provides).await,
        PluginKind::Condition => {
            let mut candidates: Vec<String> = samples.to_vec();
            candidates.extend(SAMPLE_CONDITIONS.iter().map(|s| s.to_string()));
            kinds::condition(report, plugins, &candidates).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_without_a_grant_gets_every_grantable_scheme() {
        let schemes = kit_grant().schemes.unwrap();
        assert_eq!(schemes, crate::plugins::grantable_schemes());
        assert!(schemes.iter().any(|s| s == "sftp"), "the host-served sftp too: {schemes:?}");
        assert!(!schemes.iter().any(|s| crate::plugins::is_never_granted(s)), "{schemes:?}");
    }
}
